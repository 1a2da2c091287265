"""Finding the real components the tests start themselves (Orthanc, PostgreSQL, Xvfb, dcmtk, dicom3tools).

`tools/test-servers.sh` (run by `make test`) installs them with apt when missing. Locally, a test that
needs one that is absent skips and says what to install; under CI (`CI=true`) it fails instead, since CI
must run them.
"""

from __future__ import annotations

import glob
import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str, debian_package: str) -> None:
    """Skip (locally) or fail (CI) because `what` is not installed."""
    message = f"{what} is not installed: apt-get install {debian_package} (or run `make test` as root)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, debian_package: str) -> str:
    """The path of an executable on PATH, else skip/fail naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        missing(name, debian_package)
    return path  # type: ignore[return-value]


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (initdb, pg_ctl, postgres), from Debian's versioned folder."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    return require_binary(name, "postgresql")
