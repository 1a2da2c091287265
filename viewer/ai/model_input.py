"""What a model is fed from a grey volume: modality values in MONOCHROME2 polarity (dense is bright).

One rule for every caller (``radscope infer`` and the viewer's AI worker): a MONOCHROME1 slice is
inverted over its *stored* range, never over the values it happens to hold, so the MONOCHROME1 and
MONOCHROME2 encodings of one image give the model identical input:

* stored integers with ``BitsStored`` = b give the range ``[lo, hi]`` = ``[0, 2**b - 1]`` (unsigned) or
  ``[-2**(b-1), 2**(b-1) - 1]`` (signed); after a rescale with slope s and intercept i the range ends
  are ``s*lo + i`` and ``s*hi + i``, per slice (enhanced multi-frame files may rescale frames differently);
* a value v becomes ``(lo + hi) - v``;
* only when the header gives no usable range (no BitsStored, float pixel data, or a Modality LUT
  Sequence instead of a rescale) the slice's own data minimum + maximum stand in for ``lo + hi``.

A model whose card gives ``input.stored_bits`` (its window is for, say, 12-bit stored values) gets images of
another bit depth scaled onto it when their values are stored values (unsigned, no rescale to modality
units: CR, DX ...): ``v * (2**model_bits - 1) / (2**BitsStored - 1)``, after the inversion. A 15-bit film
reaches a 12-bit model as 0..4095, not as a window saturated from 4095 up.

The conversion is lazy and per slice (:class:`ModelInput`): the viewer starts a run while the series
still decodes, and a slice is converted only when the worker reads it, from whatever the volume holds
then. MONOCHROME2 slices are passed through unchanged (no copy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.float_volume import SliceSequence

if TYPE_CHECKING:  # importing viewer.dicom loads pydicom; viewer.ai stays numpy-only
    from viewer.dicom.volume import SeriesInfo, Volume


def stored_range_sums(info: SeriesInfo, n_slices: int) -> np.ndarray | None:
    """Per slice ``lo + hi`` of the stored value range in modality units (float64, ``(n_slices,)``),
    or None when the header gives no usable range (then the data's min + max are used)."""
    bits = info.bits_stored
    if bits is None or bits < 1 or not info.rescale:
        return None
    if info.pixel_signed:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    rescale = np.asarray(info.rescale, dtype=np.float64).reshape(-1, 2)
    if len(rescale) == 1:
        rescale = np.repeat(rescale, n_slices, axis=0)
    if len(rescale) != n_slices:
        raise ValueError(f"series {info.stack_id or info.series_uid}: {len(info.rescale)} rescale entries "
                         f"for {n_slices} slices")
    slope, intercept = rescale[:, 0], rescale[:, 1]
    return slope * float(lo + hi) + 2.0 * intercept


class ModelInput(SliceSequence):
    """A read-only ``(k, rows, cols)`` view of a grey volume's array as the model sees it.

    ``view[k]`` is slice k as float32 in MONOCHROME2 polarity (converted when read; the array itself is
    never modified). It has ``shape`` and ``len`` like the array, so it can stand in for it wherever
    slices are read by index (``inference.runner.Runner.run``, the viewer's AI worker).
    """

    def __init__(self, array: np.ndarray, invert: bool = False, sums: np.ndarray | None = None,
                 scale: float = 1.0) -> None:
        if array.ndim != 3:
            raise ValueError(f"model input needs a grey (k, rows, cols) volume, got shape {array.shape}")
        if sums is not None and len(sums) != array.shape[0]:
            raise ValueError(f"{len(sums)} range sums for {array.shape[0]} slices")
        self.array = array
        self.invert = invert
        self.sums = sums
        self.scale = float(scale)
        """Factor onto the model's stored bit depth (1: none), applied after the inversion."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.array.shape)

    def _slice(self, k: int) -> np.ndarray:
        s = self.array[k]
        if not self.invert:
            out = s if s.dtype == np.float32 else s.astype(np.float32)
        else:
            total = float(self.sums[k]) if self.sums is not None else float(s.min()) + float(s.max())
            out = (np.float32(total) - s).astype(np.float32, copy=False)
        return out if self.scale == 1.0 else out * np.float32(self.scale)


def bit_depth_scale(info: SeriesInfo, model_bits: int | None) -> float:
    """The factor that puts stored values of ``info``'s bit depth onto a model's ``input.stored_bits`` (1.0 when
    the model names none, the header gives no BitsStored, or the values are signed or rescaled to modality
    units: then they mean the same at any bit depth)."""
    bits = info.bits_stored
    if model_bits is None or bits is None or bits < 1 or bits == model_bits or info.pixel_signed:
        return 1.0
    if any((float(slope), float(intercept)) != (1.0, 0.0) for slope, intercept in info.rescale):
        return 1.0
    return (2.0**model_bits - 1.0) / (2.0**bits - 1.0)


def model_input(volume: Volume, model_bits: int | None = None) -> ModelInput:
    """``volume``'s slices as every RadScope model sees them (MONOCHROME1 inverted; values scaled onto a
    model's ``input.stored_bits`` = ``model_bits``: see the module)."""
    if volume.is_color:
        raise ValueError(f"series {volume.info.stack_id or volume.info.series_uid}: colour images have no "
                         "grey model input")
    scale = bit_depth_scale(volume.info, model_bits)
    if not volume.info.monochrome1:
        return ModelInput(volume.array, scale=scale)
    return ModelInput(volume.array, invert=True, sums=stored_range_sums(volume.info, volume.shape[0]), scale=scale)


def card_bits(card: Any) -> int | None:
    """A model card's ``input.stored_bits`` (None without one, or without a card)."""
    bits = getattr(getattr(card, "input", None), "stored_bits", None)
    return int(bits) if isinstance(bits, int) else None
