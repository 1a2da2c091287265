"""The model-randomisation sanity check with its heatmaps kept, for showing them side by side."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from inference.explain.sanity import SanityStep, cascading_randomization, layer_groups
from inference.loading import LoadedModel
from inference.preprocess import Preprocessor
from inference.probes.featurevis import ProbeCancelled, StepProgress
from inference.probes.maps import to_native


@dataclass(frozen=True)
class SanityResult:
    """Original and fully randomised heatmaps of one slice (native grid, [0, 1]) and every step's similarity."""

    original: np.ndarray
    randomised: np.ndarray
    steps: list[SanityStep]
    method: str


def sanity_check(model: LoadedModel, slice_: np.ndarray, label: int = 0, method: str = "gradcam",
                 cancel: threading.Event | None = None, progress: StepProgress | None = None) -> SanityResult:
    """`inference.explain.sanity.cascading_randomization` on one ``(rows, cols)`` slice."""
    x = Preprocessor(model.card.input).to_model(slice_[None], device=model.device)
    groups = layer_groups(model)
    kept: list[torch.Tensor] = []

    def on_step(step: SanityStep | None, maps: torch.Tensor) -> None:
        if cancel is not None and cancel.is_set():
            raise ProbeCancelled("sanity check cancelled")
        kept[:] = [kept[0], maps] if kept else [maps]
        if progress is not None:
            progress(0 if step is None else groups.index(step.layer) + 1, len(groups))

    steps = cascading_randomization(model, x, label, method, groups, on_step=on_step)
    native = tuple(slice_.shape[-2:])
    original = to_native(kept[0].float().cpu(), native)[0]
    randomised = to_native(kept[-1].float().cpu(), native)[0]
    return SanityResult(original, randomised, steps, method)
