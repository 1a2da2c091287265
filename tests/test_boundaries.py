"""The GUI-free core must import without Qt, and inference without the viewer."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ImportError('blocked for this test: ' + name)
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _import_with_blocked(module: str, blocked: set[str]) -> subprocess.CompletedProcess[str]:
    code = f"BLOCKED = {sorted(blocked)!r}\n{BLOCKER}\nimport importlib, pkgutil\n" + textwrap.dedent(
        f"""
        pkg = importlib.import_module({module!r})
        for info in pkgutil.walk_packages(getattr(pkg, '__path__', []), prefix={module!r} + '.'):
            importlib.import_module(info.name)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["viewer.dicom", "viewer.review", "viewer.pacs", "viewer.state", "viewer.state.ai_control",
                                    "viewer.ai.scope_guard", "viewer.qt.panels", "phantom",
                                    "inference.package", "inference.cache", "inference.registry",
                                    "inference.ood", "inference.scope"])
def test_core_imports_without_qt_or_torch(module: str) -> None:
    result = _import_with_blocked(module, {"PySide6", "pyqtgraph", "torch", "shiboken6"})
    assert result.returncode == 0, result.stderr


def test_inference_imports_without_viewer_qt_or_pydicom() -> None:
    result = _import_with_blocked("inference", {"viewer", "PySide6", "pyqtgraph", "pydicom", "shiboken6"})
    assert result.returncode == 0, result.stderr


def test_blocker_really_blocks() -> None:
    """Guard against a vacuous pass: blocking what a module needs must fail."""
    result = _import_with_blocked("viewer.dicom.volume", {"numpy"})
    assert result.returncode != 0
