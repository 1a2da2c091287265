"""Wires the review panel into the viewer window: context, worklist, ROIs as flag regions, reviewer name.

``attach_review(window, ai=None) -> ReviewController`` is all the viewer calls. The controller

* docks a :class:`ReviewWindowPanel` (hidden until opened; Panels menu, ``--panel review``);
* keeps its :class:`~viewer.review.ImageContext` on the slice under the crosshair: contexts are built
  from the slice's header (one disk read) after scrolling pauses (:data:`CONTEXT_DELAY_MS`) and cached
  per ``(stack_id, k)``, so scrolling never waits on a header;
* stamps every flag with the model name, version and sha256, the explanation method and the label's
  threshold of the AI controller when a model ran on the shown series, and offers the model's labels;
* puts the open studies on the worklist and opens a study when the panel asks (``studyRequested``);
* turns the viewer's rectangle / ellipse ROI on the current slice into the flag's region when a
  verdict is given (the ROI selected since the last one was drawn, else the last drawn one); no ROI
  flags the whole slice. A missed finding flagged with an ROI so records where it really is;
* keeps the reviewer's name in the viewer settings (``reviewer``; Panels > Reviewer name…).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np

from viewer.display.measure import MeasurementRecord
from viewer.display.settings import save_settings
from viewer.qt.bind import Bindings
from viewer.qt.qt import QAction, QObject, Qt, QtCore, QtWidgets
from viewer.qt.review_panel import ReviewPanel
from viewer.review import ImageContext, ModelInfo, Region, ReviewStore, ReviewStoreError, SourceError, Verdict
from viewer.review import context_from_dataset, context_from_stack
from viewer.review.roi import (ELLIPSE_POINTS, ROI_KINDS, acquisition_plane, is_roi_on_slice,  # noqa: F401 (re-exported)
                               region_from_roi, volume_slice_geometry)

CONTEXT_DELAY_MS = 150
"""The context follows the crosshair once it has rested this long (headers are read off the GUI's hot path)."""
CONTEXT_CACHE = 512
"""Contexts kept per (stack, slice)."""


# -- the panel and its controller ------------------------------------------------------------------
class ReviewWindowPanel(ReviewPanel):
    """The review panel inside the viewer: a verdict (button or Ctrl+digit) first brings the context up to
    date with the model in force and takes the ROI on the current slice as the flag's region."""

    def __init__(
        self, store: ReviewStore, controller: ReviewController, parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(store, None, parent)
        self._controller = controller

    def notify(self, text: str, *, error: bool = False) -> None:
        """Show a line under the verdict buttons (red when ``error``)."""
        self._status(text, error=error)

    def add_flag(self, verdict: Verdict | str, region: Region | None = None) -> str | None:
        self._controller.update_context(for_flag=True)
        if region is None and self.context is not None:
            region = self._controller.current_region()
        flag_id = super().add_flag(verdict, region)
        if flag_id is not None:
            self._status(self.status_label.text() + (f" · {region.kind} region" if region else " · whole slice"))
        return flag_id


class ReviewController(QObject):
    """The review layer of one viewer window (GUI thread); see the module docstring."""

    def __init__(self, window: Any, ai: Any = None, store: ReviewStore | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.ai = ai
        # a team store whose server is down now still opens: flags go to the local outbox until it is back
        self.store = store if store is not None else ReviewStore(offline_ok=True)
        self.panel = ReviewWindowPanel(self.store, self, window)
        self.dock = self.panel
        self._cache: OrderedDict[tuple[str, int], ImageContext] = OrderedDict()
        self._labels: tuple[str, ...] = ()
        self._series: Any = None
        self._listed: set[str] = set()
        self._pending_study: str | None = None
        self._selection_at_draw: dict[Any, Any] = {}
        self._n_measurements = 0
        self._series_bindings = Bindings()
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CONTEXT_DELAY_MS)
        self._timer.timeout.connect(self.update_context)

        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.hide()
        self.reviewer_action: QAction | None = None
        menu = self._panels_menu()
        if menu is not None:
            menu.addAction(self.panel.toggleViewAction())
            self.reviewer_action = menu.addAction("Reviewer name…")
            self.reviewer_action.triggered.connect(self.ask_reviewer)
            menu.addAction("Review store…").triggered.connect(self.ask_store)
        if getattr(window.settings, "reviewer", "") and not os.environ.get("RADSCOPE_REVIEWER", "").strip():
            self.panel.reviewer_edit.setText(window.settings.reviewer)
        self.panel.reviewer_edit.editingFinished.connect(self._reviewer_edited)
        self.panel.studyRequested.connect(self.open_study)
        window.seriesShown.connect(self._on_series_shown)
        window.loadFinished.connect(lambda _id: self._schedule())
        if ai is not None:
            for signal in ("finished", "busyChanged"):
                getattr(ai, signal).connect(lambda *_: self._schedule())
            ai.state.modelChanged.connect(lambda *_: self._schedule())
        if getattr(window, "model", None) is not None:
            self._on_series_shown(window.stack_id)

    # -- menu, reviewer ------------------------------------------------------------------------
    def _panels_menu(self) -> QtWidgets.QMenu | None:
        for menu in self.window.menuBar().findChildren(QtWidgets.QMenu):
            if menu.title().replace("&", "") == "Panels":
                return menu
        return None

    def is_idle(self) -> bool:
        """No context refresh is pending."""
        return not self._timer.isActive()

    def open(self) -> None:
        """Show and raise the review dock on its worklist (``--panel review``)."""
        self.panel.show()
        self.panel.raise_()
        self.window.size_dock(self.panel, "right", want_em=28)
        self.panel.tabs.setCurrentWidget(self.panel.worklist_table)
        self.update_context()

    def set_reviewer(self, name: str) -> None:
        """Record ``name`` with new flags and keep it in the viewer settings."""
        name = name.strip()
        self.panel.reviewer_edit.setText(name)
        settings = self.window.settings
        if name == settings.reviewer:
            return
        settings.reviewer = name
        try:
            save_settings(settings)
        except OSError as exc:
            self.window.statusBar().showMessage(f"Could not save the reviewer name: {exc}", 5000)

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
        """Switch to the store at ``location`` (a file or ``postgresql://`` URL; '' = the default) and keep it in
        the viewer settings (``review_store``); False, said in the panel, when it cannot be opened."""
        location = location.strip()
        try:
            store = ReviewStore(location or None, offline_ok=True)
        except ReviewStoreError as exc:
            self.panel.notify(f"Review store not changed: {exc}", error=True)
            return False
        old, self.store = self.store, store
        self._listed.clear()
        self.panel.set_store(store)
        old.close()
        self.sync_worklist()
        settings = self.window.settings
        if getattr(settings, "review_store", location) != location:
            settings.review_store = location
            try:
                save_settings(settings)
            except OSError as exc:
                self.window.statusBar().showMessage(f"Could not save the review store setting: {exc}", 5000)
        return True

    def ask_store(self) -> None:
        current = getattr(self.window.settings, "review_store", "") or ""
        text, ok = QtWidgets.QInputDialog.getText(
            self.window, "Review store", "SQLite file, or postgresql://user@host/db for a team store\n"
            "(empty: RADSCOPE_REVIEW_STORE or the default file):", text=current)
        if ok:
            self.use_store(text)

    # -- series, worklist, studies -------------------------------------------------------------
    def _on_series_shown(self, stack_id: str) -> None:
        model = self.window.model
        self._series_bindings.clear()
        self._series = model
        if model is not None:
            for signal, slot in self._series_slots():
                self._series_bindings.connect(signal, slot)
            self._n_measurements = len(model.measurements)
        self._selection_at_draw = {}
        self.sync_worklist()
        stack = self.window.stacks.get(stack_id)
        pending, self._pending_study = self._pending_study, None
        if pending and stack is not None and stack.info.study_uid != pending and self._show_study(pending):
            return
        self.update_context()

    def _series_slots(self) -> list[tuple[Any, Any]]:
        return [(self._series.crosshairChanged, self._schedule),
                (self._series.measurementsChanged, self._on_measurements_changed)]

    def sync_worklist(self) -> None:
        """Put every open study on the worklist (a study already there keeps its place and status)."""
        studies: dict[str, list[Any]] = {}
        for stack in self.window.stacks.values():
            studies.setdefault(stack.info.study_uid, []).append(stack)
        new = [uid for uid in studies if uid and uid not in self._listed]
        for uid in new:
            stacks = studies[uid]
            info = stacks[0].info
            description = " ".join(p for p in (info.study_date, info.modality, info.study_description) if p)
            folders = [os.path.dirname(f) for s in stacks for f in s.files]
            try:
                self.store.add_study(uid, description=description,
                                     source_path=os.path.commonpath(folders) if folders else "")
            except ReviewStoreError as exc:
                self.panel.notify(f"Worklist not updated: {exc}", error=True)
                return
            self._listed.add(uid)
        if new:
            self.panel.refresh()

    def _show_study(self, study_uid: str) -> bool:
        stacks = [s for s in self.window.stacks.values() if s.info.study_uid == study_uid]
        if not stacks:
            return False
        best = max(stacks, key=lambda s: s.n_slices)
        if best.stack_id == self.window.stack_id and self.window.model is not None:
            self.update_context()
        else:
            self.window.show_stack(best.stack_id)
        return True

    def open_study(self, study_uid: str) -> None:
        """Show ``study_uid``: from the open set, else from the folder the worklist recorded for it."""
        if self._show_study(study_uid):
            return
        entry = next((e for e in self.store.worklist() if e.study_uid == study_uid), None)
        if entry is None or not entry.source_path or not os.path.exists(entry.source_path):
            where = f" ({entry.source_path} is gone)" if entry is not None and entry.source_path else ""
            self.panel.notify(f"Study {study_uid} is not open and cannot be found{where}", error=True)
            return
        self._pending_study = study_uid
        self.window.open_paths([entry.source_path])

    # -- context -------------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._timer.start()

    def current_slice(self) -> int | None:
        """The acquisition slice under the crosshair (DESIGN.md slice order), None when nothing is shown."""
        model = self.window.model
        if model is None:
            return None
        n = model.volume.shape[0]
        return int(np.clip(np.floor(model.crosshair_index()[2] + 0.5), 0, n - 1))

    def _base_context(self, stack_id: str, k: int) -> ImageContext:
        key = (stack_id, k)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        stack = self.window.stacks.get(stack_id)
        if stack is not None:
            ctx = context_from_stack(stack, k)
        else:  # a volume shown directly (tools, tests): its own source files
            vol = self.window.model.volume
            if not vol.source_files:
                raise SourceError("the shown volume has no DICOM source")
            import pydicom

            ds = pydicom.dcmread(vol.source_files[k], stop_before_pixels=True)
            frame = vol.frame_numbers[k] if vol.frame_numbers else None
            ctx = replace(context_from_dataset(ds, k, frame_number=frame, stack_id=stack_id),
                          sop_instance_uids=(vol.sop_instance_uids[k],))
        self._cache[key] = ctx
        while len(self._cache) > CONTEXT_CACHE:
            self._cache.popitem(last=False)
        return ctx

    def model_facts(self, label: str = "") -> tuple[ModelInfo, str, float | None]:
        """(model, explanation method, threshold of ``label``) of the AI run on the shown series, if any
        (:meth:`scope_note` says whether that run was outside the model's intended use)."""
        ai = self.ai
        entry = getattr(ai, "model_entry", None) if ai is not None else None
        card = getattr(entry, "card", None)
        results = getattr(ai, "results", None)
        key = getattr(results, "key", None)
        if card is None or results is None or getattr(key, "stack_id", self.window.stack_id) != self.window.stack_id:
            return ModelInfo(), "", None
        threshold = ai.state.threshold(label) if label in card.labels else None
        return ModelInfo(card.name, card.version, card.weights.sha256 or ""), ai.method, threshold

    def scope_note(self) -> str:
        """The views' 'outside intended use: <reason>' banner of a forced AI run on the shown series ('')."""
        scope = getattr(self.ai, "scope", None) if self.ai is not None else None
        return str(scope.banner()) if scope is not None else ""

    def _offer_labels(self) -> None:
        card = getattr(getattr(self.ai, "model_entry", None), "card", None) if self.ai is not None else None
        labels = tuple(card.labels) if card is not None else ()
        if labels != self._labels:
            self._labels = labels
            self.panel.set_labels(list(labels))

    def update_context(self, for_flag: bool = False) -> None:
        """Give the panel the context of the slice under the crosshair now (the debounced path calls this)."""
        self._timer.stop()
        self._offer_labels()
        k = self.current_slice()
        if k is None:
            self.panel.set_context(None)
            return
        try:
            ctx = self._base_context(self.window.stack_id, k)
        except (SourceError, OSError, ValueError) as exc:
            self.panel.set_context(None)
            self.panel.notify(f"Cannot flag Im {k + 1}: {exc}", error=True)
            return
        model, method, threshold = self.model_facts(self.panel.label_edit.currentText().strip())
        ctx = replace(ctx, model=model, method=method, threshold=threshold,
                      scope_note=self.scope_note() if model.name else "")
        if for_flag or ctx != self.panel.context:
            self.panel.set_context(ctx)

    def flush(self) -> None:
        """Apply a pending context update now (before a screenshot)."""
        if self._timer.isActive() or self.panel.context is None:
            self.update_context()

    # -- regions -------------------------------------------------------------------------------
    def _on_measurements_changed(self) -> None:
        model = self.window.model
        n = len(model.measurements) if model is not None else 0
        if n > self._n_measurements:  # a new measurement: selections made before it no longer count
            self._selection_at_draw = {v: v.selected for v in self.window.views}
        self._n_measurements = n

    def current_region(self) -> Region | None:
        """The region of the ROI on the current slice (selected since the last draw, else the last drawn)."""
        model = self.window.model
        k = self.current_slice()
        if model is None or k is None:
            return None
        vol = model.volume
        chosen: MeasurementRecord | None = None
        for view in self.window.visible_views():
            graphic = view.selected
            if graphic is not None and graphic is not self._selection_at_draw.get(view) \
                    and graphic.record in model.measurements and is_roi_on_slice(graphic.record, vol, k):
                chosen = graphic.record
                break
        if chosen is None:
            chosen = next((r for r in reversed(model.measurements) if is_roi_on_slice(r, vol, k)), None)
        if chosen is None:
            return None
        return region_from_roi(chosen, vol, volume_slice_geometry(vol, k))


def attach_review(window: Any, ai: Any = None, store: ReviewStore | None = None) -> ReviewController:
    """Add the review dock to the viewer ``window`` (hidden until opened) and keep it on the shown image.

    Uses the window's public API: ``seriesShown``, ``loadFinished``, ``model``, ``stacks``, ``stack_id``,
    ``show_stack``, ``open_paths``, ``views`` / ``visible_views()``, ``settings``, ``addDockWidget`` and its
    menu bar; ``ai`` is the :class:`~viewer.qt.ai_integration.AIController` (model, method, thresholds).
    """
    return ReviewController(window, ai, store)


def review_panel(app: Any) -> ReviewController:
    """The registry's factory (:mod:`viewer.qt.panels`): the review dock, or PanelUnavailable when its store
    cannot be opened."""
    from viewer.qt.panels import PanelUnavailable

    try:
        return attach_review(app.window, app.ai)
    except ReviewStoreError as exc:
        raise PanelUnavailable(str(exc)) from exc
