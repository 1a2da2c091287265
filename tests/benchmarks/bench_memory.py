"""Viewer memory: peak resident memory of the viewer (the real window, offscreen) on a 300 x 512 x 512
int16 synthetic chest CT (150 MB stored), beside the stored size, in one run.

Each case runs as a fresh subprocess with its own empty RADSCOPE_HOME (the results cache misses, so the
model really runs over every slice; the child says how many it inferred), then switches to the MPR
layout; its peak is the child's own VmHWM. Cases: the series only, then with the CT demo model's overlay.
The goal (issue 17): with one model's overlay, peak <= 2x the stored series + 400 MB. Slice-change speed
is ``bench_viewer``'s figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_SLICES, ROWS, COLS = 300, 512, 512
FOLDER = Path(tempfile.gettempdir()) / f"radscope-bench-memory-phantom{N_SLICES}"
MODEL = "chest-nodule-demo"
MAKE = f"""
from phantom import ChestParams, make_chest_ct
from viewer.dicom.synthetic import write_ct_series
ph = make_chest_ct(ChestParams(n_slices={N_SLICES}, matrix=({ROWS}, {COLS}), pixel_spacing=(0.7, 0.7), slice_spacing=1.0,
                               seed=7))
write_ct_series(ph, {str(FOLDER)!r}, patient={{"age": "060Y"}})
"""
CHILD = """
import json, sys
from viewer.qt.app import build_app

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

app = build_app(size=(1400, 900))
model = sys.argv[2] if len(sys.argv) > 2 else None
if model and not app.ai.use_model(model):
    sys.exit(f"cannot use {model}")
app.window.show()
app.window.open_paths([sys.argv[1]])
app.window.wait_idle(600)
done = None
if model:
    app.ai.wait_done(900)
    done = [int(app.ai.results.n_done), int(app.ai.results.shape[0])] if app.ai.results is not None else None
app.window.set_layout("1x3")
app.window.wait_idle(5)
print(json.dumps({"peak_mb": hwm(), "done": done}))
app.shutdown()
"""


def series() -> Path:
    """The synthetic chest CT (phantom: what the demo model takes as in scope and in distribution), written
    once by a child process (its 1.6 GB peak stays out of this process)."""
    if len(list(FOLDER.glob("*.dcm"))) == N_SLICES:
        return FOLDER
    subprocess.run([sys.executable, "-c", MAKE], check=True, timeout=1800)
    return FOLDER


def _peak(args: list[str]) -> tuple[float, float, list[int] | None]:
    """(peak RSS MB (the child's own VmHWM), wall s, [slices inferred, slices]) of the viewer on ARGS."""
    with tempfile.TemporaryDirectory(prefix="radscope-bench-mem-") as home:
        env = dict(os.environ, RADSCOPE_HOME=home, QT_QPA_PLATFORM="offscreen")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"viewer on {' '.join(args)} failed: {proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(doc["peak_mb"]), time.perf_counter() - t0, doc["done"]


def main() -> None:
    folder = series()
    stored = sum(p.stat().st_size for p in folder.glob("*.dcm")) / 2**20
    goal = 2 * stored + 400
    print(f"series: {folder} ({stored:.0f} MB stored); goal with one model's overlay: <= 2 x stored + 400 MB = "
          f"{goal:.0f} MB; load average {os.getloadavg()[0]:.2f}")
    for name, args in (("viewer, series only", [str(folder)]), (f"viewer + {MODEL} overlay", [str(folder), MODEL])):
        peak, wall, done = _peak(args)
        ran = f"; {done[0]}/{done[1]} slices inferred" if done else ""
        print(f"{name:34s} peak RSS {peak:6.0f} MB = {peak / stored:.2f}x stored, {peak / goal:.2f}x the goal "
              f"({wall:.0f} s{ran})")


if __name__ == "__main__":
    main()
