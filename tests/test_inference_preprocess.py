"""The card's preprocessing, exactly; and its inverse puts model-space pixels back on the native grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.package import InputSpec, Normalize, Window
from inference.preprocess import Preprocessor, model_to_native_coords


def test_window_values_are_exact() -> None:
    pre = Preprocessor(InputSpec((4, 4), 1, Window(center=40, width=400)))
    v = np.array([[-1000, -160, 40, 140, 240, 3000]], dtype=np.float32)
    out = pre.window(torch.from_numpy(v)).numpy()
    np.testing.assert_array_equal(out, [[0.0, 0.0, 0.5, 0.75, 1.0, 1.0]])


def test_normalize_and_channel_repeat() -> None:
    spec = InputSpec((3, 5), 3, Window(0.5, 1.0), Normalize((0.5, 0.4, 0.3), (0.25,)))
    x = Preprocessor(spec).to_model(np.full((2, 3, 5), 0.75, dtype=np.float32))
    assert x.shape == (2, 3, 3, 5) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, :, 0, 0].numpy(), [[1.0, 1.4, 1.8]] * 2, rtol=1e-6)


def test_resize_is_bilinear_half_pixel() -> None:
    spec = InputSpec((2, 2), 1, Window(0.5, 1.0))
    # A 4x4 ramp in [0, 1] downsampled by 2 with align_corners=False averages each 2x2 block centre.
    ramp = np.tile(np.array([0.0, 0.2, 0.4, 0.6], dtype=np.float32), (4, 1))
    out = Preprocessor(spec).to_model(ramp)[0, 0].numpy()
    np.testing.assert_allclose(out, [[0.1, 0.5], [0.1, 0.5]], atol=1e-6)


@pytest.mark.parametrize("native", [(300, 500), (512, 512), (97, 61)])
def test_inverse_maps_every_model_pixel_back_to_its_source(native: tuple[int, int]) -> None:
    """A bright pixel's model-space position maps back (within one native pixel) to where it was."""
    spec = InputSpec((256, 256), 1, Window(0.5, 1.0))
    pre = Preprocessor(spec)
    rng = np.random.default_rng(1)
    for _ in range(5):
        r, c = int(rng.integers(5, native[0] - 5)), int(rng.integers(5, native[1] - 5))
        img = np.zeros(native, dtype=np.float32)
        yy, xx = np.mgrid[: native[0], : native[1]]
        img[:] = np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 6.0**2))
        x = pre.to_model(img)[0, 0]
        back = Preprocessor.to_native(x[None], native)[0].numpy()
        br, bc = np.unravel_index(np.argmax(back), native)
        assert abs(br - r) <= 1 and abs(bc - c) <= 1
        mr, mc = np.unravel_index(int(torch.argmax(x)), spec.size)
        nr, nc = model_to_native_coords(np.array([mr, mc]), spec.size, native)
        assert abs(nr - r) <= native[0] / 256 and abs(nc - c) <= native[1] / 256


def test_bad_shape_is_refused() -> None:
    pre = Preprocessor(InputSpec((8, 8), 1, Window(0, 1)))
    with pytest.raises(ValueError, match=r"expected \(n, rows, cols\)"):
        pre.to_model(np.zeros((1, 1, 8, 8), dtype=np.float32))
