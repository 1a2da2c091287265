"""Archive inference: `radscope infer` with the local engine against Ray with 1 and 2 workers (issue 16).

An archive of synthetic chest CT series (512 x 512) goes through the bundled CT model with its Grad-CAM
heatmaps, each engine as a whole `radscope infer` process (what a user runs: Python start-up, scan, model
load, Ray start-up, writing every file), into a fresh output folder with the results cache off. Printed:
series/s and slices/s per engine, the ratio to the local engine measured in the same run, and Ray's overhead
per series: archives of N and 2N one-slice series (run with --force: one slice is outside the demo model's
intended use), where the model's work is small; the marginal
seconds per series (slope between N and 2N) of Ray minus that of the local engine, and Ray's fixed cost per
run (start-up, actors, model load). Then a rerun over the finished folder (everything skipped).

Run: ``python -m tests.benchmarks ray`` (``RADSCOPE_BENCH_QUICK=1`` for a short smoke run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK = os.environ.get("RADSCOPE_BENCH_QUICK") == "1"
N_SERIES = 3 if QUICK else 8
N_SLICES = 8 if QUICK else 30
N_TINY = 4 if QUICK else 16


def _archive(root: Path, n_series: int, n_slices: int, matrix: int) -> int:
    from phantom import make_chest_ct
    from phantom.model import ChestParams
    from viewer.dicom.synthetic import write_ct_series

    for i in range(n_series):
        phantom = make_chest_ct(ChestParams(n_slices=n_slices, matrix=(matrix, matrix), slice_spacing=2.5), seed=i)
        write_ct_series(phantom, root / f"series{i:03d}", seed=i)
    return n_series * n_slices


def _infer(data: Path, out: Path, home: Path, *extra: str) -> float:
    env = dict(os.environ, RADSCOPE_HOME=str(home))
    cmd = [sys.executable, "-m", "viewer.cli", "infer", str(data), "--model", "chest-nodule-demo", "--device", "cpu",
           "--no-cache", "--out", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def _breakdown(out: Path, slices: int) -> None:
    """Where the local engine's time went per slice (scores.json timing_s summed over the series)."""
    import json

    totals: dict[str, float] = {}
    for path in out.glob("*/scores.json"):
        for key, value in json.loads(path.read_text())["timing_s"].items():
            totals[key] = totals.get(key, 0.0) + float(value)
    parts = ", ".join(f"{k} {totals.get(k, 0.0) / slices * 1000:.1f}" for k in ("load_volume", "inference", "write"))
    print(f"local engine, ms per slice: {parts} (model load {totals.get('load_model', 0.0):.1f} s once)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        home = root / "home"
        t0 = time.perf_counter()
        slices = _archive(root / "archive", N_SERIES, N_SLICES, 512)
        _archive(root / "tiny", N_TINY, 1, 512)
        _archive(root / "tiny2", 2 * N_TINY, 1, 512)
        print(f"archive: {N_SERIES} series x {N_SLICES} slices 512x512 ({slices} slices), "
              f"generated in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f}")
        runs = {"local": [], "ray, 1 worker": ["--engine", "ray", "--workers", "1"],
                "ray, 2 workers": ["--engine", "ray", "--workers", "2"]}
        times: dict[str, float] = {}
        for name, extra in runs.items():
            times[name] = _infer(root / "archive", root / f"out-{len(times)}", home, *extra)
            t = times[name]
            print(f"{name:<15} {t:6.1f} s  {N_SERIES / t:5.2f} series/s  {slices / t:6.1f} slices/s  "
                  f"x{times['local'] / t:.2f} vs local (same run)", flush=True)
        _breakdown(root / "out-0", slices)
        rerun = _infer(root / "archive", root / "out-2", home, "--engine", "ray", "--workers", "2")
        print(f"rerun over the finished folder (all {N_SERIES} skipped): {rerun:.1f} s")
        marginal: dict[str, float] = {}
        fixed: dict[str, float] = {}
        for name, extra in (("local", ["--force"]), ("ray", ["--force", "--engine", "ray", "--workers", "1"])):
            t1 = _infer(root / "tiny", root / f"tiny1-{name}", home, *extra)
            t2 = _infer(root / "tiny2", root / f"tiny2-{name}", home, *extra)
            marginal[name] = (t2 - t1) / N_TINY
            fixed[name] = t1 - marginal[name] * N_TINY
            print(f"one-slice series, {name}: {N_TINY} in {t1:.1f} s, {2 * N_TINY} in {t2:.1f} s: "
                  f"{marginal[name] * 1000:.0f} ms per series, {fixed[name]:.1f} s fixed per run", flush=True)
        print(f"Ray overhead: {(marginal['ray'] - marginal['local']) * 1000:+.0f} ms per series, "
              f"{fixed['ray'] - fixed['local']:+.1f} s per run (start-up, actor, model load in the actor)")


if __name__ == "__main__":
    main()
