"""``radscope demo`` end to end, headless: it writes the PNG, says where, and exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from viewer.paths import resources_dir


@pytest.mark.slow  # runs the model over the demo study's 120 slices (the study is generated once per session)
def test_demo_writes_png_and_points_at_a_nodule(tmp_path: Path, demo_study: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "viewer.cli", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "preparing the demo study" not in proc.stderr  # it is cached: nothing to prepare
    png = tmp_path / "radscope-demo.png"
    assert f"wrote {png}" in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    if not (resources_dir() / "models" / "chest-nodule-demo").is_dir():
        pytest.skip("the bundled chest-nodule-demo model is not installed: only the viewer part was checked")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("most suspicious slice: index "))
    k = int(line.split("index ")[1].split()[0])
    truth = json.loads((demo_study / "truth.json").read_text())  # the one the demo used (cached)
    nodule_slices = [n["slice"] for n in truth["nodules"]]
    assert min(abs(k - s) for s in nodule_slices) <= 2, (k, nodule_slices)
