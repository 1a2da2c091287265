"""The batched runner: streaming, native-grid heatmaps, cancellation, out-of-memory fallback, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.architectures import DemoCNN
from inference.explain import explain_batch, normalize_maps
from inference.package import save_package
from inference.preprocess import Preprocessor
from inference.runner import Runner, RunnerEvent, pick_device

FIELDS = {"name": "tiny", "version": "0.1", "dims": 2, "labels": ["a", "b"], "output": "sigmoid",
          "input": {"size": [32, 32], "channels": 1, "window": {"center": 40, "width": 400}},
          "explain": {"target_layer": "features"}}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny")
    save_package(DemoCNN(1, 2, widths=(4, 8)), FIELDS, out, torch.zeros(2, 1, 32, 32))
    return out


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(40, 300, size=(7, 45, 70)).astype(np.float32)


def test_results_stream_per_batch_on_the_native_grid(package: Path, volume: np.ndarray) -> None:
    runner = Runner(package, device="cpu", batch_size=3)
    events: list[RunnerEvent] = []
    results = list(runner.run(volume, progress=events.append))
    assert [r.indices for r in results] == [(0, 1, 2), (3, 4, 5), (6,)]
    assert events == [RunnerEvent("progress", f"slices {n}/7") for n in (3, 6, 7)]
    x = Preprocessor(runner.card.input).to_model(volume)
    logits, maps = explain_batch(runner.model, x, [0, 1], "gradcam")
    scores = np.concatenate([r.scores for r in results])
    np.testing.assert_allclose(scores, torch.sigmoid(logits).numpy(), atol=1e-6)
    for j, label in enumerate(("a", "b")):
        heat = np.concatenate([r.heatmaps[label] for r in results])
        assert heat.shape == (7, 45, 70) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0
        ref = Preprocessor.to_native(normalize_maps(maps[j]), (45, 70)).numpy()
        np.testing.assert_allclose(heat, ref, atol=1e-5)


def test_indices_labels_and_scores_only(package: Path, volume: np.ndarray) -> None:
    runner = Runner(package, device="cpu", batch_size=8)
    (res,) = list(runner.run(volume, indices=[5, 1], method="layercam", labels=["b"]))
    assert res.indices == (5, 1) and res.scores.shape == (2, 2) and list(res.heatmaps) == ["b"]
    (plain,) = list(runner.run(volume, indices=[5, 1], method=None))
    assert plain.heatmaps == {}
    np.testing.assert_allclose(plain.scores, res.scores, atol=1e-5)
    with pytest.raises(ValueError, match="unknown labels"):
        list(runner.run(volume, labels=["c"]))
    with pytest.raises(IndexError, match="outside the volume"):
        list(runner.run(volume, indices=[7]))
    with pytest.raises(ValueError, match="method 'magic' is not available"):
        list(runner.run(volume, method="magic"))


def test_cancel_stops_between_batches(package: Path, volume: np.ndarray) -> None:
    runner = Runner(package, device="cpu", batch_size=2)
    cancel = threading.Event()
    got = []
    events: list[RunnerEvent] = []
    for res in runner.run(volume, cancel=cancel, progress=events.append):
        got.append(res.indices)
        cancel.set()
    assert got == [(0, 1)]
    assert events == [RunnerEvent("progress", "slices 2/7"), RunnerEvent("cancelled", "cancelled after 2/7 slices")]
    assert str(events[-1]) == "cancelled after 2/7 slices"


def test_out_of_memory_halves_the_batch_then_falls_back_to_cpu(package: Path, volume: np.ndarray,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(package, device="cpu", batch_size=4)
    expected = list(Runner(package, device="cpu", batch_size=7).run(volume))[0]
    real_step = runner._step
    sizes: list[int] = []

    def flaky_device_step(x: torch.Tensor, method: str | None, labels: list[int]):  # type: ignore[no-untyped-def]
        sizes.append(x.shape[0])
        if len(sizes) <= 3:  # a simulated GPU that runs out of memory at 4, 2 and 1 slices
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_step(x, method, labels)

    monkeypatch.setattr(runner, "_step", flaky_device_step)
    events: list[RunnerEvent] = []
    results = list(runner.run(volume, progress=events.append))
    assert sizes[:4] == [4, 2, 1, 4]  # back on the CPU at the batch size asked for
    assert events[:3] == [RunnerEvent("fallback", "GPU out of memory: retrying with batch size 2"),
                          RunnerEvent("fallback", "GPU out of memory: retrying with batch size 1"),
                          RunnerEvent("fallback", "GPU out of memory even at batch size 1: continuing on the CPU")]
    assert {e.kind for e in events[3:]} == {"progress"}
    assert runner.device.type == "cpu"
    assert [i for r in results for i in r.indices] == list(range(7))
    np.testing.assert_allclose(np.concatenate([r.scores for r in results]), expected.scores, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([r.heatmaps["a"] for r in results]), expected.heatmaps["a"], atol=1e-5)


def test_worker_thread_with_grad_disabled(package: Path, volume: np.ndarray) -> None:
    out: list[object] = []

    def work() -> None:
        torch.set_grad_enabled(False)  # the thread's grad mode is off; the runner must not depend on it
        runner = Runner(package, device="cpu")
        out.extend(runner.run(volume[:2]))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert len(out) == 1


def test_device_choice() -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pick_device("cuda")


def test_torch_threads_sets_and_restores_even_on_error() -> None:
    import pytest
    import torch

    from inference.runner import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("job failed")
    assert torch.get_num_threads() == before
