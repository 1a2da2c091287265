"""Built-in architectures for safetensors packages (``weights.architecture``), written here.

torchvision is deliberately not used (it fails to import beside this torch build). The layer
names follow torchvision's, so published state dicts map onto them. Each builder takes
``(in_channels, n_labels)``; `ARCHITECTURES` maps the card's name to the builder and the
conventional Grad-CAM target layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Sequence

import torch
from torch import nn
import torch.nn.functional as F


# -- demo CNN family ---------------------------------------------------------------------------


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DemoCNN(nn.Module):
    """A small CNN: ``features`` (stride-2 conv blocks) -> global average pool -> ``classifier``.

    ``widths`` gives one stage per entry (each halves the resolution): with the default four stages
    a 256-px input gives a 16 x 16 Grad-CAM grid at ``features``.
    """

    def __init__(self, in_channels: int = 1, n_labels: int = 1, widths: Sequence[int] = (16, 32, 64, 96)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for w in widths:
            layers += [_conv_bn_relu(cin, w, stride=2), _conv_bn_relu(w, w)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# -- ResNet-18 ---------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016), torchvision's layer names."""

    def __init__(self, in_channels: int = 3, n_labels: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- DenseNet-121 ------------------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, n_layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet121(nn.Module):
    """DenseNet-121 (Huang et al. 2017), torchvision's layer names."""

    def __init__(self, in_channels: int = 3, n_labels: int = 1000, growth: int = 32,
                 blocks: Sequence[int] = (6, 12, 24, 16), init_features: int = 64, bn_size: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(in_channels, init_features, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        c = init_features
        for i, n in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, c, growth, bn_size))
            c += n * growth
            if i != len(blocks) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    build: Callable[[int, int], nn.Module]
    target_layer: str


ARCHITECTURES: dict[str, Architecture] = {
    "demo-cnn": Architecture(lambda c, n: DemoCNN(c, n), "features"),
    "demo-cnn-small": Architecture(lambda c, n: DemoCNN(c, n, widths=(8, 16, 32, 48)), "features"),
    "resnet18": Architecture(lambda c, n: ResNet18(c, n), "layer4"),
    "densenet121": Architecture(lambda c, n: DenseNet121(c, n), "features"),
}


def build(name: str, in_channels: int, n_labels: int) -> nn.Module:
    """A fresh (eval-mode) instance of the named built-in architecture."""
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; built-in: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name].build(in_channels, n_labels).eval()
