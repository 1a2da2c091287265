"""Loading a ``.pt2`` model: RadScope's graph reader (inference/pt2graph.py) against ``torch.export.load``, in one run.

Load: each case is a fresh process (torch imported first, as the viewer's inference thread does) that loads the
CT demo package with ``load_model`` (inspection, graph, BatchNorm folding, one check forward);
``torch.export.load`` is forced by making the reader decline (the fallback ``read_exported`` takes for programs
it does not build). Printed: load wall/CPU seconds, resident memory the load added, modules it imported (and
whether sympy came with them); cases alternate, three times each, best of each.
Speed: one process loads the package both ways and runs Grad-CAM over 32 phantom CT slices (512 x 512) with
each, interleaved, best CPU ms per slice of 8 runs (CPU time, not wall time: the machine is shared; at load
average 6 on 2 cores two runners of the *same* model differed by up to 20 % this way, separate processes by 40 %).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "resources" / "models" / "chest-nodule-demo"
CHILD = """
import json, sys, time

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

from viewer.torch_import import import_torch
torch = import_torch()
import inference.loading as loading
from inference.pt2graph import UnsupportedProgram, load_program

def decline(data, where):
    raise UnsupportedProgram("benchmark: torch.export.load")

def load(how):
    loading.load_program = decline if how == "torch.export.load" else load_program
    return loading.load_model(sys.argv[1])

if sys.argv[2] != "speed":
    n_mod, r0, t0, c0 = len(sys.modules), rss(), time.perf_counter(), time.process_time()
    load(sys.argv[2])
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rss": rss() - r0,
                      "modules": len(sys.modules) - n_mod, "sympy": "sympy" in sys.modules}))
    sys.exit(0)
import numpy as np
from inference.runner import Runner
from phantom import ChestParams, make_chest_ct
vol = make_chest_ct(ChestParams(n_slices=32, matrix=(512, 512), seed=5)).hu.astype(np.float32)
runners = {how: Runner(load(how), device="cpu") for how in ("pt2graph", "torch.export.load")}
best = {how: float("inf") for how in runners}
for how, runner in runners.items():
    for _ in runner.run(vol[:4], method="gradcam"):
        pass
for _ in range(8):
    for how, runner in runners.items():
        c = time.process_time()
        for _ in runner.run(vol, method="gradcam"):
            pass
        best[how] = min(best[how], (time.process_time() - c) / len(vol) * 1000)
print(json.dumps(best))
"""
CASES = ("pt2graph", "torch.export.load")


def _case(name: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(PACKAGE), name], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CASES}
    for _ in range(3):
        for c in CASES:
            runs[c].append(_case(c))
    best = {c: {k: min(r[k] for r in runs[c]) for k in ("wall", "cpu", "rss", "modules")} for c in CASES}
    for c in CASES:
        b = best[c]
        print(f"{c:18s} load_model {b['wall']:.2f} s wall, {b['cpu']:.2f} s CPU, +{b['rss']:.0f} MB RSS, "
              f"+{b['modules']:.0f} modules (sympy imported: {any(r['sympy'] for r in runs[c])})")
    ours, ref = best["pt2graph"], best["torch.export.load"]
    print(f"pt2graph / torch.export.load: load CPU x{ours['cpu'] / ref['cpu']:.2f}, added RSS "
          f"{ours['rss'] - ref['rss']:+.0f} MB")
    speed = _case("speed")
    print(f"Grad-CAM, 512 px slices, best CPU ms/slice of 8 interleaved runs in one process: pt2graph "
          f"{speed['pt2graph']:.2f}, torch.export.load {speed['torch.export.load']:.2f} "
          f"(x{speed['pt2graph'] / speed['torch.export.load']:.2f})")


if __name__ == "__main__":
    main()
