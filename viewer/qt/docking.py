"""How the main window places its panels and fits real screens (a mixin of :class:`~viewer.qt.main_window.ViewerWindow`).

- Each registered panel's dock is made and placed here (:meth:`ScreenFitting.install_panel`), the same way for
  every panel: its area; a body larger than a small dock scrolls inside it (its
  content never sets the window's minimum size); right-side panels share one tab group; docks take em-based
  widths capped at a third of the window, so the images keep priority.
- The window opens inside the screen's available geometry (a laptop's whole area, a large screen's 1600x1000
  centred (times logical DPI / 96: its text grows with the DPI), or the geometry remembered in
  ``viewer-settings.json``) and never grows past it when a panel opens.
- Offscreen (no real screen) a requested size is taken as it is.
"""

from __future__ import annotations

from typing import Any

from viewer.display.settings import ViewerSettings
from viewer.qt.panels import PanelSpec
from viewer.qt.qt import QKeySequence, Qt, QTimer, QtCore, QtGui, QtWidgets

GEOMETRY_KEY = "window_geometry"
"""``viewer-settings.json`` key of the window's last geometry on a real screen ([x, y, width, height])."""
_AREAS = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
          "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}


class ScreenFitting(QtWidgets.QMainWindow):
    """Dock placement and screen fitting for a main window with ``settings`` and a ``panels_menu``."""

    settings: ViewerSettings
    panels_menu: QtWidgets.QMenu
    _installed: dict[str, tuple[str, QtWidgets.QDockWidget]]
    _specs: dict[str, PanelSpec]

    def install_panel(self, spec: PanelSpec, handle: Any) -> QtWidgets.QDockWidget:
        """Place a registered panel's dock, the one way every dock is placed: made here around
        ``handle.widget`` (``handle.dock`` set) unless the handle brings its own dock class; titled and named from
        the spec; in its area, right-side panels tabbed together; inside a scroll area when its body is larger
        than a small dock (its content never sets the window's minimum size); its toggle in the Panels menu
        with the spec's shortcut; ``handle.dock_visibility_changed(visible)`` told. Installing a panel again
        returns its dock unchanged."""
        dock = getattr(handle, "dock", None)
        if spec.name in self._installed and self._installed[spec.name][1] is dock:
            return dock
        if dock is None:
            dock = QtWidgets.QDockWidget(spec.title, self)
            dock.setWidget(handle.widget)
            handle.dock = dock
        dock.setObjectName(f"dock_{spec.name}")
        dock.setWindowTitle(spec.title)
        body = dock.widget()
        em = self.fontMetrics().height()
        hint = body.minimumSizeHint() if body is not None else QtCore.QSize()
        needs_scroll = hint.width() > 14 * em or hint.height() > 18 * em  # (a tree or list scrolls itself)
        if body is not None and needs_scroll and not isinstance(body, QtWidgets.QScrollArea):
            scroll = QtWidgets.QScrollArea(dock)
            scroll.setObjectName(f"scroll_{spec.name}")
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
            scroll.setWidget(body)
            dock.setWidget(scroll)
        if spec.area == "bottom":
            dock.setMinimumHeight(4 * em)
        else:  # 12 lines' height of text: grows with the DPI (a 240 px cap cut captions at 192 DPI)
            dock.setMinimumWidth(min(12 * em, self.available_geometry().width() // 6))
        self.addDockWidget(_AREAS[spec.area], dock)
        if spec.area == "right":
            first = next((d for n, (a, d) in self._installed.items() if a == "right" and d is not dock), None)
            if first is not None:
                self.tabifyDockWidget(first, dock)
        self._installed[spec.name] = (spec.area, dock)
        self._specs[spec.name] = spec
        dock.setVisible(spec.start_visible)
        act = dock.toggleViewAction()
        act.setText(spec.title)
        if spec.shortcut:
            act.setShortcut(QKeySequence(spec.shortcut))
        if act not in self.panels_menu.actions():
            self.panels_menu.addAction(act)
            self.addAction(act)
        dock.visibilityChanged.connect(self._on_dock_visibility)
        follower = getattr(handle, "dock_visibility_changed", None)
        if callable(follower):
            dock.visibilityChanged.connect(follower)
        self.size_dock(dock, spec.area)
        return dock

    def installed_dock(self, name: str) -> QtWidgets.QDockWidget:
        """The dock of an installed panel (KeyError naming the installed ones)."""
        if name not in self._installed:
            raise KeyError(f"panel {name!r} is not installed; installed: {', '.join(self._installed)}")
        return self._installed[name][1]

    def open_panel(self, name: str) -> QtWidgets.QDockWidget:
        """Show and raise an installed panel's dock and give it its share of the window (the spec's
        ``width_em``); a panel handle's ``open()`` calls this, then does what is its own."""
        dock = self.installed_dock(name)
        spec = self._specs[name]
        dock.show()
        dock.raise_()
        self.size_dock(dock, spec.area, want_em=spec.width_em)
        return dock

    def size_dock(self, dock: QtWidgets.QDockWidget, area: str, want_em: float | None = None) -> None:
        """Give a dock its usual share: the series list narrow, right-side panels wider, the errors list a
        few lines; never more than a third of the window (the images keep priority)."""
        em = self.fontMetrics().height()
        if area == "bottom":
            self.resizeDocks([dock], [min(7 * em, self.height() // 4)], Qt.Orientation.Vertical)
        else:
            want = int((want_em or (15 if area == "left" else 24)) * em)
            self.resizeDocks([dock], [min(want, self._side_width(area))], Qt.Orientation.Horizontal)

    def size_docks(self) -> None:
        """Give every shown dock its usual share of the window as it is now (docks placed while the window
        had its first, smaller size kept that size's share: at 192 DPI the AI dock opened at a third of an
        intermediate width and scrolled sideways)."""
        for name, (area, dock) in self._installed.items():
            if not dock.isHidden():
                spec = self._specs.get(name)
                self.size_dock(dock, area, want_em=spec.width_em if spec is not None else None)

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            QTimer.singleShot(0, self.size_docks)  # once the window has its size on the screen

    def _side_width(self, area: str = "right") -> int:
        """Side panels never take more than a third of the window, the series list a fifth (both at 192 DPI on a
        1920 px screen left the images 44 %): the images keep priority."""
        return max(200, self.width() // (5 if area == "left" else 3))

    def _on_dock_visibility(self, _visible: bool) -> None:
        QTimer.singleShot(0, self.keep_on_screen)

    def available_geometry(self) -> QtCore.QRect:
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        return screen.availableGeometry()

    def fit_to_screen(self, size: tuple[int, int] | None = None) -> None:
        """Size the window: ``size`` if given, else the remembered geometry, else most of the screen;
        never larger than the screen's available area (offscreen, where no real screen exists, ``size`` is
        taken as it is)."""
        avail = self.available_geometry()
        saved = self.settings.extra.get(GEOMETRY_KEY)
        rect = None
        if size is not None:
            rect = QtCore.QRect(avail.x(), avail.y(), int(size[0]), int(size[1]))
        elif isinstance(saved, list) and len(saved) == 4 and all(isinstance(v, int) for v in saved):
            rect = QtCore.QRect(*saved)
        else:  # a laptop screen: all of it; a large one: a comfortable window in its middle
            unit = max(1.0, self.logicalDpiY() / 96.0)  # 1600x1000 at 96 DPI: text in points grows with the DPI
            w, h = min(int(1600 * unit), avail.width()), min(int(1000 * unit), avail.height())
            rect = QtCore.QRect(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2, w, h)
        if not (self._offscreen() and size is not None):
            rect.setWidth(min(rect.width(), avail.width()))
            rect.setHeight(min(rect.height(), avail.height()))
            rect.moveLeft(min(max(rect.x(), avail.x()), avail.right() + 1 - rect.width()))
            rect.moveTop(min(max(rect.y(), avail.y()), avail.bottom() + 1 - rect.height()))
            self.setMaximumSize(avail.size())
        self.resize(rect.size())
        self.move(rect.topLeft())
        self.size_docks()

    @staticmethod
    def _offscreen() -> bool:
        return QtGui.QGuiApplication.platformName() in ("offscreen", "minimal")

    def keep_on_screen(self) -> None:
        """Shrink the window back inside the screen if a panel made it grow past it."""
        if self._offscreen():
            return
        avail = self.available_geometry()
        frame = self.frameGeometry()
        if frame.width() > avail.width() or frame.height() > avail.height():
            self.resize(min(self.width(), avail.width()), min(self.height(), avail.height()))

    def _remember_geometry(self) -> None:
        if not self._offscreen() and self.isVisible():
            g = self.geometry()
            self.settings.extra[GEOMETRY_KEY] = [g.x(), g.y(), g.width(), g.height()]



class DockPanel:
    """The handle of one of the window's own panels (series, tags, errors): its body, placed by
    :meth:`ScreenFitting.install_panel` like every other panel's."""

    def __init__(self, name: str, widget: QtWidgets.QWidget, window: ScreenFitting) -> None:
        self.name = name
        self.widget = widget
        self.dock: QtWidgets.QDockWidget | None = None
        self._window = window

    def open(self) -> None:
        self._window.open_panel(self.name)


def series_panel(app: Any) -> DockPanel:
    return app.window.own_panels["series"]  # type: ignore[no-any-return]


def tags_panel(app: Any) -> DockPanel:
    return app.window.own_panels["tags"]  # type: ignore[no-any-return]


def errors_panel(app: Any) -> DockPanel:
    return app.window.own_panels["errors"]  # type: ignore[no-any-return]
