"""viewer.display is Qt-free and torch-free (the widgets in viewer.qt use it, never the reverse)."""

from __future__ import annotations

from tests.test_boundaries import _import_with_blocked


def test_display_imports_without_qt_or_torch() -> None:
    result = _import_with_blocked("viewer.display", {"PySide6", "pyqtgraph", "torch", "shiboken6"})
    assert result.returncode == 0, result.stderr
