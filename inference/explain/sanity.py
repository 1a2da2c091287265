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


def _ranks(v: torch.Tensor) -> torch.Tensor:
    r = torch.empty_like(v)
    r.scatter_(-1, v.argsort(dim=-1), torch.arange(v.shape[-1], dtype=v.dtype, device=v.device).expand_as(v))
    return r


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rank correlation of each ``(..., h, w)`` map pair (0 where a map is constant)."""
    ra, rb = _ranks(a.flatten(-2).double()), _ranks(b.flatten(-2).double())
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    den = (ra.norm(dim=-1) * rb.norm(dim=-1))
    flat_a = a.flatten(-2).amax(-1) == a.flatten(-2).amin(-1)
    flat_b = b.flatten(-2).amax(-1) == b.flatten(-2).amin(-1)
    rho = (ra * rb).sum(-1) / torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(flat_a | flat_b, torch.zeros_like(rho), rho).float()


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
