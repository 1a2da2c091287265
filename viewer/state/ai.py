"""The AI settings in force (installed models, the chosen model, explanation method, device, per-label overlay
settings and thresholds, the status line) and the progress of the AI run on the shown series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from psygnal import Signal, SignalGroup

from viewer.ai.eta import format_eta
from viewer.ai.results import Finding, SeriesResults
from viewer.state.ai_models import OVERLAY_FIELDS, PREFERENCE_FIELDS, ModelEntry, OverlaySettings

__all__ = ["AIProgress", "AIRunState", "AISettings", "ModelEntry", "OverlaySettings", "OverlaySettingsEvents",
           "finding_text", "findings_at", "no_finding_text", "ood_caption"]


class OverlaySettingsEvents(SignalGroup):
    """The per-label overlay settings' events: one per field, emitted with (label, new value), then
    ``changed(label)`` once per change of that label (one :meth:`AISettings.set_overlay`)."""

    colormap = Signal(str, str)
    opacity = Signal(str, float)
    threshold = Signal(str, float)
    contour = Signal(str, bool)
    visible = Signal(str, bool)
    changed = Signal(str)


class AISettings:
    """The AI choices in force: the installed models (each with its error, if its package could not be read),
    the chosen model, method, device, each label's overlay settings (colour map, opacity, threshold, contour,
    visible: :class:`OverlaySettings`), the saved overlay preferences and the one status line.

    The AI controller and the AI panel's user edits change it; the panel renders it; the review panel reads
    the threshold in force (flags are stamped with it). Events: ``modelsChanged(list)``,
    ``modelChanged(str)`` (the chosen model's name; also when another package of the same name is chosen),
    ``labelsChanged(list)``, ``overlay.<field>(label, value)`` and ``overlay.changed(label)``,
    ``thresholdChanged(str, float)`` (label, value: the same as ``overlay.threshold``), ``methodChanged(str)``,
    ``deviceChanged(str)``, ``statusChanged(str)``."""

    modelsChanged = Signal(list)
    modelChanged = Signal(str)
    labelsChanged = Signal(list)
    methodChanged = Signal(str)
    deviceChanged = Signal(str)
    thresholdChanged = Signal(str, float)
    statusChanged = Signal(str)

    def __init__(self, method: str = "gradcam", device: str = "auto") -> None:
        self.overlay = OverlaySettingsEvents()
        self.models: list[ModelEntry] = []
        self.entry: ModelEntry | None = None
        self.model = ""
        self.card: Any = None
        """The chosen model's card (duck-typed ``ModelCard``: name, version, labels, weights.sha256) or None;
        the review stamps flags with it."""
        self.labels: list[str] = []
        self.overlays: dict[str, OverlaySettings] = {}
        self.preferences: dict[str, Any] = {}
        """The overlay preferences in force (saved as ``ai_overlay``): the loaded ones, then the last edited
        label's colour map, opacity and contour mode; a model's new labels start with them."""
        self.method = method
        self.device = device
        self.status = ""
        self._last_notice = ""

    # -- models -----------------------------------------------------------------------------------
    def set_models(self, entries: list[ModelEntry], current: str | None = None) -> None:
        """The installed packages (one that failed to read carries its error). Then the model in force is
        ``current`` (a name) when it is listed and usable, else the chosen one when still listed, else the
        first usable package (None without one)."""
        self.models = list(entries)
        self.modelsChanged.emit(list(self.models))
        usable = [e for e in self.models if e.usable]
        pick = next((e for e in usable if e.name == current), None) if current is not None else None
        if pick is None and self.entry in usable:
            pick = self.entry
        self.choose(pick if pick is not None else (usable[0] if usable else None))

    def add_model(self, entry: ModelEntry) -> None:
        """A package named by path (``--model PATH``): listed (replacing one at the same path) and chosen."""
        self.models = [e for e in self.models if e.path != entry.path] + [entry]
        self.modelsChanged.emit(list(self.models))
        self.choose(entry)

    def select(self, name: str) -> bool:
        """Choose the usable package called ``name``; False when there is none."""
        for entry in self.models:
            if entry.name == name and entry.usable:
                self.choose(entry)
                return True
        return False

    def usable_names(self) -> list[str]:
        return [e.name for e in self.models if e.usable]

    def choose(self, entry: ModelEntry | None) -> None:
        """Make ``entry`` the model in force: its labels get its card's thresholds (0.5 without one, even for
        a label the previous model shared: it is this model's operating point) and keep the display settings
        they had; the status line (said about the previous model) is cleared."""
        if entry is not None and not entry.usable:
            raise ValueError(f"{entry.path}: not a usable model package ({entry.error})")
        if entry == self.entry and (entry is not None or not self.model):
            return
        card = entry.card if entry is not None else None
        self.entry, self.card = entry, card
        self._apply_model(entry.name if entry is not None else "", list(card.labels) if card is not None else [],
                          dict(card.thresholds or {}) if card is not None else {}, force_event=True)

    def set_model(self, name: str, thresholds: dict[str, float] | None = None, *, card: Any = None) -> None:
        """A model known by name, its labels' thresholds and (optionally) its card, without a package entry
        (stand-ins, scripts)."""
        changed_card = card is not self.card
        self.entry, self.card = None, card
        self._apply_model(name, list(thresholds or {}), dict(thresholds or {}), force_event=changed_card)

    def _apply_model(self, name: str, labels: list[str], thresholds: dict[str, float], *, force_event: bool) -> None:
        before = dict(self.overlays)
        self.overlays = {lab: replace(before.get(lab) or OverlaySettings().with_preferences(self.preferences),
                                      threshold=float(thresholds.get(lab, 0.5))) for lab in labels}
        new_labels = labels != self.labels
        self.labels = list(labels)
        changed_name = name != self.model
        self.model = name
        self.set_status("")
        if changed_name or force_event:
            self.modelChanged.emit(name)
        if new_labels:
            self.labelsChanged.emit(list(labels))
        for lab, s in self.overlays.items():
            old = before.get(lab)
            fields = [f for f in OVERLAY_FIELDS if old is None or getattr(old, f) != getattr(s, f) or f == "threshold"]
            self._emit_fields(lab, s, fields)

    # -- per-label overlay settings -----------------------------------------------------------------
    def overlay_settings(self, label: str) -> OverlaySettings:
        """``label``'s overlay settings (the defaults with the preferences for a label the model lacks)."""
        return self.overlays.get(label) or OverlaySettings().with_preferences(self.preferences)

    def set_overlay(self, label: str, **fields: Any) -> list[str]:
        """Change fields of ``label``'s overlay settings (checked, see :meth:`OverlaySettings.changed`); each
        one that changed emits its event, then ``overlay.changed(label)``. A changed colour map, opacity or
        contour mode becomes the preferences. Returns the names of the fields that changed."""
        old = self.overlays.get(label)
        base = old or OverlaySettings().with_preferences(self.preferences)
        new = base.changed(**fields)
        changed = [f for f in OVERLAY_FIELDS if old is None or getattr(old, f) != getattr(new, f)]
        self.overlays[label] = new
        if any(f in PREFERENCE_FIELDS for f in changed):
            self.preferences.update(new.preferences())
        self._emit_fields(label, new, changed)
        return changed

    def set_preferences(self, prefs: Mapping[str, Any]) -> None:
        """Saved overlay preferences (``ai_overlay``): applied to every label now and to later models' labels
        (invalid entries ignored)."""
        self.preferences = {k: prefs[k] for k in PREFERENCE_FIELDS if k in prefs}
        for label, s in list(self.overlays.items()):
            new = s.with_preferences(prefs)
            changed = [f for f in OVERLAY_FIELDS if getattr(s, f) != getattr(new, f)]
            self.overlays[label] = new
            self._emit_fields(label, new, changed)

    def _emit_fields(self, label: str, s: OverlaySettings, fields: list[str]) -> None:
        for name in fields:
            getattr(self.overlay, name).emit(label, getattr(s, name))
            if name == "threshold":
                self.thresholdChanged.emit(label, s.threshold)
        if fields:
            self.overlay.changed.emit(label)

    @property
    def thresholds(self) -> dict[str, float]:
        """Each label's threshold in force."""
        return {lab: s.threshold for lab, s in self.overlays.items()}

    def threshold(self, label: str) -> float | None:
        s = self.overlays.get(label)
        return s.threshold if s is not None else None

    def set_threshold(self, label: str, value: float) -> None:
        self.set_overlay(label, threshold=value)

    # -- method, device, status ---------------------------------------------------------------------
    def set_method(self, method: str) -> None:
        if method != self.method:
            self.method = method
            self.methodChanged.emit(method)

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.device = device
            self.deviceChanged.emit(device)

    def set_status(self, text: str) -> None:
        """The AI's one status line (notices, cache hits, scope); '' clears it."""
        if text != self.status:
            self.status = text
            self.statusChanged.emit(text)

    def notice(self, message: str) -> bool:
        """A worker's notice onto the status line, once per run: a repeat of the run's last notice (each batch
        may send it again) is dropped, even if another line was shown in between. True when it is new (the
        caller then also reports it)."""
        if message == self._last_notice:
            return False
        self._last_notice = message
        self.set_status(message)
        return True

    def new_run(self) -> None:
        """A run starts: its status line is cleared and its notices are new again."""
        self._last_notice = ""
        self.set_status("")


@dataclass(frozen=True)
class AIProgress:
    """How far the model's run on the shown series is: ``done`` of ``total`` slices (``total`` 0: no run on
    this series), the estimated seconds left, and whether it is still running (cancellable)."""

    done: int = 0
    total: int = 0
    eta_s: float | None = None
    running: bool = False

    @property
    def count_format(self) -> str:
        """The progress bar's text: "%v / %m slices" during or after a run, nothing without one."""
        return "%v / %m slices" if self.total else ""

    @property
    def eta_text(self) -> str:
        """"ETA ~12 s" while running; then "done" when every slice is in, "cancelled" when not; "" without
        a run."""
        if self.running:
            return f"ETA {format_eta(self.eta_s)}"
        if not self.total:
            return ""
        return "done" if self.done >= self.total else "cancelled"


def findings_at(results: SeriesResults, thresholds: Mapping[str, float]) -> list[Finding]:
    """``results``' findings, strongest first, once its labels' thresholds are the ones in force
    (``thresholds``; a label missing there keeps its own)."""
    results.thresholds.update({lab: float(thresholds[lab]) for lab in results.labels if lab in thresholds})
    return results.findings()


def finding_text(f: Finding, results: SeriesResults | None = None) -> str:
    """``"nodule: p=0.90 at Im 5 (Im 4-6)"`` (1-based image numbers, as the views' "Im k/n"); in the model's
    plane for a run on reformats (``results``: "... at axial reformat slice 40, z = 12.5 mm (... slices 38-42)")."""
    if results is None:
        span = f"Im {f.peak_slice + 1}" + (f" (Im {f.first_slice + 1}-{f.last_slice + 1})" if f.n_slices > 1 else "")
    else:
        span = results.slice_text(f.peak_slice) + (f" ({results.span_text(f.first_slice, f.last_slice)})"
                                                   if f.n_slices > 1 else "")
    return f"{f.label}: p={f.peak_score:.2f} at {span}" + ("" if results is None else results.gap_note(f.peak_slice))


def no_finding_text(results: SeriesResults | None, findings: list[Finding]) -> str:
    """The explicit line shown when slices ran and none is above its threshold ('' otherwise)."""
    if results is None or findings or not results.n_done:
        return ""
    limits = ", ".join(f"{lab} p \u2265 {results.thresholds[lab]:.2f}" for lab in results.labels)
    return f"No finding so far ({results.n_done}/{results.shape[0]} {results.slice_noun}; {limits})"


def ood_caption(summary: str) -> str:
    """The OOD plot's caption, with the 'K of N slices above 1' summary when there is one."""
    return "Unlike the training data (OOD / threshold)" + (f": {summary}" if summary else "")


class AIRunState:
    """The AI run on the shown series, set by the AI controller, rendered by the AI panel. Events:
    ``progressChanged(AIProgress)``; ``methodsChanged(list, str)`` (the loaded model's explanation methods
    and the one in force); ``resultsChanged(results, findings)`` on every refresh (the results' arrays fill
    in place: :attr:`results_version` counts the refreshes); ``oodChanged(distances, threshold, summary)``;
    ``currentSliceChanged(int)``; ``modelLoaded(str)`` (the engine holds this model now: its sha256; layer probes
    can run on it)."""

    progressChanged = Signal(object)
    methodsChanged = Signal(list, str)
    resultsChanged = Signal(object, list)
    oodChanged = Signal(object, object, str)
    currentSliceChanged = Signal(int)
    modelLoaded = Signal(str)

    def __init__(self) -> None:
        self.progress = AIProgress()
        self.methods: list[str] = []
        self.method = ""
        self.results: SeriesResults | None = None
        self.findings: list[Finding] = []
        self.results_version = 0
        self.ood: tuple[Any, float | None, str] = (None, None, "")
        self.current_slice = 0
        self.loaded_model = ""
        """sha256 (or the unverified path key) of the model the engine has loaded ('' none yet)."""

    def set_loaded_model(self, sha256: str) -> None:
        """The engine loaded a model (emitted each time, also when the same one is loaded again)."""
        self.loaded_model = sha256
        self.modelLoaded.emit(sha256)

    def set_results(self, results: SeriesResults | None, thresholds: Mapping[str, float]) -> None:
        """The shown series' results (None: none yet) at ``thresholds``; their findings are derived here."""
        self.results = results
        self.findings = findings_at(results, thresholds) if results is not None else []
        self.results_version += 1
        self.resultsChanged.emit(results, list(self.findings))

    def set_ood(self, distances: Any, threshold: float | None, summary: str = "") -> None:
        """Per-slice OOD distances (None: no statistics or nothing ran), the card's threshold, the summary."""
        self.ood = (distances, threshold, summary)
        self.oodChanged.emit(distances, threshold, summary)

    def set_current_slice(self, k: int) -> None:
        """The slice the plots' cursor marks (0-based); always emitted, as a new series may reuse the index."""
        self.current_slice = int(k)
        self.currentSliceChanged.emit(self.current_slice)

    def set_progress(self, done: int, total: int, eta_s: float | None, running: bool) -> None:
        """Emits only when something shown changes (the ETA only while running)."""
        new = AIProgress(int(done), int(total), eta_s if running else None, bool(running))
        if new != self.progress:
            self.progress = new
            self.progressChanged.emit(new)

    def set_methods(self, methods: list[str], current: str) -> None:
        """The explanation methods the loaded model offers and the one in force (always one of them)."""
        methods = list(methods)
        if methods != self.methods or current != self.method:
            self.methods, self.method = methods, current
            self.methodsChanged.emit(methods, current)
