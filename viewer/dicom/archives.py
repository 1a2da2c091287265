"""Extracting .zip archives the user opens: bounded, member by member, never outside its folder.

* Each member name is checked before anything is written: absolute names, ``..``, empty or control-character
  components, symbolic links and members that clash with another (the same name twice, names equal up to
  case or Unicode normalisation, a file where another member needs a folder) are per-member errors
  (``archive.zip!member``); every other member is extracted.
* Bounds: at most :data:`MAX_MEMBERS` members and :data:`MAX_TOTAL_BYTES` bytes per archive (and no more than
  the cache's disk can take), and a large archive may not expand more than :data:`MAX_RATIO` times its own
  size (checked on the declared sizes before writing; zipfile stops a member at its declared size and
  checks its CRC).
* Extraction goes to ``RADSCOPE_HOME/cache/zip/<pid>-<random>.partial``, renamed to ``<pid>-<random>`` when
  complete; folders of processes that no longer run (a killed extraction, a crashed viewer) are removed at
  the next start, so nothing half-written is ever scanned.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from viewer.dicom.errors import FileError
from viewer.paths import home, subdir

MAX_MEMBERS = 200_000
"""A study of this many files is far beyond any real one."""
MAX_TOTAL_BYTES = 64 * 1024**3
"""Refuse archives that expand to more than this."""
MAX_RATIO = 200
"""An archive larger than :data:`RATIO_FLOOR_BYTES` expanded may not expand more than this many times its size."""
RATIO_FLOOR_BYTES = 256 * 1024**2
DISK_MARGIN_BYTES = 512 * 1024**2
"""Room left free on the cache's disk after an extraction."""
PARTIAL = ".partial"

_cleaned: set[str] = set()


@dataclass
class Extraction:
    """Where an archive went, and the members that were refused."""

    folder: str | None = None
    errors: list[FileError] = field(default_factory=list)


def zip_root() -> Path:
    """The folder extractions go to; stale ones (their process is gone) are removed once per process."""
    root = subdir("cache") / "zip"
    root.mkdir(parents=True, exist_ok=True)
    clean_once()
    return root


def clean_once() -> None:
    """Remove stale extraction folders, the first time this process scans anything (the next start after a
    killed extraction); nothing is created when there is no extraction folder."""
    root = home() / "cache" / "zip"
    if str(root) in _cleaned:
        return
    _cleaned.add(str(root))
    if root.is_dir():
        remove_stale(root)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on Windows without ``os.kill``, which would terminate it)."""
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(root: Path) -> list[str]:
    """Remove extraction folders whose process no longer runs (partial or complete); returns their names."""
    removed = []
    for entry in root.iterdir():
        pid_text = entry.name.split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _parts(name: str) -> list[str] | str:
    """The path components of a member name, or why the name is refused."""
    if "\0" in name:
        return "name contains a NUL character"
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return "absolute member path"
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        return "empty member name"
    if ".." in parts:
        return "member path climbs out of the archive (..)"
    if any(ord(ch) < 32 for p in parts for ch in p):
        return "name contains control characters"
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
        return "a path component is longer than 255 bytes"
    return parts


def _key(parts: list[str]) -> tuple[str, ...]:
    """Names that case-insensitive or normalising file systems (and DICOMDIR lookups) would confuse."""
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in parts)


def _plan(path: Path, members: list[zipfile.ZipInfo], errors: list[FileError]) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """The members to extract with their checked path components; refused ones go to ``errors``."""
    def refuse(m: zipfile.ZipInfo, reason: str) -> None:
        errors.append(FileError(f"{path}!{m.filename}", f"{reason}: not extracted"))

    checked: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for m in members:
        mode = m.external_attr >> 16
        if stat.S_ISLNK(mode):
            refuse(m, "symbolic link member")
            continue
        if m.is_dir():
            continue
        parts = _parts(m.filename)
        if isinstance(parts, str):
            refuse(m, parts)
            continue
        checked.append((m, parts))
    by_key: dict[tuple[str, ...], list[int]] = {}
    for n, (_, parts) in enumerate(checked):
        by_key.setdefault(_key(parts), []).append(n)
    folders = {key[:d] for key in by_key for d in range(1, len(key))}
    bad: set[int] = set()
    for key, where in by_key.items():
        if len(where) > 1:
            names = ", ".join(repr(checked[n][0].filename) for n in where)
            for n in where:
                refuse(checked[n][0], f"clashes with another member of the same name up to case or normalisation "
                                      f"({names})")
            bad.update(where)
        elif key in folders:
            refuse(checked[where[0]][0], "a file where other members need a folder of the same name")
            bad.update(where)
    return [c for n, c in enumerate(checked) if n not in bad]


def extract_zip(path: Path) -> Extraction:
    """Extract ``path`` (see the module docstring); ``folder`` is None when the whole archive is refused."""
    out = Extraction()
    try:
        archive_size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                out.errors.append(FileError(str(path), f"zip archive has {len(members)} members (more than "
                                                       f"{MAX_MEMBERS}); refused"))
                return out
            plan = _plan(path, members, out.errors)
            total = sum(m.file_size for m, _ in plan)
            if total > MAX_TOTAL_BYTES:
                out.errors.append(FileError(str(path), f"zip archive expands to {total} bytes (more than "
                                                       f"{MAX_TOTAL_BYTES}); refused"))
                return out
            if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * max(archive_size, 1):
                out.errors.append(FileError(str(path), f"zip archive expands {total / max(archive_size, 1):.0f} "
                                                       f"times its size ({total} bytes; at most {MAX_RATIO}x); "
                                                       "refused as a zip bomb"))
                return out
            root = zip_root()
            free = shutil.disk_usage(root).free
            if total > free - DISK_MARGIN_BYTES:
                out.errors.append(FileError(str(path), f"zip archive expands to {total} bytes but only {free} are "
                                                       f"free under {root}; refused"))
                return out
            final = root / f"{os.getpid()}-{secrets.token_hex(6)}"
            partial = final.with_name(final.name + PARTIAL)
            partial.mkdir()
            try:
                for m, parts in plan:
                    _extract_member(zf, m, partial, parts, path, out.errors)
                os.replace(partial, final)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            out.folder = str(final)
            return out
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        out.errors.append(FileError(str(path), f"unreadable zip archive ({exc})"))
        return out


def _extract_member(zf: zipfile.ZipFile, m: zipfile.ZipInfo, root: Path, parts: list[str], path: Path,
                    errors: list[FileError]) -> None:
    """Write one member under ``root``; any failure is that member's error (the file is not left behind)."""
    dest = root.joinpath(*parts)
    created = False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(m) as src, open(dest, "xb") as dst:
            created = True
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as exc:
        if created:
            dest.unlink(missing_ok=True)
        errors.append(FileError(f"{path}!{m.filename}", f"cannot extract member ({exc})"))
