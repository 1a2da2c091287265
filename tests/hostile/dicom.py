"""Hostile DICOM folders: a good series plus bad files beside it (``bad``: the names that must be errors)."""

from __future__ import annotations

from pathlib import Path

from tests.hostile import case
from tests.hostile._dicom import good_series


@case("dicom-truncated-pixels", "dicom", mentions=("truncated",), good=1, bad=("bad.dcm",))
def truncated_pixels(folder: Path) -> Path:
    files = good_series(folder)
    data = files[0].read_bytes()
    (folder / "bad.dcm").write_bytes(data[: len(data) - 100])
    return folder
