"""``load_volume``: decode a stack's slices in parallel into one preallocated Volume.

Threads, not processes: the fast path is ``np.fromfile`` plus numpy arithmetic and the compressed
path spends its time in C decoders, both releasing the GIL, and threads write straight into the
shared output array (processes would have to copy every slice back).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np

from viewer.dicom.errors import DicomFileError, NoSeriesError
from viewer.dicom.pixels import decode_file, decode_into
from viewer.dicom.scan import scan
from viewer.dicom.stacks import Stack
from viewer.dicom.volume import Volume

SliceCallback = Callable[[int, np.ndarray], None]


class LoadCancelled(Exception):
    """``load_volume`` stopped because its ``cancel`` event was set."""


@dataclass
class _Job:
    slices: list[int]
    native: bool
    """Fast-path slices, each decoded on its own (a failure affects that slice only); otherwise the
    frames of one file, decoded together in one pass."""


def _jobs(stack: Stack, first: int, n_workers: int) -> list[_Job]:
    """Decode jobs, the one holding slice ``first`` leading (with ``first`` at its head).

    Fast-path slices go in chunks (a few per worker) to keep thread hand-offs rare; other files are
    one job each.
    """
    native = [k for k, s in enumerate(stack.slices) if s.native and k != first]
    by_file: dict[str, list[int]] = {}
    for k, s in enumerate(stack.slices):
        if not s.native:
            by_file.setdefault(s.file.path, []).append(k)
    jobs = [_Job(ks, False) for ks in by_file.values()]
    lead_native = stack.slices[first].native
    if lead_native:
        lead = _Job([first], True)
    else:
        lead = next(j for j in jobs if first in j.slices)
        jobs.remove(lead)
        lead.slices.sort(key=lambda k: k != first)
    size = max(1, math.ceil(len(native) / (4 * n_workers)))
    jobs += [_Job(native[i:i + size], True) for i in range(0, len(native), size)]
    return [lead] + jobs


def default_workers() -> int:
    """Decode threads: the cores this process may use, 1 to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def load_volume(
    stack: Stack,
    *,
    on_slice: SliceCallback | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
    first: int = 0,
) -> Volume:
    """Decode every slice of ``stack`` into a :class:`Volume` (float32 modality units, or uint8 RGB).

    Slice ``first`` (default 0) is decoded in the calling thread and ``on_slice(first, array)`` is
    called before any other slice starts; then the rest decode on ``workers`` threads and
    ``on_slice(k, array)`` is called **from those worker threads** as each slice lands (``array`` is
    a view into the volume being filled: copy it if you keep it past the call). Setting ``cancel``
    stops the work and raises :class:`LoadCancelled`. A slice whose file fails to decode is filled with
    the volume's minimum and named in ``volume.warnings`` (and ``volume.info.extra["slice_errors"]``);
    if every slice fails, the first file's :class:`DicomFileError` is raised.
    """
    n = stack.n_slices
    shape: tuple[int, ...] = (n, stack.rows, stack.columns)
    array = np.empty(shape + ((3,) if stack.is_color else ()), dtype=np.uint8 if stack.is_color else np.float32)
    failures: dict[int, DicomFileError] = {}
    if not 0 <= first < n:
        raise IndexError(f"first slice {first} out of range 0..{n - 1}")
    n_workers = workers or default_workers()
    jobs = _jobs(stack, first, n_workers)

    def landed(k: int) -> None:
        if on_slice is not None:
            on_slice(k, array[k])

    def work(job: _Job) -> None:
        if job.native:
            for k in job.slices:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    decode_into(stack.slices[k], array[k])
                except DicomFileError as exc:
                    failures[k] = exc
                else:
                    landed(k)
            return
        if cancel is not None and cancel.is_set():
            return
        try:
            decode_file([stack.slices[k] for k in job.slices], [array[k] for k in job.slices],
                        lambda m: landed(job.slices[m]))
        except DicomFileError as exc:
            for k in job.slices:
                failures[k] = exc

    work(jobs[0])
    rest = jobs[1:]
    if n_workers <= 1 or len(rest) <= 1:
        for job in rest:
            work(job)
    else:
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="radscope-decode") as pool:
            for _ in pool.map(work, rest):
                pass
    if cancel is not None and cancel.is_set():
        raise LoadCancelled(f"loading {stack.stack_id} cancelled")
    warnings = list(stack.warnings)
    if failures:
        if len(failures) == n:
            raise failures[min(failures)]
        good = np.ones(n, dtype=bool)
        good[list(failures)] = False
        fill = array[good].min()
        for k, exc in sorted(failures.items()):
            array[k] = fill
            warnings.append(f"slice {k} could not be decoded and is blank: {exc.path}: {exc.reason}")
    info = stack.info
    if failures:
        info.extra["slice_errors"] = [failures[k].as_file_error() for k in sorted(failures)]
    return Volume(
        array=array,
        origin=stack.origin.copy(),
        spacing=stack.spacing.copy(),
        direction=stack.direction.copy(),
        sop_instance_uids=stack.sop_instance_uids,
        info=info,
        warnings=warnings,
        source_files=stack.files,
        frame_numbers=stack.frame_numbers,
    )


def open_volume(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    series_uid: str | None = None,
    **load_kwargs: Any,
) -> Volume:
    """Scan ``paths``, pick the largest stack of ``series_uid`` (or the largest overall), and load it."""
    result = scan(paths)
    stack = result.find(series_uid)
    if stack is None:
        what = f"series {series_uid}" if series_uid else "any image series"
        detail = "; ".join(str(e) for e in result.errors[:5])
        raise NoSeriesError(f"no {what} found in {', '.join(map(str, _as_list(paths)))}" + (f" ({detail})" if detail else ""))
    return load_volume(stack, **load_kwargs)


def _as_list(paths: Any) -> list[Any]:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
