"""Input-space attributions and the model-randomisation sanity check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inference.architectures import DemoCNN
from inference.explain import explain_batch, normalize_maps, supported_methods
from inference.explain.integrated_gradients import integrated_gradients
from inference.explain.sanity import cascading_randomization, spearman, ssim
from inference.loading import load_model
from inference.package import save_package, write_card


def test_integrated_gradients_is_exact_for_a_linear_model() -> None:
    torch.manual_seed(0)
    w = torch.randn(2, 2, 6, 5)  # two labels, two channels

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,lchw->nl", x, w)

    x, x0 = torch.randn(3, 2, 6, 5), torch.randn(1, 2, 6, 5)
    logits, maps = integrated_gradients(forward, x, [1, 0], baseline=x0, steps=4)
    expected = torch.stack([((x - x0) * w[label]).sum(1).clamp(min=0) for label in (1, 0)])
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, forward(x))


def _blob_batch(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise images; half carry a bright blob (label 1). Returns images, labels, blob centres."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    # a random brightness offset per image, so that total brightness does not give the blob away
    x = torch.rand(n, 1, size, size, generator=gen) * 0.3 + torch.rand(n, 1, 1, 1, generator=gen) * 0.1
    y = torch.arange(n) % 2
    centres = torch.randint(6, size - 6, (n, 2), generator=gen)
    for i in range(n):
        if y[i]:
            d2 = (yy - centres[i, 0]) ** 2 + (xx - centres[i, 1]) ** 2
            x[i, 0] += torch.exp(-d2 / 8.0)
    return x, y.float(), centres


FIELDS = {"name": "blob", "version": "1", "dims": 2, "labels": ["blob"], "output": "sigmoid",
          "input": {"size": [32, 32], "channels": 1, "window": {"center": 0.5, "width": 1.0}},
          "explain": {"target_layer": "features"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """A tiny DemoCNN trained (150 steps, a few seconds) to find blobs."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = DemoCNN(1, 1, widths=(8, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is ~3x faster than two spinning on shared cores
    try:
        for _ in range(150):
            x, y, _ = _blob_batch(32, 32, gen)
            loss = nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    out = tmp_path_factory.mktemp("blob")
    save_package(model, FIELDS, out, torch.zeros(2, 1, 32, 32))
    return model, out


def test_trained_model_and_every_method_find_the_blob(trained: tuple[nn.Module, Path]) -> None:
    _, folder = trained
    model = load_model(folder)
    x, y, centres = _blob_batch(16, 32, torch.Generator().manual_seed(9))
    pos = y.bool()
    with torch.no_grad():
        assert ((model.probabilities(model(x))[:, 0] > 0.5) == pos).float().mean() >= 0.9
    for method in supported_methods(model):
        _, maps = explain_batch(model, x[pos], [0], method)
        native = normalize_maps(torch.nn.functional.interpolate(maps[0][:, None], size=(32, 32), mode="bilinear",
                                                                align_corners=False)[:, 0])
        # the map's mass (sharpened) sits on the blob: centroid of map**4 within 3 pixels of the centre
        yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        w = native**4
        centroid = torch.stack([(w * yy).sum((1, 2)), (w * xx).sum((1, 2))], 1) / w.sum((1, 2))[:, None]
        err = (centroid - centres[pos]).abs().max(dim=1).values
        assert float(err.max()) <= 3.0, (method, err)


def test_torchscript_model_supports_input_space_methods_only(tmp_path: Path, trained: tuple[nn.Module, Path]) -> None:
    module, _ = trained
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 1, 32, 32)), str(tmp_path / "m.ts"))
    write_card(tmp_path, FIELDS, "m.ts", "torchscript")
    model = load_model(tmp_path)
    assert supported_methods(model) == ("integrated-gradients",)
    x, _, _ = _blob_batch(2, 32, torch.Generator().manual_seed(1))
    _, maps = explain_batch(model, x, [0], "integrated-gradients")
    assert maps.shape == (1, 2, 32, 32) and float(maps.min()) >= 0
    before = [p.clone() for p in model.source.parameters()]
    steps = cascading_randomization(model, x, method="integrated-gradients", groups=["classifier", "features.3"])
    assert [s.layer for s in steps] == ["classifier", "features.3"] and steps[-1].spearman < 0.9
    assert all(torch.equal(a, b) for a, b in zip(before, model.source.parameters()))


def test_similarity_measures() -> None:
    a = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(spearman(a, a), torch.ones(2)) and torch.allclose(ssim(a, a), torch.ones(2))
    assert torch.allclose(spearman(a, -a), -torch.ones(2))
    assert float(spearman(a, torch.zeros_like(a)).abs().max()) == 0.0


def test_spearman_matches_scipy_on_mostly_zero_maps() -> None:
    """Heatmaps are mostly zeros: ties must get average ranks, as scipy.stats.spearmanr gives them."""
    from scipy.stats import spearmanr

    gen = torch.Generator().manual_seed(3)
    maps = torch.rand(6, 32, 32, generator=gen)
    maps[maps < 0.85] = 0.0  # ~85% zeros, like a thresholded CAM
    other = torch.rand(6, 32, 32, generator=gen) * (torch.rand(6, 32, 32, generator=gen) > 0.9)
    other[:3] = torch.where(maps[:3] > 0, maps[:3] + 0.1 * other[:3], other[:3] * 0)  # correlated pairs
    ours = spearman(maps, other)
    for k in range(6):
        expected = spearmanr(maps[k].flatten().numpy(), other[k].flatten().numpy()).statistic
        assert float(ours[k]) == pytest.approx(float(expected), abs=1e-6)
    assert float(ours[:3].min()) > 0.5  # the correlated pairs are seen as such


def test_sanity_check_similarity_drops_and_leaves_the_model_untouched(trained: tuple[nn.Module, Path]) -> None:
    _, folder = trained
    model = load_model(folder)
    before = {k: v.clone() for k, v in model.source.state_dict().items()}
    x, y, _ = _blob_batch(8, 32, torch.Generator().manual_seed(5))
    with torch.no_grad():
        out_before = model(x)
    steps = cascading_randomization(model, x[y.bool()], method="gradcam")
    assert [s.layer for s in steps][:2] == ["classifier", "features.3"] and steps[-1].layer == "features.0"
    assert max(s.spearman for s in steps) < 0.5 and max(s.ssim for s in steps) < 0.5
    # control: a "randomisation" that touches no weight keeps the maps identical
    (same,) = cascading_randomization(model, x[y.bool()], method="gradcam", groups=["no-such-layer"])
    assert same.spearman == pytest.approx(1.0) and same.ssim == pytest.approx(1.0)
    after = model.source.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        torch.testing.assert_close(model(x), out_before, atol=0, rtol=0)
