"""Turning user paths (files, folders, .zip archives, DICOMDIRs) into a list of candidate files.

Zip archives are extracted by :mod:`viewer.dicom.archives` to a private folder under ``RADSCOPE_HOME/cache/zip``
that lives as long as the returned :class:`Sources` object (a :class:`~viewer.dicom.scan.ScanResult` keeps it).
A DICOMDIR loads only files inside its own folder: a record whose file ID climbs out (``..``), is absolute or
reaches outside through a symbolic link is an error naming the DICOMDIR and the record.
"""

from __future__ import annotations

import os
import shutil
import stat
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence

from viewer.dicom.archives import clean_once, extract_zip
from viewer.dicom.deflate import deflated_offset, read_deflated
from viewer.dicom.errors import FileError
from viewer.dicom.plausible import show


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
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
    return f"not a regular file ({kind}): not read"


def _is_dicomdir(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


def _dicomdir_files(path: Path, errors: list[FileError]) -> list[str]:
    """Files a DICOMDIR references (ReferencedFileID relative to the DICOMDIR's folder, never outside it)."""
    import pydicom

    try:
        offset = deflated_offset(str(path))
        if offset is not None:  # bounded inflate, never pydicom's one-shot zlib.decompress
            ds = read_deflated(str(path), offset, stop_before_pixels=False)
        else:
            ds = pydicom.dcmread(str(path), force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:
        errors.append(FileError(str(path), f"unreadable DICOMDIR ({type(exc).__name__}: {exc})"))
        return []
    root = path.parent
    real_root = os.path.realpath(root)
    out = []
    for n, record in enumerate(records, 1):
        try:
            ref = record.get("ReferencedFileID")
        except Exception:
            ref = "<unreadable>"
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        what = f"record {n} ({record.get('DirectoryRecordType', '?')}, ReferencedFileID {show(ref)})"
        problem = _file_id_problem(parts)
        if problem is None:
            target = root.joinpath(*parts)
            if not target.exists() and not target.is_symlink():  # media written by case-insensitive systems
                alt = _case_insensitive(root, parts)
                if alt is None:
                    errors.append(FileError(str(target), f"file listed in DICOMDIR is missing ({path}, {what})"))
                    continue
                target = alt
            real = os.path.realpath(target)
            if not real.startswith(real_root + os.sep):
                problem = f"reaches {real} through a symbolic link"
            elif not os.path.isfile(real):
                errors.append(FileError(str(path), f"{what}: {_not_a_file(target)}"))
                continue
        if problem is not None:
            errors.append(FileError(str(path), f"{what} points outside the DICOMDIR's folder ({problem}): "
                                               "not loaded"))
            continue
        out.append(str(target))
    return out


def _file_id_problem(parts: list[str]) -> str | None:
    """Why a ReferencedFileID cannot name a file inside the DICOMDIR's folder, or None."""
    if not parts or any(not p.strip() for p in parts):
        return "empty component"
    for p in parts:
        if p.startswith(("/", "\\")) or (len(p) > 1 and p[1] == ":"):
            return "absolute path"
        if p.strip() in ("..", "."):
            return "climbs with '..'"
        if "/" in p or "\\" in p or "\0" in p:
            return "a component holds a path separator"
    return None


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
    extraction = extract_zip(path)
    sources.errors.extend(extraction.errors)
    if extraction.folder is not None:
        sources.temp_dirs.append(extraction.folder)
    return extraction.folder


def collect(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> Sources:
    """Expand paths into candidate files (recursive, zip-extracted, DICOMDIR-followed), deduplicated."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    clean_once()
    sources = Sources()
    seen: set[str] = set()

    def add(file: str) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            sources.files.append(file)

    def visit(p: Path, depth: int = 0) -> None:
        if p.is_dir():
            def unreadable(exc: OSError) -> None:
                sources.errors.append(FileError(str(exc.filename or p), f"cannot read folder ({exc.strerror or exc})"))

            for dirpath, dirnames, filenames in os.walk(p, followlinks=False, onerror=unreadable):
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
