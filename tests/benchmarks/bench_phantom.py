"""Synthetic study generator speed: CT phantoms, a radiograph and the demo study.

``python -m tests.benchmarks phantom``. Goals (issue 2 brief): a 256x256x64 phantom < 2 s, a
512x512x100 phantom a few seconds, the demo study (512x512x120 CT + radiograph, written as DICOM)
< 10 s. Each figure is printed beside a reference measured in the same run: drawing the same
volume of float32 Gaussian noise with numpy (what a phantom costs in "noise volumes"), and for the
demo study, writing the same slices with a bare pydicom loop.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _noise_reference(shape: tuple[int, int, int]) -> float:
    rng = np.random.default_rng(0)
    return _best(lambda: rng.standard_normal(shape, dtype=np.float32))


def main() -> None:
    from phantom import ChestParams, make_chest_ct
    from phantom.radiograph import make_chest_radiograph
    from viewer.dicom import synthetic

    print(f"(machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times include waiting; "
          f"CPU is this process's own time)")
    for label, params, goal in (
        ("CT 256x256x64", ChestParams(n_slices=64, matrix=(256, 256), slice_spacing=5.0, n_nodules=3, seed=1), 2.0),
        ("CT 512x512x100", ChestParams(n_slices=100, matrix=(512, 512), pixel_spacing=(0.7, 0.7), slice_spacing=2.5,
                                       n_nodules=3, seed=1), 5.0),
    ):
        make_chest_ct(params)  # warm
        c0 = time.process_time()
        t = _best(lambda: make_chest_ct(params))
        cpu = (time.process_time() - c0) / 2
        ref = _noise_reference((params.n_slices, *params.matrix))
        print(f"{label}: wall {t:.2f} s, CPU {cpu:.2f} s (goal < {goal:.0f} s); numpy Gaussian noise of that size "
              f"{ref:.3f} s; ratio {t / ref:.1f}x")
    params = synthetic.demo_params()
    c0 = time.process_time()
    t_rg = _best(lambda: make_chest_radiograph(params), repeat=1)
    print(f"radiograph from params (256x256x200 projection phantom + DRR, as for training): wall {t_rg:.2f} s, "
          f"CPU {time.process_time() - c0:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        truth = synthetic.generate_demo_study(Path(tmp) / "demo")
        t_demo, c_demo = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        ph = make_chest_ct(params)
        t_ct = time.perf_counter() - t0
        t_drr = _best(lambda: make_chest_radiograph(ph), repeat=1)
        import pydicom

        ds = pydicom.dcmread(next((Path(tmp) / "demo" / "ct").iterdir()))
        t0 = time.perf_counter()
        for k in range(truth["ct"]["n_slices"]):
            ds.InstanceNumber = k + 1
            ds.save_as(Path(tmp) / f"ref{k}.dcm")
        t_ref = time.perf_counter() - t0
    print(f"demo study (CT {truth['ct']['n_slices']} slices 512x512 + its DRR, DICOM + truth): wall {t_demo:.2f} s, "
          f"CPU {c_demo:.2f} s (goal < 10 s); separately: CT phantom {t_ct:.2f} s, DRR of it {t_drr:.2f} s; "
          f"bare pydicom write of the same slices {t_ref:.2f} s; ratio {t_demo / t_ref:.1f}x")


if __name__ == "__main__":
    main()
