"""A plane-bound 2D model's run on reformats in the viewer (numpy + scipy: no Qt, no torch).

When the card's intended-use rules say the model reads another plane than the acquired one
(`viewer.ai.scope.ScopeDecision.reformat_to`), the viewer runs it on the reformat `radscope infer`
uses (`viewer.ai.reformat.reformat_grid`: the same grid, so both share results-cache entries):

* `ReformatInput`: the reformat's slices as the model sees them, resampled one at a time when the
  worker reads them (trilinear, from the acquired volume's model input): no copy of the whole reformat
  is ever held.
* `ReformatResults` (a `SeriesResults`): scores, OOD distances, findings and progress count the
  *reformat* slices (the model's own plane); the explainer's maps are kept as uint8 codes on the
  reformat grid (what the cache stores) and, batch by batch, resampled onto the *acquired* grid
  (uint8 codes in probability units: the map times its slice's score), which is what every view
  draws. A batch of reformat slices updates only the acquired voxels whose trilinear neighbours
  include one of its slices, so any batch order gives the same maps as `ReformatGrid.to_acquired`.
  Slice wording ("axial reformat slice 12, z = 34.5 mm"), the slice under the crosshair and where a
  finding's peak lies (an LPS point) come from the reformat's geometry.
* `reformat_key`: the results-cache / memory key of a reformatted run (never the acquired one's).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from viewer.ai.model_input import ModelInput
from viewer.ai.reformat import ReformatGrid, axis_permutation, reformat_grid, resolution_along, separable_linear
from viewer.ai.results import SeriesResults
from viewer.ai.scheduler import RunKey
from viewer.display.coded import CodedVolume, encode_unit
from viewer.float_volume import SliceSequence


def reformat_key(stack: str, plane: str | None) -> str:
    """The id a run's results are cached and remembered under: the stack's own for acquired slices, a
    distinct one per reformat plane (``radscope infer`` uses the same)."""
    return f"{stack}:{plane}-reformat" if plane else stack


def grid_for(volume: Any, plane: str) -> ReformatGrid:
    """The reformat of a `viewer.dicom.Volume` (anything with shape, origin, spacing, direction; its ``missing``
    gaps bridged and marked) onto ``plane``."""
    return reformat_grid(tuple(volume.shape[:3]), volume.origin, volume.spacing, volume.direction, plane,
                         missing=getattr(volume, "missing", None))


class ReformatInput(SliceSequence):
    """A read-only (n, rows, cols) float32 view of the reformat of a model input, resampled per slice.

    MONOCHROME1 inputs are inverted as `viewer.ai.model_input` does, the per-slice range sums
    interpolated along the acquired slices. Outside the acquired volume: its smallest model value (air).
    Reading slice k costs one trilinear resample of rows x cols points; nothing is cached.
    """

    noun = "reformat slice"

    def __init__(self, grid: ReformatGrid, source: ModelInput) -> None:
        if tuple(source.shape) != tuple(grid.source_shape):
            raise ValueError(f"model input {source.shape} is not the reformat's source {grid.source_shape}")
        self.grid = grid
        self.source = source
        self._index = grid.source_index()
        self._fill: float | None = None
        self._sums: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.grid.shape)  # type: ignore[return-value]

    def _prepare(self) -> None:
        """The fill value (and MONOCHROME1's range sums), once, on the first read (the worker thread)."""
        array = self.source.array
        if not self.source.invert:
            self._fill = float(np.nanmin(array)) if array.size else 0.0
            return
        n = array.shape[0]
        lows = np.array([float(np.nanmin(array[k])) for k in range(n)])
        highs = np.array([float(np.nanmax(array[k])) for k in range(n)])
        sums = np.asarray(self.source.sums, dtype=np.float64) if self.source.sums is not None else lows + highs
        self._sums = sums
        self._fill = float(np.min(sums - highs))

    def _slice(self, k: int) -> np.ndarray:
        if self._fill is None:
            self._prepare()
        assert self._fill is not None
        if self._sums is None:
            return self.grid.sample(self.source.array, k, self._fill, self._index)
        n, rows, cols = self.grid.shape
        coords = self._index(int(k), rows, cols)
        raw = self.grid.sample(self.source.array, k, np.nan, self._index).ravel()
        sums = np.interp(coords[0], np.arange(self._sums.size), self._sums)
        out = (sums - raw).astype(np.float32)
        out[~np.isfinite(out)] = self._fill
        return out.reshape(rows, cols)


class ReformatResults(SeriesResults):
    """A run on reformat slices (module docstring): `SeriesResults` in the model's plane, maps shown on the
    acquired grid. ``heatmap(label)`` is the acquired-grid volume the views draw (probability units);
    ``codes(label)`` the reformat-grid codes of the explainer's maps (what the results cache stores)."""

    maps_span_slices = True

    def __init__(self, key: RunKey, labels: Sequence[str], grid: ReformatGrid,
                 thresholds: Mapping[str, float] | None = None) -> None:
        super().__init__(key, labels, grid.shape, thresholds)
        self.grid = grid
        self.plane = grid.plane
        self.acquired_shape = tuple(int(v) for v in grid.source_shape)
        self._acquired = {lab: CodedVolume.zeros(grid.source_shape) for lab in self.labels}  # type: ignore[arg-type]
        along = resolution_along(grid.source_direction, grid.source_spacing, grid.plane)[2]
        self.slices_per_acquired = max(1, int(round(along / float(grid.spacing[2]))))
        self.axis_text = f"{self.plane} reformat slice (the model's plane)"
        self.slice_noun = f"{self.plane} reformat slices"

    # -- filling ------------------------------------------------------------------------------
    def add(self, indices: Sequence[int], scores: np.ndarray, heatmaps: Mapping[str, np.ndarray], *,
            weighted: bool = False, ood: np.ndarray | None = None) -> None:
        """`SeriesResults.add` on the reformat grid, then the acquired voxels these slices reach."""
        super().add(indices, scores, heatmaps, weighted=weighted, ood=ood)
        idx = np.unique(np.asarray(indices, dtype=np.intp))
        if idx.size and heatmaps:  # per run of consecutive slices (a nearest-first batch lies on both sides)
            breaks = np.flatnonzero(np.diff(idx) > 1)
            for first, last in zip(np.concatenate(([0], breaks + 1)), np.concatenate((breaks, [idx.size - 1]))):
                self.project(int(idx[first]), int(idx[last]), labels=list(heatmaps))

    def set_codes(self, label: str, codes: np.ndarray, factors: np.ndarray) -> None:
        """Every reformat slice of ``label`` at once (e.g. from the results cache), resampled onto the acquired grid."""
        super().set_codes(label, codes, factors)
        self.project(0, self.shape[0] - 1, labels=[label])

    def project(self, first: int, last: int, labels: Sequence[str] | None = None) -> None:
        """Recompute the acquired-grid values of every voxel whose trilinear neighbours on the reformat grid
        include a slice in ``first..last`` (from whatever the reformat grid holds now)."""
        n = self.shape[0]
        k0, k1 = max(first - 1, 0), min(last + 1, n - 1)
        chosen = list(labels) if labels is not None else self.labels
        subs = {}
        for label in chosen:
            ref = super().heatmap(label)
            subs[label] = np.multiply(ref.codes[k0:k1 + 1], ref.scale[k0:k1 + 1, None, None], dtype=np.float32)
        for label, index, values in spread(self.grid, first, last, k0, subs):
            self._acquired[label].codes[index] = encode_unit(values)

    # -- reading ------------------------------------------------------------------------------
    def heatmap(self, label: str) -> CodedVolume:
        """``label``'s map on the acquired grid, in probability units (shared: later batches show up in it)."""
        return self._acquired[label]

    def reformat_heatmap(self, label: str) -> CodedVolume:
        """``label``'s map on the reformat grid (the explainer's map times the slice's factor)."""
        return super().heatmap(label)

    @property
    def nbytes(self) -> int:
        return super().nbytes + sum(h.nbytes for h in self._acquired.values())

    def peak_on_slice(self, k: int) -> tuple[int, int] | None:
        """(row, column) on the *reformat* grid of the peak of reformat slice ``k`` (label scoring highest there)."""
        scores = np.nan_to_num(self.scores[k], nan=-np.inf)
        best = self.labels[int(np.argmax(scores))]
        plane = self.codes(best)[k]
        if plane.size == 0 or int(plane.max()) == 0:
            return None
        j, i = np.unravel_index(int(np.argmax(plane)), plane.shape)
        return int(j), int(i)

    def slice_text(self, k: int) -> str:
        axis = {"axial": "z", "coronal": "y", "sagittal": "x"}[self.plane]
        return f"{self.plane} reformat slice {k + 1}, {axis} = {self.grid.patient_position(k):.1f} mm"

    def span_text(self, first: int, last: int) -> str:
        return f"slices {first + 1}-{last + 1}"

    def gap_note(self, k: int) -> str:
        """Where reformat slice ``k``'s heatmap peak rests on missing acquired slices (within one acquired slice of
        one: `ReformatGrid.bridged_at`): "; peak at missing Im 13 (not acquired, interpolated)"; '' otherwise."""
        peak = self.peak_on_slice(k)
        if peak is None:
            return ""
        bridged = self.grid.bridged_at((float(peak[1]), float(peak[0]), float(k)))
        if not bridged:
            return ""
        images = f"Im {bridged[0] + 1}" + (f"-{bridged[-1] + 1}" if len(bridged) > 1 else "")
        return f"; peak at missing {images} (not acquired, interpolated)"

    def run_id(self, stack: str) -> str:
        return reformat_key(stack, self.plane)

    def cache_meta(self) -> dict[str, Any]:
        return {"reformat": self.grid.describe()}

    def slice_under(self, volume: Any, lps: np.ndarray) -> int:
        """The reformat slice nearest an LPS point (the crosshair)."""
        k = float(self.grid.lps_to_index(lps)[2])
        return int(np.clip(np.floor(k + 0.5), 0, self.shape[0] - 1))

    def crosshair_to(self, volume: Any, lps: np.ndarray, k: int, centre_on_peak: bool = False) -> np.ndarray:
        """Onto reformat slice ``k``: to the slice's heatmap peak (``centre_on_peak``), else the crosshair keeps
        its place in that plane. Where that point lies outside the acquired volume (a tilted acquisition's
        corner slices), the slice's peak, then the volume's centre on that plane, stand in."""
        k = int(np.clip(k, 0, self.shape[0] - 1))
        peak = self.peak_on_slice(k)
        kept = self.grid.lps_to_index(lps)
        candidates = [] if peak is None else [np.array([peak[1], peak[0], k], dtype=np.float64)]
        if not centre_on_peak or peak is None:
            candidates.insert(0, np.array([kept[0], kept[1], k], dtype=np.float64))
        middle = self.grid.lps_to_index(volume.index_to_lps((np.array(self.acquired_shape[::-1], float) - 1) / 2))
        candidates.append(np.array([middle[0], middle[1], k], dtype=np.float64))
        hi = np.array(self.acquired_shape[::-1], dtype=np.float64) - 0.5
        for ijk in candidates:
            point = self.grid.index_to_lps(ijk)
            inside = np.asarray(volume.lps_to_index(point), dtype=np.float64)
            if np.all(inside >= -0.5) and np.all(inside <= hi):
                return point
        return self.grid.index_to_lps(candidates[-1])


def new_results(key: RunKey, labels: Sequence[str], volume: Any, plane: str | None,
                thresholds: Mapping[str, float] | None = None) -> SeriesResults:
    """Empty results of a run on ``volume``'s acquired slices (``plane`` None) or on its reformat to ``plane``."""
    if plane:
        return ReformatResults(key, labels, grid_for(volume, plane), thresholds)
    return SeriesResults(key, labels, tuple(volume.shape[:3]), thresholds)  # type: ignore[arg-type]


def input_for(results: SeriesResults, source: ModelInput) -> Any:
    """What the worker feeds the model for ``results``: the acquired model input, or its reformat (a
    `ModelInput` or `ReformatInput`: array-like (n, rows, cols) float32, read slice by slice)."""
    if isinstance(results, ReformatResults):
        return ReformatInput(results.grid, source)
    return source


def spread(grid: ReformatGrid, first: int, last: int, k0: int, subs: Mapping[str, np.ndarray]
           ) -> Iterator[tuple[str, Any, np.ndarray]]:
    """The acquired-grid values (trilinear, 0 outside the reformat) of every acquired voxel whose neighbours on
    the reformat grid include a slice in ``first..last``: ``(key, index, values)`` per part, ``index`` into the
    acquired (k, j, i) array. ``subs[key]`` holds reformat slices ``k0..`` (at least ``first - 1 .. last + 1``
    where they exist); the voxels read nothing beyond them. Acquisitions along the patient axes give one block
    of whole acquired rows/columns/slices, tilted ones one part per acquired slice."""
    from scipy import ndimage

    a, b = grid.from_source()
    lo, hi = first - 1.0, last + 1.0  # voxels strictly between these depend on first..last
    nk, nj, ni = (int(v) for v in grid.source_shape)
    follows = axis_permutation(a)
    if follows is not None:  # the reformat's slice index follows one acquired axis
        shape_ijk = (ni, nj, nk)
        r = int(follows[2])  # the acquired axis (i, j, k order) the reformat's slice index follows
        scale, offset = a[2, r], b[2]
        e1, e2 = (lo - offset) / scale, (hi - offset) / scale
        t0 = max(int(np.floor(min(e1, e2))) + 1, 0)
        t1 = min(int(np.ceil(max(e1, e2))) - 1, shape_ijk[r] - 1)
        if t1 < t0:
            return
        spans = [np.arange(n, dtype=np.float64) for n in shape_ijk]
        spans[r] = np.arange(t0, t1 + 1, dtype=np.float64)
        block: list[slice] = [slice(None)] * 3
        block[2 - r] = slice(t0, t1 + 1)  # array order is (k, j, i)
        shaped = [spans[0][None, None, :], spans[1][None, :, None], spans[2][:, None, None]]  # i, j, k
        coords = [a[s, follows[s]] * shaped[follows[s]] + b[s] for s in (2, 1, 0)]
        coords[0] = coords[0] - k0
        for key, sub in subs.items():
            values, inside = separable_linear(sub, coords)
            yield key, tuple(block), np.where(inside, values, 0.0)
        return
    rows = np.arange(nj, dtype=np.float64)
    for ka in range(nk):
        base = a[2, 2] * ka + b[2] + a[2, 1] * rows  # reformat k at column 0 of each row
        slope = a[2, 0]  # its change per column
        if abs(slope) < 1e-12:
            inside_rows = (base > lo) & (base < hi)
            i_min = np.where(inside_rows, 0, 1)
            i_max = np.where(inside_rows, ni - 1, 0)
        else:
            e1, e2 = (lo - base) / slope, (hi - base) / slope
            i_min = np.maximum(np.floor(np.minimum(e1, e2)) + 1, 0).astype(np.intp)
            i_max = np.minimum(np.ceil(np.maximum(e1, e2)) - 1, ni - 1).astype(np.intp)
        counts = np.maximum(i_max - i_min + 1, 0)
        total = int(counts.sum())
        if total == 0:
            continue
        jj = np.repeat(np.arange(nj, dtype=np.intp), counts)
        starts = np.cumsum(counts) - counts
        ii = np.arange(total, dtype=np.intp) - np.repeat(starts, counts) + np.repeat(i_min, counts)
        src = np.stack([ii.astype(np.float64), jj.astype(np.float64), np.full(total, float(ka))])
        ref_ijk = a @ src + b[:, None]
        at = np.stack([ref_ijk[2] - k0, ref_ijk[1], ref_ijk[0]])
        for key, sub in subs.items():
            yield key, (ka, jj, ii), ndimage.map_coordinates(sub, at, order=1, cval=0.0)


def slice_on_acquired(grid: ReformatGrid, k: int, values: np.ndarray) -> Iterator[tuple[Any, np.ndarray]]:
    """A map on reformat slice ``k`` alone (``values``: (rows, cols)) put on the acquired grid: ``(index,
    values)`` parts for the acquired voxels it reaches, equal there to ``grid.to_acquired`` of a reformat
    volume that holds ``values`` at ``k`` and zeros elsewhere (full strength on the slice, fading to its
    neighbours). What the layer inspector draws over the views for a probe of a reformat slice."""
    n = grid.shape[0]
    k0, k1 = max(k - 1, 0), min(k + 1, n - 1)
    sub = np.zeros((k1 - k0 + 1, *grid.shape[1:]), dtype=np.float32)
    sub[k - k0] = values
    for _key, index, part in spread(grid, k, k, k0, {"": sub}):
        yield index, part
