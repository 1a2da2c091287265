"""AI in the viewer: GUI-thread stalls during a whole-series CPU run, and time to the first heatmap.

``python -m tests.benchmarks ai``. Opens the demo CT in the real main window (offscreen) with the
bundled ``chest-nodule-demo`` model on the CPU and measures, in one run:

* the longest gap between ticks of a 5 ms QTimer in the GUI event loop while the whole series runs
  (goal <= 50 ms), beside the same figure with the AI idle (the event loop's own jitter);
* the time from ``open_paths`` to the first heatmap on screen (goal <= 1 s, model already loaded:
  it loads when the model is picked), beside the viewer's first slice on screen and the worker's
  time for that one slice.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

STALL_GOAL_MS = 50.0
FIRST_HEATMAP_GOAL_S = 1.0
TICK_MS = 5


def _home() -> None:
    if not os.environ.get("RADSCOPE_HOME"):  # keep the generated demo study out of the user's folder
        os.environ["RADSCOPE_HOME"] = str(Path(tempfile.gettempdir()) / "radscope-bench-home")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    _home()
    from viewer.commands.demo import DEMO_MODEL, _ct_paths
    from viewer.dicom.synthetic import demo_study_dir
    from viewer.qt.ai_integration import attach_ai
    from viewer.qt.main_window import ViewerWindow
    from viewer.qt.qt import QObject, QtCore, ensure_app

    class TickProbe(QObject):
        """Timestamps every tick of a fast timer on the GUI thread; gaps beyond the interval are stalls."""

        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[float] = []
            self.timer = QtCore.QTimer(self)
            self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
            self.timer.timeout.connect(self.tick)

        def tick(self) -> None:
            self.stamps.append(time.perf_counter())

        def start(self) -> None:
            self.stamps.clear()
            self.timer.start(TICK_MS)

        def stop(self) -> np.ndarray:
            self.timer.stop()
            return np.diff(np.asarray(self.stamps)) * 1000.0

    def pump(until, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
            if until():
                return True
        return False

    study = demo_study_dir()
    app = ensure_app()
    window = ViewerWindow()
    window.resize(1600, 1000)
    window.show()
    ai = attach_ai(window)
    loaded: list[float] = []
    t_pick = time.perf_counter()
    ai.worker.modelLoaded.connect(lambda info: loaded.append(info.seconds))  # noqa: E731 (timing only)
    if not ai.use_model(DEMO_MODEL) and (ai.model_entry is None or ai.model_entry.name != DEMO_MODEL):
        print(f"bench_ai: the bundled model {DEMO_MODEL} is not installed; nothing to measure")
        return
    if not pump(lambda: bool(loaded), 300):
        print("bench_ai: the model did not load")
        return
    print(f"model {DEMO_MODEL} loaded on the worker thread in {loaded[0]:.2f} s "
          f"({time.perf_counter() - t_pick:.2f} s after it was picked); device {ai.device_name}")

    probe = TickProbe()
    probe.start()
    pump(lambda: False, 1.0)
    idle = probe.stop()

    probe.start()
    t_open = time.perf_counter()
    window.open_paths(_ct_paths(study))
    first = pump(lambda: ai.first_heatmap_at is not None, 120)
    app.processEvents()  # the repaint that puts it on screen
    t_first = time.perf_counter() - t_open
    done = pump(lambda: ai.results is not None and ai.results.complete, 900)
    t_done = time.perf_counter() - t_open
    busy = probe.stop()
    if not (first and done):
        print("bench_ai: inference did not finish")
        return

    n = ai.results.shape[0]
    first_batch = (ai.first_heatmap_at or 0) - (ai.run_started_at or 0)
    worst, idle_worst = float(busy.max()) - TICK_MS, float(idle.max()) - TICK_MS
    p99 = float(np.percentile(busy, 99)) - TICK_MS
    print(f"series: {n} slices of {ai.results.shape[1]}x{ai.results.shape[2]}, whole run {t_done:.1f} s "
          f"({t_done / n * 1000:.0f} ms/slice incl. loading)")
    print(f"longest GUI-thread stall during the run: {worst:.1f} ms (goal <= {STALL_GOAL_MS:.0f} ms: "
          f"{worst / STALL_GOAL_MS:.2f}x the goal); p99 {p99:.1f} ms; "
          f"reference, AI idle: {idle_worst:.1f} ms (ratio {worst / max(idle_worst, 0.1):.1f}x)")
    shown = window.first_slice_s if window.first_slice_s is not None else float("nan")
    print(f"first heatmap visible {t_first:.3f} s after opening the series (goal <= {FIRST_HEATMAP_GOAL_S:.1f} s: "
          f"{t_first / FIRST_HEATMAP_GOAL_S:.2f}x the goal); reference in this run: first slice on screen "
          f"{shown:.3f} s, run start to first batch {first_batch:.3f} s")
    ai.shutdown()
    window.close()
