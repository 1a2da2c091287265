"""Turning user paths (files, folders, .zip archives, DICOMDIRs) into a list of candidate files.

Zip archives are extracted to a private temporary folder under ``RADSCOPE_HOME/cache`` that lives as long as the returned
:class:`Sources` object (a :class:`~viewer.dicom.scan.ScanResult` keeps it). Member names that try to
escape the folder are refused, and the total extracted size is capped to guard against zip bombs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence

from viewer.dicom.errors import FileError
from viewer.paths import subdir

MAX_ZIP_BYTES = 32 * 1024**3
"""Refuse to extract more than this from one archive."""


@dataclass
class Sources:
    """Candidate files plus the errors met while listing them and the temp folders to keep alive."""

    files: list[str] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    dicomdirs: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        weakref.finalize(self, _remove_dirs, self.temp_dirs)


def _remove_dirs(dirs: list[str]) -> None:
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _not_a_file(p: Path) -> str:
    """Why ``p`` (neither a regular file nor a folder) cannot be read."""
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        if p.is_symlink():
            try:
                return f"broken symbolic link (to {os.readlink(p)}: {exc.strerror})"
            except OSError:
                return f"broken symbolic link ({exc.strerror})"
        return "no such file or folder" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc.strerror})"
    kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
    return f"not a regular file ({kind}): not read"


def _is_dicomdir(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


def _dicomdir_files(path: Path, errors: list[FileError]) -> list[str]:
    """Files a DICOMDIR references (ReferencedFileID relative to the DICOMDIR's folder)."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:
        errors.append(FileError(str(path), f"unreadable DICOMDIR ({type(exc).__name__}: {exc})"))
        return []
    root = path.parent
    out = []
    for record in records:
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        target = root.joinpath(*parts)
        if not target.exists():  # media written by case-insensitive systems
            alt = _case_insensitive(root, parts)
            if alt is None:
                errors.append(FileError(str(target), "file listed in DICOMDIR is missing"))
                continue
            target = alt
        out.append(str(target))
    return out


def _case_insensitive(root: Path, parts: list[str]) -> Path | None:
    cur = root
    for part in parts:
        try:
            match = next((c for c in cur.iterdir() if c.name.lower() == part.lower()), None)
        except OSError:
            return None
        if match is None:
            return None
        cur = match
    return cur


def _extract_zip(path: Path, sources: Sources) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_BYTES:
                sources.errors.append(FileError(str(path), f"zip archive expands to {total} bytes; refused"))
                return None
            target = tempfile.mkdtemp(prefix="zip-", dir=subdir("cache"))
            sources.temp_dirs.append(target)
            root = os.path.realpath(target)
            for m in members:
                dest = os.path.realpath(os.path.join(root, m.filename))
                if not dest.startswith(root + os.sep):
                    sources.errors.append(FileError(f"{path}!{m.filename}", "zip member path escapes the archive"))
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            return target
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        sources.errors.append(FileError(str(path), f"unreadable zip archive ({exc})"))
        return None


def collect(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> Sources:
    """Expand paths into candidate files (recursive, zip-extracted, DICOMDIR-followed), deduplicated."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    sources = Sources()
    seen: set[str] = set()

    def add(file: str) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            sources.files.append(file)

    def visit(p: Path, depth: int = 0) -> None:
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames):
                    visit(Path(dirpath) / name, depth)
        elif p.is_file():
            if _is_dicomdir(p):
                sources.dicomdirs.append(str(p))
                for f in _dicomdir_files(p, sources.errors):
                    add(f)
            elif p.suffix.lower() == ".zip" and zipfile.is_zipfile(p) and depth < 2:
                target = _extract_zip(p, sources)
                if target is not None:
                    visit(Path(target), depth + 1)
            else:
                add(str(p))
        else:
            sources.errors.append(FileError(str(p), _not_a_file(p)))

    for p in paths:
        visit(Path(p))
    return sources
