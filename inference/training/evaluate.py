"""The card's metrics, measured on the package as shipped: the engine loads it and explains it.

Scores come from `inference.loading.LoadedModel` (the BatchNorm-folded exported graph) and heatmaps
from `inference.explain.explain_batch` (Grad-CAM at the card's target layer), mapped back to each
image's native grid by `Preprocessor.to_native`, exactly as the viewer shows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from inference.explain.methods import explain_batch
from inference.loading import LoadedModel
from inference.preprocess import Preprocessor
from inference.training.dataset import SliceSet
from inference.training.metrics import auroc, pointing_hit

BATCH = 64


def _inputs(data: SliceSet, idx: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(data.images[idx].astype(np.float32))[:, None]


def predict(model: LoadedModel, data: SliceSet) -> np.ndarray:
    """Probabilities (n,) of the first label for every image of ``data``."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(data), BATCH):
            idx = np.arange(start, min(start + BATCH, len(data)))
            out.append(model.probabilities(model(_inputs(data, idx)))[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def native_heatmaps(model: LoadedModel, data: SliceSet, idx: np.ndarray, method: str = "gradcam") -> np.ndarray:
    """Heatmaps (len(idx), rows, cols) of the first label on the images' native grid."""
    _, maps = explain_batch(model, _inputs(data, idx), [0], method)
    return Preprocessor.to_native(maps[0].detach().float(), data.masks.shape[1:]).numpy()


def pointing_game(model: LoadedModel, data: SliceSet, dilate_mm: float) -> tuple[float, int]:
    """Share of positive images whose heatmap peak lies within ``dilate_mm`` of the nodule mask."""
    pos = np.flatnonzero(data.labels == 1)
    hits = 0
    for start in range(0, len(pos), BATCH):
        idx = pos[start:start + BATCH]
        for heat, i in zip(native_heatmaps(model, data, idx), idx):
            radius = (dilate_mm / float(data.spacing_rc[i, 0]), dilate_mm / float(data.spacing_rc[i, 1]))
            hits += pointing_hit(heat, data.masks[i], radius)
    return (hits / len(pos) if len(pos) else float("nan")), int(len(pos))


def evaluate(model: LoadedModel, data: SliceSet, dilate_mm: float, threshold: float | None = None) -> dict[str, Any]:
    """AUROC over scored images (ambiguous slivers left out), pointing game, and rates at ``threshold``."""
    scores = predict(model, data)
    scored = data.labels >= 0
    truth = data.labels[scored] == 1
    hit_rate, n_pointing = pointing_game(model, data, dilate_mm)
    out: dict[str, Any] = {
        "auroc": round(auroc(scores[scored], truth), 4),
        "pointing_game": round(hit_rate, 4),
        "n_positive": int(truth.sum()),
        "n_negative": int((~truth).sum()),
        "n_pointing": n_pointing,
        "pointing_dilation_mm": dilate_mm,
    }
    if threshold is not None:
        pred = scores[scored] >= threshold
        out["sensitivity_at_threshold"] = round(float(pred[truth].mean()), 4)
        out["specificity_at_threshold"] = round(float((~pred[~truth]).mean()), 4)
    return out
