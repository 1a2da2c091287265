"""Whole-series AI results to and from :class:`inference.cache.ResultCache` (numpy only; call off the GUI thread).

The cache holds the explainer's own maps in [0, 1] (as ``radscope infer`` writes them); the viewer keeps
them times their slice's score (probability units, :class:`SeriesResults` with ``weighted=True``). So a
write divides by the score (a slice scored exactly 0 keeps an all-zero map, which is what the viewer
shows for it anyway) and a read multiplies again. The viewer writes the compact format: uint8 codes, at
most 1/510 off before the weighting, so at most 0.002 in probability units.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from inference.cache import CacheEntryError, ResultCache, encode_heatmap, stack_key
from viewer.ai.results import SeriesResults
from viewer.ai.scheduler import RunKey

__all__ = ["CacheEntryError", "load_results", "stack_key", "store_results"]


def load_results(cache: ResultCache, stack: str, key: RunKey, labels: Sequence[str], shape: tuple[int, int, int],
                 thresholds: Mapping[str, float] | None = None) -> SeriesResults | None:
    """The cached whole-series results of ``(stack, key.model_sha256, key.method)`` as weighted
    :class:`SeriesResults` (complete), None on a miss; :class:`CacheEntryError` when the entry is corrupt
    or does not fit this series (slices, size, labels)."""
    hit = cache.load(stack, key.model_sha256, key.method, expect=(int(shape[0]), int(shape[1]), int(shape[2])))
    if hit is None:
        return None
    where = cache.entry_path(stack, key.model_sha256, key.method)
    n = int(shape[0])
    if list(hit.labels) != list(labels):
        raise CacheEntryError(f"{where}: labels {list(hit.labels)} are not the model's {list(labels)}")
    if not np.array_equal(hit.indices, np.arange(n)):
        raise CacheEntryError(f"{where}: holds {hit.indices.size} slices, the series has {n}")
    for label in labels:
        got = hit.stored[label].shape if label in hit.stored else None
        if got != tuple(shape):
            raise CacheEntryError(f"{where}: heatmap of {label!r} is {got}, the series is {tuple(shape)}")
    results = SeriesResults(key, labels, shape, thresholds)
    results.scores[:] = hit.scores
    for col, label in enumerate(labels):
        hit.heatmap_into(label, results.heatmap(label), weights=hit.scores[:, col])
    results.done[:] = True
    return results


def store_results(cache: ResultCache, stack: str, results: SeriesResults, extra: Mapping[str, Any] | None = None) -> None:
    """Write a complete run (compact format) under ``(stack, model sha256, method)`` of its key."""
    if not results.complete:
        raise ValueError(f"only complete runs are cached ({results.n_done}/{results.shape[0]} slices done)")
    codes = {label: encode_heatmap(results.heatmap(label), weights=results.label_scores(label))
             for label in results.labels}
    key = results.key
    cache.put(stack, key.model_sha256, key.method, results.labels, range(results.shape[0]), results.scores, codes,
              extra, compact=True)
