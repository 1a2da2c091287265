"""The viewer's RunnerSession tells the user about the runner's fallback events only, by their kind."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.package import read_card
from viewer.qt.ai_worker import ModelRef, RunnerSession


def test_only_fallbacks_reach_the_user(tiny_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = read_card(tiny_package)
    session = RunnerSession(ModelRef(tiny_package, card.name, card.weights.sha256, tuple(card.labels), "cpu"),
                            batch_size=2)
    runner = session._runner
    real_step, calls = runner._step, []

    def step_out_of_memory_once(x, method, labels):  # type: ignore[no-untyped-def]
        calls.append(x.shape[0])
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_step(x, method, labels)

    monkeypatch.setattr(runner, "_step", step_out_of_memory_once)
    told: list[str] = []
    cancel = threading.Event()
    volume = np.random.default_rng(0).normal(40, 300, (5, 20, 24)).astype(np.float32)
    out = [b.indices for b in session.run(volume, range(5), "gradcam", cancel, told.append)]
    assert told == ["GPU out of memory: retrying with batch size 1"]  # no "slices k/n" counters
    assert [k for ks in out for k in ks] == [0, 1, 2, 3, 4]
    cancel.set()
    assert list(session.run(volume, range(5), "gradcam", cancel, told.append)) == []
    assert len(told) == 1  # a cancellation is not news to the user who cancelled
