"""Results cache: scores and heatmaps of a whole stack, keyed by (stack id, model sha256, method).

Each entry is ``<key>.npz`` (arrays; read with ``allow_pickle=False``) plus ``<key>.json`` (what
the entry is: stack id, model sha256, method, labels, slice indices). Both are written to a temporary
file and moved into place with ``os.replace``; the JSON goes last, so an entry without it is
incomplete and ignored. The caller passes the cache folder (the CLI: ``RADSCOPE_HOME/cache``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

FORMAT = "radscope-results/1"


@dataclass
class CachedResult:
    indices: np.ndarray
    """(n,) slice indices the rows below belong to."""
    scores: np.ndarray
    """(n, labels) float32."""
    heatmaps: dict[str, np.ndarray]
    """{label: (n, rows, cols) float32}."""
    labels: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultCache:
    """A folder of cached results."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(stack_id: str, model_sha256: str, method: str) -> str:
        return hashlib.sha256(json.dumps([stack_id, model_sha256, method]).encode()).hexdigest()[:40]

    def _paths(self, stack_id: str, model_sha256: str, method: str) -> tuple[Path, Path]:
        k = self.key(stack_id, model_sha256, method)
        return self.root / f"{k}.npz", self.root / f"{k}.json"

    def get(self, stack_id: str, model_sha256: str, method: str) -> CachedResult | None:
        """The cached result, or None (missing, incomplete or unreadable entries are misses)."""
        npz, meta_path = self._paths(stack_id, model_sha256, method)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if (meta.get("format"), meta.get("stack_id"), meta.get("model_sha256"), meta.get("method")) != (
                    FORMAT, stack_id, model_sha256, method):
                return None
            labels = tuple(meta["labels"])
            with np.load(npz, allow_pickle=False) as data:
                heat = {label: data[f"heatmap_{i}"] for i, label in enumerate(labels) if f"heatmap_{i}" in data}
                return CachedResult(data["indices"], data["scores"], heat, labels, meta)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None

    def put(self, stack_id: str, model_sha256: str, method: str, labels: Sequence[str], indices: Sequence[int],
            scores: np.ndarray, heatmaps: Mapping[str, np.ndarray], extra: Mapping[str, Any] | None = None) -> None:
        """Store a result (replacing any previous one for the same key)."""
        npz, meta_path = self._paths(stack_id, model_sha256, method)
        labels = list(labels)
        arrays = {"indices": np.asarray(indices, dtype=np.int64), "scores": np.asarray(scores, dtype=np.float32)}
        for label, heat in heatmaps.items():
            arrays[f"heatmap_{labels.index(label)}"] = np.asarray(heat, dtype=np.float32)
        meta_path.unlink(missing_ok=True)  # the entry is incomplete until the new JSON lands
        _atomic_write(npz, lambda fh: np.savez(fh, **arrays))
        meta = {"format": FORMAT, "stack_id": stack_id, "model_sha256": model_sha256, "method": method,
                "labels": labels, **dict(extra or {})}
        _atomic_write(meta_path, lambda fh: fh.write(json.dumps(meta, indent=1).encode("utf-8")))
