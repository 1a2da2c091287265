"""The out-of-distribution check of the bundled models: calibration on real files, and its cost per slice.

(a) Calibration. In distribution: the held-out phantom pass rate the card records (test seeds, never used
    to fit or to set the threshold) and the demo study / demo radiograph. Out of distribution: real CT,
    MR, CR, NM and ultrasound files of other body parts from pydicom's test files and pydicom-data, each
    run through the model exactly as ``radscope infer --force`` would (header rules ignored), with the
    share of slices flagged and whether the series counts as mostly out of distribution. RG1_UNCR (a
    real PA chest radiograph) is the radiograph model's in-distribution-ish real case.
(b) Cost: ms per 512 x 512 slice of a Grad-CAM run with the OOD statistics against the same runner with
    them switched off (interleaved, best of several), plus a trunk-only OOD pass (``Runner.ood_distances``).

Run: ``python -m tests.benchmarks ood``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from inference.ood import series_verdict
from inference.runner import Runner
from viewer import paths

CT_MODEL, CXR_MODEL = "chest-nodule-demo", "cxr-nodule-demo"
REAL_FILES = [  # (source, name, what it is)
    ("data", "693_UNCR.dcm", "CT head (axial, no BodyPartExamined)"),
    ("test", "CT_small.dcm", "CT spine crop"),
    ("data", "eCT_Supplemental.dcm", "CT brain perfusion, enhanced, 2 frames"),
    ("test", "MR_small.dcm", "MR"),
    ("data", "MR2_UNCR.dcm", "MR shoulder"),
    ("data", "emri_small.dcm", "MR head, enhanced, 10 frames"),
    ("data", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR abdomen"),
    ("data", "RG1_UNCR.dcm", "CR chest PA (real)"),
    ("data", "RG3_UNCR.dcm", "CR tibia"),
    ("data", "JPEG2000_UNC.dcm", "NM whole-body bone scan"),
    ("data", "US1_UNCR.dcm", "US"),
]


def _path(source: str, name: str) -> Path:
    from tests.conftest import pydicom_data_file, pydicom_test_file

    return pydicom_test_file(name) if source == "test" else pydicom_data_file(name)


def _slices(path: Path, modalities: tuple[str, ...] = (), bits: int | None = None) -> list[np.ndarray] | None:
    """The model input of every grey stack in ``path`` (of ``modalities`` when given; None for colour), scaled
    onto a card's ``input.stored_bits`` = ``bits``."""
    from viewer.ai.model_input import model_input
    from viewer.dicom import load_volume, scan

    out: list[np.ndarray] = []
    for stack in scan([path]).stacks:
        if modalities and stack.info.modality not in modalities:
            continue
        vol = load_volume(stack)
        if vol.is_color:
            return None
        mi = model_input(vol, bits)
        out.extend(np.asarray(mi[k], dtype=np.float32) for k in range(vol.shape[0]))
    return out


def _flagged(runner: Runner, slices: list[np.ndarray]) -> np.ndarray:
    assert runner.ood is not None
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for s in slices:
        by_shape.setdefault(s.shape, []).append(s)
    d = np.concatenate([runner.ood_distances(np.stack(group)) for group in by_shape.values()])  # type: ignore[arg-type]
    return d > runner.ood.threshold


def calibration() -> None:
    from viewer.dicom.synthetic import demo_study_dir

    runners = {name: Runner(paths.resources_dir() / "models" / name, device="cpu") for name in (CT_MODEL, CXR_MODEL)}
    for name, runner in runners.items():
        if runner.ood is None:
            print(f"{name}: no OOD statistics in the package")
            continue
        held = runner.card.raw["ood"].get("held_out_pass_rate")
        print(f"\n{name}: layer {runner.ood.layer}, pooling {runner.ood.pooling}, threshold {runner.ood.threshold:.3f}; "
              f"held-out phantom slices passing: {held:.1%} (card)")
        demo = _slices(demo_study_dir(), runner.card.input.modalities, runner.card.input.stored_bits)
        if demo:
            shapes: dict[tuple[int, ...], list[np.ndarray]] = {}
            for s in demo:
                shapes.setdefault(s.shape, []).append(s)
            for shape, group in shapes.items():
                f = _flagged(runner, group)
                print(f"  demo study {shape[0]}x{shape[1]} ({len(group)} slices): {len(group) - int(f.sum())} of "
                      f"{len(group)} pass ({1 - f.mean():.1%})")
        caught_series = caught_slices = n_series = n_slices = 0
        for source, file, what in REAL_FILES:
            try:
                slices = _slices(_path(source, file), bits=runner.card.input.stored_bits)
            except Exception as exc:  # a file the engine cannot decode here is reported, not fatal
                print(f"  {file:38s} {what:40s} unreadable: {exc}")
                continue
            if not slices:
                print(f"  {file:38s} {what:40s} colour: never offered to the model")
                continue
            f = _flagged(runner, slices)
            verdict = series_verdict(f)
            in_dist = (name == CXR_MODEL and file == "RG1_UNCR.dcm")
            tag = "in-distribution-ish" if in_dist else ("caught" if verdict else "MISSED")
            print(f"  {file:38s} {what:40s} {int(f.sum())}/{f.size} slices flagged: {tag}")
            if not in_dist:
                n_series += 1
                n_slices += f.size
                caught_series += verdict is not None
                caught_slices += int(f.sum())
        if n_series:
            print(f"  catch rate on other body parts / modalities: {caught_series}/{n_series} series "
                  f"({caught_series / n_series:.0%}), {caught_slices}/{n_slices} slices ({caught_slices / n_slices:.0%})")


def cost() -> None:
    runner = Runner(paths.resources_dir() / "models" / CT_MODEL, device="cpu", batch_size=8)
    if runner.ood is None:
        print("no OOD statistics: nothing to time")
        return
    rng = np.random.default_rng(0)
    vol = rng.normal(-600, 300, (32, 512, 512)).astype(np.float32)
    stats = runner.ood

    def run(with_ood: bool) -> float:
        runner.ood = stats if with_ood else None
        t0 = time.perf_counter()
        for _ in runner.run(vol, method="gradcam"):
            pass
        return time.perf_counter() - t0

    run(True)
    run(False)
    best = {True: float("inf"), False: float("inf")}
    for _ in range(5):
        for flag in (False, True):
            best[flag] = min(best[flag], run(flag))
    runner.ood = stats
    t0 = time.perf_counter()
    runner.ood_distances(vol)
    trunk = time.perf_counter() - t0
    n = vol.shape[0]
    print(f"\nGrad-CAM run, ms per 512x512 slice (CPU, {n} slices, batch 8, best of 5, interleaved): without OOD "
          f"{1e3 * best[False] / n:.1f}, with OOD {1e3 * best[True] / n:.1f} "
          f"(x{best[True] / best[False]:.3f}, +{1e3 * (best[True] - best[False]) / n:.2f} ms); "
          f"trunk-only OOD pass {1e3 * trunk / n:.1f} ms per slice")
    print(f"load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    calibration()
    cost()


if __name__ == "__main__":
    main()
