"""``load_volume``: decode a stack's slices in parallel into one preallocated Volume.

Threads, not processes: the fast path is ``np.fromfile`` plus numpy arithmetic and the compressed
path spends its time in C decoders, both releasing the GIL, and threads write straight into the
shared output array (processes would have to copy every slice back).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from viewer.dicom.errors import DicomFileError, NoSeriesError
from viewer.dicom.pixels import decode_file, decode_into
from viewer.dicom.scan import scan
from viewer.dicom.stacks import Stack
from viewer.dicom.volume import Volume

SliceCallback = Callable[[int, np.ndarray], None]


class LoadCancelled(Exception):
    """``load_volume`` stopped because its ``cancel`` event was set."""


def _work_units(stack: Stack, first: int) -> list[list[int]]:
    """Slice indices grouped into decode jobs: one per fast-path slice, one per other file; ``first`` leads."""
    units: list[list[int]] = []
    by_file: dict[str, list[int]] = {}
    for k, s in enumerate(stack.slices):
        if s.file.fmt.fast_path:
            units.append([k])
        elif s.file.path in by_file:
            by_file[s.file.path].append(k)
        else:
            by_file[s.file.path] = [k]
            units.append(by_file[s.file.path])
    lead = next(u for u in units if first in u)
    units.remove(lead)
    lead.sort(key=lambda k: k != first)
    return [lead] + units


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


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
    units = _work_units(stack, first)

    def landed(k: int) -> None:
        if on_slice is not None:
            on_slice(k, array[k])

    def work(unit: list[int]) -> None:
        if cancel is not None and cancel.is_set():
            return
        slices = [stack.slices[k] for k in unit]
        try:
            if len(unit) == 1 and slices[0].file.fmt.fast_path:
                decode_into(slices[0], array[unit[0]])
                landed(unit[0])
            else:
                decode_file(slices, [array[k] for k in unit], lambda m: landed(unit[m]))
        except DicomFileError as exc:
            for k in unit:
                failures[k] = exc

    work(units[0])
    rest = units[1:]
    n_workers = workers or default_workers()
    if n_workers <= 1 or len(rest) <= 1:
        for unit in rest:
            work(unit)
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
