"""Where RadScope writes files: everything under one home folder.

``RADSCOPE_HOME`` moves every file RadScope writes (models, review store, cache, settings);
otherwise the platform's user data folder is used (platformdirs). Every file or folder name made from
file content (UIDs, descriptions, labels, model and reviewer names) goes through :func:`safe_component`
and :func:`inside` (the path must stay in its folder).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
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


# -- names derived from file content -----------------------------------------------------------------

MAX_COMPONENT = 100
"""Longest file or folder name made from file content (UIDs are at most 64 characters)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))})


class UnsafePathError(ValueError):
    """A path built from file content would land outside the folder it belongs in."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_component(text: str, *, tag_changes: bool = False, fallback: str = "unnamed") -> str:
    """One file or folder name from text found in a file (a UID, description, label, model or reviewer name).

    Only ``A-Z a-z 0-9 . _ -`` are kept (each run of anything else, ``/``, ``\\``, NUL, spaces or
    non-ASCII letters, becomes one ``_``); no leading ``.`` or ``-`` (so never ``.``, ``..``, a hidden
    file or an option); at most :data:`MAX_COMPONENT` characters; never a Windows device name. A name
    that is empty, reserved or truncated gets ``_<digest of the text>`` so that it stays distinct; with
    ``tag_changes`` any changed name does (for UIDs: two hostile UIDs never share a folder).
    """
    clean = _UNSAFE.sub("_", text).lstrip(".-")
    changed = clean != text
    risky = not clean.strip("_.") or clean.split(".")[0].upper() in _RESERVED or len(clean) > MAX_COMPONENT
    if risky or (changed and tag_changes):
        stem = clean.strip("_.")[: MAX_COMPONENT - 9] if not risky or len(clean) > MAX_COMPONENT else ""
        clean = f"{stem or fallback}_{_digest(text)}"
    return clean


def unique_components(texts: Iterable[str]) -> dict[str, str]:
    """{text: safe_component(text)}, with a digest added where two different texts would share a name."""
    texts = list(dict.fromkeys(texts))
    names = {t: safe_component(t) for t in texts}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name.lower()] = counts.get(name.lower(), 0) + 1  # case-insensitive file systems too
    return {t: (n if counts[n.lower()] == 1 else f"{n[: MAX_COMPONENT - 9]}_{_digest(t)}") for t, n in names.items()}


def inside(root: str | os.PathLike[str], *names: str) -> Path:
    """``root / name / ...`` for names already made safe, checked to resolve inside ``root``
    (symbolic links followed); raises :class:`UnsafePathError` otherwise."""
    base = Path(root).resolve()
    path = base.joinpath(*names)
    resolved = path.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise UnsafePathError(f"{'/'.join(names)!r} would be written outside {root}; refused")
    return path
