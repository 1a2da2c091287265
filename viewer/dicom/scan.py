"""``scan``: read the headers of everything under some paths and group them into stacks."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Sequence

from viewer.dicom.errors import DicomFileError, FileError, NotDicomError
from viewer.dicom.headers import SliceHeader, parse_header
from viewer.dicom.sources import Sources, collect
from viewer.dicom.stacks import Stack, build_stacks


@dataclass
class ScanResult:
    """Stacks found (grouped by study then series, slices sorted) and per-file errors."""

    stacks: list[Stack] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    sources: Sources | None = field(default=None, repr=False)
    """Keeps temporary folders (extracted zips) alive as long as the result is referenced."""

    def find(self, series_uid: str | None = None) -> Stack | None:
        """The largest stack of ``series_uid`` (a series UID or a stack id), or the largest overall."""
        pool = self.stacks
        if series_uid is not None:
            pool = [s for s in self.stacks if series_uid in (s.info.series_uid, s.info.stack_id)]
        if not pool:
            return None
        return max(pool, key=lambda s: (s.n_slices * s.rows * s.columns, -self.stacks.index(s)))


def scan(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> ScanResult:
    """Scan files, folders (recursive), .zip archives and DICOMDIRs; headers only.

    Non-DICOM files are skipped silently; DICOM files that cannot be used are listed in
    ``errors`` with the reason, and everything else still loads. ``progress(done, total)`` is
    called (in the calling thread) every 64 files and at the end; setting ``cancel`` stops the
    scan and returns what was found so far.
    """
    sources = collect(paths)
    slices, errors = parse_files(sources.files, progress=progress, cancel=cancel)
    return assemble(sources, slices, errors)


def parse_files(
    files: Sequence[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[SliceHeader], list[FileError]]:
    """Headers of ``files`` (non-DICOM files skipped, unusable ones as errors). Any chunk of a file list
    may be parsed on its own (in another process) and the results joined before :func:`assemble`."""
    errors: list[FileError] = []
    slices: list[SliceHeader] = []
    series_facts: dict[tuple[str, str], dict[str, Any]] = {}
    total, done = len(files), 0
    for path in files:
        if cancel is not None and cancel.is_set():
            break
        if progress is not None and done % 64 == 0:
            progress(done, total)
        done += 1
        try:
            _, file_slices = parse_header(path, series_facts=series_facts)
        except NotDicomError:
            continue
        except DicomFileError as exc:
            errors.append(exc.as_file_error())
            continue
        slices.extend(file_slices)
    if progress is not None:
        progress(done, total)
    return slices, errors


def assemble(sources: Sources, slices: list[SliceHeader], errors: list[FileError]) -> ScanResult:
    """Group parsed slices into stacks that keep ``sources`` (extracted archives) alive."""
    stacks = build_stacks(slices)
    for stack in stacks:
        stack.keep_alive = sources
    return ScanResult(stacks=stacks, errors=[*sources.errors, *errors], sources=sources)
