"""Open every registered panel in the real viewer on the current display and report what lies off screen or
overlaps: ``python -m tests.support.screen_check [PATH ...] [--shots DIR]`` prints one JSON object.

Run under a real X server (``QT_QPA_PLATFORM=xcb``, ``DISPLAY``); ``tests/test_gui_xvfb.py`` starts Xvfb at
several screen sizes and asserts the report is clean. ``--shots`` saves the whole screen after each step.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _rect(r: Any) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


def check(app: Any, step: str, problems: list[str]) -> dict[str, Any]:
    """Geometry of the window, its docks and every visible widget against the screen's available area."""
    from viewer.qt.qt import QtWidgets

    window = app.window
    screen = window.screen()
    avail = screen.availableGeometry()
    full = screen.geometry()
    frame = window.frameGeometry()
    if not avail.contains(frame):
        problems.append(f"{step}: window {_rect(frame)} is not inside the screen's available area {_rect(avail)}")
    docks = [d for d in window.findChildren(QtWidgets.QDockWidget) if d.isVisible() and not d.visibleRegion().isEmpty()]
    rects = {d.objectName(): d.geometry() for d in docks}
    names = sorted(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            inter = rects[a].intersected(rects[b])
            if inter.width() > 0 and inter.height() > 0:
                problems.append(f"{step}: docks {a} {_rect(rects[a])} and {b} {_rect(rects[b])} overlap")
    central = window.centralWidget().geometry()
    for name, r in rects.items():
        inter = r.intersected(central)
        if inter.width() > 0 and inter.height() > 0:
            problems.append(f"{step}: dock {name} {_rect(r)} paints over the image area {_rect(central)}")
    outside = []
    for w in [window, *window.findChildren(QtWidgets.QWidget)]:
        if not w.isVisible() or w.isWindow() and w is not window:
            continue
        region = w.visibleRegion()
        if region.isEmpty():
            continue
        box = region.boundingRect()
        top_left = w.mapToGlobal(box.topLeft())
        g = box.translated(top_left - box.topLeft())
        if not full.contains(g):
            outside.append(f"{type(w).__name__}({w.objectName() or ''}) {_rect(g)}")
    sideways = [d.objectName() for d in docks if isinstance(d.widget(), QtWidgets.QScrollArea)
                and d.widget().horizontalScrollBar().isVisible()]
    if sideways:  # a panel's content wider than its dock: the reader scrolls sideways to reach buttons
        problems.append(f"{step}: dock(s) {', '.join(sideways)} scroll sideways")
    if outside:
        problems.append(f"{step}: {len(outside)} visible widget(s) reach past the screen {_rect(full)}: "
                        + "; ".join(outside[:5]))
    views = [v for v in window.visible_views()]
    return {"step": step, "window": _rect(frame), "available": _rect(avail), "docks": {n: _rect(r) for n, r in rects.items()},
            "image_area": _rect(central), "view_sizes": [[v.width(), v.height()] for v in views],
            "device_pixel_ratio": screen.devicePixelRatio(), "em": window.fontMetrics().height()}


def _grab(view: Any) -> Any:
    """The view as drawn, in device pixels: (rows, cols, 3) uint8."""
    import numpy as np

    from viewer.qt.qt import QtGui

    img = view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, :img.width(), :3].copy()


def mark_sizes(app: Any) -> dict[str, Any]:
    """Measured in device pixels on the active view, each mark alone (a grab with it minus one without, looked at
    only around the mark: an AI run may still repaint the overlay): the crosshair's vertical line's thickness, a
    rectangle ROI's corner handle's size, and the annotation font's height."""
    import numpy as np

    from viewer.display.measure import MeasurementRecord
    from viewer.qt.qt import QPointF, QtGui
    from viewer.qt.wait import wait_until

    app.wait_idle(120)
    window = app.window
    view = window.active_view
    model = window.model
    dpr = view.devicePixelRatioF()
    settle = lambda: wait_until(lambda: False, 0.3)  # noqa: E731

    def device(scene: Any) -> tuple[int, int]:
        p = view.viewport().mapTo(view, view.mapFromScene(scene))
        return round(p.x() * dpr), round(p.y() * dpr)

    (x0, x1), (y0, y1) = view.vb.viewRange()
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 6, (y1 - y0) / 6
    view.set_crosshair_visible(False)
    settle()
    plain = _grab(view)
    view.set_crosshair_visible(True)
    settle()
    lx, _ = device(view._cross_v.mapToScene(QPointF(0, 0)))
    band = slice(max(0, lx - 12), lx + 13)  # columns around the vertical line
    cross = np.any(_grab(view)[:, band] != plain[:, band], axis=-1)
    view.set_crosshair_visible(False)
    rows = cross.sum(axis=1)
    counts = rows[(rows > 0) & (rows < 12)]  # (rows where the horizontal line crosses are wider)
    thickness = int(np.bincount(counts).argmax()) if counts.size else 0
    record = MeasurementRecord("rect", view.plane_name, view.slice_index, [], pos=(cx - w, cy - h), size=(w, h))
    model.add_measurement(record)
    settle()
    graphic = next(g for g in view.graphics if g.record is record)
    handle = graphic.roi.getHandles()[0]
    hx, hy = device(handle.mapToScene(QPointF(0, 0)))
    reach = int(6 * 5 * view.marks.unit * dpr) if hasattr(view, "marks") else int(30 * dpr)
    box = (slice(max(0, hy - reach), hy + reach), slice(max(0, hx - reach), hx + reach))
    with_roi = _grab(view)[box]
    for h_ in graphic.roi.getHandles():
        h_.hide()
    settle()
    ys, xs = np.nonzero(np.any(with_roi != _grab(view)[box], axis=-1))
    model.remove_measurement(record)
    settle()
    handle_px = int(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1) if xs.size else 0
    return {"dpr": dpr, "unit": getattr(getattr(view, "marks", None), "unit", 1.0), "crosshair_px": thickness,
            "handle_px": handle_px, "text_px": QtGui.QFontMetrics(view._font).height() * dpr}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--shots", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from viewer.qt.app import build_app
    from viewer.qt.panels import PANELS
    from viewer.qt.wait import wait_until

    app = build_app(use_cache=False)
    window = app.window
    window.show()
    if args.paths:
        window.open_paths(args.paths)
        wait_until(lambda: window.is_idle() and window.model is not None, args.timeout)
    problems: list[str] = []
    steps = []

    def settle_and_check(step: str) -> None:
        wait_until(lambda: False, 0.4)  # let layouts, dock resizes and the screen-keeping pass run
        steps.append(check(app, step, problems))
        if args.shots is not None:
            args.shots.mkdir(parents=True, exist_ok=True)
            shot = window.screen().grabWindow(0)
            shot.save(str(args.shots / f"{len(steps):02d}-{step.replace(' ', '_')}.png"), "PNG")

    settle_and_check("opened")
    marks = mark_sizes(app) if window.model is not None else {}
    for spec in PANELS:
        if spec.name in app.panels:
            app.open_panel(spec.name)
            settle_and_check(f"open {spec.name}")
    for spec in PANELS:
        if spec.name in app.panels:
            app.panels[spec.name].dock.hide()
            settle_and_check(f"close {spec.name}")
    # the geometry is remembered: a user-moved, user-sized window comes back where it was
    avail = window.available_geometry()
    window.setGeometry(avail.x() + 10, avail.y() + 20, avail.width() * 2 // 3, avail.height() * 2 // 3)
    wait_until(lambda: False, 0.3)
    before = _rect(window.geometry())
    app.shutdown()
    window.close()  # saves viewer-settings.json (RADSCOPE_HOME)
    from viewer.display.settings import load_settings

    again = build_app(settings=load_settings(), panels=["series"], use_cache=False)
    again.window.show()
    wait_until(lambda: False, 0.3)
    reopened = _rect(again.window.geometry())
    again.window.close()
    print(json.dumps({"problems": problems, "steps": steps, "unavailable": app.unavailable, "marks": marks,
                      "remembered": before, "reopened": reopened}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
