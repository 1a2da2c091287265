"""Per-series AI results, filled batch by batch: scores per slice per label, heatmap volumes, findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from viewer.ai.scheduler import RunKey
from viewer.display.coded import CODE_MAX, CodedVolume, encode_unit


@dataclass(frozen=True)
class Finding:
    """A run of consecutive slices whose ``label`` score is at or above the threshold."""

    label: str
    peak_slice: int
    peak_score: float
    first_slice: int
    last_slice: int

    @property
    def n_slices(self) -> int:
        return self.last_slice - self.first_slice + 1


def find_findings(scores: np.ndarray, threshold: float, label: str) -> list[Finding]:
    """Findings of one label from its per-slice scores (NaN = not run yet), strongest first."""
    scores = np.asarray(scores, dtype=np.float64)
    above = np.nan_to_num(scores, nan=-np.inf) >= threshold
    if not above.any():
        return []
    edges = np.diff(np.concatenate(([0], above.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    found = []
    for a, b in zip(starts, stops):
        peak = int(a + np.argmax(scores[a:b]))
        found.append(Finding(label, peak, float(scores[peak]), int(a), int(b - 1)))
    return sorted(found, key=lambda f: (-f.peak_score, f.peak_slice))


def _contiguous_runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, first slice) of each run of consecutive slice numbers in batch order."""
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [idx.size]))
    return [(int(a), int(b), int(idx[a])) for a, b in zip(starts, stops)]


class SeriesResults:
    """Everything one run produced so far for one stack.

    ``scores`` is (n_slices, n_labels) float32, NaN where a slice has not run; :meth:`heatmap` is a
    (k, j, i) volume in [0, 1] per label on the stack's native grid, zero where not run, held as uint8
    codes of the explainer's map plus a per-slice factor (its score for weighted results):
    a :class:`~viewer.display.coded.CodedVolume`, a quarter of float32, decoded per drawn slice. Values
    are within half a code (0.002 times the factor) of what was added.

    Slice numbers are the model's slices: the acquired ones here; a run on reformats
    (`viewer.ai.reformat_run.ReformatResults`) counts reformat slices and words, locates and caches
    them through the methods below.
    """

    maps_span_slices = False
    """A batch of slices changes maps on many acquired slices (reformatted runs), not just its own."""
    slices_per_acquired = 1
    """How many of these slices lie within one acquired slice spacing along their normal (reformats sampled
    finer than the data: several), so checks over 'the first N slices' cover the same slab of patient."""

    def __init__(
        self,
        key: RunKey,
        labels: Sequence[str],
        shape: tuple[int, int, int],
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if not labels:
            raise ValueError("a model needs at least one label")
        self.key = key
        self.labels = list(labels)
        self.shape = tuple(int(v) for v in shape)
        self.thresholds = {lab: float((thresholds or {}).get(lab, 0.5)) for lab in self.labels}
        n = self.shape[0]
        self.scores = np.full((n, len(self.labels)), np.nan, dtype=np.float32)
        self.ood = np.full(n, np.nan, dtype=np.float64)
        """Per-slice out-of-distribution distance (NaN: not run, or the model has no statistics)."""
        self.done = np.zeros(n, dtype=bool)
        self._heatmaps = {lab: CodedVolume(np.zeros(self.shape, dtype=np.uint8), np.zeros(n, dtype=np.float32))
                          for lab in self.labels}
        self.axis_text = "image (Im, as in the view)"
        """The scores plot's slice axis."""
        self.slice_noun = "slices"

    # -- filling ------------------------------------------------------------------------------
    def add(self, indices: Sequence[int], scores: np.ndarray, heatmaps: Mapping[str, np.ndarray], *,
            weighted: bool = False, ood: np.ndarray | None = None) -> None:
        """Store one batch: ``scores`` (n, labels) and ``heatmaps`` {label: (n, rows, cols)}.

        ``weighted``: store each map times its slice's score for that label (probability units: the
        slice's factor is its score). Maps are coded straight into the volumes, one contiguous run of
        slices at a time (numpy releases the GIL for that: this runs on the inference thread).
        """
        idx = np.asarray(indices, dtype=np.intp)
        scores = np.asarray(scores, dtype=np.float32).reshape(len(idx), -1)
        if scores.shape[1] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} scores per slice, got {scores.shape[1]}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise ValueError(f"slice index out of range 0..{self.shape[0] - 1}: {idx.tolist()}")
        for label in heatmaps:
            if label not in self._heatmaps:
                raise ValueError(f"unknown label {label!r}; the model's labels are {self.labels}")
            shape = np.shape(heatmaps[label])
            if shape != (len(idx), *self.shape[1:]):
                raise ValueError(f"heatmap of {label!r} has shape {shape}, expected {(len(idx), *self.shape[1:])}")
        self.scores[idx] = scores
        if ood is not None:
            self.ood[idx] = np.asarray(ood, dtype=np.float64).reshape(len(idx))
        runs = _contiguous_runs(idx)
        for label, maps in heatmaps.items():
            dest = self._heatmaps[label]
            col = self.labels.index(label)
            for a, b, k0 in runs:  # rows a:b of the batch are slices k0 .. k0 + (b - a) - 1
                dest.codes[k0:k0 + b - a] = encode_unit(maps[a:b])
                factor = np.nan_to_num(scores[a:b, col], nan=0.0) if weighted else np.ones(b - a, np.float32)
                dest.scale[k0:k0 + b - a] = factor / np.float32(CODE_MAX)
        self.done[idx] = True

    def set_codes(self, label: str, codes: np.ndarray, factors: np.ndarray) -> None:
        """Every slice of ``label`` at once: uint8 ``codes`` (k, j, i) of the explainer's maps and each
        slice's factor (its score for weighted results; e.g. from the results cache)."""
        dest = self._heatmaps[label]
        if codes.shape != dest.shape:
            raise ValueError(f"heatmap of {label!r} has shape {codes.shape}, expected {dest.shape}")
        dest.codes[...] = codes
        dest.scale[...] = np.nan_to_num(np.asarray(factors, dtype=np.float32), nan=0.0) / np.float32(CODE_MAX)

    # -- reading ------------------------------------------------------------------------------
    def heatmap(self, label: str) -> CodedVolume:
        """``label``'s map volume (shared: later batches show up in it)."""
        return self._heatmaps[label]

    def codes(self, label: str) -> np.ndarray:
        """uint8 codes (k, j, i) of ``label``'s explainer maps (before any score weighting)."""
        return self._heatmaps[label].codes

    def label_scores(self, label: str) -> np.ndarray:
        return self.scores[:, self.labels.index(label)]

    @property
    def nbytes(self) -> int:
        """Memory held by the heatmap volumes and scores."""
        return self.scores.nbytes + sum(h.nbytes for h in self._heatmaps.values())

    @property
    def n_done(self) -> int:
        return int(self.done.sum())

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def findings(self) -> list[Finding]:
        """Every label's findings at its threshold, strongest first."""
        if not self.done.any():
            return []
        found = [f for lab in self.labels for f in find_findings(self.label_scores(lab), self.thresholds[lab], lab)]
        return sorted(found, key=lambda f: (-f.peak_score, f.peak_slice))

    def peak_on_slice(self, k: int) -> tuple[int, int] | None:
        """(row j, column i) of the heatmap peak on slice ``k`` of the label scoring highest there; None when
        no label's map has any value on it (the crosshair then stays where it is)."""
        scores = np.nan_to_num(self.scores[k], nan=-np.inf)
        best = self.labels[int(np.argmax(scores))]
        plane = np.asarray(self.heatmap(best)[k])
        if plane.size == 0 or float(plane.max()) <= 0:
            return None
        j, i = np.unravel_index(int(np.argmax(plane)), plane.shape)
        return int(j), int(i)

    def most_suspicious_slice(self) -> int | None:
        """The slice with the highest score of any label (None before any slice ran)."""
        if not self.done.any():
            return None
        best = np.nan_to_num(self.scores, nan=-np.inf).max(axis=1)
        return int(np.argmax(best))

    # -- where the slices are -----------------------------------------------------------------
    def slice_text(self, k: int) -> str:
        """Slice ``k`` in words, as the views number it ("Im 5")."""
        return f"Im {k + 1}"

    def span_text(self, first: int, last: int) -> str:
        return f"Im {first + 1}-{last + 1}"

    def gap_note(self, k: int) -> str:
        """Where slice ``k``'s peak rests on data never acquired ('' here: a missing slice never runs; runs on
        reformats say where they interpolate across a gap)."""
        return ""

    def run_id(self, stack: str) -> str:
        """The id these results are cached and remembered under, for the stack's cache id ``stack``."""
        return stack

    def cache_meta(self) -> dict[str, Any]:
        """What a results-cache entry of these results records beyond scores and maps."""
        return {}

    def slice_under(self, volume: Any, lps: np.ndarray) -> int:
        """The slice holding an LPS point (the crosshair) of ``volume`` (a `viewer.dicom.Volume`)."""
        k = float(volume.lps_to_index(lps)[2])
        return int(np.clip(np.floor(k + 0.5), 0, self.shape[0] - 1))

    def crosshair_to(self, volume: Any, lps: np.ndarray, k: int, centre_on_peak: bool = False) -> np.ndarray:
        """Where the crosshair (now at ``lps``) goes to show slice ``k``: it keeps its place in the image, or
        (``centre_on_peak``) moves to the heatmap's peak there."""
        ijk = np.asarray(volume.lps_to_index(lps), dtype=np.float64)
        ijk[2] = int(np.clip(k, 0, self.shape[0] - 1))
        peak = self.peak_on_slice(int(ijk[2])) if centre_on_peak else None
        if peak is not None:
            ijk[1], ijk[0] = peak
        return np.asarray(volume.index_to_lps(ijk), dtype=np.float64)
