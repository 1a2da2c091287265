"""Hostile DICOM folders: a good series plus bad files beside it (``bad``: the names that must be errors)."""

from __future__ import annotations

from pathlib import Path

from tests.hostile import case
from tests.hostile._dicom import corrupt_j2k, good_series


@case("dicom-truncated-pixels", "dicom", mentions=("truncated",), good=1, bad=("bad.dcm",))
def truncated_pixels(folder: Path) -> Path:
    files = good_series(folder)
    data = files[0].read_bytes()
    (folder / "bad.dcm").write_bytes(data[: len(data) - 100])
    return folder


@case("dicom-corrupt-j2k", "dicom", mentions=("JPEG 2000",), good=1, bad=("corrupt_j2k.dcm",))
def corrupt_j2k_beside_good_series(folder: Path) -> Path:
    """A garbled JPEG 2000 codestream (python-gdcm aborts on it) beside a good series."""
    good_series(folder, rows=64, cols=64)
    corrupt_j2k(folder / "corrupt_j2k.dcm")
    return folder
