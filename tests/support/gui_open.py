"""Open a path in the real viewer window and wait until that series is fully loaded and the window idle."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def open_and_wait(window: Any, qtbot: Any, path: Path, timeout_ms: int = 30_000) -> None:
    """``window.open_paths([path])``, then wait for the series from ``path`` (not the one shown before)."""
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: window.is_idle() and window.model is not None and window.model.fully_loaded
                    and window.model.volume.source_files[0].startswith(str(path)), timeout=timeout_ms)
