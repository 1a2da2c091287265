"""What the AI settings hold per installed model and per label: :class:`ModelEntry` (one package for the
picker, with its card or why it could not be read) and :class:`OverlaySettings` (how one label's heat map is
drawn, a value; :class:`~viewer.state.ai.AISettings` holds one per label and emits one event per field)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from viewer.display.colormaps import COLORMAPS, overlay_lut

OVERLAY_FIELDS = ("colormap", "opacity", "threshold", "contour", "visible")
PREFERENCE_FIELDS = ("colormap", "opacity", "contour")
"""What the viewer remembers between sessions (``ai_overlay`` in ``viewer-settings.json``); the threshold
comes from the model card, visibility from the session."""


@dataclass(frozen=True)
class ModelEntry:
    """One installed package for the picker: its card (duck-typed ``ModelCard``) or why it failed."""

    name: str
    path: Path
    card: Any | None = None
    error: str | None = None
    bundled: bool = False

    @property
    def usable(self) -> bool:
        return self.error is None and self.card is not None

    def offered_for(self, modality: str) -> bool:
        """Whether the card lists ``modality`` (a card without a list, or an unknown modality: yes); a package
        that failed to read is offered for nothing."""
        if not self.usable or self.card is None:
            return False
        mods = tuple(getattr(self.card.input, "modalities", ()) or ())
        return not mods or not modality or modality in mods


@dataclass(frozen=True)
class OverlaySettings:
    """How one label's heatmap is drawn. Values are probabilities in [0, 1]."""

    colormap: str = "jet"
    opacity: float = 0.5
    threshold: float = 0.5
    contour: bool = False
    visible: bool = True

    @property
    def contour_level(self) -> float | None:
        """Contour mode: the isoline's level (the threshold); None when the map is drawn filled."""
        return self.threshold if self.contour else None

    def preferences(self) -> dict[str, Any]:
        """What the viewer remembers between sessions (see :data:`PREFERENCE_FIELDS`)."""
        return {name: getattr(self, name) for name in PREFERENCE_FIELDS}

    def with_preferences(self, prefs: Mapping[str, Any]) -> OverlaySettings:
        """These settings with the valid entries of saved ``prefs`` applied (others ignored)."""
        out = self
        if prefs.get("colormap") in COLORMAPS:
            out = replace(out, colormap=str(prefs["colormap"]))
        if isinstance(prefs.get("opacity"), (int, float)) and not isinstance(prefs["opacity"], bool):
            out = replace(out, opacity=float(np.clip(prefs["opacity"], 0.0, 1.0)))
        if isinstance(prefs.get("contour"), bool):
            out = replace(out, contour=prefs["contour"])
        return out

    def changed(self, **fields: Any) -> OverlaySettings:
        """These settings with ``fields`` set (checked: a known colour map, opacity and threshold in [0, 1])."""
        unknown = set(fields) - set(OVERLAY_FIELDS)
        if unknown:
            raise TypeError(f"overlay settings have no field(s) {', '.join(sorted(unknown))}")
        if "colormap" in fields and fields["colormap"] not in COLORMAPS:
            raise ValueError(f"unknown colour map {fields['colormap']!r} (known: {', '.join(COLORMAPS)})")
        clean: dict[str, Any] = {}
        for name, value in fields.items():
            if name in ("opacity", "threshold"):
                clean[name] = float(np.clip(float(value), 0.0, 1.0))
            elif name in ("contour", "visible"):
                clean[name] = bool(value)
            else:
                clean[name] = str(value)
        return replace(self, **clean)

    def lut(self, n: int = 256) -> np.ndarray:
        """(n, 4) uint8 RGBA over [0, 1]: transparent below the threshold, opaque colour at and above it.
        (Contour mode draws, instead of this fill, the isoline at the threshold in this LUT's colour there.)"""
        table = overlay_lut(self.colormap, n, alpha_floor=0.0, alpha_full=1e-6)
        x = np.linspace(0.0, 1.0, n)
        table[:, 3] = np.where(x >= self.threshold, 255, 0).astype(np.uint8)
        return table

    def layer_fields(self) -> dict[str, Any]:
        """The fields of the series' overlay layer (:meth:`viewer.state.layers.OverlayLayer.update`)."""
        return {"lut": self.lut(), "opacity": self.opacity, "visible": self.visible, "contour": self.contour_level,
                "threshold": self.threshold}
