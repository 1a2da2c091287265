"""Explanations hold no autograd graph, so memory stays bounded however many labels and batches are kept.

Regression guard for the 14-label benchmark that grew past 20 GB: Captum's LayerGradCam returns
attributions that still carry the whole forward pass's autograd graph (``grad_fn`` set), and keeping
every batch's maps kept every graph alive. Ours must never do that.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
import torch

from inference.architectures import ResNet18
from inference.explain import CAM_METHODS, explain_batch
from inference.explain.integrated_gradients import integrated_gradients
from inference.package import write_card
from inference.runner import Runner

LABELS = 14


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("r18")
    save_file(ResNet18(1, LABELS).eval().state_dict(), str(out / "model.safetensors"))
    write_card(out, {"name": "r18", "version": "0", "dims": 2, "labels": [f"l{i}" for i in range(LABELS)],
                     "output": "sigmoid", "explain": {"target_layer": "layer4"},
                     "input": {"size": [112, 112], "channels": 1, "window": {"center": 0, "width": 1}}},
               "model.safetensors", "safetensors", architecture="resnet18")
    return Runner(out, device="cpu", batch_size=4)


def test_explanations_carry_no_autograd_graph(runner: Runner) -> None:
    x = runner._prepare_tensor(torch.randn(2, 1, 112, 112))
    results = [explain_batch(runner.model, x, list(range(LABELS)), method) for method in CAM_METHODS]
    results.append(integrated_gradients(runner.model, x, [0, LABELS - 1], steps=2))
    for logits, maps in results:
        assert maps.shape[1] == 2 and logits.shape == (2, LABELS)
        for t in (logits, maps):
            assert not t.requires_grad and t.grad_fn is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_keeping_every_batch_of_fourteen_label_maps_stays_small(runner: Runner) -> None:
    """Batches of 14-label Grad-CAM kept alive as the benchmark keeps them: memory grows by the maps only.

    A retained forward graph would cost ~20 MB per label and batch here (~1.1 GB for these four)."""
    series = torch.randn(20, 1, 112, 112)
    labels = list(range(LABELS))

    def step(x: torch.Tensor) -> torch.Tensor:
        _, maps, _ood = runner._step(runner._prepare_tensor(x), "gradcam", labels)
        assert maps is not None
        return maps

    kept = [step(series[:4])]  # warm-up: allocator pools, oneDNN primitives
    gc.collect()
    before = _rss_mb()
    kept += [step(b) for b in series[4:].split(4)]
    gc.collect()
    grown = _rss_mb() - before
    assert len(kept) == 5 and all(m.grad_fn is None and m.shape[:2] == (LABELS, 4) for m in kept)
    assert grown < 150, f"memory grew {grown:.0f} MB keeping {len(kept)} batches of 14-label maps"
