"""Out-of-distribution check from the model's own features: Mahalanobis distance to the training images.

Per slice, the activation of one layer (the card's target layer, the last block before the head) is
pooled over space per channel (``mean``, or ``mean_std``: mean and standard deviation) into a feature
vector ``f``; its distance to the training images is ``sqrt((f - mu)^T P (f - mu))`` with ``mu`` the
mean and ``P`` the (shrunk) inverse covariance of the training slices' features. The threshold is the
distance that at least 95% of held-out in-distribution slices stay within; a slice beyond it is
flagged, and a series where most slices are flagged is outside the model's intended use.

Stored in the package beside the weights: ``ood.npz`` (``mean`` (C,), ``precision`` (C, C),
float64; read with ``allow_pickle=False``) and in the card::

    "ood": {"file": "ood.npz", "sha256": "<hex>", "layer": "features.block3", "pooling": "mean_std",
            "threshold": 9.71, "held_out_pass_rate": 0.95, ...}

Numpy only at import (the card reader uses `parse_ood`); `pool_features` takes a torch tensor.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

import numpy as np

from inference import jsonsafe
from inference.npysafe import npy_read, npy_shape

if TYPE_CHECKING:
    import torch

    from inference.package import ModelCard

POOLINGS = ("mean", "mean_std")
OOD_FILE = "ood.npz"
MAX_FEATURES = 8192
"""Largest feature vector (pooled channels) of stored statistics: a 512 MiB precision matrix."""
MAX_STATS_BYTES = 8 * MAX_FEATURES * (MAX_FEATURES + 1) + 2**16
"""Largest ``ood.npz`` read (checked before reading)."""
PASS_QUANTILE = 0.95
"""Share of held-out in-distribution slices the threshold lets pass (at least)."""
MOSTLY = 0.5
"""A series whose share of flagged slices exceeds this is outside intended use."""
SHRINKAGE = 0.05
"""Covariance shrinkage towards its mean variance (keeps the inverse stable for few slices)."""

Fail = Callable[[str, str], Exception]


@dataclass(frozen=True)
class OODSpec:
    """The card's ``ood`` object."""

    file: str
    sha256: str
    layer: str
    pooling: str
    threshold: float


def parse_ood(data: Any, fail: Fail, key: str = "ood") -> OODSpec | None:
    """The card's ``ood`` object as `OODSpec` (None when absent)."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise fail(key, "must be an object")
    for name in ("file", "sha256", "layer"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise fail(f"{key}.{name}", "must be a non-empty string")
    sha = data["sha256"].lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise fail(f"{key}.sha256", "must be 64 hex digits")
    pooling = data.get("pooling", "mean")
    if pooling not in POOLINGS:
        raise fail(f"{key}.pooling", f"must be one of {list(POOLINGS)}, got {pooling!r}")
    thr = data.get("threshold")
    if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not math.isfinite(thr) or thr <= 0:
        raise fail(f"{key}.threshold", "must be a positive number")
    return OODSpec(data["file"], sha, data["layer"], pooling, float(thr))


@dataclass(frozen=True)
class OODStats:
    """Feature statistics of the training images and the distance threshold."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    layer: str
    pooling: str
    sha256: str = ""

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(n,) Mahalanobis distances of (n, C) pooled features."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        q = ((d @ self.precision) * d).sum(axis=1)
        return np.sqrt(np.maximum(q, 0.0))


def pool_features(act: torch.Tensor, pooling: str) -> torch.Tensor:
    """(n, C, h, w) activation -> (n, F) float32 feature vectors."""
    a = act.detach().float()
    mean = a.mean(dim=(2, 3))  # reductions over the 4D tensor: no copy of a channels_last activation
    if pooling == "mean":
        return mean
    if pooling == "mean_std":
        import torch

        var = (a * a).mean(dim=(2, 3)) - mean * mean
        return torch.cat([mean, var.clamp_(min=0.0).sqrt_()], dim=1)
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


def fit(features: np.ndarray, shrinkage: float = SHRINKAGE) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision (inverse of the shrunk covariance) of (n, F) training features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (n >= 2, F) features, got shape {f.shape}")
    mean = f.mean(0)
    cov = np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])
    scale = float(np.trace(cov)) / f.shape[1] or 1.0
    cov = (1.0 - shrinkage) * cov + shrinkage * scale * np.eye(f.shape[1])
    return mean, np.linalg.inv(cov)


def threshold_for(held_out_distances: np.ndarray, quantile: float = PASS_QUANTILE) -> float:
    """The smallest listed distance that at least ``quantile`` of the held-out slices stay within."""
    d = np.sort(np.asarray(held_out_distances, dtype=np.float64))
    if d.size == 0:
        raise ValueError("no held-out distances")
    return float(d[min(d.size - 1, math.ceil(quantile * d.size) - 1)])


def write_stats(out_dir: str | Path, mean: np.ndarray, precision: np.ndarray) -> tuple[str, str]:
    """Write ``ood.npz`` into ``out_dir``; returns (file name, sha256)."""
    buf = io.BytesIO()
    np.savez(buf, mean=np.asarray(mean, np.float64), precision=np.asarray(precision, np.float64))
    data = buf.getvalue()
    (Path(out_dir) / OOD_FILE).write_bytes(data)
    return OOD_FILE, hashlib.sha256(data).hexdigest()


def add_to_card(package_dir: str | Path, fields: Mapping[str, Any]) -> None:
    """Set the card's ``ood`` object (the weights and their sha256 are untouched); the card is read with the
    card reader's bounds (size before reading, depth, NaN: :mod:`inference.jsonsafe`)."""
    from inference.package import MAX_CARD_BYTES, ModelPackageError

    path = Path(package_dir) / "radscope-model.json"
    try:
        card = jsonsafe.read_file(path, MAX_CARD_BYTES, str(path))
    except jsonsafe.JsonLimitError as exc:
        raise ModelPackageError(str(exc)) from None
    if not isinstance(card, dict):
        raise ModelPackageError(f"{path}: not a JSON object")
    card["ood"] = dict(fields)
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def read_stats(card: ModelCard) -> OODStats | None:
    """The package's statistics after checking their sha256 (None when the card declares none)."""
    from inference.package import read_member

    spec = card.ood
    if spec is None:
        return None
    data = read_member(card, spec.file, MAX_STATS_BYTES)  # size checked before reading
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise card.error(f"ood.sha256 does not match {spec.file} (card {spec.sha256[:12]}..., file {digest[:12]}...)")
    f64 = np.dtype(np.float64)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            # headers checked before anything is allocated (inference.npysafe, as the results cache does)
            (n,), shape = npy_shape(zf, "mean", f64, 1), npy_shape(zf, "precision", f64, 2)
            if n > MAX_FEATURES or shape != (n, n):
                raise ValueError(f"mean ({n},) and precision {shape} must be (F,) and (F, F), F at most {MAX_FEATURES}")
            mean, precision = npy_read(zf, "mean"), npy_read(zf, "precision")
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise card.error(f"ood.file {spec.file} is not a statistics .npz with mean and precision ({exc})") from exc
    if not np.isfinite(mean).all() or not np.isfinite(precision).all():
        raise card.error(f"ood.file {spec.file}: mean and precision must be finite (NaN or infinity found)")
    return OODStats(mean, precision, spec.threshold, spec.layer, spec.pooling, spec.sha256)


def series_verdict(flags: np.ndarray) -> str | None:
    """The scope reason when most slices are out of distribution, else None."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), int(flags.size)
    if n and k / n > MOSTLY:
        return f"images unlike the training data: {k} of {n} slices"
    return None
