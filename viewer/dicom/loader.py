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

from viewer.dicom.overlays import overlay_volume
from viewer.dicom.errors import DicomFileError, NoSeriesError
from viewer.dicom.pixels import ValuesOutOfRange, decode_file, decode_into, decode_slice, integer_dtype
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
    integers: bool = False,
) -> Volume:
    """Decode every slice of ``stack`` into a :class:`Volume` (modality units, or uint8 RGB).

    Grey volumes are float32, or with ``integers=True`` int16/uint16 when every slice's modality
    values are integers that fit (:func:`~viewer.dicom.pixels.integer_dtype`: integral slope and
    intercept over the stored range; the stored integers never pass through floats).

    Slice ``first`` (default 0; volume slice order) is decoded in the calling thread and
    ``on_slice(first, array)`` is called before any other slice starts; then the rest decode on
    ``workers`` threads and ``on_slice(k, array)`` is called **from those worker threads** as each
    slice lands (``array`` is a view into the volume being filled: copy it if you keep it past the
    call). Missing slices of a gapped stack (see :mod:`viewer.dicom.grid`) are filled with the
    volume's minimum, flagged in ``volume.missing`` and reported last; a resampled (variable pitch)
    stack reports its slices once all are interpolated. Setting ``cancel`` stops the work and raises
    :class:`LoadCancelled`. A slice whose file fails to decode is filled with the volume's minimum
    and named in ``volume.warnings`` (and ``volume.info.extra["slice_errors"]``); if every slice
    fails, the first file's :class:`DicomFileError` is raised; a refused grid (too sparse) raises
    :class:`DicomFileError` with the reason.
    """
    grid = stack.slice_grid
    if grid.refusal:
        raise DicomFileError(stack.files[0], f"series {stack.stack_id}: {grid.refusal}")
    n = grid.n
    if not 0 <= first < n:
        raise IndexError(f"first slice {first} out of range 0..{n - 1}")
    dtype: np.dtype = np.dtype(np.uint8) if stack.is_color else np.dtype(np.float32)
    if integers and not stack.is_color and grid.resample is None:
        dtype = integer_dtype(stack.slices) or dtype
    pixel_shape = (stack.rows, stack.columns) + ((3,) if stack.is_color else ())
    m = len(stack.slices)
    first_src = int(grid.nearest_source[first])
    while True:
        array = np.empty((n,) + pixel_shape, dtype=dtype)
        if grid.resample is None:
            target, slot = array, grid.slots
            report: SliceCallback | None = on_slice
        else:  # acquired slices first, interpolated onto the grid afterwards
            target, slot, report = np.empty((m,) + pixel_shape, dtype=np.float32), np.arange(m), None
        try:
            notes: list[str] = []
            failures = _decode_all(stack, target, slot, first_src, report, cancel, workers or default_workers(), notes)
            break
        except ValuesOutOfRange:  # an integer guess that a slice's values exceed: decode again as float32
            del array, target
            dtype = np.dtype(np.float32)
    if cancel is not None and cancel.is_set():
        raise LoadCancelled(f"loading {stack.stack_id} cancelled")
    if len(failures) == m:
        raise failures[min(failures)]
    warnings = list(stack.warnings) + notes
    good = [s for s in range(m) if s not in failures]
    fill = min(target[slot[s]].min() for s in good) if (failures or not grid.is_identity) else None
    for s, exc in sorted(failures.items()):
        target[slot[s]] = fill
        warnings.append(f"slice {slot[s]} could not be decoded and is blank: {exc.path}: {exc.reason}")
    missing = grid.missing
    if grid.resample is not None:
        lo, hi, w = grid.resample
        for g in range(n):
            _blend(target[lo[g]], target[hi[g]], float(w[g]), array[g])
        del target
    elif missing.any():
        array[missing] = fill
    if on_slice is not None and (grid.resample is not None or missing.any()):
        for g in (range(n) if grid.resample is not None else [int(v) for v in np.nonzero(missing)[0]]):
            on_slice(g, array[g])
    info = stack.info
    if failures:
        info.extra["slice_errors"] = [failures[s].as_file_error() for s in sorted(failures)]
    volume = Volume(
        array=array,
        origin=stack.origin.copy(),
        spacing=stack.spacing.copy(),
        direction=stack.direction.copy(),
        sop_instance_uids=stack.sop_instance_uids,
        info=info,
        warnings=warnings,
        source_files=stack.slice_files,
        frame_numbers=stack.frame_numbers,
        missing=missing,
        interpolated=grid.source_of < 0 if grid.resample is not None else None,
    )
    if any(s.file.has_overlays for s in stack.slices) and not any(s.tile is not None for s in stack.slices):
        overlay_notes: list[str] = []
        volume.overlay = overlay_volume(volume.array.shape[:3], volume.source_files, volume.frame_numbers,
                                        np.asarray(volume.missing, dtype=bool) | np.asarray(volume.interpolated, dtype=bool),
                                        overlay_notes)
        warnings.extend(dict.fromkeys(overlay_notes))
    return volume


def _blend(a: np.ndarray, b: np.ndarray, w: float, out: np.ndarray) -> None:
    """out = (1 - w) * a + w * b."""
    if w == 0.0:
        out[...] = a
    elif w == 1.0:
        out[...] = b
    else:
        np.multiply(a, np.float32(1.0 - w), out=out)
        out += np.float32(w) * b


def _decode_all(
    stack: Stack, target: np.ndarray, slot: np.ndarray, first: int, on_slice: SliceCallback | None,
    cancel: threading.Event | None, n_workers: int, notes: list[str],
) -> dict[int, DicomFileError]:
    """Decode acquired slice ``s`` into ``target[slot[s]]``, slice ``first`` alone first, the rest on
    ``n_workers`` threads; returns the failures by acquired slice."""
    failures: dict[int, DicomFileError] = {}
    jobs = _jobs(stack, first, n_workers)

    def landed(s: int) -> None:
        if on_slice is not None:
            on_slice(int(slot[s]), target[slot[s]])

    def work(job: _Job) -> None:
        if job.native:
            for s in job.slices:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    decode_into(stack.slices[s], target[slot[s]])
                except DicomFileError as exc:
                    failures[s] = exc
                else:
                    landed(s)
            return
        if cancel is not None and cancel.is_set():
            return
        try:
            decode_file([stack.slices[s] for s in job.slices], [target[slot[s]] for s in job.slices],
                        lambda n: landed(job.slices[n]))
        except DicomFileError as exc:
            for s in job.slices:
                failures[s] = exc

    work(jobs[0])
    rest = jobs[1:]
    if n_workers <= 1 or len(rest) <= 1:
        for job in rest:
            work(job)
    else:
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="radscope-decode") as pool:
            for _ in pool.map(work, rest):
                pass
    for s in sorted(failures):
        if _use_duplicate(stack, s, failures[s], target[slot[s]], notes):
            del failures[s]
            landed(s)
    return failures


def decode_acquired(stack: Stack, s: int) -> np.ndarray:
    """Acquired slice ``s`` decoded on its own (thumbnails), through the safe decoder order, falling back to a
    duplicate at the same position; raises the slice's own DicomFileError when none decodes."""
    try:
        return decode_slice(stack.slices[s])
    except DicomFileError:
        for alt in stack.duplicates.get(s, []):
            try:
                return decode_slice(alt)
            except DicomFileError:
                continue
        raise


def _use_duplicate(stack: Stack, s: int, error: DicomFileError, out: np.ndarray, notes: list[str]) -> bool:
    """Decode a duplicate of failed slice ``s`` (same position) into ``out`` instead; True when one decodes.
    The stack then refers to the duplicate (header, SOP Instance UID and file of that slice)."""
    for n, alt in enumerate(stack.duplicates.get(s, [])):
        try:
            decode_into(alt, out)
        except DicomFileError:
            continue
        failed = stack.slices[s]
        stack.slices[s] = alt
        stack.duplicates[s][n] = failed
        notes.append(f"{error.path} could not be decoded ({error.reason}); its duplicate at the same position, "
                     f"{alt.file.path}, is used instead")
        return True
    return False


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
