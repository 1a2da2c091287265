"""AI in the viewer: GUI-thread stalls during a whole-series CPU run, and time to the first heatmap.

``python -m tests.benchmarks ai``. Opens the demo CT in the real main window (offscreen) with the
bundled ``chest-nodule-demo`` model on the CPU and measures, in one run:

* the longest gap between ticks of a 5 ms QTimer in the GUI event loop while the whole series runs
  (goal <= 50 ms), over 3 runs (``RADSCOPE_BENCH_AI_RUNS``), each in a fresh window with an empty results
  cache, beside the same figure for the viewer alone and the idle event loop;
* the time from ``open_paths`` to the first heatmap on screen (goal <= 1 s, model already loaded:
  it loads when the model is picked), beside the viewer's first slice on screen and the worker's
  time for that one slice.
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

STALL_GOAL_MS = 50.0
FIRST_HEATMAP_GOAL_S = 1.0
TICK_MS = 5
RUNS = int(os.environ.get("RADSCOPE_BENCH_AI_RUNS", "3"))


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

    gc_pauses: list[float] = []  # CPU ms of each collection while a run is measured
    gc_started: dict[int, float] = {}
    measuring = [False]  # set while a TickProbe runs (GC callbacks come from any thread)

    def on_gc(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if phase == "start":
            gc_started[threading.get_ident()] = time.thread_time()
        elif (t0 := gc_started.pop(threading.get_ident(), None)) is not None and measuring[0]:
            gc_pauses.append((time.thread_time() - t0) * 1000.0)

    gc.callbacks.append(on_gc)

    class TickProbe(QObject):
        """Timestamps every tick of a fast timer on the GUI thread; gaps beyond the interval are stalls."""

        def __init__(self) -> None:
            super().__init__()
            self.stamps: list[float] = []
            self.cpu: list[float] = []  # GUI-thread CPU time at each tick (what a stall costs on an idle machine)
            self.timer = QtCore.QTimer(self)
            self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
            self.timer.timeout.connect(self.tick)

        def tick(self) -> None:
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.thread_time())

        def start(self) -> None:
            self.stamps.clear()
            self.cpu.clear()
            self.timer.start(TICK_MS)
            measuring[0] = True

        def stop(self) -> np.ndarray:
            self.timer.stop()
            measuring[0] = False
            return np.diff(np.asarray(self.stamps)) * 1000.0

    def pump(until, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
        """Run the event loop as app.exec() would (blocking, GIL released, while waiting for events) until
        ``until()``: a loop of bare processEvents() calls would spin on the GUI thread and starve the workers
        of the GIL (a 14x slower inference thread was measured that way). A 50 ms timer bounds each wait."""
        deadline = time.monotonic() + timeout_s
        wake = QtCore.QTimer()
        wake.start(50)
        try:
            while time.monotonic() < deadline:
                app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
                if until():
                    return True
            return False
        finally:
            wake.stop()

    study = demo_study_dir()
    app = ensure_app()

    def new_window():  # type: ignore[no-untyped-def]
        window = ViewerWindow()
        window.resize(1600, 1000)
        window.show()
        return window

    # reference: the viewer alone (no AI attached) opening the same series: its own load and paint stalls
    window = new_window()
    probe = TickProbe()
    probe.start()
    pump(lambda: False, 1.0)
    idle = probe.stop()
    probe.start()
    window.open_paths(_ct_paths(study))
    window.wait_idle(300)
    pump(lambda: False, 1.0)
    viewer_only = probe.stop()
    window.close()

    class Loaded(QObject):
        """Bound-method receiver on the GUI thread (never a closure on a worker signal)."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.errors: list[str] = []

        def on_loaded(self, info) -> None:  # type: ignore[no-untyped-def]
            self.seconds.append(info.seconds)

        def on_failed(self, key, message: str) -> None:  # type: ignore[no-untyped-def]
            self.errors.append(message)

    def ai_run(run: int) -> dict[str, float] | None:
        """One whole-series run in a fresh window, with a fresh RADSCOPE_HOME (no cached results)."""
        os.environ["RADSCOPE_HOME"] = tempfile.mkdtemp(prefix=f"radscope-bench-ai-{run}-")
        window = new_window()
        ai = attach_ai(window)
        loaded = Loaded()
        ai.worker.modelLoaded.connect(loaded.on_loaded)
        ai.worker.failed.connect(loaded.on_failed)
        t_pick = time.perf_counter()
        try:
            if not ai.use_model(DEMO_MODEL):
                print(f"bench_ai: the bundled model {DEMO_MODEL} is not installed; nothing to measure")
                return None
            if not pump(lambda: bool(loaded.seconds or loaded.errors), 600) or not loaded.seconds:
                print(f"bench_ai: the model did not load {loaded.errors}")
                return None
            if run == 0:
                print(f"model {DEMO_MODEL} loaded (with warm-up) on the worker thread in {loaded.seconds[-1]:.2f} s "
                      f"({time.perf_counter() - t_pick:.2f} s after it was picked); device {ai.device_name}")
            pump(lambda: False, 0.3)  # let the panel settle
            probe.start()
            t_open, cpu_open = time.perf_counter(), time.process_time()
            window.open_paths(_ct_paths(study))
            first = pump(lambda: ai.first_heatmap_at is not None, 120)
            app.processEvents()  # the repaint that puts it on screen
            t_first = time.perf_counter() - t_open
            cpu_first = time.process_time() - cpu_open  # every thread of this process
            pump(lambda: window.is_idle(), 300)
            t_loaded = time.perf_counter()
            done = pump(lambda: ai.results is not None and ai.results.complete, 1800)
            t_done = time.perf_counter() - t_open
            stamps = np.asarray(probe.stamps)
            cpu_gaps = np.diff(np.asarray(probe.cpu)) * 1000.0
            busy = probe.stop()
            if not (first and done):
                print("bench_ai: inference did not finish")
                return None
            after_load = np.diff(stamps[stamps >= t_loaded]) * 1000.0
            worst_at = int(np.argmax(busy))
            return {
                "slices": float(ai.results.shape[0]), "rows": float(ai.results.shape[1]),
                "cols": float(ai.results.shape[2]), "done_s": t_done,
                "worst": float(busy.max()) - TICK_MS,
                "worst_after": (float(after_load.max()) - TICK_MS) if after_load.size else float("nan"),
                "p99": float(np.percentile(busy, 99)) - TICK_MS,
                "cpu_in_worst": float(cpu_gaps[worst_at]), "cpu_max": float(cpu_gaps.max()),
                "first_s": t_first, "cpu_first": cpu_first,
                "first_batch": (ai.first_heatmap_at or 0) - (ai.run_started_at or 0),
                "first_slice": (window.load_started_at + window.first_slice_s - t_open  # from opening, scan included
                                if window.first_slice_s is not None else float("nan")),
            }
        finally:
            ai.shutdown()
            window.close()

    try:
        runs = [r for r in (ai_run(i) for i in range(RUNS)) if r is not None]
    finally:
        gc.callbacks.remove(on_gc)
    if not runs:
        return

    def med(name: str) -> float:
        return float(np.median([r[name] for r in runs]))

    def worst_of(name: str) -> float:
        return float(np.max([r[name] for r in runs]))

    r0 = runs[0]
    n = int(r0["slices"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    stalls = ", ".join(f"{r['worst']:.1f}" for r in runs)
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} (other work on the machine inflates every figure)")
    print(f"series: {n} slices of {int(r0['rows'])}x{int(r0['cols'])}; {len(runs)} runs, each opening the series in a "
          f"fresh window: loading + whole-series inference median {med('done_s'):.1f} s "
          f"({med('done_s') / n * 1000:.0f} ms/slice)")
    print(f"longest GUI-thread stall during a run: median of {len(runs)} runs {med('worst'):.1f} ms, worst "
          f"{worst_of('worst'):.1f} ms (goal <= {STALL_GOAL_MS:.0f} ms: {worst_of('worst') / STALL_GOAL_MS:.2f}x the goal; "
          f"per run {stalls}); once loading had finished: worst {worst_of('worst_after'):.1f} ms; p99 {med('p99'):.1f} ms")
    print(f"  GUI-thread CPU inside the longest gap (median) {med('cpu_in_worst'):.1f} ms; the most CPU any gap took "
          f"{worst_of('cpu_max'):.1f} ms (wall time beyond that is waiting for a core or the GIL)")
    ref_viewer = float(viewer_only.max()) - TICK_MS
    print(f"  reference in this run: the viewer alone opening the same series {ref_viewer:.1f} ms "
          f"(AI run median / viewer alone = {med('worst') / max(ref_viewer, 0.1):.2f}x); idle event loop "
          f"{float(idle.max()) - TICK_MS:.1f} ms")
    print(f"  garbage collections while the runs were measured: {len(gc_pauses)}, the longest "
          f"{max(gc_pauses, default=0.0):.1f} ms of CPU (a collection holds the GIL; see viewer/gc_policy.py)")
    print(f"first heatmap visible after opening the series: median {med('first_s'):.3f} s, worst {worst_of('first_s'):.3f} s "
          f"(goal <= {FIRST_HEATMAP_GOAL_S:.1f} s: {worst_of('first_s') / FIRST_HEATMAP_GOAL_S:.2f}x the goal)")
    print(f"  reference in this run: first slice on screen {med('first_slice'):.3f} s after opening; "
          f"run start to first heatmap {med('first_batch'):.3f} s")
    print(f"  CPU this process spent from opening to the first heatmap: {med('cpu_first'):.2f} s over all its threads "
          f"(so about {med('cpu_first') / max(os.cpu_count() or 1, 1):.2f} s on {os.cpu_count()} otherwise idle cores)")

