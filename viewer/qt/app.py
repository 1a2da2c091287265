"""One way to assemble the viewer: the window plus every registered panel (``radscope``, ``radscope demo``,
``radscope self-test`` and the tests all call :func:`build_app`)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any

from viewer.display.settings import ViewerSettings
from viewer.heap import cap_mmap_threshold
from viewer.qt.main_window import ViewerWindow
from viewer.qt import panels as registry
from viewer.qt.panels import PanelSpec, PanelUnavailable, get_panel
from viewer.qt.qt import QApplication, ensure_app
from viewer.qt.wait import wait_until


def _stderr(message: str) -> None:
    print(f"radscope: {message}", file=sys.stderr)


class ViewerApp:
    """The assembled viewer: ``window``, the built panels' handles by name (``panels``), and why any
    registered panel is missing (``unavailable``)."""

    def __init__(self, qapp: QApplication, window: ViewerWindow, *, use_cache: bool = True) -> None:
        self.qapp = qapp
        self.window = window
        self.use_cache = use_cache
        """Read and write the AI results cache (off for figures and the self-test)."""
        self.panels: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}

    @property
    def ai(self) -> Any:
        """The AI panel's controller (:class:`viewer.qt.ai_integration.WindowAI`), or None."""
        return self.panels.get("ai")

    def panel(self, name: str) -> Any:
        """A built panel's handle; :class:`PanelUnavailable` (saying why) when it could not be built."""
        get_panel(name)  # KeyError naming the known panels
        if name not in self.panels:
            raise PanelUnavailable(f"the {name} panel is not available ({self.unavailable.get(name, 'not built')})")
        return self.panels[name]

    def open_panel(self, name: str) -> Any:
        """Show and raise a panel (``--panel NAME``, the Panels menu); returns its handle."""
        handle = self.panel(name)
        opener = getattr(handle, "open", None)
        if callable(opener):
            opener()
        else:
            self.window.open_panel(name)
        return handle

    def is_idle(self) -> bool:
        """Nothing loads and no panel works (inference, probes, pending refreshes)."""
        if not self.window.is_idle():
            return False
        return all(h.is_idle() for h in self.panels.values() if callable(getattr(h, "is_idle", None)))

    def wait_idle(self, timeout_s: float = 120.0) -> bool:
        """Process events until :meth:`is_idle` (True) or the timeout (False)."""
        return wait_until(self.is_idle, timeout_s)

    def shutdown(self) -> None:
        """Stop the panels' threads (last built first); the window stays."""
        for handle in reversed(list(self.panels.values())):
            stop = getattr(handle, "shutdown", None)
            if callable(stop):
                stop()


def _resolve(factory: str) -> Callable[[ViewerApp], Any]:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def build_app(*, settings: ViewerSettings | None = None, panels: Iterable[str] | None = None,
              use_cache: bool = True, size: tuple[int, int] | None = None,
              report: Callable[[str], None] = _stderr, argv: list[str] | None = None) -> ViewerApp:
    """The QApplication, the main window and the registered panels (``panels``: only these names, plus
    what they need), the window sized to fit its screen (``size``: the wanted size, clamped to the screen;
    offscreen it is taken as is). A panel that cannot be built is left out and ``report``\\ ed."""
    cap_mmap_threshold()  # slice-sized buffers go back to the system when freed (viewer.heap)
    qapp = ensure_app(argv or sys.argv[:1])
    window = ViewerWindow(settings)
    app = ViewerApp(qapp, window, use_cache=use_cache)
    wanted = _with_needs(panels)
    for spec in list(registry.PANELS):
        if wanted is not None and spec.name not in wanted:
            continue
        _build_panel(app, spec, report)
    window.fit_to_screen(size)
    return app


def _with_needs(panels: Iterable[str] | None) -> set[str] | None:
    if panels is None:
        return None
    wanted: set[str] = set()
    todo = list(panels)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(get_panel(name).needs)
    return wanted


def _build_panel(app: ViewerApp, spec: PanelSpec, report: Callable[[str], None]) -> None:
    missing = [n for n in spec.needs if n not in app.panels]
    if missing:
        app.unavailable[spec.name] = f"needs the {', '.join(missing)} panel"
        return
    try:
        handle = _resolve(spec.factory)(app)
    except (ImportError, PanelUnavailable) as exc:
        app.unavailable[spec.name] = str(exc)
        report(f"{spec.title} panel not available ({exc})")
        return
    app.panels[spec.name] = handle
    app.window.install_panel(spec, handle)
