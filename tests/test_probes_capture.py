"""Layer probes on models whose truth is known: captured activations equal a direct forward pass
(eager modules and ``.pt2`` programs), the layer tree, dead channels, weights, examples and layer CAM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inference.architectures import DemoCNN, ResNet18
from inference.loading import LoadedModel, UnsupportedExplanationError, load_model
from inference.package import save_package, write_card
from inference.probes import (GraphTap, channel_examples, first_conv_kernels, kernel_tiles, layer_gradcam, layer_stats,
                              layer_tree, top_channels, weight_stats)
from inference.probes.maps import activations

SIZE = 64
CARD = {"name": "probe-test", "version": "1.0.0", "dims": 2, "labels": ["finding"], "output": "sigmoid",
        "input": {"size": [SIZE, SIZE], "channels": 1, "window": {"center": 0, "width": 200}},
        "explain": {"target_layer": "features"}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest single-threaded on a shared 2-core machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _trained_like(module: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights and non-trivial BatchNorm statistics (so folding and BN really matter)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return module.eval()


@pytest.fixture(scope="module")
def eager() -> nn.Module:
    torch.manual_seed(0)
    return _trained_like(DemoCNN(1, 1))


@pytest.fixture(scope="module")
def pt2_model(eager: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    out = tmp_path_factory.mktemp("pt2")
    save_package(eager, CARD, out, torch.zeros(1, 1, SIZE, SIZE))
    return load_model(str(out))


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 4 - 2


def _hooked(module: nn.Module, layers: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Layer outputs from forward hooks on the eager module (the direct forward pass)."""
    got: dict[str, torch.Tensor] = {}
    named = dict(module.named_modules())
    handles = [named[n].register_forward_hook(lambda _m, _i, o, n=n: got.__setitem__(n, o.detach().clone()))
               for n in layers]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return got


LAYERS = ["features.0.0", "features.0.1", "features.2", "features.5.1", "features", "pool", "classifier"]


def test_pt2_capture_equals_direct_forward(eager: nn.Module, pt2_model: LoadedModel, x: torch.Tensor) -> None:
    expected = _hooked(eager, LAYERS, x)
    with torch.inference_mode():
        got = GraphTap(pt2_model).run(x, LAYERS)
    for layer in LAYERS:
        # a BatchNorm output is captured before the in-place ReLU of the exported graph changes it
        assert got[layer].shape == expected[layer].shape, layer
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-5, atol=1e-5, msg=layer)
    assert (expected["features.0.1"] < 0).any()  # so the BatchNorm check above could have failed


def test_eager_capture_equals_direct_forward(tmp_path: Path, x: torch.Tensor) -> None:
    torch.manual_seed(3)
    module = _trained_like(ResNet18(1, 2), seed=3)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    card = {**CARD, "labels": ["a", "b"], "explain": {"target_layer": "layer4"}}
    model = load_model(write_card(tmp_path, card, "w.pt", "state_dict", architecture="resnet18"))
    layers = ["layer1.0", "layer2.1.bn2", "layer4", "avgpool"]
    expected = _hooked(model.source, layers, x)
    with torch.inference_mode():
        got = GraphTap(model).run(x, layers)
    for layer in layers:
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-5, atol=1e-5, msg=layer)
    # a module called twice (ResNet's shared ReLU) has no single output: the tree says why
    rows = {r.path: r for r in layer_tree(model, x[:1])}
    assert rows["layer1.0.relu"].output_shape is None and "called more than once" in rows["layer1.0.relu"].note
    assert rows["layer1.0"].output_shape == (1, 64, 16, 16)
    with pytest.raises(ValueError, match="called more than once"):
        GraphTap(model).run(x, ["layer1.0.relu"])


def test_layer_tree_shapes_types_and_params(eager: nn.Module, pt2_model: LoadedModel) -> None:
    rows = {r.path: r for r in layer_tree(pt2_model, torch.zeros(1, 1, SIZE, SIZE))}
    assert rows[""].output_shape == (1, 1)
    assert rows[""].n_params == sum(p.numel() for p in eager.parameters())
    assert rows["features.0.0"].type_name == "Conv2d" and rows["features.0.0"].output_shape == (1, 16, 32, 32)
    assert rows["features.0.0"].n_params == 16 * 1 * 3 * 3
    assert rows["features"].output_shape == (1, 96, 4, 4)
    assert rows["classifier"].type_name == "Linear" and rows["classifier"].n_params == 96 + 1
    assert list(rows).index("features.0.0") < list(rows).index("features.7") < list(rows).index("classifier")


def test_torchscript_tree_says_what_is_missing(eager: nn.Module, tmp_path: Path) -> None:
    torch.jit.save(torch.jit.trace(eager, torch.zeros(2, 1, SIZE, SIZE)), str(tmp_path / "m.ts"))
    model = load_model(write_card(tmp_path, CARD, "m.ts", "torchscript"))
    rows = {r.path: r for r in layer_tree(model, torch.zeros(1, 1, SIZE, SIZE))}
    assert rows["features.0.0"].n_params == 144 and rows["features.0.0"].output_shape is None
    assert "TorchScript" in rows["features.0.0"].note
    assert rows["features.0.0"].type_name == "Conv2d"
    with pytest.raises(UnsupportedExplanationError, match="TorchScript"):
        GraphTap(model)


def test_unknown_layer_names_the_layers(pt2_model: LoadedModel) -> None:
    with pytest.raises(ValueError, match="features.0.0"):
        GraphTap(pt2_model).run(torch.zeros(1, 1, SIZE, SIZE), ["features.99"])


def test_dead_channels_and_histogram_on_a_constructed_layer() -> None:
    conv = nn.Conv2d(1, 6, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(0.1)
        conv.bias.copy_(torch.tensor([0.0, -100.0, 0.5, -100.0, 1.0, -100.0]))  # 1, 3, 5 never fire
    act = torch.relu(conv(torch.rand(4, 1, 16, 16)))
    stats = layer_stats(act, bins=10)
    assert stats.n_dead == 3 and stats.dead_channels.tolist() == [1, 3, 5]
    assert stats.counts.sum() == act.numel() and stats.edges.shape == (11,)
    assert stats.fraction_zero == pytest.approx(0.5, abs=0.01)
    assert top_channels(act).tolist()[:3] == [4, 2, 0]


def test_first_conv_kernels_and_weight_stats(eager: nn.Module, pt2_model: LoadedModel) -> None:
    path, kernels = first_conv_kernels(pt2_model.source)
    assert path == "features.0.0"
    np.testing.assert_array_equal(kernels, eager.features[0][0].weight.detach().numpy())
    tiles = kernel_tiles(kernels)
    assert tiles.shape == (16, 3, 3) and np.allclose(np.abs(tiles).max(axis=(1, 2)), 1.0)
    stats = {s.name: s for s in weight_stats(pt2_model.source, "features.3")}
    w = eager.features[3][0].weight.detach().double()
    assert stats["features.3.0.weight"].std == pytest.approx(float(w.std(unbiased=False)))
    assert stats["features.3.0.weight"].channel_norms.shape == (w.shape[0],)


def test_examples_find_the_slice_and_place_that_fire(pt2_model: LoadedModel) -> None:
    """A bright square on one slice: a first-layer channel that responds to brightness peaks there."""
    vol = np.full((5, 80, 80), -100.0, dtype=np.float32)
    vol[3, 50:60, 20:30] = 100.0
    act = activations(pt2_model, "features.0.2", vol)
    channel = int(np.argmax((act[3] - act[0]).amax(dim=(1, 2)).numpy()))
    found = channel_examples(pt2_model, "features.0.2", channel, vol, top=2, batch_size=2)
    assert found[0].slice_index == 3 and found[0].peak > found[1].peak
    assert 45 <= found[0].row <= 65 and 15 <= found[0].col <= 35


def test_layer_gradcam_is_on_the_native_grid(pt2_model: LoadedModel) -> None:
    vol = np.random.default_rng(0).normal(0, 80, (2, 100, 90)).astype(np.float32)
    maps = layer_gradcam(pt2_model, "features.5", vol)
    assert maps.shape == (2, 100, 90) and maps.min() >= 0 and maps.max() <= 1


def test_redirected_relu_revives_dead_units_without_changing_values(pt2_model: LoadedModel, x: torch.Tensor) -> None:
    from inference.probes.tap import RedirectedReLU

    z = torch.tensor([[-2.0, -1.0], [-3.0, 0.5]], requires_grad=True)
    out = RedirectedReLU.apply(z)
    assert torch.equal(out, torch.relu(z))
    (-out[0].sum()).backward()  # sample 0 is dead: plain ReLU would give it no gradient at all
    assert z.grad[0].tolist() == [-1.0, -1.0] and z.grad[1].tolist() == [0.0, 0.0]
    tap = GraphTap(pt2_model)
    with torch.inference_mode():
        plain = tap.run(x, ["features.3"])["features.3"]
        redirected = tap.run(x, ["features.3"], redirect_relu=True)["features.3"]
    torch.testing.assert_close(plain, redirected)
