"""The demo laptop has no network: the self-test runs end to end with sockets blocked, and its checks bite.

The frozen build's self-test (in a network namespace without interfaces) runs in ``make package``
(packaging/build.py), which CI runs after the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from viewer.commands.self_test import changed_fraction, match_nodule
from viewer.paths import resources_dir

ROOT = Path(__file__).resolve().parent.parent

BLOCK_SOCKETS = textwrap.dedent("""
    import socket, sys
    ATTEMPTS = []

    def _refuse(what):
        def refuse(*args, **kwargs):
            ATTEMPTS.append(f"{what}{args[1:] if what.startswith('socket.socket') else args}")
            sys.stderr.write(f"NETWORK-ATTEMPT {ATTEMPTS[-1]}\\n")
            raise OSError(f"network access blocked by test_offline: {what}")
        return refuse

    _connect, _bind = socket.socket.connect, socket.socket.bind
    def _loopback_bind(what, address):  # urllib3 probes IPv6 by binding ::1 when imported: no traffic
        return what.endswith(".bind") and str(address[0]) in ("::1", "127.0.0.1", "localhost")
    def _guarded(original, what):
        def call(self, address, *rest):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback_bind(what, address):
                return _refuse(what)(self, address)
            return original(self, address, *rest)
        return call
    socket.socket.connect = _guarded(_connect, "socket.socket.connect")
    socket.socket.connect_ex = _guarded(socket.socket.connect_ex, "socket.socket.connect_ex")
    socket.socket.bind = _guarded(_bind, "socket.socket.bind")
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "create_connection"):
        setattr(socket, name, _refuse(f"socket.{name}"))
""")


def _python(code: str, *, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # runs the CT model over the demo study's 120 slices (the study is generated once per session)
def test_self_test_passes_with_sockets_blocked(tmp_path: Path, demo_study: Path) -> None:
    if not (resources_dir() / "models" / "chest-nodule-demo" / "radscope-model.json").is_file():
        pytest.skip("the bundled chest-nodule-demo model is not in resources/models yet")
    report = tmp_path / "report.json"
    code = BLOCK_SOCKETS + textwrap.dedent(f"""
        from viewer.cli import main
        code = main(["--self-test", "--report", {str(report)!r}])
        sys.exit(code if not ATTEMPTS else 3)
    """)
    proc = _python(code, cwd=tmp_path)
    assert "NETWORK-ATTEMPT" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("radscope self-test:")]
    assert line and line[-1].startswith("radscope self-test: OK heatmap on screen "), proc.stdout
    result = json.loads(report.read_text())
    assert result["ok"] and result["model_bundled"] and result["device"] == "cpu"
    assert result["n_slices"] == 120 and result["network_attempts"] == []
    assert 0 < result["seconds_to_window"] < result["seconds_to_heatmap_on_screen"] <= result["seconds_to_all_slices"]
    truth = result["matched_nodule"]
    assert abs(result["top_slice"] - truth["slice"]) * 2.5 <= truth["diameter_mm"] / 2
    assert result["overlay_changed_fraction"] >= 0.05


def test_blocked_sockets_and_the_audit_guard_catch_a_connect(tmp_path: Path) -> None:
    """The blocker above really refuses internet sockets, and the self-test's own guard records
    internet attempts (and ignores local AF_UNIX sockets)."""
    code = textwrap.dedent("""
        import json, socket
        from viewer.commands.self_test import NetworkGuard
        guard = NetworkGuard().install()
        a, b = socket.socketpair(socket.AF_UNIX)
        a.close(); b.close()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a real attempt: refused or unreachable
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", 9))
            except OSError:
                pass
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # loopback: not the network
            s.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # every interface: recorded
            s.bind(("0.0.0.0", 0))
    """) + BLOCK_SOCKETS + textwrap.dedent("""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("192.0.2.1", 80))
        except OSError as exc:
            print("refused:", exc)
        s.close()
        import urllib.request
        try:
            urllib.request.urlopen("http://example.invalid/", timeout=1)
        except OSError as exc:
            print("urlopen refused:", type(exc).__name__)
        print(json.dumps(guard.attempts))
    """)
    proc = _python(code, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "refused: network access blocked by test_offline: socket.socket.connect"
    assert out[1] == "urlopen refused: URLError"
    attempts = json.loads(out[-1])
    assert any(a.startswith("socket.connect") and "127.0.0.1" in a for a in attempts), attempts
    assert any(a.startswith("urllib.Request") for a in attempts), attempts
    assert not any("AF_UNIX" in a for a in attempts)
    assert any(a.startswith("socket.bind") and "0.0.0.0" in a for a in attempts), attempts
    assert not any(a.startswith("socket.bind") and "127.0.0.1" in a for a in attempts), attempts
    assert proc.stderr.count("NETWORK-ATTEMPT") >= 2


def test_self_test_fails_with_a_reason_naming_the_missing_model(tmp_path: Path) -> None:
    study = tmp_path / "study"
    (study / "ct").mkdir(parents=True)
    (study / "truth.json").write_text(json.dumps({"ct": {"spacing_mm": [2.5, 0.7, 0.7]},
                                                  "nodules": [{"slice": 5, "diameter_mm": 10.0}]}))
    code = ("import sys\nfrom viewer.cli import main\n"
            f"sys.exit(main(['self-test', '--study', {str(study)!r}, '--model', 'no-such-model']))")
    proc = _python(code, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1].startswith(
        "radscope self-test: FAIL: model 'no-such-model' not usable: model 'no-such-model' is not installed")


def test_self_test_fails_on_a_study_without_truth(tmp_path: Path) -> None:
    code = ("import sys\nfrom viewer.cli import main\n"
            f"sys.exit(main(['self-test', '--study', {str(tmp_path)!r}]))")
    proc = _python(code, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"radscope self-test: FAIL: {tmp_path / 'truth.json'}: cannot read the demo study's truth")


NODULES = [{"kind": "solid", "slice": 76, "diameter_mm": 14.0},    # reaches 2 slices at 2.5 mm
           {"kind": "part-solid", "slice": 54, "diameter_mm": 20.0},  # reaches 4 slices
           {"kind": "spiculated", "slice": 90, "diameter_mm": 11.0}]  # reaches 2 slices


@pytest.mark.parametrize(("k", "expected"), [(76, 76), (78, 76), (79, None), (50, 54), (49, None),
                                             (88, 90), (92, 90), (93, None), (0, None)])
def test_match_nodule_accepts_slices_through_a_nodule_only(k: int, expected: int | None) -> None:
    found = match_nodule(k, NODULES, 2.5)
    assert (found["slice"] if found else None) == expected


def test_match_nodule_tolerance_and_nearest_first() -> None:
    assert match_nodule(80, NODULES, 2.5, tolerance_slices=2)["slice"] == 76
    close = [{"slice": 10, "diameter_mm": 30.0}, {"slice": 14, "diameter_mm": 30.0}]
    assert match_nodule(13, close, 2.5)["slice"] == 14


def test_changed_fraction_counts_only_the_disc() -> None:
    off = np.zeros((100, 120, 4), np.uint8)
    on = off.copy()
    on[40:60, 50:70, 0] = 200  # a 20x20 coloured square
    inside = changed_fraction(on, off, (60.0, 50.0), 8.0)
    assert inside == 1.0
    half = changed_fraction(on, off, (50.0, 50.0), 8.0)  # the square covers the right half of the disc
    assert 0.4 < half < 0.65
    assert changed_fraction(on, off, (10.0, 10.0), 8.0) == 0.0
    faint = off.copy()
    faint[..., 1] = 10  # below the colour threshold: not an overlay
    assert changed_fraction(faint, off, (60.0, 50.0), 8.0) == 0.0
