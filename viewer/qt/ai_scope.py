"""Intended use in the viewer, the Qt part: the Yes/No box asked before a run by hand outside intended use.
The rules (:class:`ScopeGuard`: when the AI runs by itself, the OOD gate, the banner) are Qt-free in
:mod:`viewer.ai.scope_guard`; the names are re-exported here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from viewer.ai import scope_guard
from viewer.ai.scope_guard import BANNER_PREFIX, OOD_SAMPLE  # noqa: F401 (re-exported)


def ask_user(parent: Any, text: str) -> bool:
    """A modal Yes/No question (the default confirmation)."""
    from viewer.qt.qt import QtWidgets

    answer = QtWidgets.QMessageBox.question(
        parent, "Run outside intended use?", text,
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.No)
    return answer == QtWidgets.QMessageBox.StandardButton.Yes


class ScopeGuard(scope_guard.ScopeGuard):
    """:class:`viewer.ai.scope_guard.ScopeGuard` asking the user in a Yes/No box unless given ``confirm``."""

    def __init__(self, confirm: Callable[[str], bool] | None = None) -> None:
        super().__init__(confirm or (lambda text: ask_user(None, text)))
