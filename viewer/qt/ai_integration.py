"""Wires the AI panel, the inference worker and the heatmap overlays into the main window (the controller
itself is :mod:`viewer.qt.ai_controller`; its names are re-exported here).

``attach_ai(window) -> AIController`` is all the main window calls (the dock comes from the panel registry); what the controller does (threads,
stale runs, the results cache, overlay values in probability units) is said in :mod:`viewer.qt.ai_controller`.
"""

from __future__ import annotations

from typing import Any


from viewer.qt.wait import wait_until
from viewer.state.ai_models import ModelEntry
from viewer.qt.ai_worker import SessionFactory
from viewer.qt.qt import QObject, QtCore, QtWidgets

from viewer.qt.ai_controller import (DEFAULT_METHOD, MEMO_BYTES, OVERLAY_PREFIX, SETTINGS_KEY,  # noqa: F401 (re-exported)
                                     AIController, installed_models, model_folders, model_ref)


class _CloseWatcher(QObject):
    """Stops the controller's worker thread when the window closes (no edit of the window needed)."""

    def __init__(self, controller: AIController, parent: QObject) -> None:
        super().__init__(parent)
        self._controller = controller

    def eventFilter(self, obj: QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == QtCore.QEvent.Type.Close:
            self._controller.shutdown()
        return False


class WindowAI(AIController):
    """An :class:`AIController` bound to a main window: follows its series, jumps its views, and
    reports errors to its errors panel."""

    def __init__(self, window: Any, **kwargs: Any) -> None:
        super().__init__(parent=window, **kwargs)
        self.window = window
        self.dock: QtWidgets.QDockWidget | None = None
        """The AI dock, made and placed by the window (``install_panel``, panel registry name ``ai``)."""
        window.addAction(self.panel.toggle_action)  # the overlay key works wherever the focus is
        settings = getattr(window, "settings", None)
        saved = settings.extra.get(SETTINGS_KEY) if settings is not None else None
        if isinstance(saved, dict):
            self.state.set_preferences(saved)
        self.state.overlay.changed.connect(self._save_preferences)
        window.seriesShown.connect(self._on_series_shown)
        self.notify.connect(self._report)
        self._watcher = _CloseWatcher(self, window)
        window.installEventFilter(self._watcher)
        if getattr(window, "model", None) is not None:
            self._on_series_shown(getattr(window, "stack_id", ""))

    def _shows_any(self, indices: tuple[int, ...]) -> bool:
        """Reformatted views show every slice; acquisition/axial views only their current one."""
        for view in self.window.visible_views():
            if view.plane.slice_axis != 0 or view.slice_index in indices:
                return True
        return False

    def _save_preferences(self, label: str) -> None:
        """Remember the overlay preferences in the window's settings (``viewer-settings.json``) when they change."""
        from viewer.display.settings import save_settings

        settings = getattr(self.window, "settings", None)
        prefs = dict(self.state.preferences)
        if settings is None or not prefs or settings.extra.get(SETTINGS_KEY) == prefs:
            return  # nothing edited or loaded yet (a new model's thresholds are no preference), or already saved
        settings.extra[SETTINGS_KEY] = prefs
        try:
            save_settings(settings)
        except OSError as exc:
            self.window.statusBar().showMessage(f"Could not save the overlay settings: {exc}", 5000)

    def _on_series_shown(self, stack_id: str) -> None:
        self.set_series(self.window.model, stack_id)

    def _report(self, message: str) -> None:
        session = getattr(self.window, "session", None)
        if session is not None:  # the Errors panel renders the session's problems
            session.add_problems([(self.model_entry.name if self.model_entry else "AI", message)])
        else:
            self.window.statusBar().showMessage(message, 10000)

    @property
    def widget(self) -> QtWidgets.QWidget:
        """The AI panel: the body of the dock the window makes for it."""
        return self.panel

    def open(self) -> None:
        """Show and raise the AI dock (``--panel ai``)."""
        self.window.open_panel("ai")

    def wait_done(self, timeout_s: float = 300.0) -> bool:
        """Process events until no inference runs (or the timeout); True when done.

        Call after the window finished loading (``window.wait_idle()``), e.g. before a screenshot.
        """
        return wait_until(self.is_idle, timeout_s)

    def is_idle(self) -> bool:
        return not self.busy


def attach_ai(window: Any, *, session_factory: SessionFactory | None = None,
              models: list[ModelEntry] | None = None, use_cache: bool = True) -> WindowAI:
    """Add the AI panel to the main ``window`` (its dock placed by ``window.install_panel`` from the registry's
    ``ai`` spec) and follow its series and current slice.

    Uses the window's public API only: ``seriesShown(stack_id)``, ``model`` (the shown
    :class:`SeriesModel`), ``session`` (errors go to its problems), ``install_panel`` / ``open_panel``.
    """
    from viewer.qt.panels import get_panel

    ai = WindowAI(window, session_factory=session_factory, models=models, use_cache=use_cache)
    window.install_panel(get_panel("ai"), ai)
    return ai


def ai_panel(app: Any) -> WindowAI:
    """The registry's factory (:mod:`viewer.qt.panels`): the AI dock of ``app.window``."""
    return attach_ai(app.window, use_cache=app.use_cache)
