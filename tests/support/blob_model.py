"""A model whose correct heatmap is known analytically, and a volume with one bright blob.

`BlobNet`: the target layer ``features`` is the windowed input itself (a 1x1 convolution of weight 1 +
ReLU); the logit is a fixed affine function of its spatial mean. Grad-CAM's channel weight is then a
positive constant, so the map is proportional to the windowed image: its peak is the blob's centre, and
the slice through the centre has the highest score. `blob_phantom` builds a water volume with a 3D
Gaussian blob (1000 HU peak) that `viewer.dicom.synthetic.write_ct_series` writes in any orientation.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.package import save_package
from phantom import ChestParams, Phantom

BLOB_CARD = {
    "name": "blob-detector", "version": "1.0", "dims": 2, "labels": ["blob"], "output": "sigmoid",
    "input": {"size": [64, 64], "channels": 1, "window": {"center": 500, "width": 1000}, "modalities": ["CT"]},
    "explain": {"target_layer": "features"},
    "scope": {"modalities": ["CT"], "planes": ["axial"], "reformat": True},
}


class BlobNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 1, 1, bias=False), relu=nn.ReLU()))
        with torch.no_grad():
            self.features.conv.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3)) * 40.0 - 2.0


def blob_package(out: Path, **card: object) -> Path:
    """The BlobNet package at ``out`` (card fields overridable)."""
    save_package(BlobNet(), {**BLOB_CARD, **card}, out, torch.zeros(2, 1, 64, 64))
    return out


def blob_phantom(shape: tuple[int, int, int] = (48, 64, 64), spacing_zyx: tuple[float, float, float] = (2.0, 1.5, 1.5),
                 centre_index: tuple[float, float, float] = (27.0, 25.0, 38.0), sigma_mm: float = 5.0
                 ) -> tuple[Phantom, np.ndarray]:
    """A water volume with one Gaussian blob; returns the phantom and the blob centre in LPS (mm)."""
    kk, jj, ii = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    sz, sy, sx = spacing_zyx
    ck, cj, ci = centre_index
    r2 = ((kk - ck) * sz) ** 2 + ((jj - cj) * sy) ** 2 + ((ii - ci) * sx) ** 2
    hu = (1000.0 * np.exp(-r2 / (2 * sigma_mm**2))).astype(np.float32)
    origin = (-48.0, -40.0, -30.0)
    params = ChestParams(n_slices=shape[0], matrix=(shape[1], shape[2]), pixel_spacing=(sy, sx), slice_spacing=sz,
                         n_nodules=0, noise=False, table=False, seed=5)
    ph = Phantom(hu=hu, nodule_mask=np.zeros(shape, bool), nodules=[], spacing_zyx=spacing_zyx, origin_xyz=origin,
                 params=params)
    centre = np.asarray(origin) + np.array([ci * sx, cj * sy, ck * sz])
    return ph, centre
