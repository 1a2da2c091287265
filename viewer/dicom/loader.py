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
from viewer.dicom.pixels import _read_full, decode_into
from viewer.dicom.scan import scan
from viewer.dicom.stacks import Stack
from viewer.dicom.volume import Volume

SliceCallback = Callable[[int, np.ndarray], None]


class LoadCancelled(Exception):
    """``load_volume`` stopped because its ``cancel`` event was set."""


class _Datasets:
    """Full datasets of multi-frame files, read once and shared by the threads decoding their frames."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, Any] = {}

    def get(self, path: str) -> Any:
        with self._lock:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            if path not in self._cache:
                ds = _read_full(path)
                ds.PixelData  # convert the raw element once, before threads share it
                self._cache[path] = ds
            return self._cache[path]


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
    multi = {s.file.path for s in stack.slices if s.frame is not None and not s.file.fmt.fast_path}
    datasets = _Datasets()
    failures: dict[int, DicomFileError] = {}

    def work(k: int) -> None:
        if cancel is not None and cancel.is_set():
            return
        s = stack.slices[k]
        try:
            decode_into(s, array[k], datasets.get(s.file.path) if s.file.path in multi else None)
        except DicomFileError as exc:
            failures[k] = exc
            return
        if on_slice is not None:
            on_slice(k, array[k])

    if not 0 <= first < n:
        raise IndexError(f"first slice {first} out of range 0..{n - 1}")
    work(first)
    rest = [k for k in range(n) if k != first]
    n_workers = workers or default_workers()
    if n_workers <= 1 or len(rest) <= 1:
        for k in rest:
            work(k)
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
