"""Class activation maps from a split graph: Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM.

The trunk (input -> target layer) runs once under ``torch.inference_mode``; only the head
(target layer -> logits) is recorded by autograd, and every requested label's gradient comes from
one backward pass through that head, all from the same forward pass. Maps come back unnormalised
(non-negative) on the target layer's grid; `inference.explain.normalize_maps` scales them to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from inference.graph import SplitGraph

CAM_METHODS = ("gradcam", "gradcam++", "layercam", "hirescam")


def _gradcam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    weights = g.mean(dim=(-2, -1), keepdim=True)
    return (weights * a).sum(dim=-3).relu_()


def _gradcam_pp(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Chattopadhay et al. 2018 with the exponential-score closed form (as in pytorch-grad-cam).
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum(dim=(-2, -1), keepdim=True)
    denom = 2 * g2 + sum_a * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * g.relu()).sum(dim=(-2, -1), keepdim=True)
    return (weights * a).sum(dim=-3).relu_()


def _layercam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.relu() * a).sum(dim=-3).relu_()


def _hirescam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g * a).sum(dim=-3).relu_()


CAM_FORMULAS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "gradcam": _gradcam,
    "gradcam++": _gradcam_pp,
    "layercam": _layercam,
    "hirescam": _hirescam,
}


def head_gradients(split: SplitGraph, x: torch.Tensor, labels: Sequence[int]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits ``(n, L)``, activation ``(n, C, h, w)`` and its gradients ``(len(labels), n, C, h, w)``.

    Gradients are of the raw logits (before sigmoid/softmax), per sample: the head has no
    cross-sample interaction in eval mode, so the gradient of the batch sum is each sample's own.
    """
    with torch.inference_mode():
        act, carried = split.activation(x)
    return head_gradients_from_activation(split, act, carried, labels)


def head_gradients_from_activation(split: SplitGraph, act: torch.Tensor, carried: tuple[torch.Tensor, ...],
                                   labels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`head_gradients` from a trunk output already computed (e.g. replayed from a CUDA graph)."""
    # Leave inference mode with ordinary tensors autograd may save; the head runs in float32.
    act = act.detach().float().clone().requires_grad_(True)
    carried = tuple(c.detach().float().clone() if c.is_floating_point() else c.clone() for c in carried)
    # grad mode is thread-local: a worker thread must switch it on itself; the head runs in float32
    with torch.enable_grad(), torch.autocast(act.device.type, enabled=False):
        logits = split.logits(act.clone(), carried)  # a non-leaf copy: the head may run in-place ops
        if logits.ndim != 2:
            raise ValueError(f"the model must return (batch, labels) logits, got shape {tuple(logits.shape)}")
        grads = []
        for j, label in enumerate(labels):
            (g,) = torch.autograd.grad(logits[:, label].sum(), act, retain_graph=j < len(labels) - 1)
            grads.append(g)
    empty = act.new_zeros((0, *act.shape))
    return logits.detach().float(), act.detach(), torch.stack(grads) if grads else empty


def layer_cams(split: SplitGraph, x: torch.Tensor, labels: Sequence[int], method: str = "gradcam"
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(n, L)`` and maps ``(len(labels), n, h, w)`` (non-negative, unnormalised)."""
    if method not in CAM_FORMULAS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    logits, act, grads = head_gradients(split, x, labels)
    formula = CAM_FORMULAS[method]
    return logits, torch.stack([formula(act, g) for g in grads]) if len(grads) else grads[:, :, 0]
