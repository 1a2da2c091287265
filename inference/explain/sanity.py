"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps").

Cascading randomisation: starting at the output, the weights of one layer group after another are
replaced by random values (same per-tensor scale), and after each step the heatmaps are recomputed
and compared with the original ones (Spearman rank correlation and SSIM, averaged over slices). A
heatmap that stays similar while the model's learned weights are destroyed does not depend on
what the model learned. The check works on a deep copy; the loaded model is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from inference.explain import normalize_maps
from inference.explain.methods import explain_batch
from inference.loading import LoadedModel


@dataclass(frozen=True)
class SanityStep:
    """Similarity after randomising every layer group down to and including ``layer``."""

    layer: str
    spearman: float
    ssim: float


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each ``(..., h, w)`` map pair (0 where a map is constant).

    Tied values get their average rank (``scipy.stats.rankdata``), exactly as ``scipy.stats.spearmanr``
    ranks them: heatmaps are often mostly zeros, where ranking ties in index order is far off.
    """
    from scipy.stats import rankdata

    shape = a.shape[:-2]
    x = a.detach().flatten(-2).reshape(-1, a.shape[-2] * a.shape[-1]).cpu().double().numpy()
    y = b.detach().flatten(-2).reshape(-1, b.shape[-2] * b.shape[-1]).cpu().double().numpy()
    ra, rb = rankdata(x, axis=-1), rankdata(y, axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    flat = (x.max(-1) == x.min(-1)) | (y.max(-1) == y.min(-1))
    rho = np.where(flat | (den == 0), 0.0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0))
    return torch.from_numpy(rho.astype(np.float32)).reshape(shape)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean structural similarity of each ``(..., h, w)`` pair of [0, 1] maps (uniform window)."""
    shape = a.shape[:-2]
    x, y = a.reshape(-1, 1, *a.shape[-2:]).double(), b.reshape(-1, 1, *b.shape[-2:]).double()
    k = min(window, x.shape[-1], x.shape[-2])
    mu_x, mu_y = F.avg_pool2d(x, k, 1), F.avg_pool2d(y, k, 1)
    sxx = F.avg_pool2d(x * x, k, 1) - mu_x**2
    syy = F.avg_pool2d(y * y, k, 1) - mu_y**2
    sxy = F.avg_pool2d(x * y, k, 1) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(-3, -2, -1)).reshape(shape).float()


def layer_groups(model: LoadedModel, depth: int = 2) -> list[str]:
    """Parameterised module paths cut to ``depth`` components, output side first."""
    seen: dict[str, None] = {}
    for name, _p in model.source.named_parameters():
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        seen.setdefault(".".join(owner.split(".")[:depth]), None)
    return list(reversed(seen))


def _randomise(module: torch.nn.Module, prefix: str, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name == prefix or name.startswith(prefix + ".") or not prefix:
                scale = float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 1.0
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) * scale)


def cascading_randomization(model: LoadedModel, x: torch.Tensor, label: int = 0, method: str = "gradcam",
                            groups: Sequence[str] | None = None, seed: int = 0,
                            on_step: Callable[[SanityStep | None, torch.Tensor], None] | None = None
                            ) -> list[SanityStep]:
    """Per-step similarity between the original and the progressively randomised model's heatmaps.

    ``on_step(step, maps)`` (optional) sees the original ``(n, h, w)`` maps in [0, 1] first (``step``
    None), then each step's maps: for showing them side by side, or for progress and cancellation
    (an exception it raises ends the check).
    """
    _, original = explain_batch(model, x, [label], method)
    original = normalize_maps(original[0])
    if on_step is not None:
        on_step(None, original)
    work = model.copy()
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for group in groups if groups is not None else layer_groups(model):
        _randomise(work.source, group, gen)
        work.refresh()
        _, maps = explain_batch(work, x, [label], method)
        maps = normalize_maps(maps[0])
        steps.append(SanityStep(group, float(spearman(original, maps).mean()), float(ssim(original, maps).mean())))
        if on_step is not None:
            on_step(steps[-1], maps)
    return steps
