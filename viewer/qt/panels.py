"""The panel registry: every side panel of the viewer window, in one list.

Importing this module loads no Qt (``radscope --panel NAME`` checks the name before Qt starts). Each
:class:`PanelSpec` names a factory ``"module:function"``, called by :func:`viewer.qt.app.build_app` with the
:class:`~viewer.qt.app.ViewerApp` being assembled (``app.window``, ``app.panels`` for the panels it
``needs``); it returns the panel's handle, an object with a ``widget`` (the panel's body: the window makes
its ``QDockWidget`` and sets ``handle.dock``) or, for a panel that is its own dock class, a ``dock`` not yet placed;
and optionally ``open()``, ``is_idle()``, ``wait_done(timeout_s)``, ``shutdown()``,
``dock_visibility_changed(visible)``. It may raise :class:`PanelUnavailable` (the viewer runs without that
panel and says why).

Every dock is placed one way, by the window (:meth:`viewer.qt.docking.ScreenFitting.install_panel`): title and
object name ``dock_<name>`` from the spec, its area (right-side panels tabbed together in one group; the left
and bottom panels each alone, split from the image area), a scroll area around a body larger than a small dock
(no panel can grow the window past the screen), its toggle in the Panels menu with the spec's shortcut, and
its share of the window when opened (:meth:`~viewer.qt.docking.ScreenFitting.open_panel`, ``width_em``).
A handle never adds, tabifies or sizes its dock itself.

To add a panel: write its factory, add one ``PanelSpec`` to :data:`PANELS` (or call :func:`register_panel`
before ``build_app``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DockArea = Literal["left", "right", "bottom"]


class PanelUnavailable(Exception):
    """A panel cannot be built here (its layer is missing, its store cannot open): the message says why."""


@dataclass(frozen=True)
class PanelSpec:
    name: str
    """``--panel`` name and key of ``ViewerApp.panels``."""
    title: str
    """Dock title and Panels-menu entry."""
    area: DockArea
    factory: str
    """``"module:function"``; the function takes the ViewerApp and returns the panel handle."""
    shortcut: str | None = None
    """Toggles the panel (a QKeySequence string), or None."""
    needs: tuple[str, ...] = ()
    """Panels that must be built first (the factory finds them in ``app.panels``)."""
    start_visible: bool = False
    """Shown when the window opens (else hidden until opened)."""
    width_em: float | None = None
    """Its width when opened, in text line heights (None: the area's usual share); never more than a third of
    the window."""


PANELS: list[PanelSpec] = [
    PanelSpec("series", "Series", "left", "viewer.qt.docking:series_panel", start_visible=True),
    PanelSpec("tags", "DICOM tags", "right", "viewer.qt.docking:tags_panel", "Ctrl+T", width_em=30),
    PanelSpec("errors", "Errors", "bottom", "viewer.qt.docking:errors_panel"),
    PanelSpec("ai", "AI", "right", "viewer.qt.ai_integration:ai_panel", start_visible=True),
    PanelSpec("layers", "Layers", "right", "viewer.qt.layers.panel:layers_panel", needs=("ai",),
              width_em=30),
    PanelSpec("review", "Review", "right", "viewer.qt.review_integration:review_panel",
              needs=("ai",), width_em=28),
    PanelSpec("pacs", "PACS", "right", "viewer.qt.pacs_panel:pacs_panel"),
]
"""Every panel, in the order they are built (a panel's ``needs`` come before it)."""


def panel_names() -> list[str]:
    return [p.name for p in PANELS]


def get_panel(name: str) -> PanelSpec:
    for spec in PANELS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown panel {name!r}; known panels: {', '.join(panel_names())}")


def register_panel(spec: PanelSpec) -> None:
    """Add (or replace by name) a panel; its ``needs`` must already be registered."""
    missing = [n for n in spec.needs if n not in panel_names()]
    if missing:
        raise ValueError(f"panel {spec.name!r} needs unregistered panel(s) {', '.join(missing)}")
    for i, old in enumerate(PANELS):
        if old.name == spec.name:
            PANELS[i] = spec
            return
    PANELS.append(spec)
