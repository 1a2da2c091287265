"""The results cache in the viewer (pytest-qt, offscreen): a series opened again with the same model and
method shows its results without inference; another method or model recomputes; a corrupt entry is
reported and recomputed; cache files are read and written off the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.cache import FORMAT_COMPACT, ResultCache, stack_key
from tests.support.gui_ai import CardStub, ImageBlobSession, nodule_volume

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("propagateSizeHints")]

CENTRE = (37, 13, 15)


class Counting(ImageBlobSession):
    """The blob model, counting the slices it really runs; two explanation methods."""

    methods = ("gradcam", "gradcam++")
    ran: list[int] = []

    def run(self, volume, indices, method, cancel, notify):  # type: ignore[no-untyped-def]
        Counting.ran.extend(indices)
        yield from super().run(volume, indices, method, cancel, notify)


class OtherCard(CardStub):
    name = "blob-v2"

    class weights:  # noqa: N801
        sha256 = "d" * 64


@pytest.fixture
def counting():  # type: ignore[no-untyped-def]
    Counting.ran = []
    return Counting


@pytest.fixture
def controllers(qtbot, radscope_home: Path):  # type: ignore[no-untyped-def]
    """make() -> a fresh AIController (a new viewer session: nothing in memory) over the same RADSCOPE_HOME."""
    from viewer.qt.ai_integration import AIController
    from viewer.qt.ai_panel import ModelEntry

    made: list[Any] = []

    def make(factory=Counting):  # type: ignore[no-untyped-def]
        ctl = AIController(models=[ModelEntry("blob", Path("/blob"), CardStub()),
                                   ModelEntry("blob-v2", Path("/blob2"), OtherCard())], session_factory=factory)
        qtbot.addWidget(ctl.panel)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.shutdown()


def _open(qtbot, ctl, vol):  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    series = SeriesModel(vol)
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.set_series(series, vol.info.stack_id)
    return series


def test_second_open_shows_the_cached_heatmap_without_inference(qtbot, controllers, counting,
                                                                radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    vol = nodule_volume(CENTRE)
    first = controllers()
    _open(qtbot, first, vol)
    assert len(counting.ran) == vol.shape[0]
    heat = first.results.heatmap("nodule").copy()
    scores = first.results.scores.copy()
    assert first.flush_cache(30)
    cache = ResultCache(radscope_home / "cache")
    (key, size, _), = cache.entries()
    meta = cache.load(stack_key(vol.info.stack_id, vol.sop_instance_uids), "c" * 64, "gradcam").meta
    assert meta["format"] == FORMAT_COMPACT and meta["model"] == {"name": "chest-nodule-demo", "version": "1.0.0"}
    assert size < heat.nbytes / 4 + 4096  # uint8 codes, compressed

    second = controllers()  # a new session: nothing in memory
    counting.ran.clear()
    series = _open(qtbot, second, vol)
    assert counting.ran == []  # no inference at all
    assert second.results.complete and not second.busy
    np.testing.assert_allclose(second.results.scores, scores, atol=1e-7)
    (overlay,) = [o for o in series.overlays if o.name == second.overlay_name("nodule")]
    assert np.abs(overlay.array - heat).max() <= 0.5 / 255 + 1e-6  # the codes' rounding, in probability units
    assert np.unravel_index(np.argmax(overlay.array), overlay.array.shape) == tuple(reversed(CENTRE))
    assert "from the cache" in second.panel.status_label.text()
    assert second.worker.scheduler.n_pending == 0  # nothing queued, yet a current run for the layer inspector:
    assert second.worker.scheduler.submit_probe(object()) == second.results.key
    second.cancel()
    assert second.panel.findings and second.panel.findings[0].peak_slice == CENTRE[2]
    # another model: "results from the cache" belonged to the first one's run
    with qtbot.waitSignal(second.finished, timeout=20000):
        second.select_model("blob-v2")
    assert "from the cache" not in second.panel.status_label.text()


def test_another_method_or_model_recomputes(qtbot, controllers, counting) -> None:  # type: ignore[no-untyped-def]
    vol = nodule_volume(CENTRE)
    first = controllers()
    _open(qtbot, first, vol)
    assert first.flush_cache(30)
    n = vol.shape[0]

    ctl = controllers()
    _open(qtbot, ctl, vol)
    qtbot.waitUntil(lambda: ctl.panel.method_combo.count() == 2, timeout=10000)  # the model has loaded
    assert len(counting.ran) == n  # the first open only: this one came from the cache
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        ctl.panel.method_combo.setCurrentText("gradcam++")
    assert len(counting.ran) == 2 * n and ctl.results.key.method == "gradcam++"
    with qtbot.waitSignal(ctl.finished, timeout=20000):
        assert ctl.select_model("blob-v2")
    assert len(counting.ran) == 3 * n and ctl.results.key.model_sha256 == "d" * 64
    assert ctl.flush_cache(30)
    third = controllers()  # each of the three is cached now: the same steps run nothing
    _open(qtbot, third, vol)
    qtbot.waitUntil(lambda: third.panel.method_combo.count() == 2, timeout=10000)
    with qtbot.waitSignal(third.finished, timeout=20000):
        third.panel.method_combo.setCurrentText("gradcam++")
    with qtbot.waitSignal(third.finished, timeout=20000):
        assert third.select_model("blob-v2")
    assert len(counting.ran) == 3 * n
    assert third.results.key.model_sha256 == "d" * 64 and third.results.key.method == "gradcam++"


def test_corrupt_entry_is_reported_and_recomputed(qtbot, counting, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.ai_integration import attach_ai
    from viewer.qt.ai_panel import ModelEntry
    from viewer.qt.main_window import ViewerWindow

    vol = nodule_volume(CENTRE)
    cache = ResultCache(radscope_home / "cache")
    stack = stack_key(vol.info.stack_id, vol.sop_instance_uids)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 255, vol.shape, dtype=np.uint8)
    cache.put(stack, "c" * 64, "gradcam", ["nodule"], range(vol.shape[0]), np.full((vol.shape[0], 1), 0.5),
              {"nodule": codes}, compact=True)
    npz = cache.entry_path(stack, "c" * 64, "gradcam")
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])  # truncated: e.g. the disk filled up

    window = ViewerWindow()
    qtbot.addWidget(window)
    window.show()
    ai = attach_ai(window, session_factory=Counting, models=[ModelEntry("blob", Path("/blob"), CardStub())])
    try:
        with qtbot.waitSignal(ai.finished, timeout=20000):
            window.show_volume(vol)
        assert len(counting.ran) == vol.shape[0]  # recomputed
        reasons = [reason for _, reason in window.errors_panel.errors()]
        assert len(reasons) == 1 and "cached results ignored, recomputing" in reasons[0] and str(npz) in reasons[0]
        assert ai.results.most_suspicious_slice() == CENTRE[2]
        assert ai.flush_cache(30)
        hit = cache.load(stack, "c" * 64, "gradcam")  # the recomputed run replaced the broken entry
        assert hit is not None and hit.scores.shape == (vol.shape[0], 1)
    finally:
        ai.shutdown()
        window.close()


def test_cache_files_are_touched_off_the_gui_thread(qtbot, controllers, counting,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    threads: list[tuple[str, str]] = []
    real_load, real_put = ResultCache.load, ResultCache.put

    def load(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(("load", threading.current_thread().name))
        return real_load(self, *args, **kwargs)

    def put(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(("put", threading.current_thread().name))
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(ResultCache, "load", load)
    monkeypatch.setattr(ResultCache, "put", put)
    vol = nodule_volume(CENTRE)
    first = controllers()
    _open(qtbot, first, vol)
    assert first.flush_cache(30)
    _open(qtbot, controllers(), vol)
    assert [op for op, _ in threads] == ["load", "put", "load"]
    assert all(name != threading.main_thread().name for _, name in threads), threads


def test_cancelled_runs_are_not_cached(qtbot, controllers, radscope_home: Path) -> None:  # type: ignore[no-untyped-def]
    from viewer.qt.series_model import SeriesModel

    gate = threading.Semaphore(0)
    ctl = controllers(lambda ref: ImageBlobSession(ref, gate))
    ctl.set_series(SeriesModel(nodule_volume(CENTRE)), "S")
    gate.release()
    qtbot.waitUntil(lambda: ctl.results is not None and ctl.results.n_done == 1, timeout=10000)
    ctl.cancel()
    for _ in range(40):
        gate.release()
    qtbot.wait(200)
    assert ctl.flush_cache(10)
    assert ResultCache(radscope_home / "cache").entries() == []
