"""``radscope [PATH ...] [--screenshot FILE.png] [--panel NAME] [--model NAME] [--layout]``: the viewer window.

``--screenshot`` renders the real main window offscreen once loading (and inference, when a model runs)
has finished, writes the PNG and exits 0 (no display needed). ``--panel`` opens a registered side panel
first (:mod:`viewer.qt.panels`); ``--model`` picks the AI model and, once it has run, moves the views to its
top finding with the crosshair on the heatmap's peak (as ``radscope demo`` does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from viewer.qt.panels import panel_names

PANELS = tuple(panel_names())
"""Side panels ``--panel`` can open (the registry's names; read without loading Qt)."""
SCREENSHOT_SIZE = (1600, 1000)
SCREENSHOT_TIMEOUT_S = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render the window offscreen, save, exit")
    parser.add_argument("--panel", metavar="NAME", help=f"open a named side panel first ({', '.join(PANELS)})")
    parser.add_argument("--model", metavar="NAME|PATH", help="model package to run on the opened series")
    parser.add_argument("--layout", choices=("1x1", "1x3"), help="one view, or axial/coronal/sagittal MPR")


def run(args: argparse.Namespace) -> int:
    if args.panel is not None and args.panel not in panel_names():
        print(f"radscope: unknown panel {args.panel!r}; known panels: {', '.join(panel_names())}", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"radscope: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.screenshot:
        import os

        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from viewer.qt.app import build_app
    from viewer.qt.panels import PanelUnavailable

    app = build_app(size=SCREENSHOT_SIZE if args.screenshot else None)
    window, ai = app.window, app.ai
    if args.model and (ai is None or not ai.use_model(args.model)):
        print(f"radscope: cannot use model {args.model!r}" + ("" if ai is not None else
              " (the AI layer is not available)") + "; see the Errors panel or `radscope models`", file=sys.stderr)
    if args.layout:
        window.set_layout(args.layout)
    if ai is not None and args.panel not in ("ai", "layers") and not args.model and not any(
            e.error is None for e in ai.state.models):
        ai.dock.hide()  # no usable model installed: keep the room for the images (Panels menu shows it)
    window.show()
    if args.panel:  # once shown: a dock raised before its tab bar exists stays behind the tab shown first
        try:
            app.open_panel(args.panel)
        except PanelUnavailable as exc:
            print(f"radscope: {exc}", file=sys.stderr)
            return 2
    if args.paths:
        window.open_paths(args.paths)
    if not args.screenshot:
        if ai is not None and args.model:
            ai.follow_findings(once=True)
        code = int(app.qapp.exec())
        app.shutdown()
        return code
    try:
        return _screenshot(app, args.screenshot, bool(args.paths), args.panel, show_finding=bool(args.model))
    finally:
        app.shutdown()


def _screenshot(app, path: str, opened: bool, panel: str | None, show_finding: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Wait for loading (and inference, when a model runs) to finish, render the whole window, save it.

    ``show_finding`` (``--model``): the views move to the image the model scores highest, centred on its
    heatmap peak, as ``radscope demo`` does, so that the picture shows what the model found."""
    window, ai = app.window, app.ai
    if not window.wait_idle(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: loading did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    if ai is not None and not ai.wait_done(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: inference did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
    elif ai is not None and show_finding:
        ai.show_most_suspicious()
    layers = app.panels.get("layers") if panel == "layers" else None
    if layers is not None and not layers.wait_done(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: the layer inspector did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
    review = app.panels.get("review")
    if review is not None:
        review.flush()
    window.wait_idle(1.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        print(f"radscope: could not write {out}", file=sys.stderr)
        return 1
    errors = list(window.session.problems)
    window.close()
    if window.model is None and errors:
        print(f"radscope: nothing could be shown ({len(errors)} error(s), first: {' '.join(errors[0])}); "
              f"wrote {out}", file=sys.stderr)
        return 1
    if window.model is None and opened:
        print("radscope: no DICOM images found in the given paths", file=sys.stderr)
    for file, reason in errors[:20]:  # what the Errors panel lists (unusable files and warnings), for scripts
        print(f"radscope: {file}: {reason}", file=sys.stderr)
    print(f"radscope: wrote {out}", file=sys.stderr)
    return 0
