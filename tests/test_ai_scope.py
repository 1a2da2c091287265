"""Intended-use rules: the card's ``scope`` parsed (inference.scope) and checked against series (viewer.ai.scope)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.package import ModelPackageError, read_card
from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.ai.scope import acquisition_plane, evaluate_scope, patient_age_years, scope_of_stack
from viewer.dicom import scan
from viewer.dicom.volume import SeriesInfo

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models"
CHEST_SCOPE = {
    "modalities": ["CT"], "body_parts": ["CHEST", "THORAX"], "anatomic_regions": ["SCT:51185008"],
    "series_description": {"exclude": r"head|brain|skull"}, "planes": ["axial"], "reformat": True,
    "slice_thickness_mm": [0.5, 6.0], "pixel_spacing_mm": [0.4, 2.0], "patient_age_years": [18, 120],
    "image_type": {"exclude": ["LOCALIZER", "DERIVED"]},
}


def _package(tmp_path: Path, scope: object) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(BUNDLED / "chest-nodule-demo", dst)
    card = json.loads((dst / "radscope-model.json").read_text())
    card["scope"] = scope
    card.pop("ood", None)
    (dst / "radscope-model.json").write_text(json.dumps(card))
    return dst


AXIAL = np.eye(3)
SAGITTAL = np.array([[0.0, 0, 1], [1, 0, 0], [0, -1, 0]])  # i = +y (P), j = -z (I), k = +x (L)


def _info(**kw: object) -> SeriesInfo:
    base = dict(modality="CT", body_part="CHEST", patient_age="055Y", image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
                slice_thickness=2.5, description="Chest 2.5 mm")
    base.update(kw)
    return SeriesInfo(**base)  # type: ignore[arg-type]


def test_chest_series_is_in_scope(tmp_path: Path) -> None:
    card = read_card(_package(tmp_path, CHEST_SCOPE))
    d = evaluate_scope(card, _info(), AXIAL, (0.7, 0.7, 2.5), 100)
    assert d.in_scope and d.reasons == () and d.plane == "axial" and d.reformat_to is None


@pytest.mark.parametrize(("kw", "geometry", "expected"), [
    ({"body_part": "HEAD"}, None, "Body part HEAD; this model is for CHEST, THORAX"),
    ({"modality": "MR"}, None, "Modality MR; this model is for CT"),
    ({"anatomic_regions": (("SCT", "69536005", "Head"),)}, None,
     "Anatomic region Head (SCT:69536005); this model is for SCT:51185008"),
    ({"description": "BRAIN 5mm"}, None, "Series description 'BRAIN 5mm' matches what this model excludes"),
    ({"slice_thickness": 10.0}, None, "Slice thickness 10 mm; this model is for 0.5-6 mm"),
    ({"patient_age": "008Y"}, None, "Patient age 8 years; this model is for 18-120 years"),
    ({"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, None, "Image type LOCALIZER; this model excludes"),
    ({}, (AXIAL, (0.2, 0.2, 2.5), 100), "Pixel spacing 0.2 x 0.2 mm; this model is for 0.4-2 mm"),
    ({}, (SAGITTAL, (0.7, 0.7, 2.5), 3), "Acquisition plane SAGITTAL; this model is for AXIAL slices (too few slices"),
])
def test_each_rule_says_why(tmp_path: Path, kw: dict, geometry: tuple | None, expected: str) -> None:
    card = read_card(_package(tmp_path, CHEST_SCOPE))
    direction, spacing, n = geometry or (AXIAL, (0.7, 0.7, 2.5), 100)
    d = evaluate_scope(card, _info(**kw), direction, spacing, n)
    assert not d.in_scope and len(d.reasons) == 1 and d.reasons[0].startswith(expected), d.reasons


def test_sagittal_volume_runs_on_axial_reformats_and_silence_is_noted(tmp_path: Path) -> None:
    card = read_card(_package(tmp_path, CHEST_SCOPE))
    d = evaluate_scope(card, _info(body_part="", patient_age=""), SAGITTAL, (0.7, 0.7, 0.8), 60)
    assert d.in_scope and d.plane == "sagittal" and d.reformat_to == "axial"
    assert any("no body part" in n for n in d.notes) and any("patient age" in n for n in d.notes)
    tilted = np.linalg.qr(np.array([[1.0, 0, 0.5], [0, 1, 0], [-0.5, 0, 1]]))[0]
    assert acquisition_plane(tilted)[0] == "oblique"
    assert evaluate_scope(card, _info(), tilted, (0.7, 0.7, 2.5), 60).reformat_to == "axial"


def test_reformats_are_judged_by_the_resolution_the_model_reads(tmp_path: Path) -> None:
    """An axial reformat of a sagittal series has the acquired slice spacing across (x) and the row spacing
    from slice to slice (z): those, not the sagittal pixels, meet the pixel-spacing and thickness rules."""
    from viewer.ai.reformat import resolution_along as reformat_resolution

    card = read_card(_package(tmp_path, {**CHEST_SCOPE, "pixel_spacing_mm": [0.4, 2.0], "slice_thickness_mm": [0.5, 6.0]}))
    assert reformat_resolution(SAGITTAL, (0.7, 2.5, 0.8), "axial") == pytest.approx((0.8, 0.7, 2.5))
    # sagittal CT: 0.7 mm across the body, 2.5 mm rows: axial reformats of 0.8 x 0.7 mm, 2.5 mm apart
    assert evaluate_scope(card, _info(slice_thickness=0.8), SAGITTAL, (0.7, 2.5, 0.8), 60).in_scope
    # sagittal MR: fine 0.5 mm pixels, slices 4 mm apart: its axial reformat has 4 mm pixels across
    d = evaluate_scope(card, _info(slice_thickness=4.0), SAGITTAL, (0.5, 0.5, 4.0), 30)
    assert d.reformat_to == "axial" and d.reasons == ("Axial reformat pixel spacing 0.5 x 4 mm; this model is for "
                                                      "0.4-2 mm",)
    # rows 8 mm apart: the reformat's slices are 8 mm apart in the data, whatever its sampling
    d = evaluate_scope(card, _info(slice_thickness=1.0), SAGITTAL, (0.7, 8.0, 1.0), 30)
    assert d.reasons == ("Axial reformat slices 8 mm apart in the acquired data; this model is for 0.5-6 mm slices",)
    tilted = np.linalg.qr(np.array([[1.0, 0, 0.5], [0, 1, 0], [-0.5, 0, 1]]))[0]
    sx, sy, sz = reformat_resolution(tilted, (0.7, 0.7, 2.5), "axial")
    assert 0.7 < sx < 2.5 and sy == pytest.approx(0.7) and 0.7 < sz < 2.5


def test_ood_majority_puts_a_series_out_of_scope(tmp_path: Path) -> None:
    card = read_card(_package(tmp_path, CHEST_SCOPE))
    d = evaluate_scope(card, _info(), AXIAL, (0.7, 0.7, 2.5), 10)
    assert d.with_ood([False] * 5 + [True] * 5).in_scope
    out = d.with_ood([True] * 7 + [False] * 3)
    assert not out.in_scope and out.reasons == ("images unlike the training data: 7 of 10 slices",)


def test_age_from_birth_date() -> None:
    assert patient_age_years(SeriesInfo(patient_birth_date="20000301", study_date="20260301")) == pytest.approx(26, abs=0.01)
    assert patient_age_years(SeriesInfo(patient_age="006M")) == pytest.approx(0.5)
    assert patient_age_years(SeriesInfo()) is None


@pytest.mark.parametrize(("scope", "message"), [
    ([], "scope must be an object"),
    ({"bodypart": ["CHEST"]}, "scope.bodypart is not a scope rule"),
    ({"series_description": {"exclude": "("}}, "scope.series_description.exclude is not a valid regular expression"),
    ({"planes": ["transverse"]}, "scope.planes must list planes"),
    ({"reformat": True}, "scope.reformat needs planes"),
    ({"slice_thickness_mm": [5, 1]}, "scope.slice_thickness_mm must be [low, high]"),
    ({"anatomic_regions": ["51185008"]}, "scope.anatomic_regions must hold SCHEME:VALUE codes"),
])
def test_bad_rules_name_the_card_and_field(tmp_path: Path, scope: object, message: str) -> None:
    with pytest.raises(ModelPackageError, match="radscope-model.json: " + message.replace("[", r"\[").replace("(", r"\(")):
        read_card(_package(tmp_path, scope))


def test_bundled_ct_model_refuses_real_head_ct_and_mr(tmp_path: Path) -> None:
    """The bundled cards declare rules: real files of other body parts / modalities are out, with reasons."""
    card = read_card(BUNDLED / "chest-nodule-demo")
    assert card.scope is not None
    (mr,) = scan([pydicom_test_file("MR_small.dcm")]).stacks
    assert not scope_of_stack(card, mr).in_scope
    assert scope_of_stack(card, mr).reasons[0].startswith("Modality MR; this model is for CT")
    ds = pydicom.dcmread(pydicom_data_file("693_UNCR.dcm"))  # a real head CT slice (no BodyPartExamined)
    ds.BodyPartExamined = "HEAD"
    ds.save_as(tmp_path / "head.dcm")
    (head,) = scan([tmp_path / "head.dcm"]).stacks
    assert any(r.startswith("Body part HEAD; this model is for CHEST") for r in scope_of_stack(card, head).reasons)
    cxr = read_card(BUNDLED / "cxr-nodule-demo")
    (rg,) = scan([pydicom_data_file("RG1_UNCR.dcm")]).stacks
    assert scope_of_stack(cxr, rg).in_scope, scope_of_stack(cxr, rg).reasons
