"""``radscope self-test`` (also ``radscope --self-test``): the demo, end to end, offscreen, checked.

Opens the demo study in the real main window with the AI dock (as ``radscope demo`` does), runs the
bundled CT model on the CPU over the whole series, jumps to the most suspicious slice and checks:

- every slice has a finite score for every label;
- the top finding's peak slice cuts through a truth nodule (``truth.json`` of the demo study): its
  distance from the nodule's centre slice is at most the nodule's radius (+ ``--tolerance`` slices);
- the overlay is visible at that nodule in the rendered view: the pixels inside the nodule's outline
  change when the AI overlay is hidden;
- nothing opened an internet socket or resolved a host name (an audit hook watches the whole run).

Prints one line (``radscope self-test: OK ...`` or ``radscope self-test: FAIL: reason``) with the time
from process start to the first heatmap on screen, and exits 0 only when every check passes. In a
frozen build (PyInstaller) the study and the model must be the bundled ones.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from viewer.commands.demo import DEMO_MODEL


def _seconds_since_process_start() -> float:
    """How long this process has existed (Linux ``/proc``; elsewhere 0, i.e. time since import)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


_T0 = time.perf_counter() - _seconds_since_process_start()
"""``perf_counter`` value at process start (so timings include interpreter start and imports)."""

TIMEOUT_S = 300.0
MIN_OVERLAY_FRACTION = 0.05
"""At least this share of the pixels inside the nodule's outline must change with the overlay."""


class SelfTestError(Exception):
    """A check failed; the message says which and why."""


@dataclass
class Report:
    """What the self-test measured (``--report FILE.json`` writes it)."""

    ok: bool = False
    reason: str = ""
    frozen: bool = bool(getattr(sys, "frozen", False))
    study: str = ""
    study_bundled: bool = False
    study_source: str = ""
    """bundled (resources/demo-study), cache (generated once into RADSCOPE_HOME) or --study."""
    model: str = ""
    model_bundled: bool = False
    device: str = ""
    torch_threads: int = 0
    n_slices: int = 0
    seconds_to_window: float = math.nan
    seconds_to_study_loaded: float = math.nan
    seconds_to_model_loaded: float = math.nan
    seconds_to_heatmap_on_screen: float = math.nan
    seconds_to_all_slices: float = math.nan
    cpu_seconds_to_heatmap: float = math.nan
    """Process CPU time (all threads) until the heatmap was on screen: what a machine with idle cores would wait
    for at most, whatever the load of the machine that measured it."""
    top_label: str = ""
    top_score: float = math.nan
    top_slice: int = -1
    truth_slices: list[int] = field(default_factory=list)
    matched_nodule: dict[str, Any] = field(default_factory=dict)
    overlay_changed_fraction: float = math.nan
    network_attempts: list[str] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)
    """1, 5 and 15 minute load averages at the end (timings on a busy machine are not a laptop's)."""

    def line(self) -> str:
        if not self.ok:
            return f"radscope self-test: FAIL: {self.reason}"
        nod = self.matched_nodule
        return (f"radscope self-test: OK heatmap on screen {self.seconds_to_heatmap_on_screen:.1f} s after start "
                f"({self.cpu_seconds_to_heatmap:.1f} s of CPU; window {self.seconds_to_window:.1f} s, "
                f"study loaded {self.seconds_to_study_loaded:.1f} s, model loaded {self.seconds_to_model_loaded:.1f} s, all {self.n_slices} slices {self.seconds_to_all_slices:.1f} s); "
                f"top {self.top_label} p={self.top_score:.2f} at slice {self.top_slice} "
                f"(truth {nod.get('kind')} {nod.get('diameter_mm')} mm at slice {nod.get('slice')}); "
                f"overlay at nodule {self.overlay_changed_fraction:.0%} of pixels; model {self.model}"
                f"{' (bundled)' if self.model_bundled else ''} on {self.device}, {self.torch_threads} threads; "
                f"study {self.study_source}; {'frozen' if self.frozen else 'venv'}; "
                f"no network; load average {(self.load_average or [math.nan])[0]:.1f}")


# -- network guard ---------------------------------------------------------------------------------
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
               "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "urllib.Request"}


class NetworkGuard:
    """Records every attempt to reach the network (Python audit events), from any thread.

    Local sockets (``AF_UNIX``: Qt, multiprocessing) are not the network and are not recorded, nor is
    binding a socket to a loopback address (urllib3 probes IPv6 support that way when it is imported; no
    packet leaves the machine). An audit hook cannot be removed: install one guard per process.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def install(self) -> NetworkGuard:
        sys.addaudithook(self._hook)
        return self

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in _NET_EVENTS:
            return
        if args and hasattr(args[0], "family"):  # socket.* events pass the socket first
            if args[0].family == getattr(socket, "AF_UNIX", None):
                return
            args = args[1:]
            if event == "socket.bind" and args and _is_loopback(args[0]):
                return
        self.attempts.append(f"{event}{args!r}")


def _is_loopback(address: Any) -> bool:
    """Whether a socket address (host, port[, ...]) names this machine's loopback interface."""
    import ipaddress

    try:
        return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
    except (ValueError, TypeError, IndexError):
        return False


# -- truth -----------------------------------------------------------------------------------------
def read_truth(study: Path) -> tuple[list[dict[str, Any]], float]:
    """The demo study's nodules (``slice``, ``center_lps``, ``diameter_mm`` ...) and its slice spacing (mm)."""
    path = study / "truth.json"
    try:
        truth = json.loads(path.read_text())
        nodules = [n for n in truth["nodules"] if isinstance(n, dict) and "slice" in n]
        spacing = float(truth["ct"]["spacing_mm"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SelfTestError(f"{path}: cannot read the demo study's truth ({exc})") from exc
    if not nodules:
        raise SelfTestError(f"{path}: lists no nodules")
    return nodules, spacing


def match_nodule(slice_index: int, nodules: Sequence[dict[str, Any]], slice_spacing_mm: float,
                 tolerance_slices: int = 0) -> dict[str, Any] | None:
    """The truth nodule that slice ``slice_index`` cuts through (nearest centre first), else None.

    A slice cuts a nodule when its distance from the centre slice is at most the radius (in slices,
    rounded down) plus ``tolerance_slices``.
    """
    def distance(n: dict[str, Any]) -> int:
        return abs(int(n["slice"]) - slice_index)

    for n in sorted(nodules, key=distance):
        reach = int(float(n.get("diameter_mm", 0.0)) / 2.0 // slice_spacing_mm) + tolerance_slices
        if distance(n) <= reach:
            return n
    return None


def changed_fraction(on: np.ndarray, off: np.ndarray, centre: tuple[float, float], radius_px: float,
                     min_delta: int = 12) -> float:
    """Share of pixels within ``radius_px`` of ``centre`` (x, y) whose colour differs by > ``min_delta``."""
    h, w = on.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= max(radius_px, 2.0) ** 2
    if not disc.any():
        return 0.0
    delta = np.abs(on[..., :3].astype(np.int16) - off[..., :3].astype(np.int16)).max(axis=-1)
    return float((delta[disc] > min_delta).mean())


# -- the run ---------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEMO_MODEL, help=f"model package name or path (default {DEMO_MODEL}, bundled)")
    parser.add_argument("--study", type=Path, help="demo study folder (default: the bundled one, else generated)")
    parser.add_argument("--tolerance", type=int, default=0, metavar="SLICES",
                        help="slices allowed beyond a nodule's radius for the top finding (default 0)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="S", help=f"give up after S seconds (default {TIMEOUT_S:.0f})")
    parser.add_argument("--out", metavar="FILE.png", help="also save the rendered main window")
    parser.add_argument("--report", metavar="FILE.json", help="write the measurements as JSON")


def run(args: argparse.Namespace) -> int:
    guard = NetworkGuard().install()
    report = Report()
    try:
        _run_checks(args, report, guard)
        if guard.attempts:
            report.network_attempts = guard.attempts[:10]
            raise SelfTestError(f"the app tried to reach the network: {'; '.join(guard.attempts[:3])}")
        report.ok = True
    except SelfTestError as exc:
        report.reason = str(exc)
    except Exception as exc:  # any crash is a failed self-test, reported on the one line
        import traceback

        traceback.print_exc()
        report.reason = f"{type(exc).__name__}: {exc}"
    if hasattr(os, "getloadavg"):
        report.load_average = [round(v, 2) for v in os.getloadavg()]
    if args.report:
        Path(args.report).write_text(json.dumps(asdict(report), indent=1, default=str))
    print(report.line(), flush=True)
    return 0 if report.ok else 1


def _study(args: argparse.Namespace, report: Report) -> Path:
    from viewer.paths import resources_dir

    if args.study is not None:
        study = args.study.resolve()
        if not study.is_dir():
            raise SelfTestError(f"{study}: no such study folder")
    else:
        from viewer.dicom.synthetic import demo_study_dir

        study = Path(demo_study_dir()).resolve()
    report.study = str(study)
    report.study_bundled = study == (resources_dir() / "demo-study").resolve()
    report.study_source = "bundled" if report.study_bundled else "--study" if args.study is not None else "cache"
    if report.frozen and not report.study_bundled:
        raise SelfTestError(f"frozen build without its bundled demo study (used {study})")
    return study


def _run_checks(args: argparse.Namespace, report: Report, guard: NetworkGuard) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # CPU only, like a laptop; hiding GPUs (before torch loads) keeps the preloaded "auto" model the one
    # that runs (forcing device="cpu" would load it a second time)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    study = _study(args, report)
    nodules, slice_spacing = read_truth(study)
    report.truth_slices = [int(n["slice"]) for n in nodules]

    from viewer.commands.demo import DEMO_SIZE, _ct_paths
    from viewer.qt.app import build_app
    from viewer.qt.qt import QtWidgets

    # the model itself must run, not an earlier run's results: no results cache
    viewer = build_app(size=DEMO_SIZE, use_cache=False, argv=["radscope"],
                       report=lambda m: print(f"radscope self-test: {m}", file=sys.stderr))
    app, window, ai = viewer.qapp, viewer.window, viewer.ai
    if ai is None:
        raise SelfTestError(f"the AI layer is not available ({viewer.unavailable.get('ai', 'unknown reason')})")
    errors: list[str] = []
    ai.notify.connect(errors.append)
    # timestamps only (no GUI work), so running on the emitting thread is fine
    window.loadFinished.connect(lambda *_: _stamp(report, "seconds_to_study_loaded"))
    ai.worker.modelLoaded.connect(lambda *_: _stamp(report, "seconds_to_model_loaded"))
    try:
        viewer.open_panel("ai")
        if not ai.use_model(args.model):
            raise SelfTestError(f"model {args.model!r} not usable: {'; '.join(errors) or 'unknown reason'}")
        entry = ai.model_entry
        assert entry is not None and entry.card is not None
        report.model = f"{entry.card.name} {entry.card.version}"
        report.model_bundled = bool(entry.bundled)
        if report.frozen and not report.model_bundled:
            raise SelfTestError(f"frozen build without its bundled model (used {entry.path})")
        window.show()
        window.open_paths(_ct_paths(study))
        app.processEvents()
        report.seconds_to_window = time.perf_counter() - _T0
        _wait_for_results(app, window, ai, report, args.timeout, errors)
        _check_results(ai, report, nodules, slice_spacing, args.tolerance)
        _check_rendered(app, window, ai, report, QtWidgets)
    finally:
        if args.out and window.model is not None:  # also on failure: the picture shows what went wrong
            window.grab().save(str(Path(args.out).resolve()), "PNG")
        if "torch" in sys.modules:
            report.torch_threads = sys.modules["torch"].get_num_threads()
        viewer.shutdown()
        window.close()


def _stamp(report: Report, name: str) -> None:
    if math.isnan(getattr(report, name)):
        setattr(report, name, time.perf_counter() - _T0)


def _wait_for_results(app: Any, window: Any, ai: Any, report: Report, timeout_s: float,
                      errors: list[str]) -> None:
    """Process events until every slice has a result; note when the shown slice's heatmap was painted."""
    from viewer.qt.wait import wait_until

    def settled() -> bool:
        res = ai.results
        if res is not None and math.isnan(report.seconds_to_heatmap_on_screen):
            views = [v for v in window.visible_views() if v.plane.slice_axis == 0]
            if views and res.done[views[0].slice_index]:
                app.processEvents()  # the overlay update queued by the batch is painted here
                report.seconds_to_heatmap_on_screen = time.perf_counter() - _T0
                cpu = os.times()
                report.cpu_seconds_to_heatmap = cpu.user + cpu.system
        if res is not None and res.complete and not ai.busy and window.is_idle():
            return True
        return bool(errors and res is None and window.is_idle() and window.model is not None and not ai.busy)

    wait_until(settled, timeout_s, step_ms=10)
    res = ai.results
    if res is not None and res.complete and not ai.busy:
        report.seconds_to_all_slices = time.perf_counter() - _T0
        report.n_slices = int(res.shape[0])
        report.device = ai.device_name
        return
    done = "no run started" if ai.results is None else f"{ai.results.n_done}/{ai.results.shape[0]} slices done"
    raise SelfTestError(f"inference did not finish within {timeout_s:.0f} s ({done})"
                        + (f"; {'; '.join(errors)}" if errors else ""))


def _check_results(ai: Any, report: Report, nodules: list[dict[str, Any]], slice_spacing: float,
                   tolerance: int) -> None:
    res = ai.results
    if not np.isfinite(res.scores).all():
        raise SelfTestError(f"{int((~np.isfinite(res.scores)).any(axis=1).sum())} slices have no score")
    findings = res.findings()
    if not findings:
        best = float(np.nanmax(res.scores))
        raise SelfTestError(f"no finding above the model's threshold (highest score {best:.3f})")
    top = findings[0]
    report.top_label, report.top_score, report.top_slice = top.label, float(top.peak_score), int(top.peak_slice)
    nodule = match_nodule(top.peak_slice, nodules, slice_spacing, tolerance)
    if nodule is None:
        raise SelfTestError(f"top finding {top.label} p={top.peak_score:.2f} at slice {top.peak_slice} is on no "
                            f"truth nodule (truth slices {report.truth_slices})")
    report.matched_nodule = {k: nodule.get(k) for k in ("kind", "slice", "diameter_mm", "center_lps")}


def _check_rendered(app: Any, window: Any, ai: Any, report: Report, QtWidgets: Any) -> None:
    """Show the top finding's slice and compare the rendered view with and without the AI overlay."""
    from viewer.qt.qt import QPointF

    ai.go_to_slice(report.top_slice, centre_on_peak=True)  # what `radscope demo` shows at the end
    window.wait_idle(5.0)
    views = [v for v in window.visible_views() if v.plane.slice_axis == 0]
    if not views:
        raise SelfTestError("no acquisition view is shown")
    view = views[0]
    if view.slice_index != report.top_slice:
        raise SelfTestError(f"the view shows slice {view.slice_index}, not the top finding's {report.top_slice}")
    items = [item for name, item in view.overlay_items.items() if name.startswith("AI ")]
    if not items or not any(item.isVisible() for item in items):
        raise SelfTestError("no AI overlay is shown on the view")
    nodule = report.matched_nodule
    x, y, _ = view.lps_to_scene(np.asarray(nodule["center_lps"], dtype=float))
    centre = view.mapFromScene(view.vb.mapViewToScene(QPointF(x, y)))
    radius_px = float(nodule["diameter_mm"]) / 2.0 * view.zoom / view.spacing_xy[0]
    on = _grab(view, app)
    visible = [item.isVisible() for item in items]
    for item in items:
        item.setVisible(False)
    off = _grab(view, app)
    for item, was in zip(items, visible):
        item.setVisible(was)
    app.processEvents()
    report.overlay_changed_fraction = changed_fraction(on, off, (centre.x(), centre.y()), radius_px)
    if report.overlay_changed_fraction < MIN_OVERLAY_FRACTION:
        raise SelfTestError(f"the overlay is (nearly) empty at the nodule on slice {report.top_slice}: "
                            f"{report.overlay_changed_fraction:.1%} of {math.pi * radius_px ** 2:.0f} pixels changed")


def _grab(view: Any, app: Any) -> np.ndarray:
    """The view as rendered now, (h, w, 4) uint8 (logical pixels)."""
    from viewer.qt.qt import QtGui

    app.processEvents()
    image = view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    w, h = view.width(), view.height()
    image = image.scaled(w, h)
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buf.reshape(h, image.bytesPerLine())[:, : w * 4].reshape(h, w, 4).copy()
