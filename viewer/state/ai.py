"""The AI settings in force (model, explanation method, device, per-label thresholds, the status line) and
the progress of the AI run on the shown series."""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import Signal

from viewer.ai.eta import format_eta


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
        self.method = method
        self.device = device
        self.thresholds: dict[str, float] = {}
        self.status = ""

    def set_model(self, name: str, thresholds: dict[str, float] | None = None) -> None:
        """A model was chosen: its name and its card's thresholds (which replace the previous model's)."""
        self.thresholds = dict(thresholds or {})
        if name != self.model:
            self.model = name
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


class AIRunState:
    """The AI run on the shown series, set by the AI controller, rendered by the AI panel.
    Events: ``progressChanged(AIProgress)``, ``methodsChanged(list)`` (the loaded model's explanation
    methods and the one in force)."""

    progressChanged = Signal(object)
    methodsChanged = Signal(list, str)

    def __init__(self) -> None:
        self.progress = AIProgress()
        self.methods: list[str] = []
        self.method = ""

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
