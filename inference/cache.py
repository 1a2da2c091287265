"""Results cache: scores and heatmaps of a whole stack, keyed by (stack id, model sha256, method).

Each entry is ``<key>.npz`` (arrays; read with ``allow_pickle=False``) plus ``<key>.json`` (what
the entry is: stack id, model sha256, method, labels, slice indices). Both are written to a temporary
file and moved into place with ``os.replace``; the JSON goes last, so an entry without it is
incomplete and ignored. The caller passes the cache folder (the CLI and the viewer:
``RADSCOPE_HOME/cache``) and the stack id (both use :func:`stack_key`, so each reuses the other's runs).

Formats (the JSON's ``format``):

* ``radscope-results/1``: ``heatmap_<i>`` float32 (n, rows, cols) in [0, 1] (``radscope infer`` writes these).
* ``radscope-results/2`` (compact, the viewer writes these): ``heatmap_<i>`` uint8 codes, value = code / 255
  (``"heatmap_encoding": {"dtype": "uint8", "scale": 1/255}``; rounding adds at most 1/510 = 0.002),
  deflate-compressed. Readers of format 1 only see a newer format as a miss.

The folder is capped (:data:`DEFAULT_MAX_BYTES`): after each write the least recently used entries
(a hit refreshes an entry's time) are removed until the entries fit; only files named like entries
are counted or removed, so other things kept in the same folder are left alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from inference import jsonsafe
from inference.npysafe import npy_read, npy_shape

FORMAT = "radscope-results/1"
FORMAT_COMPACT = "radscope-results/2"
CODE_SCALE = 1.0 / 255.0
"""Compact heatmaps: value = uint8 code * CODE_SCALE."""
DEFAULT_MAX_BYTES = 2 * 2**30
"""Cap of the cache folder's entries (2 GiB)."""
_ENTRY = re.compile(r"^[0-9a-f]{40}\.(npz|json)$")
MAX_META_BYTES = 16 * 2**20
"""An entry's JSON larger than this is not read (corrupt)."""
_STALE_S = 3600.0
"""Temporary files and orphaned arrays older than this are debris of an interrupted writer."""


class CacheEntryError(Exception):
    """A cache entry exists but cannot be used (the message names the file and why)."""


INPUT_RULE = "model-input/3"
"""Salt of every stack key: change it whenever what reaches the model from a stack changes, so that
results computed under the old rule are never served (2: MONOCHROME1 inverted over the stored range,
``viewer.ai.model_input``; before, the CLI flipped by data min + max and the viewer not at all; 3: images of
another bit depth scaled onto a card's ``input.stored_bits``)."""


def stack_key(stack_id: str, sop_instance_uids: Sequence[str]) -> str:
    """The cache's stack id for a loaded stack: its id plus a digest of `INPUT_RULE` and its slices'
    SOP Instance UIDs in slice order (a stack re-sent with other images, or reordered, is another entry)."""
    digest = hashlib.sha256("\\".join([INPUT_RULE, *sop_instance_uids]).encode()).hexdigest()[:16]
    return f"{stack_id}:{digest}"


@dataclass
class CachedResult:
    indices: np.ndarray
    """(n,) slice indices the rows below belong to."""
    scores: np.ndarray
    """(n, labels) float32."""
    stored: dict[str, np.ndarray]
    """{label: (n, rows, cols)} as on disk: float32 maps, or uint8 codes when :attr:`scale` is set."""
    labels: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    scale: float | None = None
    """Compact entries: value = code * scale; None for float32 entries."""

    @property
    def heatmaps(self) -> dict[str, np.ndarray]:
        """{label: (n, rows, cols) float32 in [0, 1]} (decoded on each access for compact entries)."""
        if self.scale is None:
            return dict(self.stored)
        return {label: codes.astype(np.float32) * np.float32(self.scale) for label, codes in self.stored.items()}

    def heatmap_into(self, label: str, out: np.ndarray, weights: np.ndarray | None = None, chunk: int = 16) -> None:
        """Write ``label``'s maps into ``out`` (n, rows, cols) float32, each slice times ``weights[slice]``
        when given, a few slices at a time (no full-size temporary)."""
        src = self.stored[label]
        if out.shape != src.shape:
            raise ValueError(f"heatmap of {label!r} has shape {src.shape}, expected {out.shape}")
        for a in range(0, src.shape[0], chunk):
            part = out[a:a + chunk]
            np.multiply(src[a:a + chunk], np.float32(1.0 if self.scale is None else self.scale), out=part,
                        dtype=np.float32, casting="unsafe")
            if weights is not None:
                part *= np.asarray(weights[a:a + chunk], dtype=np.float32)[:, None, None]


def encode_heatmap(maps: np.ndarray, weights: np.ndarray | None = None, chunk: int = 16) -> np.ndarray:
    """uint8 codes (compact format) of ``maps`` in [0, 1], or of ``maps / weights[slice]`` when ``weights`` is
    given (e.g. heatmaps stored times their slice's score; a zero weight gives zero codes)."""
    maps = np.asarray(maps)
    codes = np.empty(maps.shape, dtype=np.uint8)
    for a in range(0, maps.shape[0], chunk):
        part = maps[a:a + chunk].astype(np.float32, copy=True)
        if weights is not None:
            w = np.asarray(weights[a:a + chunk], dtype=np.float32)[:, None, None]
            np.divide(part, w, out=part, where=w > 0)
            part[np.broadcast_to(w <= 0, part.shape)] = 0.0
        np.nan_to_num(part, copy=False, nan=0.0)
        np.clip(part, 0.0, 1.0, out=part)
        part *= 255.0
        np.rint(part, out=part)
        codes[a:a + chunk] = part
    return codes


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, fsync it and rename it over ``path``
    (readers see the old file or the whole new one; a failed write leaves nothing behind)."""
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


def _write_npz(fh: Any, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    """An ``.npz`` (what ``np.load`` reads); deflate at level 1 when ``compress`` (fast, most of the gain)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fh, "w", compression=method, compresslevel=1 if compress else None, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


class ResultCache:
    """A folder of cached results, capped at ``max_bytes`` (least recently used entries go first)."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)

    @staticmethod
    def key(stack_id: str, model_sha256: str, method: str) -> str:
        return hashlib.sha256(json.dumps([stack_id, model_sha256, method]).encode()).hexdigest()[:40]

    def _paths(self, stack_id: str, model_sha256: str, method: str) -> tuple[Path, Path]:
        k = self.key(stack_id, model_sha256, method)
        return self.root / f"{k}.npz", self.root / f"{k}.json"

    def entry_path(self, stack_id: str, model_sha256: str, method: str) -> Path:
        """The entry's array file (its JSON sits beside it), for messages."""
        return self._paths(stack_id, model_sha256, method)[0]

    def get(self, stack_id: str, model_sha256: str, method: str,
            expect: tuple[int, int, int] | None = None) -> CachedResult | None:
        """The cached result, or None (missing, incomplete or unreadable entries are misses)."""
        try:
            return self.load(stack_id, model_sha256, method, expect)
        except CacheEntryError:
            return None

    def load(self, stack_id: str, model_sha256: str, method: str,
             expect: tuple[int, int, int] | None = None) -> CachedResult | None:
        """The cached result; None when there is none (or it is incomplete, or of a format this version
        does not know); :class:`CacheEntryError` when the entry is there but corrupt, unreadable or (given
        ``expect`` = (slices, rows, cols)) not of that shape. Array headers are checked against the members'
        sizes and ``expect`` before anything is allocated; NaN or infinite scores make an entry corrupt."""
        npz, meta_path = self._paths(stack_id, model_sha256, method)
        try:
            if meta_path.stat().st_size > MAX_META_BYTES:
                raise CacheEntryError(f"{meta_path}: larger than {MAX_META_BYTES} bytes; not a cache entry")
            text = meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CacheEntryError(f"{meta_path}: unreadable ({exc})") from exc
        try:
            meta = jsonsafe.loads(text, str(meta_path))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise CacheEntryError(f"{meta_path}: not valid JSON ({exc})") from exc
        fmt = meta.get("format")
        if fmt not in (FORMAT, FORMAT_COMPACT) or (meta.get("stack_id"), meta.get("model_sha256"),
                                                   meta.get("method")) != (stack_id, model_sha256, method):
            return None
        try:
            result = self._read_arrays(npz, meta, compact=fmt == FORMAT_COMPACT, expect=expect)
        except FileNotFoundError:
            return None  # removed by another process's cap between the two reads
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            raise CacheEntryError(f"{npz}: unreadable cache entry ({type(exc).__name__}: {exc})") from exc
        self._touch(meta_path)
        return result

    @staticmethod
    def _read_arrays(npz: Path, meta: dict[str, Any], compact: bool,
                     expect: tuple[int, int, int] | None = None) -> CachedResult:
        labels_meta = meta["labels"]
        if not isinstance(labels_meta, list):
            raise ValueError("labels is not a list")
        labels = tuple(str(v) for v in labels_meta)
        want = np.dtype(np.uint8 if compact else np.float32)
        with zipfile.ZipFile(npz) as zf:
            members = {name[:-4] for name in zf.namelist() if name.endswith(".npy")}
            heat_names = {label: f"heatmap_{i}" for i, label in enumerate(labels) if f"heatmap_{i}" in members}
            specs = {"indices": (np.dtype(np.int64), 1), "scores": (np.dtype(np.float32), 2),
                     **{name: (want, 3) for name in heat_names.values()}}
            shapes = {name: npy_shape(zf, name, dtype, ndim) for name, (dtype, ndim) in specs.items()}
            n = shapes["indices"][0]
            if shapes["scores"] != (n, len(labels)):
                raise ValueError(f"indices {shapes['indices']} and scores {shapes['scores']} do not match "
                                 f"{len(labels)} labels")
            if expect is not None and n != expect[0]:
                raise ValueError(f"holds {n} slices, the series has {expect[0]}")
            for label, name in heat_names.items():
                got = shapes[name]
                if got[0] != n or (expect is not None and got != tuple(expect)):
                    raise ValueError(f"heatmap of {label!r} is {got}, the series is "
                                     f"{tuple(expect) if expect is not None else (n, 'rows', 'cols')}")
            arrays = {name: npy_read(zf, name) for name in specs}
        indices, scores = arrays["indices"], arrays["scores"]
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores hold NaN or infinite values")
        heat = {label: arrays[name] for label, name in heat_names.items()}
        scale = None
        if compact:
            encoding = meta.get("heatmap_encoding")
            if not isinstance(encoding, dict) or encoding.get("dtype") != "uint8":
                raise ValueError(f"unknown heatmap_encoding {encoding!r}")
            scale = float(encoding["scale"])
            if not math.isfinite(scale) or not 0 < scale <= 1:
                raise ValueError(f"heatmap_encoding scale {scale!r} is not in (0, 1]")
        return CachedResult(indices, scores, heat, labels, meta, scale)

    def put(self, stack_id: str, model_sha256: str, method: str, labels: Sequence[str], indices: Sequence[int],
            scores: np.ndarray, heatmaps: Mapping[str, np.ndarray], extra: Mapping[str, Any] | None = None, *,
            compact: bool = False) -> None:
        """Store a result (replacing any previous one for the same key), then keep the folder under its cap.

        ``compact``: ``heatmaps`` are uint8 codes from :func:`encode_heatmap` (format 2); else float32 maps.
        """
        npz, meta_path = self._paths(stack_id, model_sha256, method)
        labels = list(labels)
        if not np.all(np.isfinite(np.asarray(scores, dtype=np.float32))):
            raise ValueError("scores hold NaN or infinite values; such results are never cached")
        arrays = {"indices": np.asarray(indices, dtype=np.int64), "scores": np.asarray(scores, dtype=np.float32)}
        for label, heat in heatmaps.items():
            if compact and np.asarray(heat).dtype != np.uint8:
                raise ValueError(f"compact heatmaps are uint8 codes (encode_heatmap); {label!r} is {heat.dtype}")
            arrays[f"heatmap_{labels.index(label)}"] = np.asarray(heat, dtype=np.uint8 if compact else np.float32)
        meta_path.unlink(missing_ok=True)  # the entry is incomplete until the new JSON lands
        atomic_write(npz, lambda fh: _write_npz(fh, arrays, compress=compact))
        meta: dict[str, Any] = {"format": FORMAT_COMPACT if compact else FORMAT, "stack_id": stack_id,
                                "model_sha256": model_sha256, "method": method, "labels": labels}
        if compact:
            meta["heatmap_encoding"] = {"dtype": "uint8", "scale": CODE_SCALE}
        meta.update(dict(extra or {}))
        atomic_write(meta_path, lambda fh: fh.write(json.dumps(meta, indent=1).encode("utf-8")))
        self.prune(keep=npz.stem)

    # -- size cap -----------------------------------------------------------------------------
    def _scan(self) -> dict[str, dict[str, os.stat_result]]:
        """{key: {".npz"/".json": stat}} of the files named like entries."""
        found: dict[str, dict[str, os.stat_result]] = {}
        for path in self.root.iterdir():
            if _ENTRY.match(path.name):
                try:
                    found.setdefault(path.stem, {})[path.suffix] = path.stat()
                except FileNotFoundError:
                    continue
        return found

    def entries(self) -> list[tuple[str, int, float]]:
        """(key, bytes, last used) of each complete entry, most recently used first."""
        rows = [(key, sum(st.st_size for st in files.values()), files[".json"].st_mtime)
                for key, files in self._scan().items() if ".json" in files]
        return sorted(rows, key=lambda r: -r[2])

    @property
    def nbytes(self) -> int:
        """Bytes held by the folder's complete entries."""
        return sum(size for _, size, _ in self.entries())

    def prune(self, keep: str | None = None) -> list[str]:
        """Remove least recently used entries until the rest fit in ``max_bytes`` (never ``keep``), plus
        debris of interrupted writers (temporary files, arrays without JSON) older than an hour;
        returns the removed keys."""
        now = time.time()
        for path in self.root.glob(".*.tmp"):
            self._remove_if_older(path, now)
        for key, files in self._scan().items():
            if ".json" not in files:
                self._remove_if_older(self.root / f"{key}.npz", now)
        removed: list[str] = []
        total = 0
        for key, size, _ in self.entries():
            total += size
            if total > self.max_bytes and key != keep:
                (self.root / f"{key}.json").unlink(missing_ok=True)  # the JSON first: a miss from now on
                (self.root / f"{key}.npz").unlink(missing_ok=True)
                total -= size
                removed.append(key)
        return removed

    @staticmethod
    def _remove_if_older(path: Path, now: float) -> None:
        try:
            if now - path.stat().st_mtime > _STALE_S:
                path.unlink()
        except FileNotFoundError:
            pass

    @staticmethod
    def _touch(path: Path) -> None:
        """Mark an entry used (its JSON's time orders the cap's removals)."""
        try:
            os.utime(path)
        except OSError:
            pass  # a read-only cache still answers
