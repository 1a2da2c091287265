"""Plain-numpy evaluation figures: AUROC, the Youden threshold, and the Grad-CAM pointing game."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check_binary(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if labels.all() or not labels.any():
        raise ValueError("AUROC needs both positive and negative cases")
    return scores, labels


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    scores, labels = _check_binary(scores, labels)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # mid-ranks: every run of equal scores shares the mean of its 1-based ranks
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Threshold maximising sensitivity + specificity - 1; returns (threshold, sensitivity, specificity).

    The threshold is the midpoint between the chosen score and the next lower one, so it does not
    sit exactly on a training score.
    """
    scores, labels = _check_binary(scores, labels)
    candidates = np.unique(scores)
    pos, neg = scores[labels], scores[~labels]
    sens = (pos[None, :] >= candidates[:, None]).mean(axis=1)
    spec = (neg[None, :] < candidates[:, None]).mean(axis=1)
    best = int(np.argmax(sens + spec))
    lower = candidates[best - 1] if best > 0 else candidates[best]
    return float((candidates[best] + lower) / 2.0), float(sens[best]), float(spec[best])


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, dilate_px: tuple[float, float]) -> bool:
    """Whether the heatmap's peak lies inside ``mask`` dilated by an ellipse of radii ``dilate_px`` (rows, cols)."""
    if heatmap.shape != mask.shape:
        raise ValueError(f"heatmap {heatmap.shape} and mask {mask.shape} differ")
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return bool(dilate_mask(mask, dilate_px)[peak])


def dilate_mask(mask: np.ndarray, radius_px: tuple[float, float]) -> np.ndarray:
    """Binary dilation of a 2D mask by an elliptical structuring element of radii (rows, cols) in pixels."""
    ry, rx = (max(float(r), 0.0) for r in radius_px)
    ny, nx = int(np.floor(ry)), int(np.floor(rx))
    yy, xx = np.mgrid[-ny : ny + 1, -nx : nx + 1]
    struct = (yy / max(ry, 1e-9)) ** 2 + (xx / max(rx, 1e-9)) ** 2 <= 1.0
    return ndimage.binary_dilation(np.asarray(mask, dtype=bool), structure=struct)
