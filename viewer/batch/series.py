"""One series through one model: load, infer (or take the results cache), write its output folder.

This is the unit both engines of ``radscope infer`` run: the local engine in the calling process, the Ray
engine inside one actor per model. ``scores.json`` is written last and atomically, so a folder holding
it is complete (the ledger in :mod:`viewer.batch.ledger` trusts nothing else).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from collections.abc import Callable

import numpy as np

if TYPE_CHECKING:
    from inference.package import ModelCard
    from inference.runner import Runner
    from viewer.dicom import Stack, Volume

Status = Literal["done", "cached", "skipped", "failed", "out_of_scope"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class SeriesJob:
    """What to run: a stack (headers only, no pixels) and the folder name its results go to."""

    stack: Stack
    folder: str
    """Name of the output folder under the run's --out (already sanitised)."""
    model_key: str
    """Which model package (``ModelCard.source`` plus the folder inside a zip)."""
    stack_key: str
    """The results-cache id: stack id + digest of the input rule and the slices' SOP Instance UIDs."""
    source: str = ""
    """The input path (folder, archive, file) the series was found under, for the review worklist."""

    @property
    def label(self) -> str:
        return self.stack.stack_id

    @property
    def n_slices(self) -> int:
        return self.stack.n_slices


@dataclass
class SeriesOutcome:
    """What became of one job (sent back from an engine's worker; plain data only)."""

    stack_id: str
    series_uid: str
    status: Status
    n_slices: int = 0
    seconds: float = 0.0
    reason: str = ""
    folder: str = ""
    attempts: int = 1
    worker: str = field(default_factory=lambda: f"pid {os.getpid()}")


class NonFiniteScoresError(ValueError):
    """The model gave NaN or infinite scores: nothing is written or cached for the series."""


def safe_label(label: str) -> str:
    """A label as it appears in ``heatmap_<label>.nii.gz`` (:func:`viewer.paths.safe_component`)."""
    from viewer.paths import safe_component

    return safe_component(label, fallback="label")


def model_key(card: ModelCard) -> str:
    return f"{card.source}:{card.root_in_zip}"


def resolve_method(card: ModelCard, explain: str) -> str:
    """The method ``--explain`` means for this package, known before its weights load (``default``: the
    first CAM method for models with layers, integrated gradients for TorchScript)."""
    if explain != "default":
        return explain
    from inference.explain.methods import INPUT_METHODS, METHODS

    has_layers = card.weights.format != "torchscript"
    return (METHODS if has_layers and card.target_layer else INPUT_METHODS)[0]


def output_folder(stack: Stack, series_asked: bool) -> str:
    """The output folder's name for a stack: its series UID, or its stack id when a series splits into
    several stacks (``--series`` names the largest, which then takes the series UID)."""
    from viewer.paths import safe_component

    name = stack.info.series_uid if stack.stack_id == stack.info.series_uid or series_asked else stack.stack_id
    return safe_component(name, tag_changes=True, fallback="series")  # a hostile UID never leaves --out


def write_heatmap(vol: Volume, heat: np.ndarray, path: Path) -> None:
    """``heat`` (k, j, i) as float32 NIfTI on the geometry ``radscope convert`` gives ``vol``."""
    import SimpleITK as sitk

    from viewer.dicom import Volume
    from viewer.dicom.writers import orthogonal_volume

    hv = orthogonal_volume(Volume(array=heat.astype(np.float32), origin=vol.origin, spacing=vol.spacing,
                                  direction=vol.direction, sop_instance_uids=list(vol.sop_instance_uids)))
    img = sitk.GetImageFromArray(np.clip(hv.array, 0.0, 1.0).astype(np.float32))
    img.SetOrigin(tuple(float(v) for v in hv.origin))
    img.SetSpacing(tuple(float(v) for v in hv.spacing))
    img.SetDirection(tuple(float(v) for v in hv.direction.reshape(-1)))
    sitk.WriteImage(img, str(path), useCompression=True)


def write_json_atomic(path: Path, doc: Any) -> None:
    """``doc`` as JSON at ``path``, replacing it only once the whole file is on disk."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=1) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SeriesRunner:
    """One loaded model and the method it explains with; runs jobs one after another."""

    def __init__(self, card: ModelCard | str | Path, *, device: str = "auto", batch_size: int | None = None,
                 explain: str = "default", use_cache: bool = True, say: Say | None = None) -> None:
        from inference.runner import Runner

        t0 = time.perf_counter()
        self.runner: Runner = Runner(card, device=device, batch_size=batch_size)
        self._load_s: float | None = time.perf_counter() - t0
        """Seconds the model took to load, reported with the first series this runner writes."""
        self.card = self.runner.card
        self.use_cache = use_cache
        self.say: Say = say or (lambda _msg: None)
        methods = self.runner.methods
        self.method = resolve_method(self.card, explain)
        if self.method != "none" and self.method not in methods:
            raise ValueError(f"--explain {self.method} is not available for {self.card.name} "
                             f"({self.card.weights.format}); choose one of {', '.join(methods)} or none")

    @property
    def sha256(self) -> str:
        return self.runner.model.sha256

    @property
    def device(self) -> str:
        return str(self.runner.device)

    def infer(self, vol: Volume, cache_key: str | None, label: str
              ) -> tuple[np.ndarray, dict[str, np.ndarray], str, float, bool]:
        """Scores (k, L), heatmaps {label: (k, j, i)}, device, seconds, whether the cache answered."""
        from inference.cache import CacheEntryError, ResultCache
        from viewer import paths
        from viewer.ai.model_input import model_input

        runner, method = self.runner, self.method
        cache = ResultCache(paths.subdir("cache")) if cache_key and self.use_cache else None
        if cache is not None and cache_key is not None:
            try:
                hit = cache.load(cache_key, self.sha256, method, expect=vol.shape)
            except CacheEntryError as exc:  # reported as the viewer does, then recomputed (and replaced)
                self.say(f"{label}: ignoring a corrupt results-cache entry: {exc}; recomputing")
                hit = None
            if hit is not None and list(hit.labels) == list(self.card.labels) and (
                    method == "none" or set(hit.stored) == set(self.card.labels)):
                self.say(f"{label}: results from the cache")
                return hit.scores, hit.heatmaps, str(hit.meta.get("device", "cache")), 0.0, True
        k = vol.shape[0]
        scores = np.zeros((k, len(self.card.labels)), dtype=np.float32)
        heat = {name: np.zeros(vol.shape, dtype=np.float32) for name in self.card.labels} if method != "none" else {}
        t0 = time.perf_counter()
        device = self.device
        for res in runner.run(model_input(vol), method=method, progress=lambda e: self.say(f"{label}: {e.message}")):
            idx = list(res.indices)
            scores[idx] = res.scores
            for name, maps in res.heatmaps.items():
                heat[name][idx] = maps
            device = res.device
        seconds = time.perf_counter() - t0
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        if bad.size:
            raise NonFiniteScoresError(f"{self.card.card_file}: the model gave NaN or infinite scores for "
                                       f"{bad.size} of {k} slices (first: slice {int(bad[0])}); nothing written")
        if cache is not None and cache_key is not None:
            cache.put(cache_key, self.sha256, method, self.card.labels, list(range(k)), scores, heat, {"device": device})
        return scores, heat, device, seconds, False

    def process(self, job: SeriesJob, out_root: Path, *, extra: dict[str, Any] | None = None) -> SeriesOutcome:
        """Load the job's volume, infer it and write ``out_root/<job.folder>/``; never raises for bad data."""
        from inference.cache import INPUT_RULE
        from viewer.dicom import DicomFileError, load_volume
        from viewer.paths import inside, unique_components

        stack, label = job.stack, job.label
        base = SeriesOutcome(stack.stack_id, stack.info.series_uid, "failed", stack.n_slices, folder=job.folder)
        t0 = time.perf_counter()
        try:
            vol = load_volume(stack)
        except DicomFileError as exc:
            base.reason = str(exc)
            return base
        if vol.is_color:
            base.reason = "colour images are not supported by the models"
            return base
        load_s = time.perf_counter() - t0
        try:
            scores, heat, device, infer_s, cached = self.infer(vol, job.stack_key, label)
        except NonFiniteScoresError as exc:
            base.reason = str(exc)
            return base
        t_write = time.perf_counter()
        folder = inside(out_root, job.folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = unique_components(heat)
        for name, maps in heat.items():
            write_heatmap(vol, maps, inside(folder, f"heatmap_{names[name]}.nii.gz"))
        doc: dict[str, Any] = {
            "model": {"name": self.card.name, "version": self.card.version, "sha256": self.sha256},
            "method": self.method,
            "input_rule": INPUT_RULE,
            "stack_key": job.stack_key,
            "device": device,
            "labels": list(self.card.labels),
            "thresholds": {name: float(self.card.thresholds.get(name, 0.5)) for name in self.card.labels},
            "series_uid": stack.info.series_uid,
            "stack_id": stack.stack_id,
            "study_uid": stack.info.study_uid,
            "modality": stack.info.modality,
            "description": stack.info.description,
            "source": job.source,
            "cached": cached,
            "monochrome1_inverted": bool(vol.info.monochrome1),
            "slices": [{"index": k, "sop_instance_uid": vol.sop_instance_uids[k],
                        "scores": {name: round(float(scores[k, j]), 6) for j, name in enumerate(self.card.labels)}}
                       for k in range(vol.shape[0])],
            "timing_s": {"load_model": round(self._load_s or 0.0, 4), "load_volume": round(load_s, 4),
                         "inference": round(infer_s, 4), "write": 0.0, "total": 0.0},
        }
        self._load_s = None
        doc.update(extra or {})
        doc["timing_s"]["write"] = round(time.perf_counter() - t_write, 4)
        doc["timing_s"]["total"] = round(time.perf_counter() - t0, 4)
        write_json_atomic(folder / "scores.json", doc)
        self.say(f"{label}: wrote {folder} ({vol.shape[0]} slices, {len(heat)} heatmaps)")
        base.status = "cached" if cached else "done"
        base.n_slices = int(vol.shape[0])
        base.seconds = time.perf_counter() - t0
        return base
