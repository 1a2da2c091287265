"""``radscope demo``: the bundled demo study with the bundled CT model.

Opens the generated demo chest CT in the viewer, runs ``chest-nodule-demo`` on it in the background
and shows the heatmap on the most suspicious slice. With no display (no ``DISPLAY`` /
``WAYLAND_DISPLAY``, or ``QT_QPA_PLATFORM=offscreen``) it writes ``radscope-demo.png`` in the
current folder instead and prints where. Pieces that are not installed degrade to a text summary
(``radscope info`` of the demo study): the command exits 0 on any working install.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DEMO_MODEL = "chest-nodule-demo"
DEMO_PNG = "radscope-demo.png"
TIMEOUT_S = 600.0
LUNG_WINDOW = (-600.0, 1500.0)  # centre, width (HU)
DEMO_SIZE = (1600, 1000)
"""Wanted window size (clamped to the screen's available area; the offscreen picture's size)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE.png", help=f"write the window to this PNG and exit (default with no display: ./{DEMO_PNG})")
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
    return Path(demo_study_dir(on_generate=lambda: print(
        "radscope demo: preparing the demo study (generated once, then cached) ...", file=sys.stderr)))


def _ct_paths(study: Path) -> list[str]:
    """The demo CT series inside the study folder (the whole folder if its layout is unknown)."""
    for name in ("ct", "CT", "chest-ct"):
        if (study / name).is_dir():
            return [str(study / name)]
    return [str(study)]


def _print_summary(study: Path) -> None:
    """The ``radscope info`` table of the demo study (or a file count if that command is absent)."""
    from viewer import cli

    try:
        cli.main(["info", str(study)])
    except ImportError:
        n = sum(1 for p in study.rglob("*") if p.is_file())
        print(f"demo study: {study} ({n} files)")


def _truth_slices(study: Path) -> str:
    try:
        truth = json.loads((study / "truth.json").read_text())
    except (OSError, ValueError):
        return ""
    nodules = truth.get("nodules") or truth.get("ct", {}).get("nodules") or []
    slices = [n.get("slice", n.get("slice_index")) for n in nodules if isinstance(n, dict)]
    return ", ".join(str(k) for k in slices if k is not None)


def _lung_window(window: object) -> None:
    """Nodules are read in a lung window (W 1500 / L -600), not the CT default mediastinal one."""
    model = getattr(window, "model", None)
    if model is not None and not model.is_color and model.volume.info.modality == "CT":
        model.set_window(LUNG_WINDOW[0], LUNG_WINDOW[1])


def run(args: argparse.Namespace) -> int:
    study = _demo_study()
    if study is None:
        return 0
    print(f"demo study: {study}")
    headless = bool(args.out) or not has_display()
    if headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from viewer.qt.app import build_app
    except ImportError as exc:
        print(f"radscope demo: the viewer is not available ({exc}); summary instead:", file=sys.stderr)
        _print_summary(study)
        return 0

    app = build_app(size=DEMO_SIZE, report=lambda m: print(f"radscope demo: {m}", file=sys.stderr))
    window, ai = app.window, app.ai
    if ai is None:
        print("radscope demo: the AI layer is not available; showing the study without AI", file=sys.stderr)
    else:
        app.open_panel("ai")
        if not ai.use_model(args.model):
            print(f"radscope demo: model {args.model!r} is not installed; showing the study without AI",
                  file=sys.stderr)
    window.show()
    window.open_paths(_ct_paths(study))
    if not headless:
        window.seriesShown.connect(lambda _stack: _lung_window(window))  # noqa: E731 (runs on the GUI thread)
        if ai is not None:
            ai.follow_findings()
        code = int(app.qapp.exec())
        app.shutdown()
        return code

    if not app.wait_idle(TIMEOUT_S):
        print("radscope demo: loading or inference did not finish in time; writing what is shown", file=sys.stderr)
    _lung_window(window)
    k = ai.show_most_suspicious() if ai is not None else None
    window.wait_idle(1.0)
    out = Path(args.out or DEMO_PNG).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = window.grab().save(str(out), "PNG")
    app.shutdown()
    window.close()
    if not saved:
        print(f"radscope demo: could not write {out}", file=sys.stderr)
        return 0
    if k is not None and ai is not None and ai.results is not None:
        top = ai.results.findings()[:3]
        n = ai.results.shape[0]
        print("findings: " + ("; ".join(f"{f.label} p={f.peak_score:.2f} at slice index {f.peak_slice}" for f in top) or "none"))
        print(f"most suspicious slice: index {k} (shown as Im {k + 1}/{n}); device {ai.device_name}")
        truth = _truth_slices(study)
        if truth:
            print(f"truth (slice indices from truth.json): {truth}")
    print(f"wrote {out}")
    return 0
