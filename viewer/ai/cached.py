"""Whole-series AI results to and from :class:`inference.cache.ResultCache` (numpy only; call off the GUI thread).

The cache holds the explainer's own maps in [0, 1] (as ``radscope infer`` writes them); the viewer keeps
them times their slice's score (probability units, :class:`SeriesResults` with ``weighted=True``), held as
uint8 codes of the maps plus the score as each slice's factor: exactly what the compact cache format
stores, so a write copies the codes and a read takes them back unchanged (a float entry from ``radscope
infer`` is coded on reading: at most 1/510 off before the weighting, 0.002 in probability units).

Per-slice OOD distances are kept with the sha256 of the OOD statistics they were computed with; when the
package's statistics are not those (or the entry has no distances) the entry is a miss and the run is
redone, so a stale distance never decides whether a series is within intended use. A run on reformats
(`viewer.ai.reformat_run`) is cached under its own stack id (`reformat_key`) with the reformat grid it
was computed on; an entry made on another grid is unusable.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from inference.cache import CacheEntryError, ResultCache, encode_heatmap, stack_key
from viewer.ai.reformat import ReformatGrid
from viewer.ai.reformat_run import ReformatResults
from viewer.ai.results import SeriesResults
from viewer.ai.scheduler import RunKey

__all__ = ["CacheEntryError", "load_results", "stack_key", "store_results"]


def load_results(cache: ResultCache, stack: str, key: RunKey, labels: Sequence[str], shape: tuple[int, int, int],
                 thresholds: Mapping[str, float] | None = None, *, ood_sha256: str | None = None,
                 grid: ReformatGrid | None = None) -> SeriesResults | None:
    """The cached whole-series results of ``(stack, key.model_sha256, key.method)`` as weighted
    :class:`SeriesResults` (complete), None on a miss; :class:`CacheEntryError` when the entry is corrupt
    or does not fit this series (slices, size, labels).

    ``ood_sha256``: the package's OOD statistics (None: it has none): an entry whose distances were not
    computed with them is a miss. ``grid``: the run is on this reformat (``shape`` is then ignored):
    `ReformatResults`, its maps resampled onto the acquired grid here (call off the GUI thread)."""
    if grid is not None:
        shape = grid.shape
    hit = cache.load(stack, key.model_sha256, key.method, expect=(int(shape[0]), int(shape[1]), int(shape[2])))
    if hit is None:
        return None
    where = cache.entry_path(stack, key.model_sha256, key.method)
    n = int(shape[0])
    ood = _distances(hit.meta, n)
    if ood_sha256 is not None and (hit.meta.get("ood_sha256") != ood_sha256 or ood is None):
        return None  # distances of other statistics (or none): the run is redone, never judged by stale ones
    recorded = hit.meta.get("reformat")
    if grid is not None and recorded is not None and recorded != grid.describe():
        raise CacheEntryError(f"{where}: computed on another {grid.plane} reformat grid ({recorded}) than this "
                              f"series' ({grid.describe()})")
    if list(hit.labels) != list(labels):
        raise CacheEntryError(f"{where}: labels {list(hit.labels)} are not the model's {list(labels)}")
    if not np.array_equal(hit.indices, np.arange(n)):
        raise CacheEntryError(f"{where}: holds {hit.indices.size} slices, the series has {n}")
    for label in labels:
        got = hit.stored[label].shape if label in hit.stored else None
        if got != tuple(shape):
            raise CacheEntryError(f"{where}: heatmap of {label!r} is {got}, the series is {tuple(shape)}")
    results = (ReformatResults(key, labels, grid, thresholds) if grid is not None
               else SeriesResults(key, labels, shape, thresholds))
    results.scores[:] = hit.scores
    for col, label in enumerate(labels):
        stored = hit.stored[label]
        if stored.dtype == np.uint8 and hit.scale is not None and np.isclose(hit.scale, 1.0 / 255.0):
            codes = stored  # the compact format: the very codes the viewer holds
        else:
            codes = encode_heatmap(stored if hit.scale is None else stored.astype(np.float32) * np.float32(hit.scale))
        results.set_codes(label, codes, hit.scores[:, col])
    if ood is not None and ood_sha256 is not None:
        results.ood[:] = ood
    results.done[:] = True
    return results


def _distances(meta: Mapping[str, Any], n: int) -> np.ndarray | None:
    """An entry's per-slice OOD distances (both writers store them when the run had statistics; NaN for a
    slice never run, e.g. a gap), or None when absent, of the wrong length, not numbers or none finite."""
    values = meta.get("ood")
    if not isinstance(values, list) or len(values) != n:
        return None
    try:
        out = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out).any() and not np.isinf(out).any() else None


def store_results(cache: ResultCache, stack: str, results: SeriesResults, extra: Mapping[str, Any] | None = None,
                  *, ood_sha256: str | None = None) -> None:
    """Write a complete run (compact format) under ``(stack, model sha256, method)`` of its key; its OOD
    distances with ``ood_sha256``, the statistics they were computed with."""
    if not results.complete:
        raise ValueError(f"only complete runs are cached ({results.n_done}/{results.shape[0]} slices done)")
    codes = {label: results.codes(label) for label in results.labels}  # the explainer's maps, as the cache holds them
    key = results.key
    meta = {**dict(extra or {}), **results.cache_meta()}
    if np.isfinite(results.ood).any() and ood_sha256 is not None:
        meta["ood"] = [None if not np.isfinite(v) else round(float(v), 6) for v in results.ood]
        meta["ood_sha256"] = ood_sha256
    cache.put(stack, key.model_sha256, key.method, results.labels, range(results.shape[0]), results.scores, codes,
              meta, compact=True)
