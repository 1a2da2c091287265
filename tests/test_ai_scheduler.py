"""The Qt-free AI plumbing: job order, re-prioritisation, stale-run drop, results and findings."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from viewer.ai import EtaEstimator, JobKind, JobScheduler, SeriesResults, find_findings
from viewer.ai.eta import format_eta


def drain(s: JobScheduler) -> list[tuple[JobKind, tuple[int, ...]]]:
    out = []
    while (b := s.next_batch(timeout=0)) is not None:
        out.append((b.kind, b.indices))
    return out


def test_visible_slice_first_then_nearest_first() -> None:
    s = JobScheduler(batch_size=3)
    s.start("s1", "sha", "gradcam", n_slices=10, current=6)
    batches = drain(s)
    assert batches[0] == (JobKind.VISIBLE, (6,))
    # nearest-first: distances 1,1,2 then 2,3,3 ... (ties: lower index first)
    assert batches[1] == (JobKind.SERIES, (4, 5, 7))
    assert batches[2] == (JobKind.SERIES, (3, 8, 9))
    flat = [k for _, idx in batches for k in idx]
    assert sorted(flat) == list(range(10))  # every slice exactly once


def test_reprioritise_when_visible_slice_changes() -> None:
    s = JobScheduler(batch_size=2)
    s.start("s1", "sha", "gradcam", n_slices=20, current=0)
    assert s.next_batch(timeout=0).indices == (0,)
    assert s.next_batch(timeout=0).indices == (1, 2)
    s.set_current(15)
    assert s.next_batch(timeout=0).indices == (15,)
    assert s.next_batch(timeout=0).indices == (14, 16)
    s.set_current(2)  # already done: its nearest pending neighbours come first
    assert s.next_batch(timeout=0).indices == (3, 4)


def test_probes_come_after_all_slices() -> None:
    s = JobScheduler(batch_size=4)
    s.start("s1", "sha", "gradcam", n_slices=3, current=1)
    assert s.submit_probe({"layer": "features.0"}) == s.key
    kinds = [kind for kind, _ in drain(s)]
    assert kinds == [JobKind.VISIBLE, JobKind.SERIES, JobKind.PROBE]


def test_new_run_cancels_stale_jobs_and_their_results() -> None:
    s = JobScheduler(batch_size=4)
    old = s.start("series-A", "sha", "gradcam", n_slices=8, current=0)
    in_flight = s.next_batch(timeout=0)
    s.submit_probe("p")
    new = s.start("series-B", "sha", "gradcam", n_slices=5, current=2)
    assert in_flight.cancel.is_set()  # the worker's runner stops at its next check
    assert not s.is_current(old) and s.is_current(new)
    assert new.generation > old.generation
    batches = drain(s)
    assert all(k < 5 for _, idx in batches for k in idx)  # nothing of series A is left
    assert JobKind.PROBE not in [kind for kind, _ in batches]
    s.requeue(in_flight)  # a stale batch is never put back
    assert s.n_pending == 0


@pytest.mark.parametrize("change", ["model", "method"])
def test_changing_model_or_method_supersedes(change: str) -> None:
    s = JobScheduler()
    a = s.start("s", "sha1", "gradcam", 4)
    b = s.start("s", "sha2" if change == "model" else "sha1", "gradcam++" if change == "method" else "gradcam", 4)
    assert a.stack_id == b.stack_id and not s.is_current(a) and s.is_current(b)


def test_cancel_empties_queue_and_blocks_no_one() -> None:
    s = JobScheduler()
    key = s.start("s", "sha", "m", 50)
    s.cancel()
    assert s.next_batch(timeout=0) is None and not s.is_current(key) and s.n_pending == 0


def test_only_decoded_slices_are_scheduled() -> None:
    s = JobScheduler(batch_size=4)
    avail = np.zeros(6, dtype=bool)
    avail[0] = True
    s.start("s", "sha", "m", 6, current=3, available=avail)
    assert s.next_batch(timeout=0).indices == (0,)  # the only decoded slice
    assert s.next_batch(timeout=0) is None
    s.mark_available([3, 4])
    assert s.next_batch(timeout=0).indices == (3,)
    assert s.next_batch(timeout=0).indices == (4,)


def test_worker_blocks_until_work_then_close_releases_it() -> None:
    s = JobScheduler()
    got: list[object] = []
    first = threading.Event()

    def worker() -> None:
        got.append(s.next_batch(timeout=10))
        first.set()
        got.append(s.next_batch(timeout=10))

    t = threading.Thread(target=worker)
    t.start()
    s.start("s", "sha", "m", 1)
    assert first.wait(10)
    s.close()  # wakes the second, blocked call
    t.join(timeout=10)
    assert not t.is_alive()
    assert got[0].indices == (0,) and got[1] is None


def test_skip_known_slices_and_requeue() -> None:
    s = JobScheduler(batch_size=10)
    skip = np.array([True, False, True, False])
    s.start("s", "sha", "m", 4, current=0, skip=skip)
    b = s.next_batch(timeout=0)
    assert b.indices == (1, 3)
    s.requeue(b)
    assert s.next_batch(timeout=0).indices == (1, 3)


def test_skip_after_start_keeps_the_run_current_for_probes() -> None:
    """The viewer starts a run with nothing decoded-and-allowed while it asks the cache; a hit skips it all."""
    s = JobScheduler(batch_size=4)
    key = s.start("s", "sha", "m", 6, current=2, available=np.zeros(6, dtype=bool))
    assert s.next_batch(timeout=0) is None and s.n_pending == 6
    s.skip([0, 1, 2, 3, 4, 5])
    s.mark_available(range(6))
    assert s.n_pending == 0 and s.next_batch(timeout=0) is None and s.is_current(key)
    assert s.submit_probe("probe") == key and s.next_batch(timeout=0).payload == "probe"
    key = s.start("s", "sha", "m", 6, current=2, available=np.zeros(6, dtype=bool))
    s.skip([2, 3])  # a partial answer: the rest runs once allowed
    s.mark_available(range(6))
    assert s.order() == [1, 0, 4, 5]  # nearest first, ties by index


def test_results_fill_and_validate() -> None:
    s = JobScheduler()
    key = s.start("s", "sha", "m", 4)
    r = SeriesResults(key, ["nodule", "mass"], (4, 3, 5), thresholds={"nodule": 0.7})
    assert r.thresholds == {"nodule": 0.7, "mass": 0.5}
    maps = np.random.default_rng(0).random((2, 3, 5)).astype(np.float32)
    r.add([1, 3], np.array([[0.2, 0.1], [0.9, 0.3]]), {"nodule": maps, "mass": maps})
    assert r.n_done == 2 and not r.complete
    np.testing.assert_allclose(r.heatmap("nodule")[3], maps[1], atol=0.5 / 255 + 1e-7)  # held as uint8 codes
    assert r.heatmap("nodule").codes.dtype == np.uint8 and r.nbytes < 2 * 60 * 4 / 2  # under half of two float32 volumes
    assert not r.heatmap("nodule")[0].any()
    assert np.isnan(r.label_scores("nodule")[0]) and r.label_scores("nodule")[3] == pytest.approx(0.9)
    assert r.most_suspicious_slice() == 3
    with pytest.raises(ValueError, match="heatmap of 'mass' has shape"):
        r.add([0], np.zeros((1, 2)), {"mass": np.zeros((1, 5, 3))})
    with pytest.raises(ValueError, match="unknown label 'x'"):
        r.add([0], np.zeros((1, 2)), {"x": np.zeros((1, 3, 5))})
    with pytest.raises(ValueError, match="out of range"):
        r.add([4], np.zeros((1, 2)), {})


def test_findings_are_runs_above_threshold_with_their_peak() -> None:
    scores = np.array([0.1, 0.6, 0.9, 0.7, 0.2, np.nan, 0.55, 0.1, 0.95])
    found = find_findings(scores, 0.5, "nodule")
    assert [(f.peak_slice, f.first_slice, f.last_slice) for f in found] == [(8, 8, 8), (2, 1, 3), (6, 6, 6)]
    assert found[1].n_slices == 3 and found[0].peak_score == pytest.approx(0.95)
    assert find_findings(scores, 0.99, "nodule") == []


def test_findings_across_labels_use_each_threshold() -> None:
    key = JobScheduler().start("s", "sha", "m", 3)
    r = SeriesResults(key, ["a", "b"], (3, 1, 1), thresholds={"a": 0.8, "b": 0.3})
    r.add([0, 1, 2], np.array([[0.7, 0.1], [0.9, 0.4], [0.1, 0.2]]), {})
    assert [(f.label, f.peak_slice) for f in r.findings()] == [("a", 1), ("b", 1)]


def test_eta_from_batch_timings_ignores_warmup() -> None:
    eta = EtaEstimator()
    assert eta.eta(10) is None and format_eta(None) == "estimating..."
    eta.add(1, 2.0)  # warm-up batch
    assert eta.eta(10) == pytest.approx(20.0)
    eta.add(4, 0.4)
    eta.add(4, 0.4)
    assert eta.seconds_per_slice == pytest.approx(0.1)
    assert eta.eta(30) == pytest.approx(3.0)
    assert format_eta(3.0) == "~3 s" and format_eta(600) == "~10 min"


def test_viewer_ai_imports_without_qt_or_torch() -> None:
    from tests.test_boundaries import _import_with_blocked

    result = _import_with_blocked("viewer.ai", {"PySide6", "pyqtgraph", "torch", "shiboken6", "pydicom"})
    assert result.returncode == 0, result.stderr


def test_weighted_add_with_unordered_and_split_runs() -> None:
    key = JobScheduler().start("s", "sha", "m", 10)
    r = SeriesResults(key, ["a", "b"], (10, 2, 3))
    rng = np.random.default_rng(3)
    idx = [4, 5, 6, 1, 2, 9]  # nearest-first batches come as two runs, and may be out of order
    scores = rng.random((6, 2)).astype(np.float32)
    maps = {"a": rng.random((6, 2, 3)).astype(np.float32), "b": rng.random((6, 2, 3)).astype(np.float32)}
    r.add(idx, scores, maps, weighted=True)
    for row, k in enumerate(idx):
        # uint8 codes of the map, times the score: half a code times the score at most
        np.testing.assert_allclose(r.heatmap("a")[k], maps["a"][row] * scores[row, 0], atol=0.5 / 255 * scores[row, 0] + 1e-7)
        np.testing.assert_allclose(r.heatmap("b")[k], maps["b"][row] * scores[row, 1], atol=0.5 / 255 * scores[row, 1] + 1e-7)
    assert not r.heatmap("a")[[0, 3, 7, 8]].any() and r.done.tolist() == [k in idx for k in range(10)]
