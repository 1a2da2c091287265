"""The engine on the phantom engineer's synthetic studies: every compression, oblique cuts, Enhanced CT
with shuffled frames and per-frame rescale. Values and geometry must equal the writer's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phantom import ChestParams, NoduleSpec, make_chest_ct
from phantom.model import Phantom
from viewer.dicom import Volume, load_volume, scan
from viewer.dicom.synthetic import SeriesTruth, write_ct_series, write_enhanced_ct


@pytest.fixture(scope="module")
def ph() -> Phantom:
    params = ChestParams(n_slices=20, matrix=(48, 64), pixel_spacing=(5.0, 4.5), slice_spacing=6.0, n_nodules=0,
                         nodules=(NoduleSpec("solid", 18.0, "right", 0.5, hu=40.0),), noise=True, seed=5)
    return make_chest_ct(params)


def _load_only_stack(folder: Path) -> Volume:
    result = scan([folder])
    assert result.errors == []
    [stack] = result.stacks
    assert stack.warnings == []
    return load_volume(stack)


def _matches(vol: Volume, truth: SeriesTruth) -> None:
    assert np.array_equal(vol.array, truth.hu)
    assert np.allclose(vol.origin, truth.origin, atol=1e-4)
    assert np.allclose(vol.spacing, truth.spacing, atol=1e-4)
    assert np.allclose(vol.direction, truth.direction, atol=1e-6)
    assert vol.sop_instance_uids == truth.sop_instance_uids
    for nod in truth.nodules:
        ijk = vol.lps_to_index(nod.center_lps)
        assert np.all(np.abs(ijk[::-1] - np.asarray(nod.center_index)) < 0.5)


@pytest.mark.parametrize("compression", [None, "rle", "jpeg-ls", "jpeg2000", "deflate", "implicit", "big-endian"])
def test_compressed_series(ph: Phantom, compression: str | None, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path, compression=compression, signed=compression != "jpeg2000",
                            shuffle_names=True, shuffle_instance_numbers=True)
    _matches(_load_only_stack(tmp_path), truth)


@pytest.mark.parametrize("orientation", ["sagittal", "oblique"])
def test_orientations(ph: Phantom, orientation: str, tmp_path: Path) -> None:
    truth = write_ct_series(ph, tmp_path, orientation=orientation, shuffle_names=True, shuffle_instance_numbers=True,
                            shift=(5.0, -12.0, -300.0), rescale_slope=0.5)
    _matches(_load_only_stack(tmp_path), truth)


@pytest.mark.parametrize("compression", [None, "rle"])
def test_enhanced_ct(ph: Phantom, compression: str | None, tmp_path: Path) -> None:
    truth = write_enhanced_ct(ph, tmp_path / "enh.dcm", orientation="coronal", compression=compression,
                              shuffle_frames=True, per_frame_rescale=True)
    [stack] = scan([tmp_path]).stacks
    assert all(s.native for s in stack.slices) == (compression is None)  # uncompressed frames: read at their offsets
    vol = _load_only_stack(tmp_path)
    _matches(vol, truth)
    assert vol.frame_numbers == truth.frame_numbers
