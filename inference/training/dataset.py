"""Training/evaluation sets: phantom images mapped to model input exactly as the inference engine does.

A `SliceSet` holds, per image, the model input (the card's window + resize through
`inference.preprocess.Preprocessor`, so train and inference match bit for bit), the image-level
label, a coarse per-cell target for the evidence map, and the native nodule mask (for the
pointing game on the native grid). Sets are cached as ``.npz`` (no pickles) under a cache folder,
keyed by a hash of everything that determines them.
"""

from __future__ import annotations

import hashlib
import json
import os
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from inference.preprocess import Preprocessor

CELL = 8
"""Stride of the architecture's evidence map (model-input pixels per cell)."""


@dataclass(frozen=True)
class Sample:
    """Native images of one phantom with their truth (slices of a CT, or one radiograph)."""

    images: np.ndarray
    """float32 (n, rows, cols) in modality units, as the DICOM engine would deliver them."""
    masks: np.ndarray
    """bool (n, rows, cols) nodule masks."""
    spacing_rc: tuple[float, float]
    """(row, col) pixel spacing in mm."""


@dataclass
class SliceSet:
    """Model-ready images with labels; all arrays share the first axis."""

    images: np.ndarray
    """float16 (n, H, W) model input (one channel)."""
    labels: np.ndarray
    """int8 (n,): 1 nodule, 0 no nodule, -1 ambiguous (a sliver of nodule; not scored)."""
    cell_targets: np.ndarray
    """uint8 (n, H/8, W/8): 1 where a cell of the evidence map overlaps a nodule."""
    masks: np.ndarray
    """bool (n, rows, cols) native nodule masks."""
    spacing_rc: np.ndarray
    """float32 (n, 2) native pixel spacing (mm)."""
    groups: np.ndarray
    """int32 (n,): the phantom seed each image came from."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def counts(self) -> dict[str, int]:
        return {"images": len(self), "positive": int((self.labels == 1).sum()),
                "negative": int((self.labels == 0).sum()), "ambiguous": int((self.labels == -1).sum()),
                "phantoms": int(len(np.unique(self.groups)))}

    def relabelled(self, min_area_mm2: float) -> SliceSet:
        """The same images labelled by ``min_area_mm2`` (see `label_images`), from the stored masks."""
        area = self.masks.reshape(len(self), -1).sum(axis=1) * self.spacing_rc.prod(axis=1).astype(np.float64)
        return SliceSet(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                           "labels": labels_from_area(area, min_area_mm2)})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **{f.name: getattr(self, f.name) for f in fields(self)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> SliceSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)})

    @classmethod
    def concat(cls, parts: Iterable[SliceSet]) -> SliceSet:
        parts = list(parts)
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def labels_from_area(area_mm2: np.ndarray, min_area_mm2: float) -> np.ndarray:
    """1 where the nodule's cross-section is at least ``min_area_mm2``, 0 where there is none, else -1."""
    return np.where(area_mm2 >= min_area_mm2, 1, np.where(area_mm2 == 0, 0, -1)).astype(np.int8)


def label_images(masks: np.ndarray, spacing_rc: tuple[float, float], min_area_mm2: float) -> np.ndarray:
    """`labels_from_area` of each image's nodule cross-section."""
    area = masks.reshape(len(masks), -1).sum(axis=1) * float(spacing_rc[0] * spacing_rc[1])
    return labels_from_area(area, min_area_mm2)


def to_slice_set(sample: Sample, group: int, pre: Preprocessor, min_area_mm2: float) -> SliceSet:
    """Map one sample's images to model input and derive labels and cell targets."""
    x = pre.to_model(sample.images)[:, 0]
    h, w = x.shape[-2:]
    if h % CELL or w % CELL:
        raise ValueError(f"model input {h}x{w} must be a multiple of {CELL}")
    m = torch.from_numpy(sample.masks.astype(np.float32))[:, None]
    m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    cells = F.max_pool2d(m, CELL)[:, 0] > 0.25
    n = len(sample.images)
    return SliceSet(
        images=x.numpy().astype(np.float16),
        labels=label_images(sample.masks, sample.spacing_rc, min_area_mm2),
        cell_targets=cells.numpy().astype(np.uint8),
        masks=sample.masks.astype(bool),
        spacing_rc=np.tile(np.asarray(sample.spacing_rc, np.float32), (n, 1)),
        groups=np.full(n, group, np.int32),
    )


def default_cache_dir() -> Path:
    """``$RADSCOPE_HOME/cache/demo-training`` when set, else a folder in the system temp dir."""
    home = os.environ.get("RADSCOPE_HOME")
    root = Path(home) / "cache" if home else Path(tempfile.gettempdir()) / "radscope-cache"
    return root / "demo-training"


def build_set(name: str, key: dict, seeds: Iterable[int], make: Callable[[int], Sample], pre: Preprocessor,
              min_area_mm2: float, cache_dir: Path | None, log: Callable[[str], None] = print,
              workers: int = 1) -> SliceSet:
    """The set for ``seeds`` (one phantom each), read from the cache when ``key`` matches.

    The cache does not depend on ``min_area_mm2``: labels are derived from the stored masks.

    ``workers`` > 1 generates phantoms in that many spawned processes (``make`` must be a
    module-level function); results are taken in seed order, so the set does not depend on it.
    """
    seeds = list(seeds)
    digest = hashlib.sha256(json.dumps({"key": key, "seeds": seeds, "input": repr(pre.spec)}, sort_keys=True,
                                       default=str).encode())
    path = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"{name}-{digest.hexdigest()[:16]}.npz"
        if path.exists():
            try:
                data = SliceSet.load(path).relabelled(min_area_mm2)
                log(f"  {name}: {data.counts} (cached {path})")
                return data
            except (OSError, ValueError, KeyError) as exc:  # a torn or stale file: rebuild it
                log(f"  {name}: ignoring unreadable cache {path}: {exc}")
    with _samples(make, seeds, workers) as samples:
        data = SliceSet.concat(to_slice_set(sample, s, pre, min_area_mm2)
                               for s, sample in zip(_progress(seeds, name, log), samples))
    if path is not None:
        data.save(path)
    log(f"  {name}: {data.counts}")
    return data


@contextmanager
def _samples(make: Callable[[int], Sample], seeds: list[int], workers: int) -> Iterator[Iterator[Sample]]:
    """``make(seed)`` for every seed, in order, optionally in worker processes (numpy only there)."""
    if workers <= 1 or len(seeds) < 2:
        yield (make(s) for s in seeds)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield pool.map(make, seeds)


def _progress(seeds: list[int], name: str, log: Callable[[str], None]) -> Iterator[int]:
    step = max(1, len(seeds) // 5)
    for n, s in enumerate(seeds):
        if n and n % step == 0:
            log(f"  {name}: {n}/{len(seeds)} phantoms")
        yield s
