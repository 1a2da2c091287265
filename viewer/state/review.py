"""The review context: who reviews, which study of the worklist is open, and the panel's status line."""

from __future__ import annotations

from psygnal import Signal


class ReviewContextState:
    """Events: ``reviewerChanged(str)``, ``studyChanged(str, int, int)`` (study uid, 0-based position on
    the worklist or -1, worklist length), ``statusChanged(str)``."""

    reviewerChanged = Signal(str)
    studyChanged = Signal(str, int, int)
    statusChanged = Signal(str)

    def __init__(self, reviewer: str = "") -> None:
        self.reviewer = reviewer
        self.study_uid = ""
        self.position = -1
        self.total = 0
        self.status = ""

    def set_reviewer(self, name: str) -> None:
        name = name.strip()
        if name != self.reviewer:
            self.reviewer = name
            self.reviewerChanged.emit(name)

    def set_study(self, study_uid: str, position: int, total: int) -> None:
        if (study_uid, position, total) != (self.study_uid, self.position, self.total):
            self.study_uid, self.position, self.total = study_uid, int(position), int(total)
            self.studyChanged.emit(study_uid, self.position, self.total)

    @property
    def is_last(self) -> bool:
        return self.total > 0 and self.position == self.total - 1

    @property
    def is_first(self) -> bool:
        return self.total > 0 and self.position == 0

    def step_message(self, step: int) -> str | None:
        """Why a step of ``step`` studies (+1 next, -1 previous) cannot be taken, or None when it can."""
        if self.total == 0:
            return "The worklist is empty"
        if step > 0 and self.position >= self.total - 1:
            return f"This is the last study on the worklist ({self.total} of {self.total})"
        if step < 0 and self.position <= 0:
            return f"This is the first study on the worklist (1 of {self.total})"
        return None

    def set_status(self, text: str) -> None:
        if text != self.status:
            self.status = text
            self.statusChanged.emit(text)
