"""One entry point for every explanation method of a `LoadedModel`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inference.explain.cam import CAM_METHODS, layer_cams
from inference.explain.integrated_gradients import integrated_gradients
from inference.loading import LoadedModel
from inference.preprocess import Preprocessor

INPUT_METHODS = ("integrated-gradients",)
METHODS = CAM_METHODS + INPUT_METHODS


def supported_methods(model: LoadedModel) -> tuple[str, ...]:
    """The methods this model's format supports (TorchScript: input-space methods only)."""
    return METHODS if model.has_layers and model.card.target_layer else INPUT_METHODS


def default_method(model: LoadedModel) -> str:
    return supported_methods(model)[0]


def explain_batch(model: LoadedModel, x: torch.Tensor, labels: Sequence[int], method: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(n, L)`` and maps ``(len(labels), n, h, w)`` on the model-input (or layer) grid."""
    if method in CAM_METHODS:
        return layer_cams(model.split(), x, labels, method)
    if method == "integrated-gradients":
        baseline = Preprocessor(model.card.input).baseline().to(x.device)
        return integrated_gradients(model, x, labels, baseline=baseline)
    raise ValueError(f"unknown explanation method {method!r}; choose one of {', '.join(METHODS)}")
