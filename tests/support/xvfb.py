"""A real X server for GUI tests: Xvfb on a free display number, started and stopped by the test."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import require_binary

XCB_LIBS = "xvfb libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 " \
           "libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxcb-shape0"


def _free_display(first: int = 140) -> int:
    """A display number with neither a lock file nor a socket (from ``first`` up)."""
    for n in range(first, first + 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number between {first} and {first + 199}")


@contextmanager
def xvfb(width: int, height: int, depth: int = 24, dpi: int = 96) -> Iterator[str]:
    """Run ``Xvfb :N -screen 0 WxHxD`` (skip locally / fail in CI when Xvfb is not installed) and yield
    ``":N"`` once it accepts clients; stopped afterwards."""
    binary = require_binary("Xvfb", XCB_LIBS)
    for attempt in range(5):
        n = _free_display(140 + attempt * 7 + os.getpid() % 50)
        proc = subprocess.Popen([binary, f":{n}", "-screen", "0", f"{width}x{height}x{depth}", "-dpi", str(dpi),
                                 "-nolisten", "tcp", "-noreset"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                break
            time.sleep(0.05)
        if proc.poll() is None:
            break
        proc.wait()  # lost a race for that number: try another
    else:
        raise RuntimeError(f"Xvfb did not start: {proc.stderr.read().decode(errors='replace') if proc.stderr else ''}")
    try:
        yield f":{n}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
