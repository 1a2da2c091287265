"""Hostile names for outputs: series written with UIDs that are paths, climb out, hold NUL or are too long.

Each builder writes a 3-slice CT series (tests.hostile._dicom) whose Series and Study Instance UIDs are the
hostile text; ``extra["uid"]`` holds it. Whatever RadScope writes for it (``infer --out``, review and
heatmap exports) must land inside the output folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom.uid import generate_uid

from tests.hostile import case
from tests.hostile._dicom import slice_dataset

HOSTILE_UIDS = {
    "climbs": "../../evil",
    "absolute": "/abs/path",
    "dotdot": "..",
    "dot": ".",
    "nul": "1.2\x00../x",
    "backslash": "..\\..\\evil",
    "long": "9" * 300,
    "empty-ish": " ",
    "device-name": "CON",
}


def write_series(folder: Path, uid: str, n: int = 3) -> Path:
    """``n`` CT slices whose Series and Study Instance UIDs are ``uid``."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = generate_uid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid UI values: that is the point
        for k in range(n):
            ds = slice_dataset(k, series_uid=uid, study_uid=uid, frame_uid=frame)
            ds.save_as(folder / f"s{k}.dcm", enforce_file_format=True)
    return folder


def _register(name: str, uid: str) -> None:
    @case(f"output-uid-{name}", "outputs", outcome="loads", uid=uid)
    def build(folder: Path) -> Path:
        return write_series(folder / "dcm", uid)


for _name, _uid in HOSTILE_UIDS.items():
    _register(_name, _uid)
