"""Shared test set-up: an isolated RADSCOPE_HOME, offscreen Qt, and paths to real DICOM data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def radscope_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes under its own RADSCOPE_HOME, never the user's folder."""
    home = tmp_path_factory.mktemp("radscope_home")
    monkeypatch.setenv("RADSCOPE_HOME", str(home))
    return home


def pydicom_test_file(name: str) -> Path:
    """A file from pydicom's own test set (never the downloading pattern search)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise FileNotFoundError(name)
    return Path(path)


def pydicom_data_file(name: str) -> Path:
    """A file from the pydicom-data package (real CR, CT, MR images)."""
    import data_store

    path = Path(data_store.__file__).parent / "data" / name
    if not path.exists():
        raise FileNotFoundError(path)
    return path


@pytest.fixture
def window(qtbot):  # type: ignore[no-untyped-def]
    """The real main window, shown offscreen (Qt is imported here so GUI-free tests never load it)."""
    from viewer.qt.main_window import ViewerWindow

    win = ViewerWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture(scope="session")
def postgres_server():  # type: ignore[no-untyped-def]
    """A real PostgreSQL cluster for this test session (this xdist worker): tests/support/postgres.py."""
    from tests.support.postgres import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def make_controller():  # type: ignore[no-untyped-def]
    """AI controllers (no window) with the blob model stub, shut down after the test."""
    from tests.support.gui_ai import CardStub
    from viewer.qt.ai_integration import AIController
    from viewer.qt.ai_panel import ModelEntry

    made: list[AIController] = []

    def make(qtbot, factory):  # type: ignore[no-untyped-def]
        ctl = AIController(models=[ModelEntry("blob", Path("/blob"), CardStub())], session_factory=factory)
        qtbot.addWidget(ctl.panel)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.shutdown()


@pytest.fixture
def ai_window(qtbot):  # type: ignore[no-untyped-def]
    """Main windows with the AI dock attached (a session factory stands in for the model)."""
    from tests.support.gui_ai import CardStub
    from viewer.qt.ai_integration import attach_ai
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.main_window import ViewerWindow

    made = []

    def make(factory, models=None):  # type: ignore[no-untyped-def]
        window = ViewerWindow()
        window.resize(1200, 800)
        window.show()
        ai = attach_ai(window, session_factory=factory,
                       models=models if models is not None else [ModelEntry("blob", Path("/blob"), CardStub())])
        made.append((window, ai))
        return window, ai

    yield make
    for window, ai in made:
        ai.shutdown()
        window.close()


@pytest.fixture(scope="session")
def demo_study_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study, generated once per test session (this xdist worker); read it, never write into it."""
    from viewer.dicom.synthetic import generate_demo_study

    out = tmp_path_factory.mktemp("demo_study") / "demo-study"
    generate_demo_study(out)
    return out


@pytest.fixture
def demo_study(demo_study_once: Path, radscope_home: Path) -> Path:
    """The session's demo study, placed in this test's RADSCOPE_HOME cache, so ``demo_study_dir()`` (and the
    ``radscope demo`` / ``self-test`` subprocesses, which inherit RADSCOPE_HOME) use it without regenerating."""
    from viewer.dicom.synthetic import DEMO_VERSION

    cache = radscope_home / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / DEMO_VERSION
    if not link.exists():
        link.symlink_to(demo_study_once, target_is_directory=True)
    return demo_study_once


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real torch.export model package (DemoCNN, labels a and b, CT), exported once per session."""
    from tests.support.packages import write_tiny_package

    return write_tiny_package(tmp_path_factory.mktemp("tiny_package") / "tiny")
