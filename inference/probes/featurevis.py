"""Feature visualisation: the input that most excites one channel (activation maximisation).

In the spirit of Lucid / OpenAI Microscope (Olah et al. 2017, "Feature Visualization"): the image is
parameterised in frequency space (a real-FFT spectrum scaled by 1/frequency, so gradient steps favour
smooth, natural-looking structure over high-frequency noise), squashed to the card's window range
[0, 1] by a sigmoid, normalised as the card says, randomly shifted (jitter, for robustness to
translation) and fed to the model; gradient ascent (Adam) maximises the channel's activation at the
centre of its map (Lucid's "neuron" objective: a deep channel's spatial mean hardly moves, its centre
cell does), or its spatial mean (``objective="channel"``). ReLU gradients are redirected where none
would get through (Lucid's ``redirected_relu_grad``), so a unit that is dead on the starting noise
still gets a direction to grow in.
Results are cached per (model sha256, layer, channel, parameters) as ``.npz`` files (no pickles).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from inference.loading import LoadedModel
from inference.preprocess import Preprocessor
from inference.probes.activations import as_maps
from inference.probes.tap import GraphTap

StepProgress = Callable[[int, int], None]


class ProbeCancelled(Exception):
    """A probe stopped because its cancel token was set."""


class Adam:
    """Adam on one tensor, the arithmetic of ``torch.optim.Adam`` (single-tensor path, defaults) step for step.

    ``torch.optim.Optimizer`` imports ``torch._dynamo`` (and with it sympy and inductor: about 90 MB in the
    viewer's process) the first time a parameter group is added; this does not.
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps, self.steps = param, lr, betas, eps, 0
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)

    def zero_grad(self) -> None:
        self.param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grad = self.param.grad
        if grad is None:
            return
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1 ** self.steps)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2 ** self.steps) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)


@dataclass(frozen=True)
class FeatureVisParams:
    """Optimisation settings (part of the cache key)."""

    steps: int = 128
    lr: float = 0.05
    jitter: int = 1
    """Largest random shift in model-input pixels per step (demo inputs are small: 64 px)."""
    settle: float = 0.25
    """Share of the steps, at the end, run without jitter (the image settles on the exact optimum)."""
    decay: float = 1.0
    """Spectrum scale is 1 / frequency ** decay (Lucid's default; above 1 favours smoother, blobbier images)."""
    seed: int = 0
    objective: str = "neuron"
    """``neuron``: the channel's centre cell; ``channel``: its mean over the map."""

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FeatureVis:
    """One channel's visualisation."""

    layer: str
    channel: int
    image: np.ndarray
    """``(H, W)`` float32 in the card's window range [0, 1] (0 = window low end, 1 = high end)."""
    activation: float
    """The objective (centre cell or mean of the channel) on ``image``, without jitter."""
    trajectory: np.ndarray
    """Objective per step, ``(steps,)`` float32."""


def _spectrum_scale(h: int, w: int, decay: float) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freq = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freq, min=1.0 / max(h, w)) ** decay


def _to_model(image01: torch.Tensor, pre: Preprocessor) -> torch.Tensor:
    x = image01[:, None].expand(-1, pre.spec.channels, -1, -1)
    if pre.mean is not None and pre.std is not None:
        x = (x - pre.mean.to(x.device)) / pre.std.to(x.device)
    return x


def objective_value(maps: torch.Tensor, channel: int, objective: str) -> torch.Tensor:
    """``(n,)``: each map's centre cell (``neuron``) or mean (``channel``) of ``channel``."""
    m = maps[:, channel]
    if objective == "neuron":
        return m[:, m.shape[-2] // 2, m.shape[-1] // 2]
    if objective == "channel":
        return m.mean(dim=(-2, -1))
    raise ValueError(f"unknown objective {objective!r}; choose neuron or channel")


def channel_activation(model: LoadedModel, layer: str, channel: int, image01: np.ndarray,
                       objective: str = "neuron", tap: GraphTap | None = None) -> float:
    """The objective of ``channel`` at ``layer`` for a ``(H, W)`` window-range image."""
    tap = tap or GraphTap(model)
    pre = Preprocessor(model.card.input)
    x = _to_model(torch.as_tensor(image01, dtype=torch.float32, device=model.device)[None], pre)
    with torch.inference_mode():
        act = as_maps(tap.run(x, [layer])[layer])
    return float(objective_value(act, channel, objective)[0])


def visualise_channel(model: LoadedModel, layer: str, channel: int, params: FeatureVisParams = FeatureVisParams(),
                      cancel: threading.Event | None = None, progress: StepProgress | None = None,
                      tap: GraphTap | None = None) -> FeatureVis:
    """Gradient ascent from low-amplitude noise on ``channel`` of ``layer``; raises `ProbeCancelled`."""
    tap = tap or GraphTap(model)
    pre = Preprocessor(model.card.input)
    h, w = (int(v) for v in model.card.input.size)
    dev = model.device
    scale = _spectrum_scale(h, w, params.decay).to(dev)

    def ascend(lr: float) -> FeatureVis:
        gen = torch.Generator().manual_seed(params.seed)
        spectrum = (torch.randn((1, h, w // 2 + 1, 2), generator=gen) * 0.01).to(dev).requires_grad_(True)

        def image() -> torch.Tensor:
            spatial = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho")
            return torch.sigmoid(spatial)

        opt = Adam(spectrum, lr=lr)
        trajectory = np.zeros(params.steps, dtype=np.float32)
        with torch.enable_grad():  # grad mode is thread-local: worker threads switch it on here
            for step in range(params.steps):
                if cancel is not None and cancel.is_set():
                    raise ProbeCancelled(f"feature visualisation of {layer}#{channel} cancelled")
                img = image()
                if params.jitter and step < params.steps * (1.0 - params.settle):
                    dy, dx = (int(v) for v in torch.randint(-params.jitter, params.jitter + 1, (2,), generator=gen))
                    img = torch.roll(img, shifts=(dy, dx), dims=(-2, -1))
                act = as_maps(tap.run(_to_model(img, pre), [layer], redirect_relu=True)[layer])
                if not 0 <= channel < act.shape[1]:
                    raise ValueError(f"layer {layer!r} has {act.shape[1]} channels; channel {channel} does not exist")
                objective = objective_value(act, channel, params.objective)[0]
                opt.zero_grad()
                (-objective).backward()
                opt.step()
                trajectory[step] = float(objective.detach())
                if progress is not None:
                    progress(step + 1, params.steps)
        with torch.no_grad():
            final = image()[0].float().cpu().numpy()
        value = channel_activation(model, layer, channel, final, params.objective, tap)
        return FeatureVis(layer, channel, final, value, trajectory)

    vis = ascend(params.lr)
    if vis.activation <= 0.0 < vis.trajectory[0]:
        # An overshooting first step can push the unit below its ReLU for good (seen on an early layer of the
        # demo model at lr 0.05); the same ascent with a smaller step recovers it.
        vis = ascend(params.lr * 0.2)
    return vis


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class FeatureVisCache:
    """``.npz`` files (``allow_pickle=False``) under a folder the caller owns, one per
    (model sha256, layer, channel, parameters); written atomically."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str, layer: str, channel: int, params: FeatureVisParams) -> Path:
        name = f"{sha256[:16]}_{_SAFE.sub('-', layer).lstrip('.-')[:80] or 'model'}_{channel}_{params.key()}.npz"  # get() checks the layer
        return self.folder / name

    def get(self, sha256: str, layer: str, channel: int, params: FeatureVisParams) -> FeatureVis | None:
        path = self.path(sha256, layer, channel, params)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["sha256"]) != sha256 or str(z["layer"]) != layer or int(z["channel"]) != channel:
                    return None
                return FeatureVis(layer, channel, z["image"].astype(np.float32), float(z["activation"]),
                                  z["trajectory"].astype(np.float32))
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is recomputed

    def put(self, sha256: str, vis: FeatureVis, params: FeatureVisParams) -> Path:
        path = self.path(sha256, vis.layer, vis.channel, params)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, sha256=np.str_(sha256), layer=np.str_(vis.layer), channel=np.int64(vis.channel),
                         image=vis.image, activation=np.float64(vis.activation), trajectory=vis.trajectory)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def cached_visualisation(model: LoadedModel, layer: str, channel: int, cache_dir: str | os.PathLike[str],
                         params: FeatureVisParams = FeatureVisParams(), cancel: threading.Event | None = None,
                         progress: StepProgress | None = None, tap: GraphTap | None = None
                         ) -> tuple[FeatureVis, bool]:
    """The cached visualisation, or a new one (then stored); returns it and whether it was a hit."""
    cache = FeatureVisCache(cache_dir)
    hit = cache.get(model.sha256, layer, channel, params)
    if hit is not None:
        return hit, True
    vis = visualise_channel(model, layer, channel, params, cancel, progress, tap)
    cache.put(model.sha256, vis, params)
    return vis, False
