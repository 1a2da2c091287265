"""Qt-free display rules: windowing, measurements, annotations, settings, tag trees."""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_test_file
from viewer.dicom.volume import SeriesInfo, WindowPreset
from viewer.display.annotations import ViewState, corner_text
from viewer.display.measure import MeasurementRecord, angle_deg, distance_mm, roi_mask, roi_stats
from viewer.display.settings import ViewerSettings, load_settings, save_settings, settings_path
from viewer.display.tags import build_tag_tree, filter_tree
from viewer.display.windowing import (CT_PRESETS, auto_window, drag_window, initial_window, levels,
                                      preset_by_name, presets_for, to_uint8, window_text)


def test_presets_and_levels() -> None:
    assert [p.name for p in CT_PRESETS] == ["Brain", "Subdural", "Stroke", "Lung", "Mediastinum", "Abdomen",
                                            "Liver", "Bone"]
    assert levels(40, 80) == (0.0, 80.0)
    assert preset_by_name(CT_PRESETS, "lung").center == -600
    with pytest.raises(KeyError, match="Brain"):
        preset_by_name(CT_PRESETS, "nope")


def test_header_windows_come_first_and_ct_gets_presets() -> None:
    ct = SeriesInfo(modality="CT", windows=[WindowPreset("HDR", 30, 300)])
    assert presets_for(ct)[0].name == "HDR" and len(presets_for(ct)) == 9
    assert presets_for(SeriesInfo(modality="MR")) == []
    assert initial_window(ct, np.zeros((2, 2))).name == "HDR"
    assert initial_window(SeriesInfo(modality="CT"), np.zeros((2, 2))).width == 400
    cr = SeriesInfo(modality="CR", windows=[WindowPreset("HDR", 15000, 30000)])
    ramp = np.linspace(1000, 2000, 10_000, dtype=np.float32)
    assert initial_window(cr, ramp).name == "Auto" and initial_window(cr, ramp).width < 1100


def test_auto_window_spans_the_percentiles() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(1000, 3000, size=(512, 512)).astype(np.float32)
    img[100, :200] = 1e6  # 0.1 % hot pixels must not stretch the window
    img[:20] = -5000.0  # nor a collimator edge outside the central part
    w = auto_window(img)
    lo, hi = levels(w.center, w.width)
    assert 1000 < lo < 1040 and 2960 < hi < 3000
    flat = auto_window(np.full((4, 4), 7.0))
    assert flat.center == 7.0 and flat.width > 0


def test_drag_and_uint8() -> None:
    c, w = drag_window(40, 400, dx=10, dy=-5, sensitivity=2)
    assert (c, w) == (30, 420)
    assert drag_window(0, 1, -100, 0, 1)[1] > 0
    out = to_uint8(np.array([-1000.0, 40.0, 1000.0]), -160, 240)
    assert out.tolist() == [0, 127, 255]
    assert to_uint8(np.array([-1000.0]), -160, 240, invert=True).tolist() == [255]
    assert window_text(40, 400) == "W 400 L 40"


def test_distance_on_non_square_pixels_and_angle() -> None:
    # two voxel centres 30 columns and 40 rows apart on 0.5 x 0.75 mm pixels
    sx, sy = 0.5, 0.75
    p0 = (10.5 * sx, 5.5 * sy)
    p1 = (40.5 * sx, 45.5 * sy)
    assert distance_mm(p0, p1) == pytest.approx(math.hypot(15, 30))
    assert angle_deg((1, 0), (0, 0), (0, 1)) == pytest.approx(90)
    assert angle_deg((1, 0), (0, 0), (-1, 0)) == pytest.approx(180)
    assert angle_deg((0, 0), (0, 0), (1, 1)) == 0


def test_roi_stats_on_a_uniform_disc() -> None:
    sx, sy = 0.5, 0.8
    rows, cols = 200, 200
    yy, xx = np.mgrid[:rows, :cols]
    cx, cy, r = 50.0, 80.0, 20.0  # mm
    disc = ((xx + 0.5) * sx - cx) ** 2 + ((yy + 0.5) * sy - cy) ** 2 <= r * r
    img = np.where(disc, 100.0, -50.0).astype(np.float32)
    inner = roi_stats(img, (sx, sy), "ellipse", (cx - 15, cy - 15), (30, 30))
    assert inner.mean == 100 and inner.sd == 0 and inner.minimum == inner.maximum == 100
    assert inner.area_mm2 == pytest.approx(math.pi * 15 * 15)
    assert inner.n_pixels * sx * sy == pytest.approx(inner.area_mm2, rel=0.03)
    whole = roi_stats(img, (sx, sy), "rect", (0, 0), (cols * sx, rows * sy))
    assert whole.minimum == -50 and whole.maximum == 100 and whole.n_pixels == rows * cols


def test_rotated_rect_mask() -> None:
    mask = roi_mask((20, 20), (1.0, 1.0), "rect", (10, 10), (5, 1), 90.0)
    # rotated by 90 degrees in a y-down scene the rectangle runs down from (10, 10)
    ys, xs = np.nonzero(mask)
    assert set(xs) <= {9, 10} and ys.min() >= 10 and ys.max() <= 14
    with pytest.raises(ValueError):
        roi_mask((2, 2), (1, 1), "star", (0, 0), (1, 1))


def test_measurement_record_checks_kind() -> None:
    MeasurementRecord("distance", "axial", 3, [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="known"):
        MeasurementRecord("spline", "axial", 3, [])


def test_annotations_hide_identifying_fields() -> None:
    info = SeriesInfo(modality="CT", patient_name="Doe^Jane", patient_id="ID123", study_date="20240102",
                      description="Chest", series_number=3, study_description="CT THORAX")
    state = ViewState("axial", 4, 10, -12.34, 40, 400, 1.5)
    text = corner_text(info, state)
    joined = "\n".join(sum(text.values(), []))
    assert "Doe Jane" in joined and "ID123" in joined and "2024-01-02" in joined
    assert text["bottom_left"][:2] == ["Im 5/10", "Pos -12.3 mm"]
    assert text["bottom_right"] == ["W 400 L 40", "Zoom 150%"]
    hidden = "\n".join(sum(corner_text(info, state, hide_identifying=True).values(), []))
    assert "Doe" not in hidden and "ID123" not in hidden and "2024" not in hidden and "CT THORAX" in hidden
    compact = corner_text(info, state, compact=True)
    assert compact["top_left"] == ["Doe Jane"] and compact["top_right"] == ["Axial"]
    assert corner_text(info, state, compact=True, patient=False)["top_left"] == []
    assert corner_text(info, state, True, compact=True)["top_left"] == ["(anonymised)"]


def test_settings_roundtrip_and_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    s = ViewerSettings(layout="1x3")
    for n in range(15):
        s.add_recent(f"/p{n}")
    s.add_recent("/p3")
    save_settings(s)
    back = load_settings()
    assert back.layout == "1x3" and back.recent[0] == "/p3" and len(back.recent) == 10
    assert back.recent.count("/p3") == 1
    s.custom_presets = [{"name": "Wide", "center": 0, "width": 4000}, {"name": "broken"}]
    assert s.window_presets() == [WindowPreset("Wide", 0.0, 4000.0)]
    settings_path().write_text("{not json")
    assert load_settings() == ViewerSettings()
    assert "ignoring unreadable settings" in capsys.readouterr().err
    settings_path().write_text(json.dumps({"layout": "1x3", "unknown": 1, "reviewer": "Dr Who"}))
    kept = load_settings()
    assert kept.layout == "1x3" and kept.reviewer == "Dr Who"
    kept.layout = "1x1"
    save_settings(kept)  # keys written by other tools survive a save
    on_disk = json.loads(settings_path().read_text())
    assert on_disk["unknown"] == 1 and on_disk["reviewer"] == "Dr Who" and on_disk["layout"] == "1x1"


def test_tag_tree_search_by_tag_keyword_value_and_nested() -> None:
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"), stop_before_pixels=True)
    item = pydicom.Dataset()
    item.CodeMeaning = "Deeply nested meaning"
    ds.ProcedureCodeSequence = pydicom.Sequence([item])
    tree = build_tag_tree(ds)
    assert tree[0].tag_text.startswith("(0002,")  # file meta first
    by_tag = filter_tree(tree, "(0010,0010)")
    assert [n.keyword for n in by_tag] == ["PatientName"]
    assert filter_tree(tree, "00100010")[0].keyword == "PatientName"
    assert any(n.keyword == "PatientName" for n in filter_tree(tree, "patientn"))
    assert any(n.keyword == "Modality" for n in filter_tree(tree, "CT"))
    nested = filter_tree(tree, "deeply nested")
    assert [n.keyword for n in nested] == ["ProcedureCodeSequence"]
    assert nested[0].children[0].children[0].keyword == "CodeMeaning"
    assert filter_tree(tree, "zzzz-no-such-thing") == []
    hidden = build_tag_tree(ds, hide_identifying=True)
    name = [n for n in hidden if n.keyword == "PatientName"][0]
    assert name.value == "(hidden)" and filter_tree(hidden, str(ds.PatientName)) == []
    assert [n.value for n in hidden if n.keyword == "Modality"] == ["CT"]


@pytest.mark.parametrize("matrix", [np.diag([0.5, 0.8]), np.array([[0.7, 0.3], [0.0, 2.4]])], ids=["square", "sheared"])
def test_roi_mask_matches_brute_force(matrix: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    rows, cols = 40, 50
    cc, rr = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    xs, ys = matrix[0, 0] * cc + matrix[0, 1] * rr, matrix[1, 0] * cc + matrix[1, 1] * rr
    for _ in range(20):
        pos = tuple(rng.uniform(-5, 30, 2))
        size = tuple(rng.uniform(1, 25, 2))
        angle = float(rng.uniform(-180, 180))
        t = math.radians(angle)
        u = math.cos(t) * (xs - pos[0]) + math.sin(t) * (ys - pos[1])
        v = -math.sin(t) * (xs - pos[0]) + math.cos(t) * (ys - pos[1])
        w, h = size
        rect = (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
        ellipse = ((u - w / 2) / (w / 2)) ** 2 + ((v - h / 2) / (h / 2)) ** 2 <= 1
        np.testing.assert_array_equal(roi_mask((rows, cols), matrix, "rect", pos, size, angle), rect)
        np.testing.assert_array_equal(roi_mask((rows, cols), matrix, "ellipse", pos, size, angle), ellipse)
