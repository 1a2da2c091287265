"""The demo models' small CNN: a conv trunk at stride 8 whose last block feeds a 1x1 evidence map.

The image-level logit is a log-sum-exp pool of that evidence map (plus a bias), so Grad-CAM at the last conv
block (``features.block3``) is, up to a constant, the evidence map itself: the heatmap shows where
the model saw the finding. The trunk is plain 3x3 convolutions with BatchNorm (folded at export
time by the runner if it wants), which oneDNN runs fast on a CPU.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

TARGET_LAYER = "features.block3"
"""Module path of the last conv block (the card's ``explain.target_layer``)."""

CELL_PRIOR_LOGIT = -4.0
"""Fixed offset of the evidence map (a cell rarely holds a nodule). The 1x1 evidence conv has no
bias, so Grad-CAM at the last block, ``ReLU(sum_k w_k A_k)``, is the evidence above this prior:
a cell the model calls positive (logit > 0) always shows up in the heatmap."""


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU, 'same' padding."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LogSumExpPool(nn.Module):
    """Smooth maximum over space: ``log(mean(exp(r * x))) / r`` per channel; (n, c, h, w) -> (n, c)."""

    def __init__(self, sharpness: float = 4.0) -> None:
        super().__init__()
        self.sharpness = float(sharpness)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.sharpness
        flat = x.flatten(2)
        return (torch.logsumexp(r * flat, dim=2) - math.log(flat.shape[2])) / r


class NoduleNet(nn.Module):
    """Per-image finding classifier with a spatial evidence map; input (n, channels, h, w)."""

    def __init__(self, widths: tuple[int, int, int, int] = (16, 24, 48, 64), in_channels: int = 1,
                 n_labels: int = 1, sharpness: float = 4.0) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.features = nn.Sequential(
            OrderedDict(
                stem=conv_bn_relu(in_channels, w0, kernel=5, stride=2),  # /2
                block1=nn.Sequential(conv_bn_relu(w0, w1, stride=2), conv_bn_relu(w1, w1)),  # /4
                block2=nn.Sequential(conv_bn_relu(w1, w2, stride=2), conv_bn_relu(w2, w2)),  # /8
                block3=nn.Sequential(conv_bn_relu(w2, w3, dilation=2), conv_bn_relu(w3, w3, dilation=2)),
            )
        )
        self.evidence = nn.Conv2d(w3, n_labels, kernel_size=1, bias=False)
        self.pool = LogSumExpPool(sharpness)
        self.image_bias = nn.Parameter(torch.zeros(n_labels))

    def evidence_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-label logit map at 1/8 of the input resolution, (n, labels, h/8, w/8)."""
        return self.evidence(self.features(x)) + CELL_PRIOR_LOGIT

    def image_logits(self, evidence: torch.Tensor) -> torch.Tensor:
        """Image-level logits (n, labels) from an evidence map."""
        return self.pool(evidence) + self.image_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image-level logits (n, labels)."""
        return self.image_logits(self.evidence_map(x))
