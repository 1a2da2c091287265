"""The main window opening real DICOM through the engine: progressive load, errors panel, real files
(CT_small, MR_small, the RG1_UNCR chest radiograph), tag search, and ``radscope --screenshot``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.qt.main_window import ViewerWindow
from viewer.qt.qt import QtGui

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]

SAGITTAL_IOP = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # columns run posterior, rows run inferior


def write_series(folder: Path, n: int = 12, rows: int = 40, cols: int = 50, pixel=(0.9, 0.6), step: float = 2.0,
                 iop=SAGITTAL_IOP) -> np.ndarray:
    """A CT series in shuffled file names with known HU values ``10*k + j`` (k in slice-normal order, j row);
    returns the expected (k, j, i) HU array. Slice 0 carries a nested sequence for the tag browser."""
    folder.mkdir(parents=True, exist_ok=True)
    row_dir, col_dir = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(row_dir, col_dir)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    truth = np.zeros((n, rows, cols), dtype=np.float32)
    order = np.random.default_rng(1).permutation(n)
    for k in range(n):
        hu = (10 * k + np.arange(rows)[:, None] + np.zeros((1, cols))).astype(np.int16) - 1000
        truth[k] = hu
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Test^Patient", "PX1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "Sagittal test", 2, int(order[k]) + 1
        ds.ImageOrientationPatient = list(iop)
        ds.ImagePositionPatient = list(np.array([10.0, -20.0, 30.0]) + normal * step * k)
        ds.PixelSpacing = list(pixel)
        ds.SliceThickness = step
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1000
        ds.WindowCenter, ds.WindowWidth = 40, 400
        if k == 0:
            item = pydicom.Dataset()
            item.CodeMeaning = "Nested needle"
            ds.ProcedureCodeSequence = pydicom.Sequence([item])
        ds.PixelData = (hu + 1000).astype(np.int16).tobytes()
        ds.save_as(folder / f"f{order[k]:03d}.dcm", enforce_file_format=True)
    return truth



def open_and_wait(window: ViewerWindow, qtbot, paths) -> None:
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)


def test_generated_series_loads_progressively_with_errors_panel(window: ViewerWindow, qtbot, tmp_path) -> None:
    truth = write_series(tmp_path / "series")
    (tmp_path / "series" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    shown: list[str] = []
    window.seriesShown.connect(shown.append)
    open_and_wait(window, qtbot, [tmp_path / "series"])
    assert shown and window.first_slice_s is not None
    np.testing.assert_array_equal(window.model.volume.array, truth)
    assert window.series_browser.stack_ids() == [window.stack_id]
    assert not window.series_browser.topLevelItem(0).child(0).icon(0).isNull()  # thumbnail
    errors = window.errors_panel.errors()
    assert any(path.endswith("broken.dcm") and reason for path, reason in errors)
    assert window.errors_dock.isVisible()
    view = window.views[0]
    assert view.slice_index == 6  # the middle slice was decoded first and shown
    # a sagittal acquisition: anterior on screen left, head up
    assert view.plane.letters(window.model.volume.direction) == {"left": "A", "right": "P", "top": "S",
                                                                 "bottom": "I"}
    rect = view.image_item.mapRectToParent(view.image_item.boundingRect())
    assert (rect.width(), rect.height()) == pytest.approx((50 * 0.6, 40 * 0.9))
    window.set_layout("1x3")
    axial, coronal, sagittal = window.views
    assert sagittal.plane.slice_axis == 0 and axial.spacing_xy == pytest.approx((2.0, 0.6))
    assert axial.plane.letters(window.model.volume.direction) == {"left": "R", "right": "L", "top": "A",
                                                                  "bottom": "P"}


def test_tag_browser_searches_keyword_tag_value_and_sequences(window: ViewerWindow, qtbot, tmp_path) -> None:
    write_series(tmp_path / "s", n=3)
    window.open_panel("tags")
    open_and_wait(window, qtbot, [tmp_path / "s"])
    window.active_view.set_slice(0)
    tb = window.tag_browser
    qtbot.waitUntil(lambda: tb.title.text() == "Slice 1/3", timeout=5000)
    assert "PatientName" in tb.visible_keywords()
    tb.search.setText("(0010,0020)")
    assert tb.visible_keywords() == ["PatientID"]
    tb.search.setText("sagittal test")
    assert tb.visible_keywords() == ["SeriesDescription"]
    tb.search.setText("needle")
    assert tb.visible_keywords() == ["ProcedureCodeSequence", "Item 1", "CodeMeaning"]
    window.active_view.set_slice(2)  # slice 2 has no such sequence: the search is re-applied
    qtbot.waitUntil(lambda: tb.visible_keywords() == [], timeout=5000)


def test_ct_small_probe_is_hounsfield(window: ViewerWindow, qtbot) -> None:
    path = pydicom_test_file("CT_small.dcm")
    open_and_wait(window, qtbot, [path])
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    view = window.views[0]
    sx, sy = view.spacing_xy
    text = view.probe_text((40 + 0.5) * sx, (70 + 0.5) * sy)
    assert f"value {hu[70, 40]:.6g} HU" in text and "i 40, j 70, k 0" in text
    windows = window.model.volume.info.windows
    expected = (windows[0].center, windows[0].width) if windows else (40.0, 400.0)
    assert (window.model.center, window.model.width) == expected  # CT opens on its header window
    assert [p.name for p in window.model.presets][-8:][0] == "Brain"  # then the CT presets


def test_mr_small_gets_an_auto_window(window: ViewerWindow, qtbot) -> None:
    open_and_wait(window, qtbot, [pydicom_test_file("MR_small.dcm")])
    m = window.model
    img = m.volume.array[0]
    lo, hi = m.center - m.width / 2, m.center + m.width / 2
    assert img.min() <= lo < hi <= img.max()
    assert window.layout_actions["1x1"].isChecked()


def test_chest_radiograph_monochrome1_is_inverted_and_upright(window: ViewerWindow, qtbot) -> None:
    open_and_wait(window, qtbot, [pydicom_data_file("RG1_UNCR.dcm")])
    m = window.model
    assert m.volume.info.monochrome1 and m.invert and window.invert_action.isChecked()
    view = window.views[0]
    assert view.plane.letters(m.volume.direction) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert view.spacing_unknown  # the header's PixelSpacing is 0\0
    window.invert_action.trigger()
    assert not m.invert


def _run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"QT_QPA_PLATFORM": "offscreen", "RADSCOPE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=Path(__file__).resolve().parents[1])


def test_screenshot_cli_renders_the_real_window(tmp_path, radscope_home) -> None:
    out = tmp_path / "shot.png"
    r = _run_cli(str(pydicom_test_file("CT_small.dcm")), "--screenshot", str(out), "--panel", "tags",
                 "--model", "no-such-model", home=radscope_home)
    assert r.returncode == 0, r.stderr
    assert "cannot use model 'no-such-model'" in r.stderr  # reported, the images still show
    img = QtGui.QImage(str(out))
    assert img.width() >= 1200 and img.height() >= 800
    small = img.scaled(160, 100)
    colours = {small.pixel(x, y) for x in range(160) for y in range(100)}
    assert len(colours) > 200  # not blank: image, panels and text
    bad = _run_cli("--panel", "nope", home=radscope_home)
    assert bad.returncode == 2 and "known panels: series, tags, errors, ai" in bad.stderr


def test_thumbnails_keep_the_true_aspect_and_monochrome1() -> None:
    from viewer.qt.workers import thumbnail

    img = np.tile(np.arange(200, dtype=np.uint16), (40, 1))  # 40 rows of 2.5 mm, 200 columns of 0.7 mm
    thumb = thumbnail(img, (2.5, 0.7), inverted=False)
    true_aspect = (40 * 2.5) / (200 * 0.7)  # height / width in mm
    assert thumb.dtype == np.uint8 and max(thumb.shape) <= 4 * 96
    assert thumb.shape[0] / thumb.shape[1] == pytest.approx(true_aspect, rel=0.2)  # not the raw 40/200
    assert thumb[0, 0] < thumb[0, -1]
    inverted = thumbnail(img, (2.5, 0.7), inverted=True)
    assert inverted[0, 0] > inverted[0, -1]


def test_colour_file_dropped_on_the_window_shows_in_colour(window: ViewerWindow, qtbot) -> None:
    from viewer.qt.qt import QPointF, Qt, QtCore

    path = pydicom_test_file("SC_rgb.dcm")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    enter = QtGui.QDragEnterEvent(QtCore.QPoint(300, 300), Qt.DropAction.CopyAction, mime,
                                  Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None, timeout=30_000)
    m = window.model
    expected = pydicom.dcmread(path).pixel_array
    assert m.is_color
    np.testing.assert_array_equal(m.volume.array[0], expected)
    assert window.views[0].image_item.image.shape == expected.shape


def test_hide_identifying_covers_browser_tags_and_annotations(window: ViewerWindow, qtbot, tmp_path) -> None:
    write_series(tmp_path / "s", n=2)
    window.open_panel("tags")
    open_and_wait(window, qtbot, [tmp_path / "s"])
    qtbot.waitUntil(lambda: "PatientName" in window.tag_browser.visible_keywords(), timeout=5000)
    study_row = window.series_browser.topLevelItem(0)
    assert "Test Patient" in study_row.text(0)
    window.hide_id_action.trigger()
    assert "Test Patient" not in window.series_browser.topLevelItem(0).text(0)
    assert window.series_browser.topLevelItem(0).child(0).text(0) == "Sagittal test"
    tb = window.tag_browser
    tb.search.setText("Test^Patient")
    assert tb.visible_keywords() == []
    tb.search.setText("PatientName")
    assert [tb.tree.topLevelItem(0).text(1), tb.tree.topLevelItem(0).text(3)] == ["PatientName", "(hidden)"]
    assert window.views[0].hide_identifying


def test_siemens_mosaic_thumbnail_shows_one_tile_not_the_grid(window: ViewerWindow, qtbot) -> None:
    """The 384x384 stored image is a 6x6 grid of 64x64 tiles: the series' thumbnail is its middle tile."""
    from viewer.dicom import scan
    from viewer.dicom.pixels import decode_slice

    path = Path(__file__).parent / "data" / "siemens_mosaic_axasc35.dcm"
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded,
                    timeout=30_000)
    stack = next(iter(window.stacks.values()))
    icon = window.series_browser._icons[stack.stack_id]
    size = icon.availableSizes()[0]
    assert (size.width(), size.height()) == (64, 64)  # one tile (the whole mosaic would be 96 x 96 after scaling)
    middle = decode_slice(stack.slices[len(stack.slices) // 2])
    image = icon.pixmap(size).toImage()
    grey = np.array([[image.pixelColor(c, r).red() for c in range(64)] for r in range(64)], dtype=float)
    assert np.corrcoef(grey.ravel(), middle.ravel())[0, 1] > 0.9  # and it is that tile's image
    assert scan([str(path)]).stacks[0].n_slices == 35
