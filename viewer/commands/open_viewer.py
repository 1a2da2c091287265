"""``radscope [PATH ...] [--screenshot FILE.png] [--panel NAME] [--model NAME]``: the viewer window.

``--screenshot`` renders the real main window offscreen once loading has finished, writes the PNG and
exits 0 (no display needed). ``--panel`` opens a named side panel first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PANELS = ("series", "tags", "errors")
"""Side panels ``--panel`` can open (ViewerWindow.PANELS; listed here so a bad name fails before Qt loads)."""
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
    if args.model:
        print("radscope: --model is not wired into the viewer yet (the AI layer is a later issue); "
              "use `radscope infer` meanwhile", file=sys.stderr)
    if args.screenshot:
        import os

        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from viewer.qt.main_window import ViewerWindow
    from viewer.qt.qt import ensure_app

    app = ensure_app(sys.argv[:1])
    window = ViewerWindow()
    if args.layout:
        window.set_layout(args.layout)
    if args.panel:
        window.open_panel(args.panel)
    if args.screenshot:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    if args.paths:
        window.open_paths(args.paths)
    if not args.screenshot:
        return int(app.exec())
    return _screenshot(window, args.screenshot)


def _screenshot(window, path: str) -> int:
    """Wait for loading to finish, render the whole window, save it."""
    if not window.wait_idle(SCREENSHOT_TIMEOUT_S):
        print(f"radscope: loading did not finish within {SCREENSHOT_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    window.wait_idle(1.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out), "PNG"):
        print(f"radscope: could not write {out}", file=sys.stderr)
        return 1
    errors = window.errors_panel.errors()
    if window.model is None:
        print(f"radscope: nothing could be shown ({len(errors)} error(s)); wrote {out}", file=sys.stderr)
        return 1 if errors else 0
    print(f"radscope: wrote {out}", file=sys.stderr)
    window.close()
    return 0
