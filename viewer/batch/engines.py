"""The two engines of ``radscope infer``: local (this process, series after series) and Ray (one model per
actor, back-pressure, a killed worker's series retried once).

Both take the same :class:`~viewer.batch.series.SeriesJob` list and report one
:class:`~viewer.batch.series.SeriesOutcome` per job through ``on_outcome`` (in the calling thread), so
they write the same files.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viewer.batch.series import SeriesJob, SeriesOutcome, SeriesRunner

if TYPE_CHECKING:
    from inference.package import ModelCard
    from viewer.dicom.errors import FileError
    from viewer.dicom.headers import SliceHeader

OnOutcome = Callable[[SeriesOutcome], None]
Say = Callable[[str], None]
MAX_ATTEMPTS = 2
"""A series whose worker died is run once more on a fresh worker, then reported as failed."""
FAULT_ENV = "RADSCOPE_TEST_KILL_WORKER_ONCE"
"""Fault injection for the tests only: ``<series uid>:<marker file>`` makes the Ray worker that starts that
series kill itself the first time (the marker file records that it happened); ``<series uid>:`` every time."""
SCAN_CHUNK = 256


class ModelLoadError(RuntimeError):
    """A model package could not be loaded by a worker (the message names the package and the reason)."""


PACKAGE_REFUSED = "package refused: "
"""How a Ray worker marks a refused package (weights, shapes: only that package's series fail) apart from
an error that stops the run (an --explain method the model lacks)."""


@dataclass(frozen=True)
class RunOptions:
    device: str = "auto"
    batch_size: int | None = None
    explain: str = "default"
    use_cache: bool = True
    heatmap_scale: str = "series"
    model_errors_fatal: bool = True
    """A package that cannot be loaded stops the run (the model was asked for by name); else (local engine)
    its series fail with the reason and the other packages' series still run."""


def _by_model(jobs: Sequence[SeriesJob]) -> dict[str, list[SeriesJob]]:
    groups: dict[str, list[SeriesJob]] = defaultdict(list)
    for job in jobs:
        groups[job.model_key].append(job)
    return groups


def _failed(job: SeriesJob, reason: str, attempts: int = 1) -> SeriesOutcome:
    return SeriesOutcome(job.stack.stack_id, job.stack.info.series_uid, "failed", job.n_slices, reason=reason,
                         folder=job.folder, attempts=attempts)


class LocalEngine:
    """Series after series in this process; one loaded model per package."""

    name = "local"

    def __init__(self, options: RunOptions, say: Say) -> None:
        self.options = options
        self.say = say

    def run(self, jobs: Sequence[SeriesJob], cards: dict[str, ModelCard], out_root: Path,
            on_outcome: OnOutcome) -> None:
        from inference.package import ModelPackageError

        for key, group in _by_model(jobs).items():
            o = self.options
            try:
                runner = SeriesRunner(cards[key], device=o.device, batch_size=o.batch_size, explain=o.explain,
                                      use_cache=o.use_cache, say=self.say, heatmap_scale=o.heatmap_scale)
            except ModelPackageError as exc:  # refused weights, wrong shapes ...: never code, never a traceback
                if o.model_errors_fatal:
                    raise ModelLoadError(str(exc)) from exc
                for job in group:
                    on_outcome(_failed(job, f"model cannot be loaded: {exc}"))
                continue
            except ValueError as exc:  # an unavailable --explain method: the run cannot go on
                raise ModelLoadError(str(exc)) from exc
            self.say(f"model {runner.card.name} {runner.card.version} on {runner.device}")
            for job in group:
                try:
                    outcome = runner.process(job, out_root)
                except Exception as exc:  # one bad series never stops the run (as in the Ray worker)
                    outcome = _failed(job, f"{type(exc).__name__}: {exc}")
                on_outcome(outcome)

    def parse(self, files: Sequence[str]) -> tuple[list[SliceHeader], list[FileError]]:
        from viewer.dicom.scan import parse_files

        return parse_files(files)


class _Worker:
    """The body of a Ray actor: one model, loaded once; runs one job at a time."""

    def __init__(self, card: ModelCard, options: RunOptions, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        from inference.package import ModelPackageError

        o = options
        try:
            self.runner = SeriesRunner(card, device=o.device, batch_size=o.batch_size, explain=o.explain,
                                       use_cache=o.use_cache, heatmap_scale=o.heatmap_scale)
        except ModelPackageError as exc:
            raise ModelLoadError(PACKAGE_REFUSED + str(exc)) from exc
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc

    def describe(self) -> str:
        return f"{self.runner.card.name} {self.runner.card.version} on {self.runner.device} (pid {os.getpid()})"

    def process(self, job: SeriesJob, out_root: str) -> SeriesOutcome:
        fault = os.environ.get(FAULT_ENV, "")
        if fault:
            uid, _, marker = fault.partition(":")
            if uid == job.stack.info.series_uid and not (marker and os.path.exists(marker)):
                if marker:
                    Path(marker).write_text(str(os.getpid()))
                os._exit(1)
        try:
            return self.runner.process(job, Path(out_root))
        except Exception as exc:  # one bad series never stops the worker: the reason goes to errors.json
            return _failed(job, f"{type(exc).__name__}: {exc}")


def _parse_chunk(files: list[str]) -> tuple[list[SliceHeader], list[FileError]]:
    from viewer.dicom.scan import parse_files

    return parse_files(files)


class RayEngine:
    """One model per actor (``num_gpus=1`` each where the cluster has GPUs, CPUs otherwise), at most two
    jobs queued per actor (back-pressure), a worker that dies has its series retried once on a new actor."""

    name = "ray"

    def __init__(self, options: RunOptions, say: Say, *, workers: int | None = None,
                 address: str | None = None) -> None:
        self.options = options
        self.say = say
        self.address = address
        self.workers_asked = workers
        self.workers = 0
        self.gpus = 0
        self.cpus = 1
        self._started_here = False

    # -- cluster -----------------------------------------------------------------------------------
    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        if self._started_here:
            ray.shutdown()

    def _ensure(self) -> None:
        """Start (or join) Ray the first time there is work for it."""
        import ray

        if not ray.is_initialized():
            env = {k: os.environ[k] for k in ("RADSCOPE_HOME", "PYTHONPATH", FAULT_ENV) if k in os.environ}
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                                          runtime_env={"env_vars": env} if env else None)
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:  # a private local instance on this machine only
                ray.init(num_cpus=os.cpu_count() or 1, _node_ip_address="127.0.0.1",
                         object_store_memory=256 * 1024 * 1024, **kwargs)
            self._started_here = True
        if self.workers:
            return
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.workers = self.workers_asked or (self.gpus or self.cpus)
        where = self.address or "a local Ray instance"
        self.say(f"ray: {where} with {self.cpus} CPUs, {self.gpus} GPUs; {self.workers} workers")

    def _actor_class(self) -> Any:
        import ray

        if self.gpus:
            return ray.remote(num_gpus=1, num_cpus=1, max_restarts=0)(_Worker), 1
        threads = max(1, self.cpus // max(1, self.workers))
        return ray.remote(num_cpus=threads, max_restarts=0)(_Worker), threads

    # -- scanning -------------------------------------------------------------------------------------
    def parse(self, files: Sequence[str]) -> tuple[list[SliceHeader], list[FileError]]:
        """Headers of ``files`` parsed in parallel Ray tasks, chunk by chunk (here, when there are only a
        few chunks: starting workers would cost more than it saves)."""
        if len(files) <= 2 * SCAN_CHUNK:
            return _parse_chunk(list(files))
        import ray

        self._ensure()
        remote = ray.remote(num_cpus=1)(_parse_chunk)
        chunks = [list(files[i:i + SCAN_CHUNK]) for i in range(0, len(files), SCAN_CHUNK)]
        slices: list[SliceHeader] = []
        errors: list[FileError] = []
        for got_slices, got_errors in ray.get([remote.remote(c) for c in chunks]):
            slices.extend(got_slices)
            errors.extend(got_errors)
        return slices, errors

    # -- running --------------------------------------------------------------------------------------
    def run(self, jobs: Sequence[SeriesJob], cards: dict[str, ModelCard], out_root: Path,
            on_outcome: OnOutcome) -> None:
        if not jobs:
            return
        self._ensure()
        for key, group in _by_model(jobs).items():
            self._run_model(cards[key], group, out_root, on_outcome)

    def _run_model(self, card: ModelCard, jobs: list[SeriesJob], out_root: Path, on_outcome: OnOutcome) -> None:
        import ray
        from ray.exceptions import RayActorError

        cls, threads = self._actor_class()
        options = self.options if not self.gpus else replace(self.options, device="cuda")
        n = max(1, min(self.workers, len(jobs)))
        actors = [cls.remote(card, options, threads) for _ in range(n)]
        try:
            self.say(f"ray: {n} x {ray.get(actors[0].describe.remote())}")
        except RayActorError as exc:
            for a in actors:
                ray.kill(a)
            cause = _actor_cause(exc, card)
            if cause.startswith(PACKAGE_REFUSED) and not self.options.model_errors_fatal:
                for job in jobs:  # as the local engine: that package's series fail, the others run
                    on_outcome(_failed(job, f"model cannot be loaded: {cause.removeprefix(PACKAGE_REFUSED)}"))
                return
            raise ModelLoadError(cause.removeprefix(PACKAGE_REFUSED)) from exc
        queue: list[tuple[SeriesJob, int]] = [(job, 1) for job in reversed(jobs)]  # popped from the end
        # ref -> (job, attempt, actor index, actor, submission number)
        in_flight: dict[Any, tuple[SeriesJob, int, int, Any, int]] = {}
        load = [0] * n
        out = str(out_root)
        submitted = 0

        def submit() -> None:
            nonlocal submitted
            while queue:
                i = min(range(n), key=lambda a: load[a])
                if load[i] >= 2:  # back-pressure: one running and one waiting per actor
                    return
                job, attempt = queue.pop()
                submitted += 1
                in_flight[actors[i].process.remote(job, out)] = (job, attempt, i, actors[i], submitted)
                load[i] += 1

        submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            entry = in_flight.pop(ready[0])
            job, attempt, i, actor, _seq = entry
            load[i] -= 1
            try:
                outcome: SeriesOutcome = ray.get(ready[0])
            except RayActorError as exc:
                # The worker died. An actor runs its calls in order, so the oldest call it held was running:
                # that series is blamed (one more attempt); those still waiting go back unblamed.
                held = [entry]
                for r in [r for r, v in in_flight.items() if v[3] is actor]:
                    held.append(in_flight.pop(r))
                load[i] = 0
                ray.kill(actor, no_restart=True)
                actors[i] = cls.remote(card, options, threads)
                held.sort(key=lambda v: v[4])
                culprit, waiting = held[0], held[1:]
                self.say(f"ray: worker {i} died while running {culprit[0].label}; started a new one")
                queue.extend((w[0], w[1]) for w in waiting)
                if culprit[1] < MAX_ATTEMPTS:
                    queue.append((culprit[0], culprit[1] + 1))
                else:
                    on_outcome(_failed(culprit[0], f"its worker died {culprit[1]} times ({type(exc).__name__})",
                                       culprit[1]))
            else:
                outcome.attempts = attempt
                on_outcome(outcome)
            submit()
        for a in actors:
            ray.kill(a)


def _actor_cause(exc: BaseException, card: ModelCard) -> str:
    text = str(exc)
    marker = "ModelLoadError: "
    if marker in text:
        return text[text.rindex(marker) + len(marker):].strip().splitlines()[0]
    return f"{card.source}: the worker could not load the model ({type(exc).__name__})"

