"""The review inside the viewer, without Qt: which image a flag is about and what it records of the AI.

:class:`ViewerReview` reads the viewer's Qt-free state (the :class:`~viewer.state.session.SessionState`: the
open stacks, the shown series, its crosshair, its measurements and banner; the AI's
:class:`~viewer.state.ai.AISettings` and :class:`~viewer.state.ai.AIRunState`) and drives a
:class:`~viewer.state.review_control.ReviewControl`:

* the context is the acquisition slice under the crosshair; contexts are read from the slice's header (one disk
  read) and cached per ``(stack_id, k)`` (the Qt side calls :meth:`update_context` once scrolling rests);
* a flag records the model (card name, version, sha256), the explanation method and the label's threshold in
  force when the model ran on the shown series, and the views' "outside intended use" banner of a forced run;
* the open studies go on the worklist; a requested study is shown from the open set, else opened from the
  folder the worklist recorded for it;
* a verdict takes the rectangle / ellipse ROI on the current slice as its region (:meth:`pick_region`);
* the reviewer's name and the store in use are kept in the viewer settings.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from viewer.display.measure import MeasurementRecord
from viewer.display.settings import save_settings
from viewer.review import (ImageContext, ModelInfo, Region, ReviewStore, ReviewStoreError, SourceError,
                           context_from_dataset, context_from_stack)
from viewer.review.roi import is_roi_on_slice, region_from_roi, volume_slice_geometry
from viewer.state.ai import AIRunState, AISettings
from viewer.state.review_control import ReviewControl, image_number
from viewer.state.session import SessionState

CONTEXT_CACHE = 512
"""Contexts kept per (stack, slice)."""


@dataclass(frozen=True)
class StudyTarget:
    """How to show a requested study: a stack of the open set (``stack_id``; '' when it is already shown) or
    the folder to open (``path``)."""

    stack_id: str = ""
    path: str = ""


class ViewerReview:
    """The review's decisions about what the viewer shows (see the module docstring)."""

    def __init__(self, control: ReviewControl, session: SessionState, ai: AISettings | None = None,
                 ai_run: AIRunState | None = None, *, selected_rois: Callable[[], Sequence[MeasurementRecord]]
                 | None = None) -> None:
        """``selected_rois``: the measurements the reviewer selected in the views since the last one was drawn
        (the Qt side tracks selections; without it the newest ROI on the slice counts)."""
        self.control = control
        self.state = control.state
        self.session = session
        self.ai = ai
        self.ai_run = ai_run
        self.selected_rois = selected_rois
        self._cache: OrderedDict[tuple[str, int], ImageContext] = OrderedDict()
        self._listed: set[str] = set()
        self.pending_study: str | None = None
        control.prepare_flag = self._prepare_flag
        saved = getattr(session.settings, "reviewer", "")
        if saved and not os.environ.get("RADSCOPE_REVIEWER", "").strip():
            control.set_reviewer(saved)

    # -- the AI ------------------------------------------------------------------------------------
    def _card(self) -> Any:
        return self.ai.card if self.ai is not None else None

    def model_ran(self) -> bool:
        """The chosen model has results on the shown series."""
        results = self.ai_run.results if self.ai_run is not None else None
        return self._card() is not None and results is not None and \
            getattr(results.key, "stack_id", None) == self.session.stack_id

    def model_facts(self, label: str = "") -> tuple[ModelInfo, str, float | None]:
        """(model, explanation method, threshold of ``label``) of the AI run on the shown series, if any."""
        if not self.model_ran() or self.ai is None:
            return ModelInfo(), "", None
        card = self._card()
        threshold = self.ai.threshold(label) if label in card.labels else None
        return ModelInfo(card.name, card.version, card.weights.sha256 or ""), self.ai.method, threshold

    def scope_note(self) -> str:
        """The views' 'outside intended use: <reason>' banner of a forced AI run on the shown series ('')."""
        series = self.session.series
        return str(series.banner) if series is not None else ""

    def offer_labels(self) -> None:
        card = self._card()
        self.control.set_labels(tuple(card.labels) if card is not None else ())

    # -- the context ---------------------------------------------------------------------------------
    def current_slice(self) -> int | None:
        """The acquisition slice under the crosshair (DESIGN.md slice order), None when nothing is shown."""
        series = self.session.series
        return series.current_slice() if series is not None else None

    def base_context(self, stack_id: str, k: int) -> ImageContext:
        """Slice ``k``'s context without the model (cached; the header is read once)."""
        key = (stack_id, k)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        stack = self.session.stacks.get(stack_id)
        if stack is not None:
            ctx = context_from_stack(stack, k)
        else:  # a volume shown directly (tools, tests): its own source files
            vol = self.session.series.volume if self.session.series is not None else None
            if vol is None or not vol.source_files:
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

    def update_context(self, label: str = "", *, for_flag: bool = False) -> None:
        """Give the control the context of the slice under the crosshair now, stamped with the model in force
        for ``label`` (the label box's text)."""
        self.offer_labels()
        k = self.current_slice()
        if k is None:
            self.control.set_context(None)
            return
        try:
            ctx = self.base_context(self.session.stack_id, k)
        except (SourceError, OSError, ValueError) as exc:
            self.control.set_context(None)
            self.state.set_status(f"Cannot flag {image_number(k)}: {exc}", True)
            return
        model, method, threshold = self.model_facts(label)
        ctx = replace(ctx, model=model, method=method, threshold=threshold,
                      scope_note=self.scope_note() if model.name else "")
        if for_flag or ctx != self.state.context:
            self.control.set_context(ctx)

    def _prepare_flag(self, label: str) -> Region | None:
        self.update_context(label, for_flag=True)
        return self.pick_region() if self.state.context is not None else None

    # -- regions ---------------------------------------------------------------------------------------
    def pick_region(self) -> Region | None:
        """The region of the ROI on the current slice: one selected since the last draw, else the newest."""
        series = self.session.series
        k = self.current_slice()
        if series is None or k is None:
            return None
        vol = series.volume
        selected = list(self.selected_rois()) if self.selected_rois is not None else []
        chosen = next((r for r in selected if r in series.measurements and is_roi_on_slice(r, vol, k)), None)
        if chosen is None:
            chosen = next((r for r in reversed(series.measurements) if is_roi_on_slice(r, vol, k)), None)
        if chosen is None:
            return None
        return region_from_roi(chosen, vol, volume_slice_geometry(vol, k))

    # -- the worklist and studies ------------------------------------------------------------------------
    def sync_worklist(self) -> None:
        """Put every open study on the worklist (a study already there keeps its place and status)."""
        studies: dict[str, list[Any]] = {}
        for stack in self.session.stacks.values():
            studies.setdefault(stack.info.study_uid, []).append(stack)
        new = [uid for uid in studies if uid and uid not in self._listed]
        for uid in new:
            stacks = studies[uid]
            info = stacks[0].info
            description = " ".join(p for p in (info.study_date, info.modality, info.study_description) if p)
            folders = [os.path.dirname(f) for s in stacks for f in s.files]
            try:
                self.control.store.add_study(uid, description=description,
                                             source_path=os.path.commonpath(folders) if folders else "")
            except ReviewStoreError as exc:
                self.state.set_status(f"Worklist not updated: {exc}", True)
                return
            self._listed.add(uid)
        if new:
            self.control.refresh()

    def open_stack_of(self, study_uid: str) -> str | None:
        """The open stack to show for ``study_uid`` (its largest series; '' when it is the one shown), None when
        the study is not open."""
        stacks = [s for s in self.session.stacks.values() if s.info.study_uid == study_uid]
        if not stacks:
            return None
        best = max(stacks, key=lambda s: s.n_slices)
        return "" if best.stack_id == self.session.stack_id and self.session.series is not None else best.stack_id

    def study_target(self, study_uid: str) -> StudyTarget | None:
        """How to show ``study_uid``: from the open set, else from the folder the worklist recorded for it
        (then the study stays pending until a series of it is shown); None, said on the status line, when it
        can be neither."""
        stack_id = self.open_stack_of(study_uid)
        if stack_id is not None:
            return StudyTarget(stack_id=stack_id)
        try:
            entry = next((e for e in self.control.store.worklist() if e.study_uid == study_uid), None)
        except ReviewStoreError as exc:
            self.state.set_status(f"Cannot read the review store: {exc}", True)
            return None
        if entry is None or not entry.source_path or not os.path.exists(entry.source_path):
            where = f" ({entry.source_path} is gone)" if entry is not None and entry.source_path else ""
            self.state.set_status(f"Study {study_uid} is not open and cannot be found{where}", True)
            return None
        self.pending_study = study_uid
        return StudyTarget(path=entry.source_path)

    def series_shown(self, stack_id: str) -> StudyTarget | None:
        """A series is on screen: the worklist takes its study; a study opened from its folder (pending) shows
        its own series when the scan put another first (returned); else the context follows (None)."""
        self.sync_worklist()
        stack = self.session.stacks.get(stack_id)
        pending, self.pending_study = self.pending_study, None
        if pending and stack is not None and stack.info.study_uid != pending:
            stack_to_show = self.open_stack_of(pending)
            if stack_to_show is not None:
                return StudyTarget(stack_id=stack_to_show)
        return None

    # -- settings ------------------------------------------------------------------------------------------
    def set_reviewer(self, name: str) -> None:
        """Record ``name`` with new flags and keep it in the viewer settings (``reviewer``)."""
        self.control.set_reviewer(name)
        settings = self.session.settings
        name = self.state.reviewer
        if name == settings.reviewer:
            return
        settings.reviewer = name
        try:
            save_settings(settings)
        except OSError as exc:
            self.state.set_status(f"Could not save the reviewer name: {exc}", True)

    def use_store(self, location: str) -> bool:
        """Switch to the store at ``location`` (a file or ``postgresql://`` URL; '' = the default) and keep it in
        the viewer settings (``review_store``); False, said on the status line, when it cannot be opened."""
        location = location.strip()
        try:
            store = ReviewStore(location or None, offline_ok=True)
        except ReviewStoreError as exc:
            self.state.set_status(f"Review store not changed: {exc}", True)
            return False
        old = self.control.store
        self._listed.clear()
        self.control.set_store(store)
        old.close()
        self.sync_worklist()
        settings = self.session.settings
        if getattr(settings, "review_store", location) != location:
            settings.review_store = location
            try:
                save_settings(settings)
            except OSError as exc:
                self.state.set_status(f"Could not save the review store setting: {exc}", True)
        return True
