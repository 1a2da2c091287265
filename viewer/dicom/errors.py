"""Errors of the DICOM engine: per-file problems are collected, never fatal for the rest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileError:
    """A DICOM file that could not be used, with the reason (shown to the user and in `info --json`)."""

    path: str
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


class DicomFileError(Exception):
    """A file that is DICOM but cannot be used; ``path`` names it, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def as_file_error(self) -> FileError:
        return FileError(self.path, self.reason)


class NotDicomError(Exception):
    """A file that is not DICOM at all (skipped silently by ``scan``)."""


class NoSeriesError(Exception):
    """Nothing loadable was found (or the requested series UID is absent)."""
