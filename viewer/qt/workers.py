"""Background work for the window: scanning paths, loading a stack, making thumbnails.

Each job is a :class:`viewer.qt.jobs.Job` (the viewer's one worker style) created on the GUI thread; its
work runs on a Python thread of its own and reports through the job's signals, which Qt delivers queued to
the bound methods of GUI-thread receivers (never connect them to closures: those would run on that thread).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from collections.abc import Sequence

import numpy as np

from viewer.display.windowing import auto_window, initial_window, levels, preset_mapping, to_uint8
from viewer.qt.jobs import Job
from viewer.qt.qt import QObject, Signal

THUMB_SIZE = 96


class ScanJob(Job):
    """``viewer.dicom.scan(paths)`` off the GUI thread (at normal priority: nothing shows until it ends)."""

    background = False
    thread_name = "radscope-scan"

    finished = Signal(object)
    """The ScanResult."""
    failed = Signal(str)

    def __init__(self, paths: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = list(paths)

    def _run(self) -> None:
        from viewer.dicom import scan

        try:
            result = scan(self.paths)
        except Exception as exc:  # report, never crash the window
            self.failed.emit(f"{', '.join(self.paths)}: {exc}")
            return
        self.finished.emit(result)


class LoadJob(Job):
    """``viewer.dicom.load_volume(stack)`` off the GUI thread, reporting slices as they land.

    The first slice is reported alone and at once; later ones are gathered and reported at most every
    ``COALESCE_S`` (one queued event per batch: a fast decoder would otherwise post one event per slice,
    and the GUI thread runs all those posted in one pass, tens of milliseconds for a few hundred slices).
    """

    COALESCE_S = 0.025
    thread_name = "radscope-load"

    slicesReady = Signal(object)
    """list of (k, slice array): views into the volume being filled (see load_volume)."""
    finished = Signal(object)
    """The complete Volume (after every slice was reported through ``slicesReady``)."""
    failed = Signal(str)

    def __init__(self, stack: Any, first: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stack = stack
        self.first = first
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # on_slice may come from several decode threads
        self._pending: list[tuple[int, np.ndarray]] = []
        self._sent_at: float | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _on_slice(self, k: int, data: np.ndarray) -> None:
        if self._cancel.is_set():
            return
        now = time.monotonic()
        with self._lock:
            self._pending.append((k, data))
            if self._sent_at is not None and now - self._sent_at < self.COALESCE_S:
                return
            batch, self._pending, self._sent_at = self._pending, [], now
        self.slicesReady.emit(batch)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch and not self._cancel.is_set():
            self.slicesReady.emit(batch)

    def _run(self) -> None:
        from viewer.dicom import LoadCancelled, load_volume

        try:
            # stored integers stay integers (int16/uint16 when the rescale is integral): half of float32
            volume = load_volume(self.stack, on_slice=self._on_slice, cancel=self._cancel, first=self.first,
                                 integers=True)
            self._flush()
        except LoadCancelled:
            return
        except Exception as exc:
            self.failed.emit(f"{self.stack.stack_id}: {exc}")
            return
        if not self._cancel.is_set():
            self.finished.emit(volume)


def thumbnail(pixels: np.ndarray, pixel_spacing_yx: tuple[float, float] | None, inverted: bool) -> np.ndarray:
    """A small uint8 grey or RGB image of one slice, windowed for display (auto window: a linear rescale
    of the values would not change it); ``inverted``: low shown white (``SeriesInfo.shown_inverted``)."""
    step = max(1, int(np.ceil(max(pixels.shape[:2]) / THUMB_SIZE)))
    arr = _square_pixels(pixels[::step, ::step], pixel_spacing_yx)
    if arr.ndim == 3:
        return np.ascontiguousarray(arr[..., :3].astype(np.uint8))
    arr = arr.astype(np.float32)
    w = auto_window(arr)
    lo, hi = levels(w.center, w.width)
    return np.ascontiguousarray(to_uint8(arr, lo, hi, invert=inverted))


def _square_pixels(img: np.ndarray, pixel_spacing: object) -> np.ndarray:
    """Repeat rows or columns so a thumbnail of non-square pixels keeps its true aspect (roughly)."""
    try:
        sy, sx = (float(v) for v in pixel_spacing)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return img
    if sx <= 0 or sy <= 0:
        return img
    ratio = sy / sx
    if ratio > 1.25:
        return np.repeat(img, int(round(ratio)), axis=0)
    if ratio < 0.8:
        return np.repeat(img, int(round(1 / ratio)), axis=1)
    return img


class ThumbnailJob(Job):
    """Thumbnails of the middle slice of each stack, one by one, off the GUI thread."""

    thread_name = "radscope-thumbs"

    ready = Signal(str, object)
    """(stack_id, uint8 image)."""
    failed = Signal(str, str)
    """(file path, reason): the slice chosen for the thumbnail cannot be decoded."""
    finished = Signal()

    def __init__(self, stacks: Sequence[Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stacks = list(stacks)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self) -> None:
        from viewer.dicom import DicomFileError
        from viewer.dicom.loader import decode_acquired

        for stack in self.stacks:
            if self._cancel.is_set():
                break
            try:  # the engine's safe decoder order (never pydicom's default, which may abort in GDCM)
                pixels = decode_acquired(stack, len(stack.slices) // 2)  # an acquired slice (gaps are not)
                img = thumbnail(pixels, (float(stack.spacing[1]), float(stack.spacing[0])),
                                stack.info.shown_inverted)
            except DicomFileError as exc:
                self.failed.emit(exc.path, exc.reason)
                continue
            except Exception:  # a thumbnail is cosmetic: the load itself reports real errors
                continue
            self.ready.emit(stack.stack_id, img)
        self.finished.emit()


def volume_thumbnail(volume: Any) -> np.ndarray:
    """The thumbnail of a loaded volume's middle slice (used when the file-based one failed)."""
    k = volume.shape[0] // 2
    img = volume.array[k]
    step = max(1, int(np.ceil(max(img.shape[:2]) / THUMB_SIZE)))
    img = img[::step, ::step]
    if volume.is_color:
        return np.ascontiguousarray(img)
    (lo, hi), table = preset_mapping(initial_window(volume.info, img))
    return np.ascontiguousarray(to_uint8(img, lo, hi, invert=volume.info.shown_inverted, table=table))
