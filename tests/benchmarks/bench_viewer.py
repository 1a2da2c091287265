"""Viewer speed: a slice change on a 512x512 image (new slice + window + overlay drawn), and the time until
the first slice of a 300-slice series is on screen.

Run: ``python -m tests.benchmarks viewer`` (offscreen). The reference measured in the same run is
pyqtgraph's plain ``ImageItem.setImage`` of the same slice in a bare GraphicsView, repainted the same way.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GOAL_SLICE_MS = 5.0
GOAL_FIRST_S = 0.3
N_SLICES = 300
_KEEP: list[object] = []


def _median_ms(fn, n: int) -> tuple[float, float]:
    """(wall, CPU) median milliseconds of ``fn(i)``; CPU time is less disturbed by other processes on a
    shared machine (the paint runs on this thread only)."""
    wall, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.thread_time()
        fn(i)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def bench_slice_change() -> None:
    from viewer.dicom.volume import SeriesInfo, Volume
    from viewer.display.colormaps import overlay_lut
    from viewer.qt.qt import QtWidgets, pg
    from viewer.qt.series_model import Overlay, SeriesModel
    from viewer.qt.slice_view import SliceView

    from viewer.display.coded import CodedVolume, encode_unit

    rng = np.random.default_rng(0)
    n = 40
    # as the viewer holds them: the stored int16 HU and the heat map as uint8 codes times each slice's score
    arr = rng.normal(0, 300, (n, 512, 512)).astype(np.int16)
    heat = CodedVolume(encode_unit(rng.random((n, 512, 512), dtype=np.float32)), rng.random(n, dtype=np.float32) / 255)
    vol = Volume(arr, (0, 0, 0), (0.7, 0.7, 2.5), np.eye(3), [""] * n, info=SeriesInfo(modality="CT"))
    model = SeriesModel(vol)
    model.add_overlay(Overlay("heat", heat, overlay_lut("jet"), 0.5))
    arr32 = arr.astype(np.float32)  # the reference draws float32 slices
    view = SliceView("acquisition")
    view.resize(800, 800)
    view.set_model(model)
    view.show()
    QtWidgets.QApplication.processEvents()

    def change(i: int) -> None:
        view.set_slice(i % n)
        model.set_window(40 + (i % 7), 400)
        view.viewport().repaint()

    ref_view = pg.GraphicsView()
    vb = pg.ViewBox(lockAspect=True, invertY=True)
    ref_view.setCentralItem(vb)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    ref_view.resize(800, 800)
    ref_view.show()
    item.setImage(arr32[0], autoLevels=False, levels=(-160, 240))
    vb.autoRange()
    QtWidgets.QApplication.processEvents()

    def plain(i: int) -> None:
        item.setImage(arr32[i % n], autoLevels=False, levels=(-160 + (i % 7), 240))
        ref_view.viewport().repaint()

    for fn in (change, plain):  # warm-up
        for i in range(5):
            fn(i)
    # alternate repeats so load from other processes hits both alike; keep the best median of each
    runs = [(_median_ms(change, 60), _median_ms(plain, 60)) for _ in range(3)]
    ours_wall, ours_cpu = min(r[0][0] for r in runs), min(r[0][1] for r in runs)
    ref_wall, ref_cpu = min(r[1][0] for r in runs), min(r[1][1] for r in runs)
    print(f"slice change 512x512 (slice + window + overlay + annotations, repaint): median {ours_wall:.2f} ms wall "
          f"= {ours_wall / GOAL_SLICE_MS:.2f}x the {GOAL_SLICE_MS:.0f} ms goal ({ours_cpu:.2f} ms CPU "
          f"= {ours_cpu / GOAL_SLICE_MS:.2f}x)")
    print(f"reference: plain pyqtgraph ImageItem.setImage + repaint of the same slice (no overlay, no text): "
          f"median {ref_wall:.2f} ms wall, {ref_cpu:.2f} ms CPU (ours / reference = {ours_wall / ref_wall:.2f} wall, "
          f"{ours_cpu / ref_cpu:.2f} CPU)")
    view.hide()
    ref_view.hide()
    _KEEP.extend([view, ref_view, model])  # deleting pyqtgraph views mid-run can crash at exit

def _blob_heatmaps(n: int, size: int = 512, seed: int = 0) -> np.ndarray:
    """(n, size, size) float32 Grad-CAM-like maps: 1-3 smooth blobs per slice (sigma 12-40 px) peaking at
    0.3-1.0, so the 0.5 isoline crosses most slices with one to three closed lines of varying length."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((n, size, size), np.float32)
    for k in range(n):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(60, size - 60, 2)
            sigma, peak = rng.uniform(12, 40), rng.uniform(0.3, 1.0)
            np.maximum(out[k], peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)), out=out[k])
    return out


def bench_contour() -> None:
    """Contour (isoline) mode against the filled overlay, same maps, same view, alternating runs."""
    from viewer.dicom.volume import SeriesInfo, Volume
    from viewer.display.colormaps import overlay_lut
    from viewer.qt.qt import QtWidgets
    from viewer.qt.series_model import Overlay, SeriesModel
    from viewer.qt.slice_view import SliceView

    n = 40
    arr = np.random.default_rng(1).normal(0, 300, (n, 512, 512)).astype(np.float32)
    heat = _blob_heatmaps(n)
    vol = Volume(arr, (0, 0, 0), (0.7, 0.7, 2.5), np.eye(3), [""] * n, info=SeriesInfo(modality="CT"))
    model = SeriesModel(vol)
    lut = overlay_lut("jet")
    lut[: 128, 3] = 0  # the AI panel's filled LUT: transparent below the 0.5 threshold
    model.add_overlay(Overlay("AI nodule", heat, lut, 0.5))
    view = SliceView("acquisition")
    view.resize(800, 800)
    view.set_model(model)
    view.show()
    QtWidgets.QApplication.processEvents()
    ov = model.overlays[0]

    def change(i: int) -> None:
        view.set_slice(i % n)
        view.viewport().repaint()

    def mode(level: float | None):  # type: ignore[no-untyped-def]
        def run(i: int) -> None:
            if ov.contour != level:
                ov.contour = level
                model.overlaysChanged.emit()
            change(i)
        return run

    filled, contour = mode(None), mode(0.5)
    for fn in (filled, contour):
        for i in range(5):
            fn(i)
    runs = [(_median_ms(filled, 2 * n), _median_ms(contour, 2 * n)) for _ in range(3)]
    f_wall, f_cpu = min(r[0][0] for r in runs), min(r[0][1] for r in runs)
    c_wall, c_cpu = min(r[1][0] for r in runs), min(r[1][1] for r in runs)
    from viewer.display.isolines import isolines

    lines = [isolines(heat[k], 0.5) for k in range(n)]
    pts = [len(x) for x, _, _ in lines]
    print(f"slice change 512x512 in contour mode (isoline at 0.5 traced + drawn, {n} Grad-CAM-like maps, "
          f"median {int(np.median(pts))} / max {max(pts)} line points): median {c_wall:.2f} ms wall "
          f"= {c_wall / GOAL_SLICE_MS:.2f}x the {GOAL_SLICE_MS:.0f} ms goal ({c_cpu:.2f} ms CPU)")
    print(f"reference: the same slice changes with the filled overlay: median {f_wall:.2f} ms wall, {f_cpu:.2f} ms CPU "
          f"(contour / filled = {c_wall / f_wall:.2f} wall, {c_cpu / f_cpu:.2f} CPU; added cost "
          f"{c_wall - f_wall:+.2f} ms wall, {c_cpu - f_cpu:+.2f} ms CPU per slice change)")
    view.hide()
    _KEEP.extend([view, model])


def _series_dir() -> Path:
    """A 300-slice 512x512 int16 CT series, written once into the temp folder."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    folder = Path(tempfile.gettempdir()) / "radscope-bench-viewer-ct300"
    if len(list(folder.glob("*.dcm"))) == N_SLICES:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:512, :512]
    body = ((xx - 256) / 200.0) ** 2 + ((yy - 256) / 150.0) ** 2 <= 1
    for k in range(N_SLICES):
        hu = np.where(body, 40 + (xx + k) % 50, -1000).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.1.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName = "CT", "Bench^Viewer"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.2", "1.2.826.0.1.3680043.10.3"
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.4"
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-179.0, -179.0, 2.5 * k]
        ds.PixelSpacing = [0.7, 0.7]
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = hu.tobytes()
        pydicom.dcmwrite(folder / f"{k:04d}.dcm", ds, enforce_file_format=True)
    return folder


def bench_first_slice() -> None:
    from viewer.qt.main_window import ViewerWindow
    from viewer.qt.qt import QtWidgets

    folder = _series_dir()
    for f in folder.glob("*.dcm"):  # warm the page cache
        f.read_bytes()
    with tempfile.TemporaryDirectory() as home:
        os.environ["RADSCOPE_HOME"] = home
        win = ViewerWindow()
        win.resize(1400, 900)
        win.show()
        QtWidgets.QApplication.processEvents()
        marks: dict[str, float] = {}

        class Probe(QtWidgets.QWidget):  # a GUI-thread QObject: its bound method runs on the GUI thread
            def on_shown(self, stack_id: str) -> None:
                win.views[0].viewport().repaint()
                marks["on_screen"] = time.perf_counter()

        probe = Probe()
        win.seriesShown.connect(probe.on_shown)
        t_open = time.perf_counter()
        win.open_paths([str(folder)])
        win.wait_idle(120)
        t_done = time.perf_counter()
        first = marks["on_screen"] - win.load_started_at
        print(f"first slice of {N_SLICES}x512x512 on screen {first:.3f} s after the load started "
              f"= {first / GOAL_FIRST_S:.2f}x the {GOAL_FIRST_S} s goal "
              f"(scan of the folder before it: {win.load_started_at - t_open:.3f} s; "
              f"whole series loaded {t_done - win.load_started_at:.2f} s after the load started)")
        win.hide()
        _KEEP.extend([win, probe])

def main() -> None:
    from viewer.qt.qt import ensure_app

    ensure_app()
    bench_slice_change()
    bench_contour()
    bench_first_slice()


if __name__ == "__main__":
    main()
