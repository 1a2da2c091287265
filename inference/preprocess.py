"""The card's input pipeline, and its exact inverse for heatmaps.

Forward (per slice, in this order): window ``clip((v - (c - w/2)) / w, 0, 1)``; optional
``(x - mean) / std``; repeat to ``input.channels``; bilinear resize (``align_corners=False``) to
``input.size``. Inverse: a map on any grid that spans the model input (the input itself or a
feature map) is resized bilinearly (``align_corners=False``) straight to the slice's native
``(rows, columns)``. With ``align_corners=False`` both resizes map pixel centres by the same affine
map ``u -> (u + 0.5) * n_out / n_in - 0.5``, so the inverse puts every heatmap pixel back where its
input pixel came from, whatever the matrix size, pixel spacing or orientation (those are properties
of the native grid, which the heatmap shares).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from inference.package import InputSpec


class Preprocessor:
    """Maps native slices to model input and model-space maps back to native grids."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        c = spec.channels
        w = spec.window
        self.low = float(w.center) - float(w.width) / 2.0
        self.width = float(w.width)
        if spec.normalize is not None:
            mean = spec.normalize.mean * (c if len(spec.normalize.mean) == 1 else 1)
            std = spec.normalize.std * (c if len(spec.normalize.std) == 1 else 1)
            self.mean: torch.Tensor | None = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
            self.std: torch.Tensor | None = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)
        else:
            self.mean = self.std = None

    def window(self, slices: torch.Tensor) -> torch.Tensor:
        """The card's window: modality values to [0, 1] (unclipped when the card says ``clip: false``),
        then the card's per-image normalisation, if any."""
        x = (slices - self.low) / self.width
        if self.spec.window.clip:
            x = x.clamp_(0.0, 1.0)
        return self._per_image(x) if self.spec.per_image else x

    def _per_image(self, x: torch.Tensor) -> torch.Tensor:
        """Per-slice z-score (over the non-zero pixels with ``nonzero``) or min-max scaling, as MONAI's
        NormalizeIntensity and ScaleIntensity compute them."""
        p = self.spec.per_image or {}
        flat = x.reshape(x.shape[0], -1)
        if p.get("kind") == "zscore":
            mask = flat != 0 if p.get("nonzero") else torch.ones_like(flat, dtype=torch.bool)
            n = mask.sum(1, keepdim=True).clamp_(min=1)
            mean = (flat * mask).sum(1, keepdim=True) / n
            std = (((flat - mean) * mask) ** 2).sum(1, keepdim=True).div_(n).sqrt_()
            out = (flat - mean) / torch.where(std > 0, std, torch.ones_like(std))
            return torch.where(mask, out, flat).reshape(x.shape)
        lo, hi = float(p["min"]), float(p["max"])
        mn, mx = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        span = mx - mn
        scaled = (flat - mn) / torch.where(span > 0, span, torch.ones_like(span)) * (hi - lo) + lo
        return torch.where(span > 0, scaled, flat * lo).reshape(x.shape)

    def to_model(self, slices: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """``(n, rows, cols)`` (or one ``(rows, cols)``) slices in modality units -> ``(n, C, H, W)`` float32."""
        x = torch.as_tensor(np.asarray(slices, dtype=np.float32) if isinstance(slices, np.ndarray) else slices)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ValueError(f"expected (n, rows, cols) slices, got shape {tuple(x.shape)}")
        x = self.window(x.to(device=device, dtype=torch.float32))[:, None]
        h, w = self.spec.size
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        x = x.expand(-1, self.spec.channels, -1, -1)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x.contiguous()

    def baseline(self) -> torch.Tensor:
        """``(1, C, H, W)``: the model input of a slice at or below the window's low end (black)."""
        h, w = self.spec.size
        return self.to_model(np.full((1, h, w), self.low - 1.0, dtype=np.float32))

    @staticmethod
    def to_native(maps: torch.Tensor, native_shape: tuple[int, int]) -> torch.Tensor:
        """``(n, h, w)`` maps spanning the model input -> ``(n, rows, cols)`` on the native grid."""
        if maps.ndim != 3:
            raise ValueError(f"expected (n, h, w) maps, got shape {tuple(maps.shape)}")
        rows, cols = int(native_shape[0]), int(native_shape[1])
        if maps.shape[-2:] == (rows, cols):
            return maps
        return F.interpolate(maps[:, None].float(), size=(rows, cols), mode="bilinear", align_corners=False)[:, 0]


def model_to_native_coords(uv: np.ndarray, model_shape: tuple[int, int], native_shape: tuple[int, int]) -> np.ndarray:
    """Continuous (row, col) positions on a ``model_shape`` grid -> positions on the native grid."""
    scale = np.asarray(native_shape, dtype=np.float64) / np.asarray(model_shape, dtype=np.float64)
    return (np.asarray(uv, dtype=np.float64) + 0.5) * scale - 0.5
