"""Results cache (atomic, pickle-free) and the package registry (bad packages listed, not fatal)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.cache import ResultCache
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
