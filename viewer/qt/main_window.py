"""RadScope's main window: series browser, 2D / MPR views, windowing, tools, tags, errors, export.

Layouts: ``1x1`` (one view, plane chosen in the View menu; the acquisition plane by default) and
``1x3`` (axial, coronal, sagittal with a linked crosshair). Loading is progressive: the middle slice is
decoded first and shown at once, the rest stream in while the user scrolls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from viewer.dicom.volume import Volume, WindowPreset
from viewer.display.cine import MAX_FPS, cine_fps
from viewer.display.orientation import mpr_refusal
from viewer.display.settings import ViewerSettings, load_settings, save_settings
from viewer.display.windowing import auto_window
from viewer.gc_policy import freeze_once
from viewer.state.series import DICOM_OVERLAY
from viewer.state.session import SessionState
from viewer.qt.bind import Bindings
from viewer.qt.docking import GEOMETRY_KEY, DockPanel, ScreenFitting  # noqa: F401 (GEOMETRY_KEY re-exported)
from viewer.qt.panels import PanelSpec, get_panel
from viewer.qt.help import SHORTCUTS, ShortcutsDialog  # noqa: F401 (SHORTCUTS re-exported)
from viewer.qt.errors_panel import ErrorsPanel
from viewer.qt.qt import QAction, QKeySequence, Qt, QTimer, QtGui, QtWidgets, Signal
from viewer.qt.progress import set_progress
from viewer.qt.series_browser import SeriesBrowser
from viewer.qt.series_model import SeriesModel
from viewer.qt.slice_view import TOOLS, SliceView
from viewer.qt.tag_browser import TagBrowser
from viewer.qt.wait import wait_until
from viewer.qt.loading import SeriesLoader

LAYOUTS = ("1x1", "1x3")
SINGLE_PLANES = ("acquisition", "axial", "coronal", "sagittal")
TOOL_KEYS = {"pan": "P", "window": "W", "crosshair": "X", "distance": "D", "angle": "A", "ellipse": "E", "rect": "R"}


class ViewerWindow(ScreenFitting):
    """The clinician's window. Public entry points: :meth:`open_paths`, :meth:`show_volume`,
    :meth:`show_stack`, :meth:`set_layout`, :meth:`open_panel`, :meth:`wait_idle`, :meth:`export_png`."""

    seriesShown = Signal(str)
    """A series' first slice is on screen (stack id)."""
    loadFinished = Signal(str)
    """Every slice of the series has decoded (stack id)."""

    PANELS = ("series", "tags", "errors")

    def __init__(self, settings: ViewerSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("RadScope")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else load_settings()
        self.session = SessionState(self.settings)
        """Everything shown (series list, current series, measurements per series): widgets follow its events."""
        self._bindings = Bindings()
        self._series_bindings = Bindings()
        self.loader = SeriesLoader(self.session, self)
        """The loading controller: scan, load, thumbnails into the session."""
        self.layout_name = self.settings.layout if self.settings.layout in LAYOUTS else "1x1"
        self.single_plane = "acquisition"
        self.tool = "pan"

        self.views = [SliceView(plane, camera=self.session.camera(i))  # each view follows its camera in the session
                      for i, plane in enumerate(("acquisition", "coronal", "sagittal"))]
        self.active_view = self.views[0]
        for v in self.views:
            v.hide_identifying = self.settings.hide_identifying
            v.show_annotations = self.settings.show_annotations
            v.probed.connect(self._on_probe)
            v.activated.connect(self._on_view_activated)
        self._installed: dict[str, tuple[str, QtWidgets.QDockWidget]] = {}
        self._specs: dict[str, PanelSpec] = {}
        self._build_central()
        self._build_status()
        self._build_actions()
        self._build_docks()
        self._cine = QTimer(self)
        self._cine.timeout.connect(self._cine_step)
        self._tags_timer = QTimer(self)
        self._tags_timer.setSingleShot(True)
        self._tags_timer.setInterval(120)
        self._tags_timer.timeout.connect(self._refresh_tags)
        self._help: ShortcutsDialog | None = None
        self.errors_panel.follow(self.session)
        self._bindings.connect(self.session.problemsAdded, self._on_problems)
        self.series_browser.follow(self.session)
        for signal, slot in ((self.loader.message, self._on_loader_message),
                             (self.loader.progress, self._on_load_progress),
                             (self.loader.loadFinished, self._on_load_finished)):
            signal.connect(slot)
        self._bindings.connect(self.session.seriesChanged, self._on_series_changed)
        self._bindings.connect(self.session.seriesShown, self._on_session_shown)
        self.resize(1400, 900)
        self._apply_hide_identifying()
        self._apply_layout()
        freeze_once("window")  # Qt, pyqtgraph, the first window: out of future GC passes (they hold the GIL)

    # -- state -------------------------------------------------------------------------------
    @property
    def model(self) -> SeriesModel | None:
        """The shown series' state (``session.series``)."""
        return self.session.series

    @property
    def stack_id(self) -> str:
        return self.session.stack_id

    @property
    def stacks(self) -> dict[str, Any]:
        return self.session.stacks

    def _on_session_shown(self, stack_id: str) -> None:
        self.seriesShown.emit(stack_id)

    # -- construction ------------------------------------------------------------------------
    def _build_central(self) -> None:
        central = QtWidgets.QWidget(self)
        grid = QtWidgets.QHBoxLayout()
        grid.setSpacing(2)
        grid.setContentsMargins(0, 0, 0, 0)
        for v in self.views:
            grid.addWidget(v, 1)
        self.slider = QtWidgets.QSlider(Qt.Orientation.Horizontal, central)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider_label = QtWidgets.QLabel("", central)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.slider_label)
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(grid, 1)
        outer.addLayout(bottom)
        central.setStyleSheet("background: #101010; color: #ddd;")
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        """The window's own panels (series, tags, errors), placed by the registry's rules like every panel."""
        self.series_browser = SeriesBrowser(self)
        self.series_browser.stackActivated.connect(self.show_stack)
        self.tag_browser = TagBrowser(self)
        self.errors_panel = ErrorsPanel(self)
        self.own_panels = {name: DockPanel(name, widget, self) for name, widget in
                           (("series", self.series_browser), ("tags", self.tag_browser), ("errors", self.errors_panel))}
        """Handles of the window's own panels (the registry's factories return them)."""
        for name, handle in self.own_panels.items():
            self.install_panel(get_panel(name), handle)
        self.tags_dock.visibilityChanged.connect(self._on_tags_visibility)

    @property
    def series_dock(self) -> QtWidgets.QDockWidget:
        return self.installed_dock("series")

    @property
    def tags_dock(self) -> QtWidgets.QDockWidget:
        return self.installed_dock("tags")

    @property
    def errors_dock(self) -> QtWidgets.QDockWidget:
        return self.installed_dock("errors")

    def _build_status(self) -> None:
        self.probe_label = QtWidgets.QLabel("", self)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("loading %v/%m")
        self.progress.hide()
        self.statusBar().addWidget(self.probe_label, 1)
        self.statusBar().addPermanentWidget(self.progress)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut: str | None = None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(f, "Open files…", self._open_files_dialog, "Ctrl+O")
        self._action(f, "Open folder…", self._open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = f.addMenu("Recent")
        self._fill_recent()
        f.addSeparator()
        self._action(f, "Export view as PNG…", self._export_dialog, "Ctrl+E")
        self._action(f, "Export view as PNG without annotations…", self._export_plain_dialog, "Ctrl+Shift+E")
        f.addSeparator()
        self._action(f, "Quit", self.close, "Ctrl+Q")

        v = bar.addMenu("&View")
        self.layout_actions = {}
        group = QtGui.QActionGroup(self)
        for name, label in (("1x1", "One view"), ("1x3", "MPR: axial, coronal, sagittal")):
            act = self._action(v, label, self._layout_slot(name), None, checkable=True)
            group.addAction(act)
            self.layout_actions[name] = act
        self._action(v, "Toggle MPR", self.toggle_mpr, "M")
        plane_menu = v.addMenu("Plane (one view)")
        pgroup = QtGui.QActionGroup(self)
        self.plane_actions = {}
        for name in SINGLE_PLANES:
            act = self._action(plane_menu, name.capitalize(), self._plane_slot(name), None, checkable=True)
            pgroup.addAction(act)
            self.plane_actions[name] = act
        self.plane_actions["acquisition"].setChecked(True)
        v.addSeparator()
        self._action(v, "Fit", lambda: self.active_view.fit(), "F")
        self._action(v, "Zoom 1:1", lambda: self.active_view.one_to_one(), "=")
        self.invert_action = self._action(v, "Invert", self._toggle_invert, "I", checkable=True)
        self.hide_id_action = self._action(v, "Hide identifying fields", self._toggle_hide_identifying, "H",
                                           checkable=True)
        self.hide_id_action.setChecked(self.settings.hide_identifying)
        self.annot_action = self._action(v, "Annotations", self._toggle_annotations, "Tab", checkable=True)
        self.annot_action.setChecked(self.settings.show_annotations)
        self.dicom_overlay_action = self._action(v, "DICOM overlay (graphics stored in the file)",
                                                 self._toggle_dicom_overlay, "Shift+O", checkable=True)
        self.dicom_overlay_action.setChecked(True)
        self._action(v, "Cine play/stop", self.toggle_cine, "Space")

        self.window_menu = bar.addMenu("&Window")
        self._fill_window_menu()

        t = bar.addMenu("&Tools")
        tgroup = QtGui.QActionGroup(self)
        self.tool_actions = {}
        for name in TOOLS:
            act = self._action(t, name.capitalize(), self._tool_slot(name), TOOL_KEYS[name], checkable=True)
            tgroup.addAction(act)
            self.tool_actions[name] = act
        self.tool_actions["pan"].setChecked(True)
        t.addSeparator()
        self._action(t, "Delete measurement", self.delete_measurement, "Delete")
        self._action(t, "Delete all measurements of this series", self._clear_measurements)

        self.panels_menu = bar.addMenu("&Panels")  # each installed panel adds its toggle (install_panel)

        h = bar.addMenu("&Help")
        self._action(h, "Keyboard shortcuts", self.show_help, "F1")

        tb = self.addToolBar("Tools")
        tb.setObjectName("toolbar_tools")
        tb.setMovable(False)
        for name in TOOLS:
            tb.addAction(self.tool_actions[name])
        tb.addSeparator()
        for name in LAYOUTS:
            tb.addAction(self.layout_actions[name])
        tb.addSeparator()
        presets = QtWidgets.QToolButton(self)
        presets.setText("Presets")
        presets.setToolTip("Window presets (keys 1-9, 0 = auto)")
        presets.setMenu(self.window_menu)
        presets.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(presets)
        tb.addAction(self.invert_action)
        tb.addWidget(QtWidgets.QLabel(" Cine fps ", self))
        self.fps = QtWidgets.QSpinBox(self)
        self.fps.setRange(1, MAX_FPS)
        self.fps.setValue(10)
        self.fps.valueChanged.connect(self._on_fps)
        tb.addWidget(self.fps)

    def _layout_slot(self, name: str):
        return lambda: self.set_layout(name)

    def _plane_slot(self, name: str):
        return lambda: self.set_single_plane(name)

    def _tool_slot(self, name: str):
        return lambda: self.set_tool(name)

    def _preset_slot(self, preset: WindowPreset):
        return lambda: self.apply_preset(preset)

    def _recent_slot(self, path: str):
        return lambda: self.open_paths([path])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(self._recent_slot(path))
        self.recent_menu.setEnabled(bool(self.settings.recent))

    def _fill_window_menu(self) -> None:
        for act in getattr(self, "_preset_actions", []):
            self.removeAction(act)
        self.window_menu.clear()
        self._preset_actions: list[QAction] = []
        presets = (self.model.presets if self.model is not None else []) + self.settings.window_presets()
        for n, preset in enumerate(presets):
            key = str(n + 1) if n < 9 else None
            label = f"{preset.name}  (W {preset.width:g} L {preset.center:g})"
            self._preset_actions.append(self._action(self.window_menu, label, self._preset_slot(preset), key))
        self._preset_actions.append(self._action(self.window_menu, "Auto (histogram)", self.auto_window, "0"))

    # -- opening -----------------------------------------------------------------------------
    def _open_files_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Open DICOM files", self.settings.last_folder)
        if files:
            self.open_paths(files)

    def _open_folder_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM folder", self.settings.last_folder)
        if folder:
            self.open_paths([folder])

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            ev.acceptProposedAction()

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Scan files / folders / zips / DICOMDIRs in the background, list the series, show the largest."""
        paths = [str(p) for p in paths]
        self.session.clear_problems()
        for p in paths:
            self.settings.add_recent(str(Path(p).resolve()))
        first = Path(paths[0]).resolve()
        self.settings.last_folder = str(first if first.is_dir() else first.parent)
        self._save_settings()
        self._fill_recent()
        self.loader.open(paths)

    # -- what the loading controller reports (it changes the session; these render) ---------------
    def _on_loader_message(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _on_problems(self, problems: list[tuple[str, str]], show: bool) -> None:
        """New problems in the session (the Errors panel renders them): bring the panel up when asked."""
        if show:
            self.errors_dock.show()

    def _on_load_progress(self, done: int, total: int) -> None:
        if total <= 0:
            self.progress.hide()
            return
        set_progress(self.progress, done, total)
        self.progress.show()

    def _on_load_finished(self, stack_id: str) -> None:
        self._fill_window_menu()
        self._sync_slider()
        self.loadFinished.emit(stack_id)

    @property
    def first_slice_s(self) -> float | None:
        """Seconds from the start of the load to the first slice on screen (figures, tests)."""
        return self.loader.first_slice_s

    @property
    def load_started_at(self) -> float:
        return self.loader.load_started_at


    # -- showing a series --------------------------------------------------------------------
    def show_stack(self, stack_id: str, *, reload: bool = False) -> None:
        """Load a scanned stack progressively (middle slice first) and show it; ``reload``: even when it is
        the stack shown (a new scan of a series that grew, e.g. one retrieved from a PACS)."""
        self.loader.show_stack(stack_id, reload=reload)


    def show_volume(self, volume: Volume, stack_id: str | None = None) -> SeriesModel:
        """Show an already loaded volume (tests, tools, other engines); returns its model."""
        self.loader.cancel()
        self.session.choose(stack_id or volume.info.stack_id or volume.info.series_uid or "volume")
        self.session.new_series(volume)
        self.session.announce_shown(self.stack_id)
        self.loadFinished.emit(self.stack_id)
        return self.model  # type: ignore[return-value]

    def _set_model(self, model: SeriesModel | None) -> None:
        self.session.set_series(model)

    def _on_series_changed(self, model: SeriesModel | None) -> None:
        """Another series state is shown: the views follow it, and so do the slider, menus and title."""
        self._series_bindings.clear()
        self._cine.stop()
        if model is not None:  # MPR where the user chose it and the series allows it (viewer.display.orientation)
            refused = bool(mpr_refusal(model.volume.info, model.volume.shape[0]))
            self.layout_name = "1x1" if refused else ("1x3" if self.settings.layout == "1x3" else self.layout_name)
        self._apply_layout()  # the views connect first, so the window's slots see their new slices
        if model is not None and not self.tag_browser.search.hasFocus():
            self.active_view.setFocus()  # arrow keys scroll at once
        if model is not None:
            self._series_bindings.connect(model.crosshairChanged, self._on_crosshair_changed)
            self._series_bindings.connect(model.windowChanged, self._on_window_changed)
        self._fill_window_menu()
        self._on_window_changed()
        fps = cine_fps(model.volume.info) if model is not None else None
        if fps is not None:  # a loop plays at its acquired rate (Frame Time), not the last one set
            self.fps.setValue(fps)
        layer = model.overlay(DICOM_OVERLAY) if model is not None else None
        self.dicom_overlay_action.setChecked(layer is None or layer.visible)
        self.setWindowTitle("RadScope" + (f" - {model.volume.info.description or self.stack_id}" if model else ""))
        self._schedule_tags()

    # -- layout, planes, tools ---------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}")
        refusal = mpr_refusal(self.model.volume.info, self.model.volume.shape[0]) if self.model is not None else ""
        if name == "1x3" and refusal:  # this series stays in one view; the user's choice stays saved for the next
            self.statusBar().showMessage(refusal, 5000)
            self.layout_name = "1x1"
        else:
            self.layout_name = name
            self.settings.layout = name
            self._save_settings()
        self._apply_layout()

    def toggle_mpr(self) -> None:
        self.set_layout("1x1" if self.layout_name == "1x3" else "1x3")

    def set_single_plane(self, name: str) -> None:
        if name not in SINGLE_PLANES:
            raise ValueError(f"unknown plane {name!r}; known: {', '.join(SINGLE_PLANES)}")
        self.single_plane = name
        self.plane_actions[name].setChecked(True)
        refusal = mpr_refusal(self.model.volume.info, self.model.volume.shape[0]) if self.model is not None else ""
        if name != "acquisition" and refusal:  # shown as acquired; the choice holds for the next placed series
            self.statusBar().showMessage(refusal, 5000)
        if self.layout_name == "1x1":
            self._apply_layout()

    def _apply_layout(self) -> None:
        mpr = self.layout_name == "1x3"
        self.layout_actions[self.layout_name].setChecked(True)
        single = self.single_plane
        if self.model is not None and mpr_refusal(self.model.volume.info, self.model.volume.shape[0]):
            single = "acquisition"  # frames never placed in the patient have no other plane
        self.plane_actions[single].setChecked(True)
        planes = ("axial", "coronal", "sagittal") if mpr else (single,)
        for n, v in enumerate(self.views):
            v.setVisible(n < len(planes))
            if n < len(planes):
                v.plane_name = planes[n]
                v.compact, v.show_patient = mpr, n == 0
                v.set_crosshair_visible(mpr)
                v.set_model(self.model)
                v.set_tool(self.tool)
            else:
                v.set_model(None)
        self._set_active(self.active_view if self.active_view in self.views[: len(planes)] else self.views[0])
        if mpr and self.tool == "pan":
            self.set_tool("crosshair")

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.tool_actions[tool].setChecked(True)
        for v in self.views:
            v.set_tool(tool)

    def visible_views(self) -> list[SliceView]:
        return [v for v in self.views if v.model is not None]

    def _on_view_activated(self, view: SliceView) -> None:
        if view is not self.active_view:
            self._set_active(view)

    def _set_active(self, view: SliceView) -> None:
        self.active_view = view
        for v in self.views:
            v.active = v is view
            v.viewport().update()
        self._sync_slider()

    # -- slices ------------------------------------------------------------------------------
    def _sync_slider(self) -> None:
        v = self.active_view
        n = v.n_slices if v.model is not None else 0
        s = v.slice_for_crosshair() if n else 0  # not v.slice_index: the view may not have handled it yet
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(n - 1, 0))
        self.slider.setValue(s)
        self.slider.blockSignals(False)
        self.slider.setVisible(n > 1)
        self.slider_label.setVisible(n > 1)
        self.slider_label.setText(f"{s + 1}/{n}" if n else "")

    def _on_slider(self, value: int) -> None:
        self.active_view.set_slice(value)

    def _on_crosshair_changed(self) -> None:
        self._sync_slider()
        self._schedule_tags()

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
        elif self.active_view.n_slices > 1:
            self._cine.start(int(1000 / self.fps.value()))

    def _on_fps(self, fps: int) -> None:
        if self._cine.isActive():
            self._cine.start(int(1000 / fps))

    def _cine_step(self) -> None:
        v = self.active_view
        if v.model is None:
            self._cine.stop()
            return
        v.set_slice((v.slice_index + 1) % v.n_slices)

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:  # noqa: N802
        if not self.active_view.handle_key(ev.key()):
            super().keyPressEvent(ev)

    # -- window ------------------------------------------------------------------------------
    def apply_preset(self, preset: WindowPreset) -> None:
        if self.model is not None:
            self.model.apply_preset(preset)

    def auto_window(self) -> None:
        if self.model is not None and not self.model.is_color:
            w = auto_window(self.active_view.current_image())
            self.model.set_window(w.center, w.width, "LINEAR_EXACT")

    def _toggle_invert(self) -> None:
        if self.model is not None:
            self.model.set_invert(not self.model.invert)

    def _on_window_changed(self) -> None:
        if self.model is not None:
            self.invert_action.setChecked(self.model.invert)

    # -- annotations -------------------------------------------------------------------------
    def _toggle_hide_identifying(self) -> None:
        self.settings.hide_identifying = not self.settings.hide_identifying
        self.hide_id_action.setChecked(self.settings.hide_identifying)
        self._apply_hide_identifying()
        self._save_settings()

    def _apply_hide_identifying(self) -> None:
        hide = self.settings.hide_identifying
        for v in self.views:
            v.hide_identifying = hide
            v.viewport().update()
        self.series_browser.set_hide_identifying(hide)
        self.tag_browser.set_hide_identifying(hide)

    def _toggle_dicom_overlay(self) -> None:
        """Show or hide the series' own overlay planes (they can cover what they mark)."""
        layer = self.model.overlay(DICOM_OVERLAY) if self.model is not None else None
        if layer is not None:
            layer.visible = not layer.visible
        self.dicom_overlay_action.setChecked(layer is None or layer.visible)

    def _toggle_annotations(self) -> None:
        self.settings.show_annotations = not self.settings.show_annotations
        self.annot_action.setChecked(self.settings.show_annotations)
        for v in self.views:
            v.show_annotations = self.settings.show_annotations
            v.viewport().update()
        self._save_settings()

    # -- measurements ------------------------------------------------------------------------
    def delete_measurement(self) -> None:
        self.active_view.delete_selected()

    def _clear_measurements(self) -> None:
        if self.model is not None:
            self.model.clear_measurements()

    # -- probe -------------------------------------------------------------------------------
    def _on_probe(self, text: str) -> None:
        self.probe_label.setText(text)

    # -- panels ------------------------------------------------------------------------------
    def _on_tags_visibility(self, visible: bool) -> None:
        if visible:
            self._schedule_tags()

    def _schedule_tags(self) -> None:
        if self.tags_dock.isVisible():
            self._tags_timer.start()

    def _refresh_tags(self) -> None:
        """Show the header of the slice under the crosshair (the acquisition slice being looked at)."""
        if self.model is None:
            self.tag_browser.set_dataset(None)
            return
        k = int(np.clip(np.floor(self.model.crosshair_index()[2] + 0.5), 0, self.model.volume.shape[0] - 1))
        stack = self.stacks.get(self.stack_id)
        try:
            if stack is not None:
                ds = stack.read_header(k)
            elif self.model.volume.source_files:
                import pydicom

                ds = pydicom.dcmread(self.model.volume.source_files[k], stop_before_pixels=True)
            else:
                self.tag_browser.set_error("No DICOM header for this volume")
                return
        except Exception as exc:
            self.tag_browser.set_error(f"Cannot read the header of slice {k + 1}: {exc}")
            return
        self.tag_browser.set_dataset(ds, f"Slice {k + 1}/{self.model.volume.shape[0]}")

    # -- help, export, settings --------------------------------------------------------------
    def show_help(self) -> None:
        if self._help is None:
            self._help = ShortcutsDialog(self)
        self._help.show()
        self._help.raise_()

    def _export_dialog(self, *, annotations: bool = True) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view as PNG",
                                                        str(Path(self.settings.last_folder or ".") / "view.png"),
                                                        "PNG images (*.png)")
        if path:
            self.export_png(path, with_annotations=annotations)

    def _export_plain_dialog(self) -> None:
        self._export_dialog(annotations=False)

    def export_png(self, path: str, with_annotations: bool = True) -> None:
        """Save the active view as shown, with or without the painted annotations."""
        self.active_view.render_png(path, with_annotations)
        self.statusBar().showMessage(f"Saved {path}", 5000)

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.statusBar().showMessage(f"Could not save settings: {exc}", 5000)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.loader.cancel()
        self._cine.stop()
        self._remember_geometry()
        self._save_settings()
        super().closeEvent(ev)

    # -- panels from the registry, fitting the screen ----------------------------------------


    # -- waiting (screenshots, tests) --------------------------------------------------------
    def is_idle(self) -> bool:
        """No scan, load or thumbnail job is running and no panel refresh or announcement is pending."""
        return self.loader.is_idle() and not self._tags_timer.isActive()

    def wait_idle(self, timeout_s: float = 120.0) -> bool:
        """Process events until idle (or the timeout); True when idle."""
        return wait_until(self.is_idle, timeout_s)


