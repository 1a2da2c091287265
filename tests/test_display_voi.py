"""VOI: VOI LUT Sequence tables and VOI LUT Functions (LINEAR, LINEAR_EXACT, SIGMOID) shown as pydicom's
`apply_voi_lut` computes them, on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from tests.conftest import pydicom_test_file
from viewer.dicom import load_volume, scan
from viewer.display.windowing import apply_mapping, display_mapping, initial_window, preset_mapping


def _pydicom_grey(ds: pydicom.Dataset, index: int = 0) -> np.ndarray:
    """pydicom's VOI output as [0, 1] grey (its output range: the LUT's bits, or the stored range)."""
    modality = apply_modality_lut(ds.pixel_array, ds)
    out = apply_voi_lut(modality, ds, index=index).astype(np.float64)
    if "VOILUTSequence" in ds:
        return out / float(2 ** int(ds.VOILUTSequence[index].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    y_min, y_max = (0, 2**bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
    return (out - y_min) / (y_max - y_min)


def test_voi_lut_sequence_of_a_real_file_matches_pydicom() -> None:
    path = pydicom_test_file("vlut_04.dcm")
    [stack] = scan([path]).stacks
    [preset] = [w for w in stack.info.windows if w.function == "LUT"]
    assert preset.lut is not None and len(preset.lut.data) == 256 and preset.lut.bits == 16
    vol = load_volume(stack)
    ours = apply_mapping(vol.array[0], preset_mapping(preset))
    theirs = _pydicom_grey(pydicom.dcmread(path))
    assert np.allclose(ours, theirs, atol=1e-6)
    assert initial_window(stack.info, vol.array[0]) == preset  # the table is what the image is meant to look like
    assert len(np.unique(ours)) > 100  # not a trivial mapping


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_voi_lut_functions_match_pydicom(tmp_path: Path, function: str) -> None:
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = [60.0, -500.0], [350.0, 1200.0]
    ds.WindowCenterWidthExplanation = ["SOFT", "LUNG"]
    ds.VOILUTFunction = function
    ds.save_as(tmp_path / "ct.dcm")
    ds = pydicom.dcmread(tmp_path / "ct.dcm")
    [stack] = scan([tmp_path / "ct.dcm"]).stacks
    assert [(w.name, w.function) for w in stack.info.windows] == [("SOFT", function), ("LUNG", function)]
    vol = load_volume(stack)
    for index, preset in enumerate(stack.info.windows):
        ours = apply_mapping(vol.array[0], preset_mapping(preset))
        theirs = _pydicom_grey(ds, index)
        # the sigmoid is drawn from a 256-entry table: within half a bin of the curve
        assert np.abs(ours - theirs).max() <= (0.008 if function == "SIGMOID" else 1e-6), preset
        assert 0.05 < float(np.mean((ours > 0.01) & (ours < 0.99))) or function != "SIGMOID"


def test_linear_is_dicoms_half_unit_window() -> None:
    assert display_mapping(40, 400, "LINEAR") == ((-160.0, 239.0), None)  # c - 0.5 -+ (w - 1) / 2
    assert display_mapping(40, 400, "LINEAR_EXACT") == ((-160.0, 240.0), None)
    (lo, hi), table = display_mapping(0, 100, "SIGMOID")
    assert table is not None and table[0] < 0.001 and table[-1] > 0.999 and (lo, hi) == (-200.0, 200.0)
