"""What the review panel decides, without Qt: the study open and the next one, what a flag records, the status
line (cleared when the study changes), the reviewer, the store in use.

:class:`ReviewControl` only changes a :class:`~viewer.state.review.ReviewContextState`; the panel
(``viewer/qt/review_panel.py``) renders that state and turns clicks into calls here. The store link
(:class:`StoreLink`: whether the store's server is reachable, the local outbox, who is on which study) is the
panel's live ``StoreWatch`` in the viewer and :class:`DirectLink` without Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from viewer.review import (
    FlagConflict,
    ImageContext,
    Region,
    ReviewStore,
    ReviewStoreError,
    StoreUnavailable,
    StudyHeader,
    Verdict,
    default_reviewer,
    make_flag,
)
from viewer.review.model import Flag
from viewer.review.outbox import Outbox
from viewer.review.summary import Summary, summarize
from viewer.state.review import ReviewContextState, WorklistView


def image_number(slice_index: int) -> str:
    """How the reviewer reads a slice: "Im k", 1-based, as the views' corner "Im k/n" (the store, its
    exports and the CLI keep the 0-based slice index of DESIGN.md's slice order)."""
    return f"Im {slice_index + 1}"


class StoreLink(Protocol):
    """The store's connection as the panel knows it (``viewer.qt.review_live.StoreWatch`` in the viewer)."""

    @property
    def online(self) -> bool: ...

    def keep(self, flag: Flag, study: StudyHeader, error: str) -> int: ...

    def set_presence(self, reviewer: str, study_uid: str | None) -> None: ...


class DirectLink:
    """A :class:`StoreLink` without a listener: online unless the store opened offline; kept flags go to the
    local outbox (:mod:`viewer.review.outbox`); presence is written at once."""

    def __init__(self, store: ReviewStore, outbox: Outbox | None = None) -> None:
        self.store = store
        self.online = not store.offline
        self._outbox = outbox

    def keep(self, flag: Flag, study: StudyHeader, error: str) -> int:
        if self._outbox is None:
            self._outbox = Outbox()
        self._outbox.put(self.store, flag, study, error)
        return self._outbox.count(self.store)

    def set_presence(self, reviewer: str, study_uid: str | None) -> None:
        if reviewer and self.online and not self.store.read_only:
            try:
                self.store.set_presence(reviewer, study_uid)
            except ReviewStoreError:
                pass


PrepareFlag = Callable[[str], "Region | None"]


class ReviewControl:
    """The review panel's decisions over one :class:`~viewer.review.ReviewStore` (see the module docstring).

    ``prepare_flag(label)``, when set (the viewer sets it), is called before a verdict is recorded: it brings the
    context up to date for ``label`` and returns the region to record (None: the whole slice); the status line then says
    which it was.
    """

    def __init__(self, store: ReviewStore, state: ReviewContextState | None = None,
                 link: StoreLink | None = None) -> None:
        self.state = state if state is not None else ReviewContextState(default_reviewer())
        self.store = store
        self.link: StoreLink = link if link is not None else DirectLink(store)
        self.prepare_flag: PrepareFlag | None = None
        self.kept_id: str | None = None
        """The last flag kept in the local outbox because the store could not be reached."""
        self._filled = False
        self.state.set_store(store)

    # -- the store ---------------------------------------------------------------------------------
    def set_store(self, store: ReviewStore, link: StoreLink | None = None) -> None:
        """Use ``store`` (the caller closes the previous one afterwards). Subscribers of ``storeChanged`` may set
        :attr:`link` while it is emitted (the panel's new watch); else a :class:`DirectLink`."""
        self.store = store
        self.link = link if link is not None else DirectLink(store)
        self.state.set_store(store)
        self.refresh()
        self.say_store()

    def say_store(self) -> None:
        """Say on the status line why the store cannot take flags now (offline or read-only), if it cannot."""
        store = self.store
        if store.offline:
            self.state.set_status(f"{store.offline}. Flags you make are kept on this computer and sent when it is "
                                  "back", True)
        elif store.read_only:
            self.state.set_status(f"Review store {store.location} is read-only: you can browse and export its flags, "
                                  f"not add or change them ({store.read_only})", True)

    # -- what is in view ---------------------------------------------------------------------------
    @property
    def context(self) -> ImageContext | None:
        return self.state.context

    @property
    def current_study(self) -> str | None:
        return self.state.study_uid or None

    def set_current_study(self, study_uid: str | None) -> None:
        """Make ``study_uid`` the study the panel lists (its status line goes: it was about another study)."""
        uid = study_uid or ""
        if uid != self.state.study_uid:
            self.state.set_status("")  # "Saved: ... on Im 61" belongs to the study it was said about
            self.state.set_study(uid, self.state.worklist.position(uid), len(self.state.worklist.entries))

    def set_context(self, context: ImageContext | None) -> None:
        """The image now shown (None when nothing is open); the store is read only when the study changed."""
        previous = self.state.study_uid
        if context is not None:
            self.set_current_study(context.study_uid)
        self.state.set_context(context)
        if context is None or self.state.study_uid != previous or not self._filled:
            self.refresh()

    def set_labels(self, labels: list[str] | tuple[str, ...]) -> None:
        """The model's labels offered for a flag."""
        self.state.set_labels(labels)

    def set_reviewer(self, name: str) -> None:
        """The name recorded with new flags and edits ('' = the login name for flags, nobody for edits)."""
        self.state.set_reviewer(name)

    def actor(self) -> str | None:
        return self.state.reviewer or None

    # -- reading the store -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the worklist, the progress and the current study's flags into the state (not while the store's
        server is known to be gone: what was shown stays, the status line says why)."""
        self._filled = True
        if not self.link.online:
            return
        try:
            self._reload()
        except ReviewStoreError as exc:
            self.state.set_status(f"Cannot read the review store: {exc}", True)

    def _reload(self) -> None:
        store, study = self.store, self.current_study
        self.link.set_presence(self.actor() or default_reviewer(), study)
        entries = store.worklist()
        done, total = store.progress()
        view = WorklistView(tuple(entries), done, total, store.neighbour(study, -1), store.neighbour(study, 1))
        self.state.set_worklist(view, store.flags(study) if study else [])

    def summary(self) -> Summary:
        """The summary of every flag in the store (the Summary and Error-by-group pages)."""
        return summarize(self.store.flags())

    # -- flags ---------------------------------------------------------------------------------------
    def add_flag(self, verdict: Verdict | str, label: str = "", comment: str = "",
                 region: Region | None = None) -> str | None:
        """Flag the image in view (optionally a region of it); the id once durable, else None (the status line
        says why, or that the flag is kept on this computer until the store is back)."""
        verdict = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
        self.kept_id = None
        prepared = self.prepare_flag is not None
        if self.prepare_flag is not None and region is None:
            region = self.prepare_flag(label.strip())
        ctx = self.context
        if ctx is None:
            self.state.set_status("No image open: nothing to flag.", True)
            return None
        try:
            flag = make_flag(ctx, verdict, label.strip(), region=region, comment=comment.strip(),
                             reviewer=self.actor())
            if not self.link.online:  # known to be gone: keep it at once rather than wait for a timeout
                raise StoreUnavailable(f"review store {self.store.location} cannot be reached")
            flag_id = self.store.save_flag(flag, ctx.study)
        except StoreUnavailable as exc:
            self._keep(flag, ctx, exc)
            return None
        except (ReviewStoreError, ValueError) as exc:
            self.state.set_status(f"NOT saved: {exc}", True)
            return None
        where = (f" · {region.kind} region" if region else " · whole slice") if prepared else ""
        self.state.set_status(f"Saved: {verdict.title} on {image_number(ctx.slice_index)} ({flag_id[:8]}){where}")
        self.refresh()
        return flag_id

    def _keep(self, flag: Flag, ctx: ImageContext, exc: ReviewStoreError) -> None:
        """The store's server is gone: keep the flag in the local outbox (durable) for the retries."""
        try:
            waiting = self.link.keep(flag, ctx.study, str(exc))
        except ReviewStoreError as outbox_error:
            self.state.set_status(f"NOT saved: {exc}; and it could not be kept locally: {outbox_error}", True)
            return
        self.kept_id = flag.id
        self.state.set_status(f"The review store cannot be reached: your {flag.verdict.title} flag is kept on this "
                              f"computer ({waiting} waiting) and will be sent when the store is back ({exc})", True)

    def edit_flag(self, flag_id: str, version: int | None, **changes: Any) -> bool:
        """Change a flag (``verdict``, ``label``, ``comment``) as of ``version``; False when not saved."""
        return self._change(lambda: self.store.edit_flag(flag_id, actor=self.actor(), expected_version=version,
                                                         **changes),
                            "Verdict changed" if set(changes) == {"verdict"} else "Flag updated")

    def delete_flag(self, flag_id: str, version: int | None) -> bool:
        return self._change(lambda: self.store.delete_flag(flag_id, actor=self.actor(), expected_version=version),
                            "Deleted flag")

    def mark_done(self) -> bool:
        study = self.current_study
        if study is None:
            return False
        return self._change(lambda: self.store.set_status(study, "done"), "Study marked done")

    def _change(self, action: Callable[[], Any], message: str) -> bool:
        """Run a change of the store. On a conflict the reviewer's input stays as they left it and the list shows
        the flag as it is now: applying again puts their change over it."""
        try:
            action()
        except FlagConflict as exc:
            self.state.set_status(f"NOT saved: {exc}", True)
            self.refresh()
            return False
        except (ReviewStoreError, KeyError, ValueError) as exc:
            self.state.set_status(f"NOT saved: {exc}", True)
            return False
        self.state.set_status(message)
        self.refresh()
        return True

    # -- the worklist --------------------------------------------------------------------------------
    def step(self, step: int) -> str | None:
        """The study ``step`` places along the worklist (+1 next, -1 previous), made current; None when there is
        none (the status line says why: "This is the last study on the worklist (3 of 3)")."""
        try:
            target = self.store.neighbour(self.current_study, step)
        except ReviewStoreError as exc:
            self.state.set_status(f"Cannot read the review store: {exc}", True)
            return None
        if target is None:
            self.state.set_status(self.state.step_message(step) or "No other study on the worklist")
            return None
        self.open_study(target)
        return target

    def open_study(self, study_uid: str) -> None:
        """Make ``study_uid`` current (the viewer then shows it and sets its context)."""
        if self.context is not None and self.context.study_uid != study_uid:
            self.state.set_context(None)
        self.set_current_study(study_uid)
        self.refresh()

    # -- the link's news -------------------------------------------------------------------------------
    def connection_changed(self, connected: bool, message: str, was_offline: bool) -> None:
        """A team store's server went away (``connected`` False) or came back."""
        if connected:
            if was_offline:
                self.state.set_status("Connected to the review store again")
        else:
            self.state.set_status(f"{message}. Flags you make now are kept on this computer and sent when it is back",
                                  True)

    def outbox_sent(self, ids: list[str]) -> None:
        self.state.set_status(f"Sent {len(ids)} kept flag(s) to the review store")
        self.refresh()

    def outbox_waiting(self, waiting: int, error: str) -> None:
        self.state.set_status(f"{waiting} flag(s) kept on this computer, not yet in the review store: {error}", True)
