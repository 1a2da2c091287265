"""The app assembly (viewer.qt.app.build_app), the panel registry and the one wait helper (offscreen)."""

from __future__ import annotations

import argparse

import pytest

from viewer.qt.panels import PANELS, PanelSpec, PanelUnavailable, get_panel, panel_names, register_panel

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]


def test_panel_choices_come_from_the_registry() -> None:
    from viewer.commands import open_viewer

    assert list(open_viewer.PANELS) == panel_names()
    assert {"series", "tags", "errors", "ai", "layers", "review"} <= set(panel_names())
    with pytest.raises(KeyError, match="known panels: series"):
        get_panel("nope")
    for spec in PANELS:  # a panel's needs are built before it
        assert all(panel_names().index(n) < panel_names().index(spec.name) for n in spec.needs)
    with pytest.raises(ValueError, match="unregistered"):
        register_panel(PanelSpec("x", "X", "right", "m:f", needs=("missing",)))
    parser = argparse.ArgumentParser()
    open_viewer.add_arguments(parser)
    assert open_viewer.run(parser.parse_args(["--panel", "nope"])) == 2


def test_build_app_builds_every_registered_panel_and_opens_each(qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.app import build_app
    from viewer.qt.qt import QtCore

    app = build_app(size=(1366, 768), use_cache=False)
    qtbot.addWidget(app.window)
    try:
        assert set(app.panels) == set(panel_names()), app.unavailable
        app.window.show()
        qtbot.waitExposed(app.window)
        menu_entries = {a.text() for a in app.window.panels_menu.actions()}
        for spec in PANELS:
            handle = app.open_panel(spec.name)
            dock = handle.dock
            assert dock.objectName() == f"dock_{spec.name}" and spec.title in menu_entries
            assert dock.isVisible(), spec.name
            hint = app.window.minimumSizeHint()  # panels scroll instead of growing the window
            assert hint.width() <= 1366 and hint.height() <= 768, (spec.name, hint)
        right = [app.panels[s.name].dock for s in PANELS if s.area == "right"]
        tabbed = set(app.window.tabifiedDockWidgets(right[0]))
        assert set(right[1:]) <= tabbed  # one tab group: right-side panels never paint over each other
        tags = get_panel("tags")
        assert app.panels["tags"].dock.toggleViewAction().shortcut().toString() == tags.shortcut
        areas = {"left": QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, "right": QtCore.Qt.DockWidgetArea.RightDockWidgetArea,
                 "bottom": QtCore.Qt.DockWidgetArea.BottomDockWidgetArea}
        for spec in PANELS:  # every dock placed by the registry's rules, one toggle each in the Panels menu
            dock = app.panels[spec.name].dock
            assert app.window.dockWidgetArea(dock) == areas[spec.area], spec.name
            assert app.window.installed_dock(spec.name) is dock
            assert [a.text() for a in app.window.panels_menu.actions()].count(spec.title) == 1, spec.name
        assert app.wait_idle(30)
    finally:
        app.shutdown()
        app.window.close()


def test_a_registered_panel_is_built_and_a_failing_one_is_reported(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys
    import types

    from viewer.qt import panels
    from viewer.qt.app import build_app
    from viewer.qt.qt import QtCore, QtWidgets

    module = types.ModuleType("radscope_test_panels")

    class Handle:  # only a body: the window makes and places its dock
        def __init__(self) -> None:
            self.widget = QtWidgets.QLabel("tall\n" * 200)  # a body far taller than any screen
            self.dock: QtWidgets.QDockWidget | None = None
            self.opened = 0
            self.seen: list[bool] = []

        def open(self) -> None:
            self.opened += 1
            assert self.dock is not None
            self.dock.show()

        def dock_visibility_changed(self, visible: bool) -> None:
            self.seen.append(visible)

    def good(app):  # type: ignore[no-untyped-def]
        return Handle()

    def bad(app):  # type: ignore[no-untyped-def]
        raise PanelUnavailable("no such store")

    module.good, module.bad = good, bad  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "radscope_test_panels", module)
    monkeypatch.setattr(panels, "PANELS", list(panels.PANELS))
    register_panel(PanelSpec("probe", "Probe", "right", "radscope_test_panels:good", "Ctrl+Shift+9"))
    register_panel(PanelSpec("broken", "Broken", "right", "radscope_test_panels:bad"))
    reported: list[str] = []
    app = build_app(panels=["probe", "broken"], size=(800, 600), report=reported.append)
    qtbot.addWidget(app.window)
    try:
        assert set(app.panels) == {"probe"} and app.unavailable == {"broken": "no such store"}
        assert reported == ["Broken panel not available (no such store)"]
        with pytest.raises(PanelUnavailable, match="no such store"):
            app.open_panel("broken")
        probe = app.panels["probe"]
        dock = probe.dock  # made by the window from the spec: title, name, area, menu toggle and shortcut
        assert dock.windowTitle() == "Probe" and dock.objectName() == "dock_probe" and dock.isHidden()
        assert app.window.dockWidgetArea(dock) == QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        assert isinstance(dock.widget(), QtWidgets.QScrollArea) and dock.widget().widget() is probe.widget
        toggle = dock.toggleViewAction()
        assert toggle in app.window.panels_menu.actions() and toggle.shortcut().toString() == "Ctrl+Shift+9"
        app.window.show()
        app.open_panel("probe")
        assert probe.opened == 1 and dock.isVisible() and probe.seen[-1] is True
        assert app.window.minimumSizeHint().height() < 600  # the tall body scrolls inside its dock
        assert app.window.install_panel(panels.get_panel("probe"), probe) is dock  # installing again: the same dock
        assert [a.text() for a in app.window.panels_menu.actions()].count("Probe") == 1
    finally:
        app.shutdown()
        app.window.close()


def test_wait_until_returns_when_the_condition_holds_or_at_the_timeout(qtbot) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.qt import QTimer
    from viewer.qt.wait import wait_until

    fired: list[int] = []
    QTimer.singleShot(50, lambda: fired.append(1))
    assert wait_until(lambda: bool(fired), 10.0)
    assert not wait_until(lambda: False, 0.1)
