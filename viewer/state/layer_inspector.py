"""The layer inspector's decisions, Qt-free: what it shows (:class:`InspectorSelection`: the model and series the
layer tree was built for, the selected layer and channel, the maps of the shown slice) and its probe jobs on the
AI's inference thread (:class:`ProbeJobs`). The Qt panel (:mod:`viewer.qt.layers`) runs the probes and renders."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from viewer.display.channels import channel_order


class ProbeJobs:
    """One panel's probe jobs: at most one counts per kind (a newer job cancels the older one), an outcome is
    shown only when it is the newest job of its kind, and jobs whose AI run was superseded (a new run drops
    queued probes) are found stale."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.pending: dict[int, tuple[str, threading.Event, Any]] = {}
        """job -> (kind, its own cancel token, the AI run key it was queued under)."""
        self.latest: dict[str, int] = {}

    def open(self, kind: str) -> tuple[int, threading.Event]:
        """A new job of ``kind`` and its cancel token; a pending job of that kind is cancelled."""
        old = self.latest.get(kind)
        if old in self.pending:
            self.pending[old][1].set()
        return next(self._ids), threading.Event()

    def queued(self, job: int, kind: str, cancel: threading.Event, run_key: Any) -> None:
        """``job`` is on the scheduler under ``run_key``."""
        self.pending[job] = (kind, cancel, run_key)
        self.latest[kind] = job

    def finish(self, job: int, kind: str) -> bool:
        """``job``'s outcome arrived: True when it is to be shown (pending and the newest of its kind)."""
        return self.pending.pop(job, None) is not None and self.latest.get(kind) == job

    def cancel_all(self) -> None:
        for _kind, cancel, _key in self.pending.values():
            cancel.set()
        self.pending.clear()

    def drop_stale(self, is_current: Callable[[Any], bool]) -> set[str]:
        """Forget the jobs whose run key is no longer current; the kinds they were (to be redone)."""
        stale = [job for job, (_k, _c, key) in self.pending.items() if not is_current(key)]
        return {self.pending.pop(job)[0] for job in stale}

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    def kinds(self) -> list[str]:
        """The kinds pending, sorted (the progress bar's words)."""
        return sorted({kind for kind, _c, _k in self.pending.values()})


class InspectorSelection:
    """What the inspector shows: the (model sha256, stack id) its layer tree is for, the selected layer and
    channel (the most active one on the shown slice until the user picks one), and that layer's maps on
    ``slice_index``."""

    def __init__(self) -> None:
        self.model_key: tuple[str, str] | None = None
        self.layer: str | None = None
        self.channel: int | None = None
        self.auto_channel = True
        self.maps: np.ndarray | None = None
        """(channels, h, w) of the selected layer on :attr:`slice_index`."""
        self.slice_index = 0

    def next_step(self, key: tuple[str, str] | None, k: int) -> str:
        """What to compute for the model and series shown (``key``; None: none) on slice ``k``: ``"tree"`` for
        another model or series (the selection starts over), ``"layer"`` for the selected layer on another
        slice, ``"none"`` without a model or series, ``""`` when what is shown is current."""
        if key is None:
            return "none"
        if key != self.model_key:
            self.model_key = key
            self.layer, self.channel, self.maps, self.auto_channel = None, None, None, True
            return "tree"
        if self.layer is not None and k != self.slice_index:
            return "layer"
        return ""

    def forget_tree(self) -> None:
        """The tree's probe was dropped with its AI run: build it again on the next step."""
        self.model_key = None

    def choose_layer(self, path: str) -> None:
        """Another layer: its channel is again the most active one until the user picks one."""
        if path != self.layer:
            self.channel, self.auto_channel = None, True
        self.layer = path

    def set_maps(self, layer: str, maps: np.ndarray, k: int) -> bool:
        """The selected layer's maps on slice ``k`` arrived; False (ignored) when another layer is selected now."""
        if layer != self.layer:
            return False
        self.maps, self.slice_index = maps, int(k)
        return True

    def shown_channel(self) -> int | None:
        """The channel to show: the user's pick, else the most active one (highest mean) on the shown slice."""
        if self.maps is None:
            return self.channel
        if self.auto_channel or self.channel is None:
            self.channel = int(channel_order(self.maps, "mean")[0])
        return self.channel

    def pick_channel(self, channel: int) -> None:
        """The user picked ``channel``: it stays when the slice changes."""
        self.auto_channel = False
        self.channel = int(channel)
