"""Results cache (atomic, pickle-free) and the package registry (bad packages listed, not fatal)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.cache import (CODE_SCALE, FORMAT, FORMAT_COMPACT, CacheEntryError, ResultCache, encode_heatmap,
                             stack_key)
from inference.package import ModelPackageError
from inference.registry import choose_package, find_packages
from tests.test_inference_package import CARD, _with, _write


def test_cache_hit_returns_identical_arrays(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    scores = rng.random((4, 2), dtype=np.float32)
    heat = {"nodule": rng.random((4, 9, 7), dtype=np.float32), "mass": rng.random((4, 9, 7), dtype=np.float32)}
    assert cache.get("1.2.3", "ab" * 32, "gradcam") is None
    cache.put("1.2.3", "ab" * 32, "gradcam", ["nodule", "mass"], [0, 1, 2, 3], scores, heat, {"device": "cpu"})
    hit = cache.get("1.2.3", "ab" * 32, "gradcam")
    assert hit is not None and hit.labels == ("nodule", "mass") and hit.meta["device"] == "cpu"
    np.testing.assert_array_equal(hit.scores, scores)
    np.testing.assert_array_equal(hit.indices, [0, 1, 2, 3])
    for label in heat:
        np.testing.assert_array_equal(hit.heatmaps[label], heat[label])
    # other keys miss; no temporary files are left behind
    assert cache.get("1.2.3", "ab" * 32, "layercam") is None and cache.get("1.2.3", "cd" * 32, "gradcam") is None
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_incomplete_or_corrupt_entries_are_misses(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    cache.put("s", "f" * 64, "m", ["a"], [0], np.zeros((1, 1), np.float32), {})
    npz, meta = cache._paths("s", "f" * 64, "m")
    npz.write_bytes(b"garbage")
    assert cache.get("s", "f" * 64, "m") is None
    cache.put("s", "f" * 64, "m", ["a"], [0], np.zeros((1, 1), np.float32), {})
    meta.unlink()
    assert cache.get("s", "f" * 64, "m") is None


def test_compact_entries_round_trip_within_half_a_code(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    rng = np.random.default_rng(1)
    raw = rng.random((5, 16, 12), dtype=np.float32)
    raw[2] = 0.0
    scores = np.array([[0.9], [0.3], [0.0], [1e-6], [0.5]], np.float32)
    weighted = raw * scores[:, 0, None, None]  # how the viewer keeps them (probability units)
    codes = encode_heatmap(weighted, weights=scores[:, 0])
    assert codes.dtype == np.uint8
    cache.put("s:1", "ab" * 32, "gradcam", ["nodule"], range(5), scores, {"nodule": codes}, compact=True)
    meta = json.loads(cache._paths("s:1", "ab" * 32, "gradcam")[1].read_text())
    assert meta["format"] == FORMAT_COMPACT and meta["heatmap_encoding"] == {"dtype": "uint8", "scale": CODE_SCALE}
    hit = cache.load("s:1", "ab" * 32, "gradcam")
    assert hit is not None and hit.stored["nodule"].dtype == np.uint8
    decoded = hit.heatmaps["nodule"]
    assert decoded.dtype == np.float32
    ok = scores[:, 0] > 0  # a slice scored exactly 0 keeps no map (its weighted map is all zero)
    assert np.abs(decoded[ok] - raw[ok]).max() <= 0.5 / 255 + 1e-6
    assert not decoded[~ok].any()
    out = np.full(raw.shape, np.nan, np.float32)
    hit.heatmap_into("nodule", out, weights=hit.scores[:, 0], chunk=2)
    assert np.abs(out - weighted).max() <= 0.5 / 255 + 1e-6
    # float32 entries (what radscope infer writes) stay format 1, exact
    cache.put("s:1", "ab" * 32, "layercam", ["nodule"], range(5), scores, {"nodule": raw})
    assert json.loads(cache._paths("s:1", "ab" * 32, "layercam")[1].read_text())["format"] == FORMAT
    np.testing.assert_array_equal(cache.get("s:1", "ab" * 32, "layercam").heatmaps["nodule"], raw)
    with pytest.raises(ValueError, match="uint8 codes"):
        cache.put("s:1", "ab" * 32, "x", ["nodule"], range(5), scores, {"nodule": raw}, compact=True)


def test_load_tells_corrupt_entries_from_misses(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    assert cache.load("s", "f" * 64, "m") is None
    cache.put("s", "f" * 64, "m", ["a"], [0], np.zeros((1, 1), np.float32), {"a": np.zeros((1, 3, 3), np.uint8)},
              compact=True)
    npz, meta = cache._paths("s", "f" * 64, "m")
    npz.write_bytes(npz.read_bytes()[:40])  # truncated
    with pytest.raises(CacheEntryError, match=re.escape(str(npz))):
        cache.load("s", "f" * 64, "m")
    assert cache.get("s", "f" * 64, "m") is None  # get stays quiet
    meta.write_text("{not json")
    with pytest.raises(CacheEntryError, match="not valid JSON"):
        cache.load("s", "f" * 64, "m")
    meta.write_text(json.dumps({"format": "radscope-results/99", "stack_id": "s"}))
    assert cache.load("s", "f" * 64, "m") is None  # a newer format: a miss, not an error


def test_cap_removes_least_recently_used_entries_only(tmp_path: Path) -> None:
    import os
    import time

    cache = ResultCache(tmp_path, max_bytes=10**9)
    heat = {"a": np.random.default_rng(0).random((4, 32, 32), dtype=np.float32)}
    for name in ("old", "mid", "new"):
        cache.put(name, "f" * 64, "m", ["a"], range(4), np.zeros((4, 1), np.float32), heat)
    sizes = {k: size for k, size, _ in cache.entries()}
    one = max(sizes.values())
    now = time.time()
    for age, name in ((300, "old"), (200, "mid"), (100, "new")):
        os.utime(cache._paths(name, "f" * 64, "m")[1], (now - age, now - age))
    (tmp_path / "demo-study-v1").mkdir()  # other things in the same folder are not the cache's
    (tmp_path / "unrelated.npz").write_bytes(b"x" * 100_000)
    stale = tmp_path / ".deadbeef.npz.123.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (now - 7200, now - 7200))
    assert cache.load("old", "f" * 64, "m") is not None  # a hit makes "old" the most recently used
    cache.max_bytes = 2 * one + one // 2
    assert cache.prune() == [cache.key("mid", "f" * 64, "m")]
    assert cache.get("mid", "f" * 64, "m") is None and cache.get("old", "f" * 64, "m") is not None
    assert cache.nbytes <= cache.max_bytes and not stale.exists()
    assert (tmp_path / "unrelated.npz").exists() and (tmp_path / "demo-study-v1").is_dir()
    cache.max_bytes = one // 2  # a new entry bigger than the cap is still kept: the others go
    cache.put("newest", "f" * 64, "m", ["a"], range(4), np.zeros((4, 1), np.float32), heat)
    assert [k for k, _, _ in cache.entries()] == [cache.key("newest", "f" * 64, "m")]


def test_stack_key_follows_the_slices() -> None:
    a = stack_key("1.2.3", ["1.1", "1.2"])
    assert a.startswith("1.2.3:") and a != stack_key("1.2.3", ["1.2", "1.1"]) and a == stack_key("1.2.3", ["1.1", "1.2"])


def test_registry_lists_bad_packages_and_chooses_by_modality(tmp_path: Path) -> None:
    bundled, user = tmp_path / "bundled", tmp_path / "user"
    _write(bundled / "ct", _with(CARD, "name", "ct-model"))
    _write(bundled / "xr", _with(_with(CARD, "name", "xr-model"), "input.modalities", ["CR", "DX"]))
    _write(user / "broken", _with(CARD, "input.window.width", 0))
    (user / "junk.zip").write_bytes(b"not a zip")
    (user / "notes.txt").write_text("ignored")
    entries = find_packages([bundled, user, tmp_path / "missing"])
    assert [e.path.name for e in entries] == ["ct", "xr", "broken", "junk.zip"]
    assert [e.ok for e in entries] == [True, True, False, False]
    assert "broken/radscope-model.json: input.window.width must be a positive number" in (entries[2].error or "")
    assert choose_package(entries, modality="DX").name == "xr-model"
    assert choose_package(entries, modality="ct").name == "ct-model"
    assert choose_package(entries, "xr-model").name == "xr-model"
    assert choose_package(entries, str(bundled / "ct")).name == "ct-model"
    with pytest.raises(ModelPackageError, match="no such model package .*ct-model, xr-model"):
        choose_package(entries, "nope")
    with pytest.raises(ModelPackageError, match="no installed model is offered for modality MR"):
        choose_package(entries, modality="MR")
    shutil.rmtree(bundled / "ct")
    generic = _with(CARD, "name", "generic")
    del generic["input"]["modalities"]
    _write(bundled / "generic", generic)
    assert choose_package(find_packages([bundled]), modality="MR").name == "generic"
    assert json.loads((bundled / "generic" / "radscope-model.json").read_text())["name"] == "generic"
