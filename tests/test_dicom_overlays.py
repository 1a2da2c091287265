"""DICOM overlay planes (60xx): a lesion marked on the scanner is drawn where it was marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.dicom.fastheader import read_fast
from viewer.dicom.loader import open_volume
from viewer.state.series import DICOM_OVERLAY, SeriesState


@pytest.mark.parametrize("path", [pydicom_data_file("MR-SIEMENS-DICOM-WithOverlays.dcm"),
                                  pydicom_test_file("examples_overlay.dcm")], ids=lambda p: p.name)
def test_marked_lesion_overlay_lies_on_the_image_grid(path: Path) -> None:
    truth = pydicom.dcmread(path).overlay_array(0x6000).astype(bool)  # pydicom's own reading of the plane
    vol = open_volume(path)
    assert vol.overlay is not None and vol.overlay.shape == vol.shape
    assert np.array_equal(vol.overlay[0].astype(bool), truth) and truth.sum() > 200
    series = SeriesState(vol)  # the shown series draws it as an opaque layer above the image
    layer = series.overlay(DICOM_OVERLAY)
    assert layer is not None and layer.visible and layer.opacity == 1.0
    shown = np.asarray(layer.array[0])
    assert np.array_equal(shown > 0.5, truth) and shown.max() == pytest.approx(1.0)


def test_fast_header_path_notes_overlay_data(tmp_path: Path) -> None:
    plain = pydicom_test_file("CT_small.dcm")
    fast = read_fast(str(plain), plain.stat().st_size)
    assert fast is not None and "OverlayData" not in fast
    path = _with_overlay(tmp_path, base=plain, group=0x601E)
    fast = read_fast(str(path), path.stat().st_size)
    assert fast is not None and "OverlayData" in fast  # the fast path read it, and saw the last overlay group
    vol = open_volume(path)
    assert vol.overlay is not None and int(vol.overlay.sum()) == 9


def test_series_without_overlays_has_no_layer() -> None:
    vol = open_volume(pydicom_test_file("CT_small.dcm"))
    assert vol.overlay is None and SeriesState(vol).overlay(DICOM_OVERLAY) is None


def _with_overlay(tmp_path: Path, group: int = 0x6002, base: Path | None = None, **fields: object) -> Path:
    """emri_small (10 frames of 64 x 64), or ``base``, with a 3 x 3 mark in an 8 x 8 overlay plane."""
    ds = pydicom.dcmread(base or pydicom_data_file("emri_small.dcm"))
    rows, cols = int(fields.pop("rows", 8)), int(fields.pop("cols", 8))
    frames = int(fields.pop("frames", 1))
    bits = np.zeros((frames, rows, cols), dtype=np.uint8)
    bits[:, 2:5, 3:6] = 1
    data = np.packbits(bits.reshape(-1), bitorder="little").tobytes()
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", cols)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", list(fields.pop("origin", [11, 21])))
    ds.add_new((group, 0x0100), "US", int(fields.pop("bits", 1)))
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x0015), "IS", frames)
    ds.add_new((group, 0x0051), "US", int(fields.pop("first", 1)))
    ds.add_new((group, 0x3000), "OW", fields.pop("data", data))
    path = tmp_path / "emri_overlay.dcm"
    ds.save_as(path)
    return path


def test_multi_frame_overlay_marks_only_its_frames_at_its_origin(tmp_path: Path) -> None:
    vol = open_volume(_with_overlay(tmp_path, frames=2, first=4))  # frames 4 and 5 carry the 3 x 3 mark
    assert vol.overlay is not None
    marked = [k for k in range(vol.shape[0]) if vol.overlay[k].any()]
    assert [vol.frame_numbers[k] for k in marked] == [4, 5]
    rows, cols = np.nonzero(vol.overlay[marked[0]])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 14, 23, 25)  # origin 11, 21 is 1-based


@pytest.mark.parametrize(("fields", "reason"), [
    ({"data": b"\x00\x01"}, "needed"),
    ({"origin": [500, 500]}, "outside"),
    ({"bits": 8}, "1-bit"),
])
def test_unusable_overlay_is_named_and_the_image_still_shows(tmp_path: Path, fields: dict[str, object],
                                                             reason: str) -> None:
    vol = open_volume(_with_overlay(tmp_path, **fields))
    assert vol.overlay is None and vol.array.shape == (10, 64, 64)
    notes = [w for w in vol.warnings if "overlay 6002" in w]
    assert len(notes) == 1 and reason in notes[0] and "emri_overlay.dcm" in notes[0]


def test_overlay_partly_outside_the_image_is_clipped(tmp_path: Path) -> None:
    vol = open_volume(_with_overlay(tmp_path, origin=[62, -1]))
    assert vol.overlay is not None
    rows, cols = np.nonzero(vol.overlay[0])
    assert rows.tolist() and rows.min() == 63 and cols.max() == 3  # rows 63.. and columns ..3 of the 3 x 3 mark


def test_overlay_layer_reads_the_volume_marks_without_a_copy() -> None:
    vol = open_volume(pydicom_data_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    layer = SeriesState(vol).overlay(DICOM_OVERLAY)
    assert layer is not None and np.shares_memory(layer.array.codes, vol.overlay)


@pytest.mark.parametrize(("tag", "vr", "value"), [
    (0x0050, "SS", b"\x01\x00\x01"),  # an origin of 3 bytes: pydicom cannot convert it (BytesLengthException)
    (0x0010, "US", b"\x08"),  # Overlay Rows of one byte
    (0x0050, "DS", b"inf\\1"),  # an origin int() overflows on
], ids=["origin-3-bytes", "rows-1-byte", "origin-inf"])
def test_overlay_with_unconvertible_attribute_spoils_only_itself(tmp_path: Path, tag: int, vr: str,
                                                                 value: bytes) -> None:
    path = _with_overlay(tmp_path, group=0x6000)  # a good plane in 6000 ...
    ds = pydicom.dcmread(path)
    for element in (0x0010, 0x0011, 0x0050, 0x0100, 0x3000):  # ... and a copy of it in 6002, one value broken
        ds.add_new((0x6002, element), ds[0x6000, element].VR, ds[0x6000, element].value)
    ds[0x6002, tag] = RawDataElement(Tag(0x6002, tag), vr, len(value), value, 0, False, True)
    ds.save_as(path)
    vol = open_volume(path)
    assert vol.overlay is not None and int(vol.overlay[0].sum()) == 9  # the good plane still shows
    notes = [w for w in vol.warnings if "overlay 6002" in w]
    assert len(notes) == 1 and "unreadable" in notes[0] and "emri_overlay.dcm" in notes[0]


def test_multi_frame_overlay_frames_off_byte_boundaries(tmp_path: Path) -> None:
    vol = open_volume(_with_overlay(tmp_path, rows=5, cols=7, frames=3, first=2))  # 35 bits a frame
    assert vol.overlay is not None
    for k in range(vol.shape[0]):
        rows, cols = np.nonzero(vol.overlay[k])
        if vol.frame_numbers[k] in (2, 3, 4):
            assert (rows.min(), rows.max(), cols.min(), cols.max(), rows.size) == (12, 14, 23, 25, 9)
        else:
            assert rows.size == 0
