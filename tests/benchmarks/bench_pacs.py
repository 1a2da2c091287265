"""Retrieving a 300-slice 512x512 CT from a local Orthanc: RadScope (C-GET, C-MOVE, WADO-RS) beside dcmtk's
getscu and movescu, measured in the same run.

The series is generated once with ``viewer/dicom/synthetic.py`` (cached under the system temp folder) and
loaded into an Orthanc started for the run inside a private network namespace (see
``tests/support/orthanc.py``); every client runs inside that namespace. Each method retrieves into a fresh
folder, ``REPEATS`` interleaved rounds; figures are medians (and bests). For RadScope, "first slice" is the
time from the start of the retrieval (C-FIND of the instance list included) until the first instance is
validated and stored under its final name, i.e. readable by the viewer; "whole" is until every instance is.
Goals (issue 15): first slice < 1 s; whole series no slower than getscu.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_SLICES, ROWS, COLS = 300, 512, 512
REPEATS = 3
CACHE = Path(tempfile.gettempdir()) / "radscope-bench" / f"pacs_ct_{N_SLICES}x{ROWS}x{COLS}"


def generate(folder: Path = CACHE) -> tuple[Path, str, str]:
    """The synthetic CT (phantom, 0.7 mm pixels, 1 mm slices) and its study/series UIDs."""
    done = folder / ".complete"
    if not done.exists():
        from phantom import ChestParams, make_chest_ct
        from viewer.dicom import synthetic

        shutil.rmtree(folder, ignore_errors=True)
        ph = make_chest_ct(ChestParams(n_slices=N_SLICES, matrix=(ROWS, COLS), slice_spacing=1.0, n_nodules=2), seed=7)
        synthetic.write_ct_series(ph, folder / "series", seed=7)
        done.write_text("ok")
    import pydicom

    first = next(iter(sorted((folder / "series").iterdir())))
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return folder / "series", str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


def _dcmtk(tool: str, args: list[str], out: Path) -> float:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    proc = subprocess.run([tool, *args, "-od", str(out)], capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    n = len(list(out.iterdir()))
    if proc.returncode != 0 or n != N_SLICES:
        raise RuntimeError(f"{tool} failed ({proc.returncode}, {n} files): {proc.stderr[-800:]}")
    return elapsed


def _viewer(spec: str, study: str, series: str) -> tuple[list[float], list[float], list[tuple[int, int]]]:
    """The PACS panel in the real window (offscreen): time from Retrieve to the first slice painted in the
    view, and to the whole series shown (every slice loaded), into a fresh RADSCOPE_HOME each round; and
    how the series grew on screen meanwhile (swaps, slices shown before the retrieval ended)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from viewer.qt.app import build_app
    from viewer.qt.wait import wait_until

    first: list[float] = []
    whole: list[float] = []
    growth: list[tuple[int, int]] = []
    for _ in range(REPEATS):
        os.environ["RADSCOPE_HOME"] = tempfile.mkdtemp(prefix="bench-pacs-home-")
        app = build_app(panels=["pacs"], size=(1366, 768), use_cache=False)
        app.window.show()
        panel = app.open_panel("pacs")
        panel.node_combo.setEditText(spec)
        window = app.window
        t0 = time.perf_counter()
        panel.retrieve(study, series)
        if not wait_until(lambda: window.model is not None, 60):
            raise RuntimeError(f"no slice on screen: {panel.status.text()}")
        first.append(time.perf_counter() - t0)

        def complete() -> bool:
            m = window.model
            return (panel.is_idle() and m is not None and m.volume.array.shape[0] == N_SLICES
                    and window.is_idle())

        if not wait_until(complete, 300):
            raise RuntimeError(f"series not shown whole: {panel.status.text()}")
        whole.append(time.perf_counter() - t0)
        stream = panel.stream
        growth.append((stream.swaps, stream.shown) if stream is not None else (0, 0))
        app.shutdown()
        window.close()
        shutil.rmtree(os.environ["RADSCOPE_HOME"], ignore_errors=True)
    return first, whole, growth


def main() -> None:
    from tests.support import orthanc as support

    for tool in ("Orthanc", "getscu", "movescu", "unshare"):
        if shutil.which(tool) is None:
            print(f"bench_pacs: {tool} is not installed (tools/test-servers.sh installs it); skipped")
            return
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    t0 = time.perf_counter()
    folder, study, series = generate()
    print(f"series ready in {time.perf_counter() - t0:.1f} s: {folder}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-pacs-"))
    server = support.Orthanc(work / "orthanc").start()
    try:
        with server.inside():
            t0 = time.perf_counter()
            server.upload(sorted(folder.iterdir()))
            print(f"loaded into Orthanc in {time.perf_counter() - t0:.1f} s", flush=True)
            _run(server, work, study, series)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _run(server, work: Path, study: str, series: str) -> None:  # type: ignore[no-untyped-def]
    import viewer.pacs.dimse as dimse_module
    from viewer.pacs import client_for, resolve
    from viewer.pacs.nodes import make_node
    from viewer.pacs.retrieve import retrieve
    from viewer.pacs.store import LocalStore

    from tests.support.orthanc import MOVESCU_PORT, PASSWORD, RADSCOPE_MOVE_PORT, USER

    dimse_module.DEFAULT_LISTEN_HOST = "127.0.0.1"
    spec = server.dimse_spec
    clients = {
        "RadScope C-GET": client_for(resolve(spec)),
        "RadScope C-MOVE": client_for(resolve(f"{spec}?retrieve=move&move_port={RADSCOPE_MOVE_PORT}")),
        "RadScope WADO-RS": client_for(make_node("bench", url=server.dicomweb_url, username=USER,
                                                 password=PASSWORD)),
    }
    keys = ["-S", "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}", "-k",
            f"SeriesInstanceUID={series}"]
    whole: dict[str, list[float]] = {name: [] for name in [*clients, "dcmtk getscu", "dcmtk movescu"]}
    first: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(REPEATS):
        for name, client in clients.items():
            t0 = time.perf_counter()
            report = retrieve(client, study, series, store=LocalStore(work / f"{name}-{r}"))
            whole[name].append(time.perf_counter() - t0)
            if not report.complete or report.stored != N_SLICES or report.first_instance_s is None:
                raise RuntimeError(f"{name}: {report.summary()} {report.errors[:3]}")
            first[name].append(report.first_instance_s)
            shutil.rmtree(work / f"{name}-{r}")
        whole["dcmtk getscu"].append(_dcmtk("getscu", ["-aet", "GETSCU", "-aec", "ORTHANC", *keys, "127.0.0.1",
                                                       str(server.dicom_port)], work / f"getscu-{r}"))
        whole["dcmtk movescu"].append(_dcmtk("movescu", ["-aet", "MOVESCU", "-aec", "ORTHANC", "-aem", "MOVESCU",
                                                         "--port", str(MOVESCU_PORT), *keys, "127.0.0.1",
                                                         str(server.dicom_port)], work / f"movescu-{r}"))
        shutil.rmtree(work / f"getscu-{r}")
        shutil.rmtree(work / f"movescu-{r}")
    screen_first, screen_whole, growth = _viewer(spec, study, series)
    from viewer.qt.pacs_stream import SeriesStream

    poke = SeriesStream.poke
    SeriesStream.poke = lambda self, stored, expected=None: None  # type: ignore[method-assign]
    try:  # the reference: the same panel without the growing series (first instance, then the whole)
        still_first, still_whole, _ = _viewer(spec, study, series)
    finally:
        SeriesStream.poke = poke  # type: ignore[method-assign]
    ref = statistics.median(whole["dcmtk getscu"])
    print(f"\n{N_SLICES} x {ROWS} x {COLS} CT from a local Orthanc ({REPEATS} rounds; median (best) seconds)")
    print(f"{'method':<20} {'first slice':>16} {'whole series':>16} {'vs getscu':>10}")
    for name, times in whole.items():
        f = first.get(name)
        fs = f"{statistics.median(f):.3f} ({min(f):.3f})" if f else "-"
        print(f"{name:<20} {fs:>16} {statistics.median(times):7.2f} ({min(times):.2f}) "
              f"{statistics.median(times) / ref:9.2f}x")
    print(f"{'viewer (PACS panel)':<20} {statistics.median(screen_first):7.3f} ({min(screen_first):.3f}) "
          f"{statistics.median(screen_whole):7.2f} ({min(screen_whole):.2f}) "
          f"{statistics.median(screen_whole) / ref:9.2f}x   <- on screen (offscreen window), C-GET")
    print(f"{'  without growing':<20} {statistics.median(still_first):7.3f} ({min(still_first):.3f}) "
          f"{statistics.median(still_whole):7.2f} ({min(still_whole):.2f}) "
          f"{statistics.median(still_whole) / ref:9.2f}x   <- reference: first instance, then the whole series")
    print("viewer: the series grew on screen " + ", ".join(f"{n} times (to {k} slices)" for n, k in growth)
          + " before the whole series replaced it")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("goals: first slice < 1 s; whole series no slower than getscu (ratio <= 1.00)")


if __name__ == "__main__":
    sys.exit(main())
