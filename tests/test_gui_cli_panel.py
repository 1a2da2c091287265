"""``radscope PATH --panel NAME`` shows that panel in front: the tags dock opened before the window was shown
stayed behind the AI tab it shares the right side with (seen in a --panel tags screenshot of RG1)."""

from __future__ import annotations

import argparse

import pytest

from tests.conftest import pydicom_data_file

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]


@pytest.mark.parametrize("panel", ["tags", "errors", "ai"])
def test_named_panel_is_in_front_when_the_window_opens(qtbot, monkeypatch, radscope_home, tmp_path,  # type: ignore[no-untyped-def]
                                                       panel: str) -> None:
    from viewer.commands import open_viewer

    seen: dict[str, bool] = {}

    def look(app, path, opened, name, show_finding=False):  # type: ignore[no-untyped-def]
        # what the screenshot would show, once the window has opened its series and gone idle
        assert app.window.wait_idle(60)
        for other in ("tags", "errors", "ai"):
            dock = app.window.installed_dock(other)  # a tab behind another is "visible" but has no region on screen
            seen[other] = dock.isVisible() and not dock.visibleRegion().isEmpty()
        return 0

    monkeypatch.setattr(open_viewer, "_screenshot", look)
    parser = argparse.ArgumentParser()
    open_viewer.add_arguments(parser)
    args = parser.parse_args([str(pydicom_data_file("RG1_UNCR.dcm")), "--panel", panel,
                              "--screenshot", str(tmp_path / "shot.png")])
    assert open_viewer.run(args) == 0
    assert seen[panel], seen
    if panel == "tags":
        assert not seen["ai"]  # the tab it shares the right side with is behind it
