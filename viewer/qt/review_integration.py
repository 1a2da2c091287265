"""Wires the review panel into the viewer window (the Qt part only).

``attach_review(window, ai=None) -> ReviewController`` is all the viewer calls. What is decided lives in
Qt-free classes: :class:`~viewer.state.review_viewer.ViewerReview` (the context of the slice under the crosshair,
what a flag records of the AI, the worklist of the open studies, which study to show, the ROI a verdict takes,
the reviewer name and store in the settings) over the panel's
:class:`~viewer.state.review_control.ReviewControl`. This module

* hands the :class:`~viewer.qt.review_panel.ReviewPanel` (a dock class) to the window, which places it from the
  panel registry (hidden until opened; Panels menu, ``--panel review``); adds Panels > Reviewer name… and
  Review store…;
* refreshes the context once the crosshair has rested :data:`CONTEXT_DELAY_MS` (headers are read off the GUI's
  hot path), and when the series, its loading, or the AI state (model, method, thresholds, a run on the shown
  series appearing or going) changes;
* tracks which ROI the reviewer selected in the views since the last one was drawn;
* answers the panel's ``studyRequested`` by showing the study's series or opening its folder.
"""

from __future__ import annotations

from typing import Any

from viewer.qt.bind import Bindings
from viewer.qt.qt import QAction, QObject, QtCore, QtWidgets
from viewer.qt.review_panel import ReviewPanel
from viewer.review import ImageContext, ModelInfo, Region, ReviewStore, ReviewStoreError
from viewer.state.review_viewer import StudyTarget, ViewerReview

CONTEXT_DELAY_MS = 150
"""The context follows the crosshair once it has rested this long (headers are read off the GUI's hot path)."""


class ReviewController(QObject):
    """The review layer of one viewer window (GUI thread); see the module docstring."""

    def __init__(self, window: Any, ai: Any = None, store: ReviewStore | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.ai = ai
        # a team store whose server is down now still opens: flags go to the local outbox until it is back
        self.panel = ReviewPanel(store if store is not None else ReviewStore(offline_ok=True), None, window)
        self.dock = self.panel
        ai_settings, ai_run = (getattr(ai, "state", None), getattr(ai, "run_state", None)) if ai is not None \
            else (None, None)
        self.review = ViewerReview(self.panel.control, window.session, ai_settings, ai_run,
                                   selected_rois=self._selected_rois)
        """The Qt-free decisions (see the module docstring)."""
        self._selection_at_draw: dict[Any, Any] = {}
        self._n_measurements = 0
        self._ran = False
        self._series_bindings = Bindings()
        self._ai_bindings = Bindings()
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CONTEXT_DELAY_MS)
        self._timer.timeout.connect(self.update_context)

        self.reviewer_action: QAction | None = None
        self.panel.reviewer_edit.editingFinished.connect(self._reviewer_edited)
        self.panel.studyRequested.connect(self.open_study)
        self.panel.label_edit.currentTextChanged.connect(lambda _text: self._schedule())  # its threshold shows
        window.seriesShown.connect(self._on_series_shown)
        window.loadFinished.connect(lambda _id: self._schedule())
        if ai_settings is not None:
            for event in (ai_settings.modelChanged, ai_settings.methodChanged, ai_settings.thresholdChanged):
                self._ai_bindings.connect(event, self._schedule)
        if ai_run is not None:
            self._ai_bindings.connect(ai_run.resultsChanged, self._on_ai_results)
        if getattr(window, "model", None) is not None:
            self._on_series_shown(window.stack_id)

    @property
    def store(self) -> ReviewStore:
        return self.panel.store

    # -- menu, reviewer, store ---------------------------------------------------------------------
    def add_menu_entries(self, menu: QtWidgets.QMenu) -> None:
        """Reviewer name… and Review store… in the window's Panels menu (below the dock's own toggle)."""
        self.reviewer_action = menu.addAction("Reviewer name…")
        self.reviewer_action.triggered.connect(self.ask_reviewer)
        menu.addAction("Review store…").triggered.connect(self.ask_store)

    def is_idle(self) -> bool:
        """No context refresh is pending."""
        return not self._timer.isActive()

    def open(self) -> None:
        """Show and raise the review dock on its worklist (``--panel review``)."""
        self.window.open_panel("review")
        self.panel.tabs.setCurrentWidget(self.panel.worklist_table)
        self.update_context()

    def set_reviewer(self, name: str) -> None:
        """Record ``name`` with new flags and keep it in the viewer settings."""
        self.review.set_reviewer(name)

    def _reviewer_edited(self) -> None:
        edit = self.panel.reviewer_edit
        if edit.isModified():  # typed by the reviewer (not a name from RADSCOPE_REVIEWER merely losing focus)
            edit.setModified(False)
            self.set_reviewer(edit.text())

    def ask_reviewer(self) -> None:
        name, ok = QtWidgets.QInputDialog.getText(self.window, "Reviewer name", "Name recorded with review flags:",
                                                  text=self.panel.reviewer_edit.text())
        if ok:
            self.set_reviewer(name)

    def use_store(self, location: str) -> bool:
        """Switch to the store at ``location`` (a file or ``postgresql://`` URL; '' = the default), kept in the
        viewer settings; False, said in the panel, when it cannot be opened."""
        return self.review.use_store(location)

    def ask_store(self) -> None:
        current = getattr(self.window.settings, "review_store", "") or ""
        text, ok = QtWidgets.QInputDialog.getText(
            self.window, "Review store", "SQLite file, or postgresql://user@host/db for a team store\n"
            "(empty: RADSCOPE_REVIEW_STORE or the default file):", text=current)
        if ok:
            self.use_store(text)

    # -- series, worklist, studies -----------------------------------------------------------------
    def _on_series_shown(self, stack_id: str) -> None:
        model = self.window.model
        self._series_bindings.clear()
        if model is not None:
            self._series_bindings.connect(model.crosshairChanged, self._schedule)
            self._series_bindings.connect(model.measurementsChanged, self._on_measurements_changed)
            self._n_measurements = len(model.measurements)
        self._selection_at_draw = {}
        target = self.review.series_shown(stack_id)
        if target is not None:
            self._show(target)
            return
        self.update_context()

    def sync_worklist(self) -> None:
        """Put every open study on the worklist (a study already there keeps its place and status)."""
        self.review.sync_worklist()

    def open_study(self, study_uid: str) -> None:
        """Show ``study_uid``: from the open set, else from the folder the worklist recorded for it."""
        target = self.review.study_target(study_uid)
        if target is not None:
            self._show(target)

    def _show(self, target: StudyTarget) -> None:
        if target.path:
            self.window.open_paths([target.path])
        elif target.stack_id:
            self.window.show_stack(target.stack_id)
        else:
            self.update_context()

    # -- context -----------------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._timer.start()

    def _on_ai_results(self) -> None:
        """Results refresh with every batch: the context changes only when a run on the shown series appears or
        goes (a debounced refresh per batch would never come to rest during a run)."""
        ran = self.review.model_ran()
        if ran != self._ran:
            self._ran = ran
            self._schedule()

    def current_slice(self) -> int | None:
        """The acquisition slice under the crosshair (DESIGN.md slice order), None when nothing is shown."""
        return self.review.current_slice()

    def model_facts(self, label: str = "") -> tuple[ModelInfo, str, float | None]:
        return self.review.model_facts(label)

    def scope_note(self) -> str:
        return self.review.scope_note()

    def update_context(self, for_flag: bool = False) -> None:
        """Give the panel the context of the slice under the crosshair now (the debounced path calls this)."""
        self._timer.stop()
        self._ran = self.review.model_ran()
        self.review.update_context(self.panel.label_edit.currentText().strip(), for_flag=for_flag)

    def flush(self) -> None:
        """Apply a pending context update now (before a screenshot)."""
        if self._timer.isActive() or self.panel.context is None:
            self.update_context()

    @property
    def context(self) -> ImageContext | None:
        return self.panel.context

    # -- regions -----------------------------------------------------------------------------------
    def _on_measurements_changed(self) -> None:
        model = self.window.model
        n = len(model.measurements) if model is not None else 0
        if n > self._n_measurements:  # a new measurement: selections made before it no longer count
            self._selection_at_draw = {v: v.selected for v in self.window.views}
        self._n_measurements = n

    def _selected_rois(self) -> list[Any]:
        """The measurements selected in the visible views since the last one was drawn."""
        return [view.selected.record for view in self.window.visible_views()
                if view.selected is not None and view.selected is not self._selection_at_draw.get(view)]

    def current_region(self) -> Region | None:
        """The region of the ROI on the current slice (selected since the last draw, else the last drawn)."""
        return self.review.pick_region()


def attach_review(window: Any, ai: Any = None, store: ReviewStore | None = None) -> ReviewController:
    """Add the review dock to the viewer ``window`` (hidden until opened) and keep it on the shown image.

    Uses the window's public API: ``session`` (its Qt-free state), ``seriesShown``, ``loadFinished``, ``model``,
    ``stack_id``, ``show_stack``, ``open_paths``, ``views`` / ``visible_views()``, ``settings``,
    ``install_panel`` / ``open_panel`` (the dock is placed from the registry's ``review`` spec) and ``panels_menu``; ``ai`` is the AI controller, of which only its Qt-free
    state is read (``state``: :class:`~viewer.state.ai.AISettings`, ``run_state``:
    :class:`~viewer.state.ai.AIRunState`).
    """
    from viewer.qt.panels import get_panel

    controller = ReviewController(window, ai, store)
    window.install_panel(get_panel("review"), controller)
    controller.add_menu_entries(window.panels_menu)
    return controller


def review_panel(app: Any) -> ReviewController:
    """The registry's factory (:mod:`viewer.qt.panels`): the review dock, or PanelUnavailable when its store
    cannot be opened."""
    from viewer.qt.panels import PanelUnavailable

    try:
        return attach_review(app.window, app.ai)
    except ReviewStoreError as exc:
        raise PanelUnavailable(str(exc)) from exc
