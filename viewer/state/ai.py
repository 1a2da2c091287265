"""The AI settings in force: model, explanation method, device, per-label thresholds, the status line."""

from __future__ import annotations

from psygnal import Signal


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
