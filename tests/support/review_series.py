"""Generated data for the review tests: a small CT series made from pydicom's CT_small.dcm.

Each slice gets new UIDs and a known position, so tests know the truth they assert against.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import pydicom_test_file
from viewer.review.model import ImageContext, ModelInfo, Region
from viewer.review.store import ReviewStore
from viewer.review.source import context_from_dataset

SLICE_STEP_MM = 2.5
MODEL = ModelInfo("chest-nodule-demo", "1.0.0", "ab" * 32)


def make_ct_series(
    folder: Path, n: int = 4, *, study_uid: str | None = None, manufacturer: str = "GE MEDICAL SYSTEMS",
    sex: str = "F", age: str = "045Y", kvp: float = 120.0,
) -> list[Dataset]:
    """Write ``n`` CT slices (file names shuffled against slice order); return them in slice order.

    Slice ``k`` lies at z = -75.7 + k * SLICE_STEP_MM with the IOP of CT_small (axial), so its
    slice index in RadScope's order (increasing along the normal) is ``k``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    names = [f"img{i:03d}.dcm" for i in range(n)]
    random.Random(n).shuffle(names)
    out = []
    for k in range(n):
        ds = copy.deepcopy(template)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        x, y, z = (float(v) for v in template.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + k * SLICE_STEP_MM]
        ds.InstanceNumber = n - k  # deliberately against the geometric order
        ds.Manufacturer, ds.PatientSex, ds.PatientAge, ds.KVP = manufacturer, sex, age, kvp
        ds.BodyPartExamined = "CHEST"
        ds.save_as(folder / names[k], enforce_file_format=True)
        out.append(ds)
    return out


def context_of(ds: Dataset, k: int, **extra: object) -> ImageContext:
    """The flag context of a generated slice with the demo model in force."""
    extra.setdefault("model", MODEL)
    extra.setdefault("method", "gradcam")
    extra.setdefault("threshold", 0.5)
    return context_from_dataset(ds, k, **extra)  # type: ignore[arg-type]


def flagged_store(tmp_path: Path) -> tuple[ReviewStore, list[Dataset]]:
    """A store under ``tmp_path`` with flags of four reviewers on a 4-slice CT: every region kind, an
    image-level flag, non-ASCII text, a label longer than a Code Meaning, and a reviewer (lee) whose
    only flag is deleted."""
    series = make_ct_series(tmp_path / "ct", 4)
    store = ReviewStore(tmp_path / "r.sqlite3")
    store.add_flag(context_of(series[0], 0), "false_positive", "nodule", reviewer="Smith^Ann",
                   region=Region.make("rectangle", [(1, 2), (10, 12)]), comment="vessel")
    store.add_flag(context_of(series[1], 1), "correct", "nodule", reviewer="Smith^Ann",
                   region=Region.make("ellipse", [(10, 20), (30, 26)]))
    store.add_flag(context_of(series[2], 2), "missed", "nodule", reviewer="jones", region=Region.make("point", [(5, 6)]))
    store.add_flag(context_of(series[2], 2), "uncertain", "effusion", reviewer="jones", comment="Gefäß? 血管")
    store.add_flag(context_of(series[3], 3), "mislocalised", "a very long label " * 5, reviewer="kim",
                   region=Region.make("polygon", [(3, 3), (40, 5), (20, 50), (2, 30)]))
    gone = store.add_flag(context_of(series[3], 3), "false_positive", "nodule", reviewer="lee")
    store.delete_flag(gone)  # lee has no live flag: no SR for lee
    return store, series
