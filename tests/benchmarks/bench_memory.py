"""Viewer memory: peak resident memory of `radscope SERIES --model chest-nodule-demo --screenshot` on a
300 x 512 x 512 int16 CT series (150 MB stored), beside the stored size, in one run.

Each case runs as a fresh subprocess (offscreen, its own empty RADSCOPE_HOME so the results cache
misses and the model really runs over every slice); its peak RSS is the child's own ``ru_maxrss``
(``os.wait4``). Cases: the viewer with the series only, then with the CT demo model's overlay. The goal
(issue 17): with one model's overlay, peak <= 2x the stored series + 400 MB. Slice-change speed is
``bench_viewer``'s figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_SLICES, ROWS, COLS = 300, 512, 512
FOLDER = Path(tempfile.gettempdir()) / f"radscope-bench-memory-ct{N_SLICES}"
MODEL = "chest-nodule-demo"


def series() -> Path:
    """A chest CT series the demo model's intended-use rules accept (axial, CHEST, adult), written once."""
    if len(list(FOLDER.glob("*.dcm"))) == N_SLICES:
        return FOLDER
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    FOLDER.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:ROWS, :COLS]
    body = ((xx - 256) / 220.0) ** 2 + ((yy - 256) / 160.0) ** 2 <= 1
    lungs = (((xx - 170) / 70.0) ** 2 + ((yy - 250) / 100.0) ** 2 <= 1) | (((xx - 342) / 70.0) ** 2 + ((yy - 250) / 100.0) ** 2 <= 1)
    for k in range(N_SLICES):
        hu = np.where(body, 40, -1000)
        hu = np.where(lungs, -850 + (xx + yy + k) % 40, hu)
        blob = ((xx - 150) ** 2 + (yy - 240) ** 2) <= (12 - abs(k - 150) / 4) ** 2 if abs(k - 150) < 40 else False
        hu = np.where(blob, 30, hu).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.11.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientName, ds.PatientAge, ds.BodyPartExamined = "CT", "Bench^Memory", "060Y", "CHEST"
        ds.SeriesDescription, ds.ImageType = "chest", ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.12", "1.2.826.0.1.3680043.10.13"
        ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.14"
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-179.0, -179.0, 1.25 * k]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.25
        ds.Rows, ds.Columns = ROWS, COLS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, 0, -600, 1500
        ds.PixelData = hu.tobytes()
        pydicom.dcmwrite(FOLDER / f"{k:04d}.dcm", ds, enforce_file_format=True)
    return FOLDER


def _peak(args: list[str]) -> tuple[float, float, str]:
    """(peak RSS MB, wall s, stderr tail) of ``radscope ARGS`` in a fresh process and RADSCOPE_HOME."""
    with tempfile.TemporaryDirectory(prefix="radscope-bench-mem-") as home:
        env = dict(os.environ, RADSCOPE_HOME=home, QT_QPA_PLATFORM="offscreen")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "viewer.cli", *args, "--screenshot", f"{home}/shot.png"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"radscope {' '.join(args)} failed: {err[-2000:]}")
        return usage.ru_maxrss / 1024.0, time.perf_counter() - t0, err.strip().splitlines()[-1:] and err.strip().splitlines()[-1] or ""


def main() -> None:
    folder = series()
    stored = sum(p.stat().st_size for p in folder.glob("*.dcm")) / 2**20
    goal = 2 * stored + 400
    print(f"series: {folder} ({stored:.0f} MB stored); goal with one model's overlay: <= 2 x stored + 400 MB = "
          f"{goal:.0f} MB; load average {os.getloadavg()[0]:.2f}")
    import resource

    # a child's ru_maxrss starts from this process's peak at exec (Linux folds the spawning mm into it):
    # figures below it would be this floor, not the child's
    print(f"(floor of the children's peaks: this process's own peak, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    for name, args in (("viewer, series only", [str(folder)]), (f"viewer + {MODEL} overlay", [str(folder), "--model", MODEL])):
        peak, wall, note = _peak(args)
        print(f"{name:34s} peak RSS {peak:6.0f} MB = {peak / stored:.2f}x stored, {peak / goal:.2f}x the goal "
              f"({wall:.0f} s){'; ' + note if note else ''}")


if __name__ == "__main__":
    main()
