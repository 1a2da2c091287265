"""The viewer session: the scanned series, the one shown, measurements per series, the problems to show (files
that could not be used, AI errors), each view's camera, the settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psygnal import Signal

from viewer.display.measure import MeasurementRecord
from viewer.display.settings import ViewerSettings
from viewer.state.camera import CameraState
from viewer.state.series import SeriesState


class SessionState:
    """What one viewer window shows. Events:

    - ``stacksChanged(list)``: a scan finished (its stacks, in browser order);
    - ``thumbnailChanged(str, object)``: a stack's thumbnail (stack id, uint8 image) is ready;
    - ``currentChanged(str)``: another series was chosen (its stack id; its :class:`SeriesState` may
      still be None until the first slice decodes). Panels clear their per-series status lines here;
    - ``seriesChanged(object)``: the shown :class:`SeriesState` was replaced (or None);
    - ``seriesShown(str)``: the series' first slice is on screen (announced one event-loop pass later,
      so panels' work does not delay the first paint);
    - ``problemsAdded(list, bool)``: (source, reason) rows for the Errors panel, and whether it should come up;
      ``problemsCleared()``: a new open starts a fresh list.
    """

    stacksChanged = Signal(list)
    thumbnailChanged = Signal(str, object)
    currentChanged = Signal(str)
    seriesChanged = Signal(object)
    seriesShown = Signal(str)
    problemsAdded = Signal(list, bool)
    problemsCleared = Signal()

    def __init__(self, settings: ViewerSettings | None = None) -> None:
        self.settings = settings if settings is not None else ViewerSettings()
        self.stacks: dict[str, Any] = {}
        self.thumbnails: dict[str, Any] = {}
        """One uint8 image per listed stack id, once made."""
        self.stack_id = ""
        self.series: SeriesState | None = None
        self.measurements: dict[str, list[MeasurementRecord]] = {}
        self.problems: list[tuple[str, str]] = []
        """(file or source, reason) of everything that could not be used since the last open."""
        self.cameras: list[CameraState] = []
        """One :class:`CameraState` per view of the window (by its position), made by :meth:`camera`."""

    def camera(self, view: int) -> CameraState:
        """The camera of the window's ``view``-th view (made on first use, kept while the session lives)."""
        while len(self.cameras) <= view:
            self.cameras.append(CameraState())
        return self.cameras[view]

    def set_stacks(self, stacks: Iterable[Any]) -> None:
        """The stacks of a finished scan (objects with a ``stack_id``)."""
        items = list(stacks)
        old = self.stacks
        self.stacks = {s.stack_id: s for s in items}
        # a stack listed again as the same object keeps its thumbnail; a re-scanned one (e.g. grown) needs a new one
        # (compared by identity: a Stack's generated __eq__ compares numpy fields)
        self.thumbnails = {sid: img for sid, img in self.thumbnails.items() if old.get(sid) is self.stacks.get(sid)}
        self.stacksChanged.emit(items)

    def set_thumbnail(self, stack_id: str, image: Any) -> None:
        """A listed stack's thumbnail (uint8 image)."""
        if stack_id in self.stacks:
            self.thumbnails[stack_id] = image
            self.thumbnailChanged.emit(stack_id, image)

    def add_problems(self, rows: Iterable[tuple[str, str]], show: bool = True) -> None:
        """Report (source, reason) rows; ``show``: bring the Errors panel up."""
        rows = [(str(source), str(reason)) for source, reason in rows]
        if rows:
            self.problems.extend(rows)
            self.problemsAdded.emit(rows, show)

    def clear_problems(self) -> None:
        if self.problems:
            self.problems.clear()
            self.problemsCleared.emit()

    def measurements_for(self, stack_id: str) -> list[MeasurementRecord]:
        """The series' measurement list (shared with its :class:`SeriesState`, kept while the session lives)."""
        return self.measurements.setdefault(stack_id, [])

    def choose(self, stack_id: str) -> None:
        """Make ``stack_id`` the current series; its state comes later through :meth:`set_series`."""
        changed = stack_id != self.stack_id
        self.stack_id = stack_id
        if self.series is not None:
            self.set_series(None)
        if changed:
            self.currentChanged.emit(stack_id)

    def set_series(self, series: SeriesState | None) -> None:
        if series is self.series:
            return
        self.series = series
        self.seriesChanged.emit(series)

    def new_series(self, volume: Any, loaded: Any = None) -> SeriesState:
        """A :class:`SeriesState` for the current stack, with its kept measurements, made the shown one."""
        series = SeriesState(volume, loaded, self.measurements_for(self.stack_id))
        self.set_series(series)
        return series

    def announce_shown(self, stack_id: str) -> None:
        """Emit ``seriesShown`` if ``stack_id`` is still the one shown."""
        if stack_id == self.stack_id and self.series is not None:
            self.seriesShown.emit(stack_id)
