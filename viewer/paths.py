"""Where RadScope writes files: everything under one home folder.

``RADSCOPE_HOME`` moves every file RadScope writes (models, review store, cache, settings);
otherwise the platform's user data folder is used (platformdirs).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "RADSCOPE_HOME"


def home() -> Path:
    """The folder that holds everything RadScope writes (created on demand)."""
    env = os.environ.get(ENV_HOME)
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("radscope", appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    """A named folder under :func:`home` (``models``, ``cache``, ``review`` ...), created."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """The bundled, read-only ``resources/`` folder (demo model, demo study recipe, icons)."""
    import sys

    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
