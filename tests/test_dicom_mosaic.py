"""Siemens mosaics: tiles unpacked into slices whose positions match the scanner's own protocol."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer.dicom import load_volume, scan
from viewer.dicom.mosaic import CsaError, read_csa

MOSAIC = Path(__file__).parent / "data" / "siemens_mosaic_axasc35.dcm"


def _protocol_slice_centres(ds: pydicom.Dataset) -> np.ndarray:
    """Slice centres from the Phoenix protocol in the CSA series header (Siemens: FOV centre = index N/2)."""
    text = read_csa(ds[0x00291020].value)["MrPhoenixProtocol"][0]
    found: dict[int, dict[str, float]] = {}
    for m in re.finditer(r"sSliceArray\.asSlice\[(\d+)\]\.sPosition\.d(Sag|Cor|Tra)\s*=\s*([-\d.eE+]+)", text):
        found.setdefault(int(m.group(1)), {})[m.group(2)] = float(m.group(3))
    return np.array([[p.get("Sag", 0.0), p.get("Cor", 0.0), p.get("Tra", 0.0)] for _, p in sorted(found.items())])


def test_real_mosaic_unpacks_onto_the_protocol_slices() -> None:
    ds = pydicom.dcmread(MOSAIC)
    [stack] = scan([MOSAIC]).stacks
    assert (stack.n_slices, stack.rows, stack.columns) == (35, 64, 64)
    assert stack.warnings == []
    assert stack.spacing_zyx == pytest.approx((3.6, 3.25, 3.25), abs=1e-6)
    vol = load_volume(stack)
    centres = _protocol_slice_centres(ds)
    ours = np.array([vol.index_to_lps((32, 32, k)) for k in range(35)])
    assert np.allclose(ours, centres, atol=0.01)  # every slice, in order
    mosaic = ds.pixel_array
    for k in (0, 7, 34):  # ascending acquisition: slice k is tile k, row-major in a 6 x 6 grid
        r, c = divmod(k, 6)
        assert np.array_equal(vol.array[k], mosaic[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64].astype(np.float32))
    assert vol.array[34].max() > 0 and not np.any(mosaic[320:, 320:])  # tile 35 is empty padding


def test_mosaic_without_usable_csa_is_kept_whole_with_a_warning(tmp_path: Path) -> None:
    ds = pydicom.dcmread(MOSAIC)
    ds[0x00291010].value = b"SV10\x04\x03\x02\x01" + b"\xff" * 40
    ds.save_as(tmp_path / "broken_csa.dcm")
    [stack] = scan([tmp_path]).stacks
    assert (stack.n_slices, stack.rows, stack.columns) == (1, 384, 384)
    assert any("mosaic" in w for w in stack.warnings)


def test_csa_parser_refuses_garbage() -> None:
    for junk in (b"", b"SV10\x04\x03\x02\x01", b"SV10\x04\x03\x02\x01" + struct.pack("<2I", 5000, 77)):
        with pytest.raises(CsaError):
            read_csa(junk)
