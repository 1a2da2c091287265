"""CodedVolume: heat maps held as uint8 codes, decoded per plane exactly as the float volume would read."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.display.coded import CodedVolume, encode_unit
from viewer.display.planes import Plane


def test_codes_decode_within_half_a_code_times_the_slice_factor() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((6, 7, 9), dtype=np.float32)
    scores = rng.random(6, dtype=np.float32)
    vol = CodedVolume(encode_unit(maps), scores / 255)
    assert vol.codes.nbytes == maps.nbytes // 4 and vol.shape == maps.shape and vol.dtype == np.float32
    error = np.abs(np.asarray(vol) - maps * scores[:, None, None])
    assert (error <= 0.5 / 255 * scores[:, None, None] + 1e-7).all()
    assert vol.max() == pytest.approx(float(np.asarray(vol).max()))
    np.testing.assert_array_equal(vol[2], np.asarray(vol)[2])
    assert encode_unit(np.array([np.nan, -1.0, 2.0, 0.5])).tolist() == [0, 0, 255, 128]


@pytest.mark.parametrize("view", ["acquisition", "axial", "coronal", "sagittal"])
def test_planes_of_a_coded_volume_match_the_decoded_volume(view: str) -> None:
    rng = np.random.default_rng(1)
    vol = CodedVolume(rng.integers(0, 256, (5, 8, 11)).astype(np.uint8), rng.random(5, dtype=np.float32) / 255)
    dense = np.asarray(vol)
    direction = np.array([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])
    plane = Plane.for_view(view, direction)
    for s in range(plane.n_slices(vol.shape)):
        np.testing.assert_array_equal(plane.image(vol, s), plane.image(dense, s))


def test_writing_slices_codes_them() -> None:
    vol = CodedVolume.zeros((3, 4, 5))
    values = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    vol[1] = values
    assert not vol[0].any() and not vol[2].any()
    np.testing.assert_allclose(vol[1], values, atol=0.5 / 255)
    vol[:] = 0.0
    assert not vol.any()
