"""A series being retrieved grows on screen while its instances arrive.

The PACS panel opens the first stored instance at once (the window's loader); then, at most every
``INTERVAL_S`` while instances keep landing, a :class:`GrowJob` scans the series folder and loads the stack
off the GUI thread, and the GUI thread only swaps the grown volume in, keeping the user's view (crosshair
point, window/level, zoom: :class:`ViewSnapshot`). When the retrieval ends the panel opens the folder
through the loader once more; the snapshot is put back on that final series as soon as it appears.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from viewer.dicom.volume import VoiLut
from viewer.qt.qt import QObject, Signal
from viewer.state.camera import CameraRange
from viewer.qt.jobs import Job

INTERVAL_S = 0.4
"""Least time between two rescans of the growing series folder; a rescan that took longer spaces the next
by twice its own time, so re-reading what already arrived takes at most a third of a core from the
retrieval itself."""


class GrowJob(Job):
    """Scan one series folder and load its largest stack (``viewer.dicom.scan`` + ``load_volume``)."""

    thread_name = "radscope-pacs-grow"

    finished = Signal(object, object, object)
    """(stack, Volume, thumbnail) of the folder's largest stack."""
    failed = Signal(str)

    def __init__(self, folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.cancel = threading.Event()

    def _run(self) -> None:
        from viewer.dicom import LoadCancelled, load_volume, scan
        from viewer.display.orientation import display_direction
        from viewer.qt.workers import volume_thumbnail

        try:
            result = scan([str(self.folder)])
            if not result.stacks or self.cancel.is_set():
                self.failed.emit(f"{self.folder}: no images yet")
                return
            stack = max(result.stacks, key=lambda s: s.n_slices)
            # stored integers stay integers, as the window's loader has them
            volume = load_volume(stack, cancel=self.cancel, integers=True)
            volume.direction = display_direction(stack.info, volume.direction)
            thumb = volume_thumbnail(volume)
        except LoadCancelled:
            self.failed.emit(f"{self.folder}: rescan cancelled")
            return
        except Exception as exc:  # a file still being renamed in, a hostile one: the next rescan or the end says
            self.failed.emit(f"{self.folder}: {type(exc).__name__}: {exc}")
            return
        self.finished.emit(stack, volume, thumb)


@dataclass
class ViewSnapshot:
    """What the user set on the shown series: the crosshair point, the window, zoomed views' camera ranges."""

    series_uid: str
    crosshair: np.ndarray
    window: tuple[float, float, str, VoiLut | None, bool]
    ranges: dict[str, CameraRange]
    """plane name -> camera range (LPS centre, mm) of each view the user zoomed or panned (fitted views fit
    again). Kept in patient space, so it means the same on the grown volume, whose first slice may differ."""

    @classmethod
    def take(cls, window: Any) -> ViewSnapshot | None:
        series = window.session.series
        if series is None:
            return None
        ranges = {v.plane_name: v.camera.range for v in window.visible_views() if v.camera.range is not None}
        return cls(series.volume.info.series_uid, series.crosshair.copy(),
                   (series.center, series.width, series.voi_function, series.voi_lut, series.invert), ranges)

    def apply(self, window: Any) -> None:
        series = window.session.series
        if series is None:
            return
        center, width, function, lut, invert = self.window
        series.set_window(center, width, function, lut)
        if series.invert != invert:
            series.set_invert(invert)
        series.set_crosshair(self.crosshair)
        for view in window.visible_views():
            rng = self.ranges.get(view.plane_name)
            if rng is not None:
                view.camera.zoom_to(rng)  # the view follows its camera


class SeriesStream(QObject):
    """Grows the shown series from ``folder`` while a retrieval stores into it (GUI thread object)."""

    grown = Signal(int)
    """Slices now on screen after a swap."""

    def __init__(self, window: Any, folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.folder = folder
        self.series_uid = ""
        self.shown = 0
        """Slices of the series on screen (the first instance counts once it is shown)."""
        self.swaps = 0
        self._job: GrowJob | None = None
        self._retired: list[GrowJob] = []
        self._due = 0.0
        self._started = 0.0
        self._expected: int | None = None
        self._stopped = False

    def _ours(self) -> bool:
        """The shown series is the one retrieving (the user did not open another meanwhile)."""
        series = self.window.session.series
        if series is None:
            return False
        files = getattr(series.volume, "source_files", None) or []
        return bool(files) and Path(files[0]).parent == self.folder

    def poke(self, stored: int, expected: int | None = None) -> None:
        """Instances stored so far and expected (the panel's progress): rescan if due and the loader is done."""
        self._expected = expected
        if self._stopped or self._job is not None or stored <= self.shown:
            return
        if time.perf_counter() < self._due or not self.window.loader.is_idle() or not self._ours():
            return
        self._started = time.perf_counter()
        job = GrowJob(self.folder)
        job.finished.connect(self._on_grown)
        job.failed.connect(self._on_failed)
        self._job = job
        job.start()

    def _job_ended(self) -> None:
        now = time.perf_counter()
        self._due = now + max(INTERVAL_S, 2 * (now - self._started))
        self._job = None

    def _on_failed(self, message: str) -> None:
        if self.sender() is self._job:
            self._job_ended()

    def _on_grown(self, stack: Any, volume: Any, thumb: Any) -> None:
        if self.sender() is not self._job:
            return
        self._job_ended()
        n = volume.shape[0]
        if self._stopped or n <= self.shown or not self.window.loader.is_idle() or not self._ours():
            return
        if self._expected is not None and n >= self._expected:
            return  # complete: the final open (when the retrieval ends) shows it, once
        snap = ViewSnapshot.take(self.window)
        session = self.window.session
        session.set_stacks([stack])  # the series list (it follows the session) says how many slices are here now
        session.set_thumbnail(stack.stack_id, thumb)
        session.choose(stack.stack_id)
        session.new_series(volume)
        if snap is not None:
            snap.apply(self.window)
        self.shown = n
        self.swaps += 1
        self.grown.emit(n)

    def stop(self) -> ViewSnapshot | None:
        """No more swaps (late results are dropped); the view to keep on the final series, if ours."""
        self._stopped = True
        if self._job is not None:
            self._job.cancel.set()  # the final open reads the whole folder anyway
            self._retired = [j for j in self._retired if not j.done] + [self._job]
            self._job = None
        return ViewSnapshot.take(self.window) if self._ours() else None

    def is_idle(self) -> bool:
        return self._job is None


def keep_view_on_next_series(window: Any, snap: ViewSnapshot) -> None:
    """Put ``snap`` back on the next series the window shows, if it is the same series (once)."""
    session = window.session

    def on_series(series: Any) -> None:
        if series is None:
            return
        session.seriesChanged.disconnect(on_series)
        if series.volume.info.series_uid == snap.series_uid:
            snap.apply(window)

    session.seriesChanged.connect(on_series)
