"""The window's loading controller: scans paths, loads the chosen stack progressively (middle slice first) and
puts what arrives into the :class:`~viewer.state.session.SessionState` (its stacks, the current series, that
series' slices, the problems for the Errors panel). It only changes state and reports; the window's widgets render
from the state and from these signals (status messages, progress)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from viewer.dicom.volume import Volume
from viewer.display.orientation import display_direction
from viewer.qt.qt import QObject, QTimer, Signal
from viewer.qt.workers import LoadJob, ScanJob, ThumbnailJob, volume_thumbnail
from viewer.state.session import SessionState


class SeriesLoader(QObject):
    """Scan, load and thumbnail jobs (:mod:`viewer.qt.workers`) of one window, feeding its session."""

    message = Signal(str, int)
    """Status-bar text and how long to show it (ms; 0 = until replaced)."""
    progress = Signal(int, int)
    """Slices decoded, slices in the series (0, 0: no load running)."""
    loadFinished = Signal(str)
    """Every slice of the stack has decoded (stack id)."""

    def __init__(self, session: SessionState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._scan_job: ScanJob | None = None
        self._load_job: LoadJob | None = None
        self._thumb_job: ThumbnailJob | None = None
        self._thumbs_done: set[str] = set()
        self._retired: list[Any] = []
        self._shown_pending: str | None = None
        self.scan_result: Any = None
        self.load_started_at = 0.0
        self.first_slice_s: float | None = None
        """Seconds from the start of the load to the first slice in the session (figures, tests)."""

    # -- scanning -------------------------------------------------------------------------------
    def open(self, paths: Sequence[str]) -> None:
        """Scan files / folders / zips / DICOMDIRs in the background, list the series, show the largest."""
        self.cancel()
        self.message.emit(f"Scanning {', '.join(paths)}…", 0)
        self._scan_job = ScanJob(list(paths))  # no parent: freed when done (a child would live as long as the window)
        self._scan_job.finished.connect(self._on_scan_finished)
        self._scan_job.failed.connect(self._on_scan_failed)
        self._scan_job.start()

    def _on_scan_failed(self, message: str) -> None:
        if self.sender() is not self._scan_job:
            return
        self._scan_job = None
        self.session.add_problems([("", message)])
        self.message.emit("Nothing could be read", 5000)

    def _on_scan_finished(self, result: Any) -> None:
        if self.sender() is not self._scan_job:
            return
        self._scan_job = None
        self.scan_result = result
        self.session.set_stacks(result.stacks)
        if result.errors:
            self.session.add_problems([(e.path, e.error) for e in result.errors])
        if not result.stacks:
            self.message.emit("No images found", 5000)
            return
        self.message.emit(f"{len(result.stacks)} series, {len(result.errors)} file error(s)", 5000)
        self._thumbs_done.clear()
        self._thumb_job = ThumbnailJob(result.stacks)
        self._thumb_job.ready.connect(self._on_thumbnail)
        self._thumb_job.failed.connect(self._on_thumbnail_failed)
        self._thumb_job.finished.connect(self._on_thumbnails_finished)
        self._thumb_job.start()
        self.show_stack(result.find(None).stack_id, reload=True)

    def _on_thumbnail(self, stack_id: str, img: np.ndarray) -> None:
        self._thumbs_done.add(stack_id)
        self.session.set_thumbnail(stack_id, img)

    def _on_thumbnail_failed(self, path: str, reason: str) -> None:
        self.session.add_problems([(path, reason)])

    def _on_thumbnails_finished(self) -> None:
        if self.sender() is self._thumb_job:
            self._thumb_job = None

    # -- jobs -----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop every job (a new scan, the window closing); their late signals are ignored."""
        for job in (self._load_job, self._thumb_job):
            if job is not None:
                job.cancel()
        self._retire(self._load_job, self._thumb_job, self._scan_job)
        self._load_job = self._thumb_job = self._scan_job = None
        self.progress.emit(0, 0)

    def _retire(self, *jobs: Any) -> None:
        """Keep superseded jobs alive until their threads end and their queued signals have arrived (a
        deleted sender could be handed to a slot); older finished ones are released."""
        self._retired = [j for j in self._retired if not j.done] + [j for j in jobs if j is not None]

    def is_idle(self) -> bool:
        """No scan, load or thumbnail job runs and no series announcement is pending."""
        return (self._scan_job is None and self._load_job is None and self._thumb_job is None
                and self._shown_pending is None)

    # -- loading a stack ------------------------------------------------------------------------
    def show_stack(self, stack_id: str, *, reload: bool = False) -> None:
        """Load a scanned stack progressively (middle slice first) into the session; ``reload``: even when it
        is the stack shown (a new scan of a series that grew, e.g. one retrieved from a PACS)."""
        if stack_id == self.session.stack_id and self.session.series is not None and not reload:
            return
        stack = self.session.stacks[stack_id]
        if self._load_job is not None:
            self._load_job.cancel()
            self._retire(self._load_job)
        self.session.choose(stack_id)
        self.progress.emit(0, stack.n_slices)
        self.load_started_at = time.perf_counter()
        self.first_slice_s = None
        job = LoadJob(stack, first=stack.n_slices // 2)
        job.slicesReady.connect(self._on_slices_ready)
        job.finished.connect(self._on_load_finished)
        job.failed.connect(self._on_load_failed)
        self._load_job = job
        job.start()

    def _on_slices_ready(self, batch: list[tuple[int, np.ndarray]]) -> None:
        job = self.sender()
        if job is not self._load_job or self._load_job is None:
            return
        if self.session.series is None and batch:
            k, data = batch[0]
            self._first_slice(self._load_job.stack, k, data)
            batch = batch[1:]
        series = self.session.series
        assert series is not None
        series.receive_slices(batch)
        self.progress.emit(int(series.loaded.sum()), series.volume.shape[0])

    def _first_slice(self, stack: Any, k: int, data: np.ndarray) -> None:
        """Make the series state around the first decoded slice (the volume's own array when it can)."""
        base = data.base
        n = stack.n_slices
        if isinstance(base, np.ndarray) and base.shape == (n,) + data.shape and base.dtype == data.dtype:
            array = base  # the engine fills this array in place: no copy
        else:
            array = np.zeros((n,) + data.shape, dtype=data.dtype)
            array[k] = data
        loaded = np.zeros(n, dtype=bool)
        loaded[k] = True
        vol = Volume(array, stack.origin, stack.spacing, display_direction(stack.info, stack.direction),
                     stack.sop_instance_uids, info=stack.info, warnings=list(stack.warnings), source_files=stack.files,
                     frame_numbers=stack.frame_numbers, missing=getattr(stack, "missing", None))
        self.session.new_series(vol, loaded)
        self.first_slice_s = time.perf_counter() - self.load_started_at
        # Tell the AI, review and layer panels in a later event-loop pass: the first slice paints first,
        # and their work does not add to the same uninterrupted stretch of GUI-thread time.
        self._shown_pending = stack.stack_id
        QTimer.singleShot(0, self._announce_shown)

    def _announce_shown(self) -> None:
        stack_id, self._shown_pending = self._shown_pending, None
        if stack_id is not None:
            self.session.announce_shown(stack_id)

    def _on_load_finished(self, volume: Volume) -> None:
        if self.sender() is not self._load_job:
            return
        self._load_job = None
        self.progress.emit(0, 0)
        stack_id = self.session.stack_id
        stack = self.session.stacks.get(stack_id)
        if stack is not None:
            volume.direction = display_direction(stack.info, volume.direction)
        if self.session.series is None:  # a stack whose slices all arrived before any signal was handled
            self.session.new_series(volume)
        else:
            self.session.series.finish_loading(volume)
        if stack_id not in self._thumbs_done:
            self.session.set_thumbnail(stack_id, volume_thumbnail(volume))
        if volume.warnings:
            self.session.add_problems([(stack_id, w) for w in volume.warnings], show=False)
        self.loadFinished.emit(stack_id)

    def _on_load_failed(self, message: str) -> None:
        if self.sender() is not self._load_job:
            return
        self._load_job = None
        self.progress.emit(0, 0)
        self.session.add_problems([(self.session.stack_id, message)])
