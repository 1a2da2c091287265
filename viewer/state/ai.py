"""The AI settings in force (model, explanation method, device, per-label thresholds, the status line) and
the progress of the AI run on the shown series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psygnal import Signal

from viewer.ai.eta import format_eta
from viewer.ai.results import Finding, SeriesResults


class AISettings:
    """Set by the AI controller, read by the AI panel and the review panel (which stamps flags with the
    threshold in force). Events: ``modelChanged(str)``, ``methodChanged(str)``, ``deviceChanged(str)``,
    ``thresholdChanged(str, float)`` (label, value), ``statusChanged(str)``."""

    modelChanged = Signal(str)
    methodChanged = Signal(str)
    deviceChanged = Signal(str)
    thresholdChanged = Signal(str, float)
    statusChanged = Signal(str)

    def __init__(self, method: str = "gradcam", device: str = "auto") -> None:
        self.model = ""
        self.card: Any = None
        """The chosen model's card (duck-typed ``ModelCard``: name, version, labels, weights.sha256) or None;
        the review stamps flags with it."""
        self.method = method
        self.device = device
        self.thresholds: dict[str, float] = {}
        self.status = ""
        self._last_notice = ""

    def set_model(self, name: str, thresholds: dict[str, float] | None = None, *, card: Any = None) -> None:
        """A model was chosen: its name, its card's thresholds (which replace the previous model's) and its card."""
        self.thresholds = dict(thresholds or {})
        if name != self.model or card is not self.card:
            self.model, self.card = name, card
            self.modelChanged.emit(name)
        for label, value in self.thresholds.items():
            self.thresholdChanged.emit(label, value)

    def set_method(self, method: str) -> None:
        if method != self.method:
            self.method = method
            self.methodChanged.emit(method)

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.device = device
            self.deviceChanged.emit(device)

    def threshold(self, label: str) -> float | None:
        return self.thresholds.get(label)

    def set_threshold(self, label: str, value: float) -> None:
        value = float(value)
        if self.thresholds.get(label) != value:
            self.thresholds[label] = value
            self.thresholdChanged.emit(label, value)

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


def finding_text(f: Finding) -> str:
    """``"nodule: p=0.90 at Im 5 (Im 4-6)"`` (1-based image numbers, as the views' "Im k/n")."""
    span = f"Im {f.peak_slice + 1}" + (f" (Im {f.first_slice + 1}-{f.last_slice + 1})" if f.n_slices > 1 else "")
    return f"{f.label}: p={f.peak_score:.2f} at {span}"


def no_finding_text(results: SeriesResults | None, findings: list[Finding]) -> str:
    """The explicit line shown when slices ran and none is above its threshold ('' otherwise)."""
    if results is None or findings or not results.n_done:
        return ""
    limits = ", ".join(f"{lab} p \u2265 {results.thresholds[lab]:.2f}" for lab in results.labels)
    return f"No finding so far ({results.n_done}/{results.shape[0]} slices; {limits})"


def ood_caption(summary: str) -> str:
    """The OOD plot's caption, with the 'K of N slices above 1' summary when there is one."""
    return "Unlike the training data (OOD / threshold)" + (f": {summary}" if summary else "")


class AIRunState:
    """The AI run on the shown series, set by the AI controller, rendered by the AI panel. Events:
    ``progressChanged(AIProgress)``; ``methodsChanged(list, str)`` (the loaded model's explanation methods
    and the one in force); ``resultsChanged(results, findings)`` on every refresh (the results' arrays fill
    in place: :attr:`results_version` counts the refreshes); ``oodChanged(distances, threshold, summary)``;
    ``currentSliceChanged(int)``."""

    progressChanged = Signal(object)
    methodsChanged = Signal(list, str)
    resultsChanged = Signal(object, list)
    oodChanged = Signal(object, object, str)
    currentSliceChanged = Signal(int)

    def __init__(self) -> None:
        self.progress = AIProgress()
        self.methods: list[str] = []
        self.method = ""
        self.results: SeriesResults | None = None
        self.findings: list[Finding] = []
        self.results_version = 0
        self.ood: tuple[Any, float | None, str] = (None, None, "")
        self.current_slice = 0

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
