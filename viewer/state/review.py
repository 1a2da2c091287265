"""The review context: who reviews, the image in view, which study of the worklist is open, its flags, the
worklist and the panel's status line. Set by :class:`~viewer.state.review_control.ReviewControl`, rendered by
the review panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psygnal import Signal

from viewer.review import Flag, ImageContext
from viewer.review.store import WorklistEntry


@dataclass(frozen=True)
class WorklistView:
    """The worklist as the panel shows it: its entries (in worklist order), how many studies are done, and the
    neighbours of the current study (None where there is none: that button is off)."""

    entries: tuple[WorklistEntry, ...] = ()
    done: int = 0
    total: int = 0
    previous: str | None = None
    next: str | None = None

    def position(self, study_uid: str | None) -> int:
        """0-based place of ``study_uid`` on the worklist, -1 when it is not there."""
        return next((n for n, e in enumerate(self.entries) if e.study_uid == study_uid), -1)

    def progress_text(self, study_uid: str | None) -> str:
        """"Study 2 of 3 · 1 done", or "1 of 3 studies done" when the current study is not on the list."""
        pos = self.position(study_uid)
        return f"Study {pos + 1} of {self.total} · {self.done} done" if pos >= 0 else \
            f"{self.done} of {self.total} studies done"


class ReviewContextState:
    """Events: ``reviewerChanged(str)``; ``studyChanged(str, int, int)`` (study uid, 0-based position on the
    worklist or -1, worklist length); ``contextChanged(object)`` (the :class:`ImageContext` in view, or None);
    ``labelsChanged(list)`` (the model's labels offered); ``worklistChanged(object)`` (a :class:`WorklistView`);
    ``studyFlagsChanged(list)`` (the current study's flags); ``statusChanged(str, bool)`` (the status line and
    whether it reports an error); ``storeChanged(object)`` (another review store is in use)."""

    reviewerChanged = Signal(str)
    studyChanged = Signal(str, int, int)
    contextChanged = Signal(object)
    labelsChanged = Signal(list)
    worklistChanged = Signal(object)
    studyFlagsChanged = Signal(list)
    statusChanged = Signal(str, bool)
    storeChanged = Signal(object)

    def __init__(self, reviewer: str = "") -> None:
        self.reviewer = reviewer
        self.study_uid = ""
        self.position = -1
        self.total = 0
        self.context: ImageContext | None = None
        self.labels: tuple[str, ...] = ()
        self.worklist = WorklistView()
        self.flags: tuple[Flag, ...] = ()
        self.status = ""
        self.status_error = False
        self.store: Any = None

    def set_reviewer(self, name: str) -> None:
        name = name.strip()
        if name != self.reviewer:
            self.reviewer = name
            self.reviewerChanged.emit(name)

    def set_study(self, study_uid: str, position: int, total: int) -> None:
        if (study_uid, position, total) != (self.study_uid, self.position, self.total):
            self.study_uid, self.position, self.total = study_uid, int(position), int(total)
            self.studyChanged.emit(study_uid, self.position, self.total)

    def set_context(self, context: ImageContext | None) -> None:
        """Always emitted: a context equal to the last one may still need the panel to show it (a flag)."""
        self.context = context
        self.contextChanged.emit(context)

    def set_labels(self, labels: tuple[str, ...] | list[str]) -> None:
        labels = tuple(labels)
        if labels != self.labels:
            self.labels = labels
            self.labelsChanged.emit(list(labels))

    def set_worklist(self, worklist: WorklistView, flags: tuple[Flag, ...] | list[Flag]) -> None:
        """The worklist and the current study's flags, both read from the store in one refresh."""
        self.worklist = worklist
        self.flags = tuple(flags)
        self.set_study(self.study_uid, worklist.position(self.study_uid), len(worklist.entries))
        self.worklistChanged.emit(worklist)
        self.studyFlagsChanged.emit(list(self.flags))

    def set_store(self, store: Any) -> None:
        if store is not self.store:
            self.store = store
            self.storeChanged.emit(store)

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

    def set_status(self, text: str, error: bool = False) -> None:
        if (text, error) != (self.status, self.status_error):
            self.status, self.status_error = text, error
            self.statusChanged.emit(text, error)
