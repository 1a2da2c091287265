"""`radscope convert` of a 300 x 512 x 512 int16 CT series against SimpleITK, whole process, in one run.

Both run as fresh subprocesses (interpreter start, imports, header scan, decode, write all counted),
interleaved, on the series `bench_load` generates (page cache warm after a first pass):

* SimpleITK: ``ImageSeriesReader`` (GDCM file names) + ``WriteImage`` to ``.mha`` (uncompressed, its default);
* RadScope: ``python -m viewer.cli convert FOLDER OUT.mha`` (uncompressed by default);
* RadScope ``.nii.gz`` and ``.mha --compress`` once each, for the compressed formats.

Printed: median and best wall time of each, the ratio RadScope / SimpleITK, and each process's peak
resident memory (``ru_maxrss`` of that child alone, from ``os.wait4``) beside the stored series size.
Goals (issue 17): ratio <= 1, RadScope peak < 2x the stored series.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.bench_load import CACHE, generate

REPEATS = 5
SITK_SCRIPT = """
import sys, SimpleITK as sitk
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
sitk.WriteImage(reader.Execute(), sys.argv[2])
"""


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds (user + system, all threads)) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def main() -> None:
    folder = generate(CACHE)
    stored_mb = sum(p.stat().st_size for p in folder.glob("*.dcm")) / 2**20
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="radscope-bench-convert-") as tmp:
        out = Path(tmp)
        cmds = {
            "sitk .mha": [py, "-c", SITK_SCRIPT, str(folder), str(out / "sitk.mha")],
            "radscope .mha": [py, "-m", "viewer.cli", "convert", str(folder), str(out / "radscope.mha")],
        }
        for cmd in cmds.values():  # warm the page cache and the imports' .pyc files
            _run(cmd)
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cmds}
        for _ in range(REPEATS):
            for name, cmd in cmds.items():
                runs[name].append(_run(cmd))
        once = {
            "radscope .mha --compress": [py, "-m", "viewer.cli", "convert", str(folder), str(out / "c.mha"), "--compress"],
            "radscope .nii.gz": [py, "-m", "viewer.cli", "convert", str(folder), str(out / "r.nii.gz")],
            "sitk .nii.gz": [py, "-c", SITK_SCRIPT, str(folder), str(out / "s.nii.gz")],
        }
        for name, cmd in once.items():
            runs[name] = [_run(cmd)]
        sizes = {p.name: p.stat().st_size / 2**20 for p in out.iterdir()}
    print(f"series: {folder} ({stored_mb:.0f} MB stored); load average {os.getloadavg()[0]:.2f}; {REPEATS} interleaved runs")
    import resource

    # a child's ru_maxrss starts from this process's peak at exec (Linux folds the spawning mm into it):
    # figures below it would be this floor, not the child's
    print(f"(floor of the children's peaks: this process's own peak, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    print(f"{'method':28s} {'median s':>9s} {'best s':>8s} {'CPU s':>7s} {'peak RSS MB':>12s} {'x stored':>9s}")
    for name, values in runs.items():
        walls = [w for w, _, _ in values]
        peak = max(r for _, r, _ in values)
        cpu = statistics.median(c for _, _, c in values)
        print(f"{name:28s} {statistics.median(walls):9.2f} {min(walls):8.2f} {cpu:7.2f} {peak:12.0f} "
              f"{peak / stored_mb:9.2f}")
    ours, ref = runs["radscope .mha"], runs["sitk .mha"]
    ratio = statistics.median(w for w, _, _ in ours) / statistics.median(w for w, _, _ in ref)
    best = min(w for w, _, _ in ours) / min(w for w, _, _ in ref)
    cpu_ratio = statistics.median(c for _, _, c in ours) / statistics.median(c for _, _, c in ref)
    print(f"ratio radscope / SimpleITK (.mha, whole process): median {ratio:.2f}, best {best:.2f}, "
          f"CPU {cpu_ratio:.2f} (goal <= 1)")
    peak = max(r for _, r, _ in ours)
    print(f"radscope peak {peak:.0f} MB = {peak / stored_mb:.2f}x the stored series (goal < 2x)")
    print("output sizes MB: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
