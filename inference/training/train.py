"""The training loop: balanced batches, image-level BCE plus a weak localisation term on the evidence map."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from inference.training.architectures import NoduleNet
from inference.training.dataset import SliceSet


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 8
    steps_per_epoch: int | None = None
    """None: one pass over the usable images' count per epoch."""
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    positive_fraction: float = 0.4
    """Share of positives in each batch (the rest are negatives, hard ones included)."""
    map_weight: float = 1.0
    """Weight of the per-cell BCE on the evidence map against the down-sampled nodule mask."""
    map_pos_weight: float = 20.0
    flip: bool = True
    """Random left-right flips (a nodule is a nodule on either side)."""
    gamma_jitter: float = 0.0
    """Random tone curve: inputs (in [0, 1]) raised to a power drawn log-uniformly from
    [1 / (1 + gamma_jitter), 1 + gamma_jitter] per image (0: off)."""
    crop: int | None = None
    """Train on ``crop`` x ``crop`` windows (a multiple of the evidence stride): positives around a nodule
    cell, negatives anywhere. The net is fully convolutional, so this is ~(size/crop)^2 cheaper per image."""
    matched_negative_crops: bool = False
    """With ``crop``: negatives are cropped around the nodule cells of the batch's positives (see `_crop`)."""
    full_image_fraction: float = 0.2
    """With ``crop``: the last share of steps uses whole images (BatchNorm statistics and the image-level
    calibration then match inference)."""
    seed: int = 0


def _batches(data: SliceSet, cfg: TrainConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch of batch indices, each drawn with ``positive_fraction`` positives (with replacement)."""
    labels = torch.from_numpy(data.labels.astype(np.int64))
    usable = labels >= 0
    pos = torch.nonzero(usable & (labels == 1)).ravel()
    neg = torch.nonzero(usable & (labels == 0)).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("training needs both positive and negative slices")
    n_steps = cfg.steps_per_epoch or max(1, int(usable.sum()) // cfg.batch_size)
    n_pos = max(1, round(cfg.batch_size * cfg.positive_fraction))
    out = []
    for _ in range(n_steps):
        p = pos[torch.randint(len(pos), (n_pos,), generator=gen)]
        n = neg[torch.randint(len(neg), (cfg.batch_size - n_pos,), generator=gen)]
        out.append(torch.cat([p, n]))
    return out


def _crop(x: torch.Tensor, c: torch.Tensor, y: torch.Tensor, size: int, gen: torch.Generator,
          matched: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop every image (and its cell targets) to ``size``: around a random positive cell where the
    image is positive; anywhere otherwise, or with ``matched`` around a nodule cell of another image of
    the batch (negatives then show the same regions as positives: no "lung in view" shortcut)."""
    cell = x.shape[-1] // c.shape[-1]
    n = size // cell
    hc, wc = c.shape[-2:]
    batch_cells = torch.nonzero(c[:, 0] > 0)[:, 1:] if matched else None
    xs, cs = [], []
    for b in range(len(x)):
        lo_y, hi_y, lo_x, hi_x = 0, hc - n, 0, wc - n
        cells = torch.nonzero(c[b, 0] > 0) if y[b] > 0 else batch_cells
        if cells is not None and len(cells):
            cy, cx = cells[torch.randint(len(cells), (1,), generator=gen)][0].tolist()
            lo_y, hi_y = max(0, cy - n + 1), min(hc - n, cy)
            lo_x, hi_x = max(0, cx - n + 1), min(wc - n, cx)
        ty = int(torch.randint(lo_y, hi_y + 1, (1,), generator=gen))
        tx = int(torch.randint(lo_x, hi_x + 1, (1,), generator=gen))
        xs.append(x[b, :, ty * cell:(ty + n) * cell, tx * cell:(tx + n) * cell])
        cs.append(c[b, :, ty:ty + n, tx:tx + n])
    return torch.stack(xs), torch.stack(cs)


def _gammas(n: int, jitter: float, gen: torch.Generator) -> torch.Tensor:
    """(n, 1, 1, 1) exponents drawn log-uniformly from [1 / (1 + jitter), 1 + jitter]."""
    span = math.log1p(jitter)
    return torch.exp((torch.rand(n, generator=gen) * 2.0 - 1.0) * span)[:, None, None, None]


def train_model(model: NoduleNet, data: SliceSet, cfg: TrainConfig,
                log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Train ``model`` in place on ``data``; returns per-epoch loss figures."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    images = torch.from_numpy(data.images)
    cells = torch.from_numpy(data.cell_targets)
    labels = torch.from_numpy(data.labels.astype(np.float32))
    steps_per_epoch = len(_batches(data, cfg, torch.Generator().manual_seed(0)))
    total = cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    pos_weight = torch.tensor([cfg.map_pos_weight])
    history = []
    model.train()
    cropping = cfg.crop is not None and cfg.crop < min(images.shape[-2:])
    full_from = int(round(total * (1.0 - cfg.full_image_fraction))) if cropping else 0
    step = 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "image": 0.0, "map": 0.0}
        batches = _batches(data, cfg, gen)
        for idx in batches:
            x = images[idx].float().unsqueeze(1)
            c = cells[idx].float().unsqueeze(1)
            y = labels[idx].unsqueeze(1)
            if step < full_from:
                x, c = _crop(x, c, y, cfg.crop, gen, cfg.matched_negative_crops)
            step += 1
            if cfg.flip:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                c = torch.where(flip[:, None, None, None], c.flip(-1), c)
            if cfg.gamma_jitter > 0:
                x = x.clamp(0.0, 1.0) ** _gammas(len(idx), cfg.gamma_jitter, gen)
            emap = model.evidence_map(x)
            image_loss = F.binary_cross_entropy_with_logits(model.image_logits(emap), y)
            map_loss = F.binary_cross_entropy_with_logits(emap, c, pos_weight=pos_weight)
            loss = image_loss + cfg.map_weight * map_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            sums["loss"] += loss.item()
            sums["image"] += image_loss.item()
            sums["map"] += map_loss.item()
        row = {k: v / len(batches) for k, v in sums.items()}
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        log(f"  epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f} (image {row['image']:.4f}, "
            f"map {row['map']:.4f}) {row['seconds']:.1f} s")
        if not math.isfinite(row["loss"]):
            raise RuntimeError("training diverged (non-finite loss)")
    model.eval()
    return history
