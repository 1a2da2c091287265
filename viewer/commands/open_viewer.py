"""``radscope [PATH ...] [--screenshot FILE.png] [--panel NAME] [--model NAME]``: the viewer window.

``--screenshot`` renders the real main window offscreen once loading (and inference, when a model runs)
has finished, writes the PNG and exits 0 (no display needed). ``--panel`` opens a named side panel first;
``--model`` picks the AI model (the AI dock of :mod:`viewer.qt.ai_integration`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PANELS = ("series", "tags", "errors", "ai", "layers", "review")
"""Side panels ``--panel`` can open (ViewerWindow.PANELS plus the AI, layer-inspector and review docks; listed here
so a bad name fails before Qt loads)."""
SCREENSHOT_SIZE = (1600, 1000)
SCREENSHOT_TIMEOUT_S = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--screenshot", metavar="FILE.png", help="render the window offscreen, save, exit")
    parser.add_argument("--panel", metavar="NAME", help=f"open a named side panel first ({', '.join(PANELS)})")
    parser.add_argument("--model", metavar="NAME|PATH", help="model package to run on the opened series")
    parser.add_argument("--layout", choices=("1x1", "1x3"), help="one view, or axial/coronal/sagittal MPR")


def run(args: argparse.Namespace) -> int:
    if args.panel is not None and args.panel not in PANELS:
        print(f"radscope: unknown panel {args.panel!r}; known panels: {', '.join(PANELS)}", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"radscope: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.screenshot:
        import os

        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from viewer.qt.main_window import ViewerWindow
    from viewer.qt.qt import ensure_app

    app = ensure_app(sys.argv[:1])
    window = ViewerWindow()
    ai = _attach_ai(window)
    layers = _attach_layers(window, ai)
    review = _attach_review(window, ai)
    if args.model and (ai is None or not ai.use_model(args.model)):
        print(f"radscope: cannot use model {args.model!r}" + ("" if ai is not None else
              " (the AI layer is not available)") + "; see the Errors panel or `radscope models`", file=sys.stderr)
    if args.layout:
        window.set_layout(args.layout)
    if args.panel == "ai":
        if ai is None:
            print("radscope: the AI panel is not available", file=sys.stderr)
            return 2
        ai.open()
    elif args.panel == "layers":
        if layers is None:
            print("radscope: the layer inspector is not available", file=sys.stderr)
            return 2
        layers.open()
    elif args.panel == "review":
        if review is None:
            print("radscope: the review panel is not available", file=sys.stderr)
            return 2
        review.open()
    elif args.panel:
        window.open_panel(args.panel)
    if ai is not None and args.panel not in ("ai", "layers") and not args.model and not any(
            e.error is None for e in getattr(ai.panel, "entries", [])):
        ai.dock.hide()  # no usable model installed: keep the room for the images (Panels menu shows it)
    if args.screenshot:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    if args.paths:
        window.open_paths(args.paths)
    if not args.screenshot:
        code = int(app.exec())
        if ai is not None:
            ai.shutdown()
        return code
    try:
        return _screenshot(window, ai, args.screenshot, bool(args.paths), layers if args.panel == "layers" else None,
                           review, show_finding=bool(args.model))
    finally:
        if ai is not None:
            ai.shutdown()


def _attach_ai(window):
    """The AI dock (issue 5) when its layer is importable, else None (the viewer works without it)."""
    try:
        from viewer.qt.ai_integration import attach_ai
    except ImportError as exc:
        print(f"radscope: AI layer not available ({exc})", file=sys.stderr)
        return None
    return attach_ai(window)


def _attach_layers(window, ai):
    """The layer inspector dock (hidden until opened), driven by the AI layer's worker; None without it."""
    if ai is None:
        return None
    from viewer.qt.layers_panel import attach_layers

    return attach_layers(window, ai)


def _attach_review(window, ai):
    """The review dock (hidden until opened); None when its store cannot be opened (said on stderr)."""
    from viewer.qt.review_integration import attach_review
    from viewer.review import ReviewStoreError

    try:
        return attach_review(window, ai)
    except ReviewStoreError as exc:
        print(f"radscope: review panel not available ({exc})", file=sys.stderr)
        return None


def _screenshot(window, ai, path: str, opened: bool, layers=None, review=None, show_finding: bool = False) -> int:
    """Wait for loading (and inference, when a model runs) to finish, render the whole window, save it.

    ``show_finding`` (``--model``): the views move to the image the model scores highest, centred on its
    heatmap peak, as ``radscope demo`` does, so that the picture shows what the model found."""
    if not window.wait_idle(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: loading did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    if ai is not None and not ai.wait_done(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: inference did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
    elif ai is not None and show_finding:
        ai.show_most_suspicious()
    if layers is not None and not layers.wait_done(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: the layer inspector did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
    if review is not None:
        review.flush()
    window.wait_idle(1.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        print(f"radscope: could not write {out}", file=sys.stderr)
        return 1
    errors = window.errors_panel.errors()
    window.close()
    if window.model is None and errors:
        print(f"radscope: nothing could be shown ({len(errors)} error(s), first: {' '.join(errors[0])}); "
              f"wrote {out}", file=sys.stderr)
        return 1
    if window.model is None and opened:
        print("radscope: no DICOM images found in the given paths", file=sys.stderr)
    for file, reason in errors[:20]:  # what the Errors panel lists, for scripts
        print(f"radscope: error: {file}: {reason}", file=sys.stderr)
    print(f"radscope: wrote {out}", file=sys.stderr)
    return 0
