"""Hostile results-cache entries (inference.cache): each builder stores a good entry under :data:`KEY` in the
folder it is given (the cache root) and then damages it; ``extra["reason"]`` is what the error must say."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from tests.hostile import case

KEY = ("stack:1", "ab" * 32, "gradcam")
SHAPE = (4, 6, 5)
LABELS = ("a", "b")


def good_entry(root: Path) -> tuple[Path, Path]:
    """A valid float32 entry for :data:`KEY`; returns its (npz, json) paths."""
    from inference.cache import ResultCache

    cache = ResultCache(root)
    rng = np.random.default_rng(0)
    scores = rng.random((SHAPE[0], len(LABELS)), dtype=np.float32)
    heat = {label: rng.random(SHAPE, dtype=np.float32) for label in LABELS}
    cache.put(*KEY, LABELS, range(SHAPE[0]), scores, heat)
    npz = cache.entry_path(*KEY)
    return npz, npz.with_suffix(".json")


def npy_bytes(shape: tuple[int, ...], descr: str, payload: bytes) -> bytes:
    """A .npy member whose header says ``shape`` / ``descr`` whatever ``payload`` holds."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def replace_members(npz: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(npz) as zf:
        kept = {n: zf.read(n) for n in zf.namelist() if n not in members}
    with zipfile.ZipFile(npz, "w") as zf:
        for name, body in {**kept, **members}.items():
            zf.writestr(name, body)


@case("cache-absurd-heatmap-header", "caches", reason="header claims", claimed=3 * 2**30)
def absurd_heatmap_header(root: Path) -> Path:
    """heatmap_0 claims 3 GiB (it holds 64 bytes): refused from the header, nothing allocated."""
    npz, _ = good_entry(root)
    replace_members(npz, {"heatmap_0.npy": npy_bytes((3 * 1024, 1024, 256), "<f4", bytes(64))})
    return npz


@case("cache-absurd-scores-header", "caches", reason="header claims", claimed=2**62)
def absurd_scores_header(root: Path) -> Path:
    npz, _ = good_entry(root)
    replace_members(npz, {"scores.npy": npy_bytes((2**30, 2**30), "<f4", bytes(32))})
    return npz


@case("cache-pickled-array", "caches", reason="expected float32")
def pickled_array(root: Path) -> Path:
    """An object array (a pickle inside the .npy): refused from the header, never unpickled."""
    npz, _ = good_entry(root)
    replace_members(npz, {"scores.npy": npy_bytes((4, 2), "|O", b"\x80\x02cbuiltins\nexec\n.")})
    return npz


@case("cache-nan-scores", "caches", reason="NaN")
def nan_scores(root: Path) -> Path:
    npz, _ = good_entry(root)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.full((SHAPE[0], len(LABELS)), np.nan, dtype=np.float32))
    replace_members(npz, {"scores.npy": buf.getvalue()})
    return npz


@case("cache-truncated", "caches", reason="BadZipFile")
def truncated(root: Path) -> Path:
    npz, _ = good_entry(root)
    npz.write_bytes(npz.read_bytes()[:100])
    return npz


@case("cache-wrong-shape", "caches", reason="the series is")
def wrong_shape(root: Path) -> Path:
    npz, _ = good_entry(root)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((SHAPE[0], 6, 6), dtype=np.float32))
    replace_members(npz, {"heatmap_1.npy": buf.getvalue()})
    return npz


@case("cache-json-nested", "caches", reason="nested")
def json_nested(root: Path) -> Path:
    npz, meta = good_entry(root)
    doc = json.loads(meta.read_text())
    meta.write_text(json.dumps(doc)[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    return meta
