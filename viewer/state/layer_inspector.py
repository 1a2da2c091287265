"""The layer inspector's decisions, Qt-free: what it shows (:class:`InspectorSelection`: the model and series the
layer tree was built for, the selected layer and channel, the maps of the shown slice; :class:`InspectorResults`:
the probes' outcomes the tabs render and read), its probe jobs on the AI's inference thread (:class:`ProbeJobs`).
The Qt panel (:mod:`viewer.qt.layers`) runs the probes and renders."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from psygnal import Signal

from viewer.ai.reformat_run import ReformatInput, ReformatResults, slice_on_acquired
from viewer.display.channels import channel_order


@dataclass(frozen=True)
class ProbeTarget:
    """The image the inspector probes: slice ``k`` of ``view``, the lazy model input the AI run feeds the
    model (the acquired slices, or the reformat slices of a run on reformats: the very `ReformatInput`)."""

    view: Any
    """(n, rows, cols) float32, read slice by slice (`viewer.ai.model_input` / `ReformatInput`)."""
    k: int
    text: str
    """How the panel names it: "image 5", or "axial reformat slice 41, z = 12.5 mm"."""
    plane: str = ""
    """The reformat plane, "" for an acquired slice."""
    grid: Any = None
    """The `ReformatGrid` of a reformat slice (None for an acquired one)."""

    @property
    def where(self) -> tuple[str, int]:
        """What the shown maps belong to: another plane or slice needs new ones."""
        return self.plane, self.k

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the probed image (the maps are drawn at this size)."""
        return int(self.view.shape[1]), int(self.view.shape[2])

    def image(self) -> np.ndarray:
        """The probed image, a float32 copy (the probes' closures carry it to the inference thread)."""
        return np.array(self.view[self.k], dtype=np.float32)

    def on_acquired(self, values: np.ndarray) -> Iterator[tuple[Any, np.ndarray]]:
        """``values`` ((rows, cols) over the probed image) as ``(index, values)`` parts of the acquired (k, j, i)
        grid the views draw: the acquired slice itself, or the voxels a reformat slice reaches
        (`viewer.ai.reformat_run.slice_on_acquired`)."""
        if self.grid is None:
            yield self.k, values
        else:
            yield from slice_on_acquired(self.grid, self.k, values)


def probe_target(volume: Any, crosshair: np.ndarray, acquired: Any, results: Any = None,
                 run_input: Any = None) -> ProbeTarget:
    """What the inspector probes at ``crosshair`` (LPS) on ``volume``: for a run on reformats (``results`` a
    `ReformatResults`, ``run_input`` the `ReformatInput` the run reads) the reformat slice through the
    crosshair, read from that very input; otherwise the acquired slice under it, read from ``acquired`` (the
    lazy model input, `viewer.ai.model_input`)."""
    if isinstance(results, ReformatResults) and isinstance(run_input, ReformatInput) \
            and run_input.grid is results.grid:
        k = results.slice_under(volume, crosshair)
        return ProbeTarget(run_input, k, results.slice_text(k), results.plane, results.grid)
    ijk = np.asarray(volume.lps_to_index(np.asarray(crosshair, dtype=np.float64)), dtype=np.float64)
    k = int(np.clip(np.floor(ijk[2] + 0.5), 0, volume.shape[0] - 1))
    return ProbeTarget(acquired, k, f"image {k + 1}")


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
        self.plane = ""
        """The reformat plane :attr:`slice_index` is in ("" for acquired slices)."""
        self.slice_text = ""
        """How the panel names the slice of the shown maps (`ProbeTarget.text`)."""

    def next_step(self, key: tuple[str, str] | None, k: int, plane: str = "") -> str:
        """What to compute for the model and series shown (``key``; None: none) on slice ``k`` (of the reformat to
        ``plane``, "" for acquired slices): ``"tree"`` for another model or series (the selection starts over),
        ``"layer"`` for the selected layer on another slice or plane, ``"none"`` without a model or series,
        ``""`` when what is shown is current."""
        if key is None:
            return "none"
        if key != self.model_key:
            self.model_key = key
            self.layer, self.channel, self.maps, self.auto_channel = None, None, None, True
            return "tree"
        if self.layer is not None and (k, plane) != (self.slice_index, self.plane):
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

    def set_maps(self, layer: str, maps: np.ndarray, k: int, plane: str = "", text: str = "") -> bool:
        """The selected layer's maps on slice ``k`` (of the reformat to ``plane``; named ``text``) arrived; False
        (ignored) when another layer is selected now."""
        if layer != self.layer:
            return False
        self.maps, self.slice_index, self.plane = maps, int(k), plane
        self.slice_text = text or f"image {int(k) + 1}"
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


class InspectorResults:
    """The probes' outcomes the inspector shows, by kind (``"tree"``: the model's layer table; ``"layer"``,
    ``"cam"``, ``"examples"``, ``"sanity"``, ``"featurevis"``): the tabs render from the ``shown(kind, value)``
    event, and whatever one part reads of another's outcome (the layer table before a layer is probed, the
    examples a click goes to, the sanity and feature-visualisation results) is read here, not off a widget.
    ``threads``: the threads probes ran on (the status line, tests)."""

    shown = Signal(str, object)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.threads: list[str] = []

    def put(self, kind: str, value: Any) -> None:
        """A probe's outcome to show (the newest of its kind)."""
        self.values[kind] = value
        self.shown.emit(kind, value)

    def ran_on(self, thread: str) -> None:
        self.threads.append(thread)

    @property
    def model_info(self) -> dict[str, Any]:
        """The layer table of the model the tree shows (rows, name, format, sha256, has_layers, first conv...)."""
        info = self.values.get("tree")
        return info if isinstance(info, dict) else {}

    @property
    def examples(self) -> list[Any]:
        """The images that drive the chosen channel most (``channel_examples``), best first."""
        value = self.values.get("examples")
        return list(value[2]) if value is not None else []

    @property
    def sanity(self) -> Any:
        """The last sanity check (``SanityResult``), or None."""
        value = self.values.get("sanity")
        return value[1] if value is not None else None

    @property
    def featurevis(self) -> Any:
        """The last feature visualisation, or None."""
        value = self.values.get("featurevis")
        return value[0] if value is not None else None
