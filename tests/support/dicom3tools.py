"""dciodvfy (Debian dicom3tools): validate a DICOM object against its IOD, as the tests require."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from tests.support.servers import require_binary


@dataclass(frozen=True)
class Report:
    """dciodvfy's findings on one file: the IOD it recognised, its Error and Warning lines."""

    path: str
    iod: str
    errors: list[str]
    warnings: list[str]


def dciodvfy(path: str | os.PathLike[str]) -> Report:
    """Run dciodvfy on ``path`` (skips locally / fails under CI when dicom3tools is missing)."""
    binary = require_binary("dciodvfy", "dicom3tools")
    proc = subprocess.run([binary, os.fspath(path)], capture_output=True, text=True, timeout=120)
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if line.startswith("Warning")]
    iods = [line for line in lines if not line.startswith(("Error", "Warning"))]
    return Report(os.fspath(path), iods[0] if iods else "", errors, warnings)


def assert_valid(path: str | os.PathLike[str], iod: str, *, allowed_warnings: tuple[str, ...] = ()) -> Report:
    """dciodvfy finds no error and recognises ``iod``; every warning must contain one of
    ``allowed_warnings`` (so a new kind of warning is looked at, not silently accepted)."""
    v = dciodvfy(path)
    assert v.iod == iod, f"{path}: dciodvfy recognised {v.iod!r}, expected {iod!r}"
    assert not v.errors, f"{path}: dciodvfy errors:\n" + "\n".join(v.errors)
    unexpected = [w for w in v.warnings if not any(a in w for a in allowed_warnings)]
    assert not unexpected, f"{path}: unexpected dciodvfy warnings:\n" + "\n".join(unexpected)
    return v
