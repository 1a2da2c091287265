"""viewer.float_volume: the indexing the lazy model inputs and the coded heatmaps share, against numpy's."""

import numpy as np
import pytest

from viewer.display.coded import CodedVolume
from viewer.float_volume import SliceSequence


class Doubled(SliceSequence):
    noun = "test slice"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def _slice(self, k: int) -> np.ndarray:
        return (self.array[k] * 2).astype(np.float32)


def test_slice_sequence_indexes_as_numpy():
    a = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    v, want = Doubled(a), (a * 2).astype(np.float32)
    assert (v.ndim, v.dtype, len(v)) == (3, np.float32, 4)
    for index in (0, 3, -1, -4, np.int64(2), slice(1, 3), slice(None, None, -2), [3, 0, 3], np.array([1, 2])):
        assert np.array_equal(v[index], want[index]), index
    assert v[5:].shape == (0, 3, 2) and v[[]].shape == (0, 3, 2)
    assert np.array_equal(np.asarray(v), want) and np.asarray(v, dtype=np.float64).dtype == np.float64
    assert np.array_equal(np.stack(list(v)), want)
    with pytest.raises(IndexError, match="test slice 4 outside its 4 slices"):
        v[4]
    with pytest.raises(TypeError, match="Doubled indices are ints"):
        v[[0.5]]


def test_coded_volume_reads_as_float32_array():
    codes = np.array([[[0, 255]], [[51, 102]]], dtype=np.uint8)
    vol = CodedVolume(codes, np.array([1.0, 0.5], dtype=np.float32))
    assert (vol.ndim, vol.dtype, len(vol)) == (3, np.float32, 2)
    assert np.array_equal(np.asarray(vol), np.array([[[0, 255]], [[25.5, 51]]], dtype=np.float32))
