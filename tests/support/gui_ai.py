"""Shared pieces of the AI GUI tests: stand-in models (sessions) whose output is known, a model card stub,
a volume with one nodule, a receiver for worker signals."""

from __future__ import annotations

import threading
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from viewer.qt.ai_worker import BatchOutput, BatchResult, ModelRef
from viewer.qt.qt import QObject

LABELS = ("nodule", "mass")


def blob_maps(n: int, rows: int, cols: int, centre: tuple[float, float], sigma: float = 3.0) -> np.ndarray:
    jj, ii = np.mgrid[0:rows, 0:cols]
    blob = np.exp(-((jj - centre[0]) ** 2 + (ii - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    return np.repeat(blob[None], n, axis=0)


class FakeSession:
    """A model whose scores are ``profile[k]`` and whose heatmaps peak at ``centre`` on every slice.

    ``gate`` (optional) must be set before each batch runs: lets a test hold the worker mid-run.
    """

    device = "cpu"
    methods = ("gradcam", "gradcam++")

    def __init__(self, profile: np.ndarray, centre: tuple[float, float], batch: int = 4,
                 gate: threading.Semaphore | None = None) -> None:
        self.profile, self.centre, self.batch, self.gate = profile, centre, batch, gate
        self.thread = threading.current_thread()
        self.calls: list[tuple[int, ...]] = []

    def run(self, volume: np.ndarray, indices: Sequence[int], method: str, cancel: threading.Event,
            notify: Callable[[str], None]) -> Iterable[BatchOutput]:
        rows, cols = volume.shape[1:3]
        for start in range(0, len(indices), self.batch):
            if self.gate is not None:
                self.gate.acquire(timeout=10)
            if cancel.is_set():
                return
            idx = tuple(indices[start:start + self.batch])
            self.calls.append(idx)
            scores = np.stack([self.profile[list(idx)], 1 - self.profile[list(idx)]], axis=1).astype(np.float32)
            maps = blob_maps(len(idx), rows, cols, self.centre)
            yield BatchOutput(idx, scores, {"nodule": maps, "mass": maps * 0.5})


class Receiver(QObject):
    """Lives on the GUI thread; its bound methods are the slots (never closures)."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[BatchResult] = []
        self.threads: set[str] = set()
        self.errors: list[str] = []

    def on_batch(self, result: BatchResult) -> None:
        self.threads.add(threading.current_thread().name)
        self.results.append(result)

    def on_failed(self, key: object, message: str) -> None:
        self.errors.append(message)


def make_ref(name: str = "fake", sha: str = "a" * 64) -> ModelRef:
    return ModelRef(path=Path("/nonexistent") / name, name=name, sha256=sha, labels=LABELS)


class CardStub:
    """Just the ModelCard fields the panel shows."""

    name, version, labels = "chest-nodule-demo", "1.0.0", ("nodule",)
    description = "Demo trained on synthetic phantoms, not for clinical use."
    intended_use = "Teaching: shows how an AI overlay behaves."
    training_data = "phantom seeds 0-199, 4000 slices"
    metrics = {"auroc": 0.9312, "pointing_game": 0.88}
    thresholds = {"nodule": 0.42}
    authors, license = ("RadScope",), "MIT"

    class input:  # noqa: N801
        modalities = ("CT",)

    class weights:  # noqa: N801
        sha256 = "c" * 64


class ImageBlobSession:
    """A "model" that really reads the pixels it is given: its heatmap is the blurred mask of bright
    (> 200 HU) voxels, normalised per slice, and its score grows with the bright area. Any flip or
    transpose between the volume and the overlay would move the overlay off the nodule."""

    device = "cpu"
    methods = ("gradcam",)

    def __init__(self, ref: ModelRef, gate: threading.Semaphore | None = None) -> None:
        self.gate = gate

    def run(self, volume: np.ndarray, indices: Sequence[int], method: str, cancel: threading.Event,
            notify: Callable[[str], None]) -> Iterable[BatchOutput]:
        from scipy.ndimage import gaussian_filter

        for k in indices:
            if self.gate is not None:
                self.gate.acquire(timeout=10)
            if cancel.is_set():
                return
            bright = (volume[k] > 200).astype(np.float32)
            heat = gaussian_filter(bright, 1.5)
            heat = heat / heat.max() if heat.max() > 0 else heat
            score = np.float32(1 - np.exp(-bright.sum() / 10))
            yield BatchOutput((k,), np.array([[score]], np.float32), {"nodule": heat[None]})


def nodule_volume(centre_ijk: tuple[int, int, int], shape: tuple[int, int, int] = (24, 40, 56), radius_mm: float = 3.0):
    """A flipped, anisotropic volume (i -> -x, k -> -z) with one bright sphere at ``centre_ijk``."""
    from viewer.dicom.volume import SeriesInfo, Volume

    spacing = np.array([0.8, 0.6, 2.0])  # x (column), y (row), z (slice) mm
    kk, jj, ii = np.indices(shape)
    ci, cj, ck = centre_ijk
    d2 = ((ii - ci) * spacing[0]) ** 2 + ((jj - cj) * spacing[1]) ** 2 + ((kk - ck) * spacing[2]) ** 2
    arr = np.where(d2 <= radius_mm**2, 400.0, -800.0).astype(np.float32)
    direction = np.array([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])  # columns: i, j, k axes in LPS
    info = SeriesInfo(series_uid=f"1.2.3.{ci}", stack_id=f"1.2.3.{ci}", modality="CT")
    return Volume(arr, origin=np.array([20.0, -30.0, 100.0]), spacing=spacing, direction=direction,
                  sop_instance_uids=[f"1.2.3.{ci}.{k}" for k in range(shape[0])], info=info)
