"""Feature visualisation: it finds inputs that excite a channel far beyond real slices, and its cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.architectures import DemoCNN
from inference.loading import LoadedModel, load_model
from inference.package import write_card
from inference.probes import (FeatureVisCache, FeatureVisParams, ProbeCancelled, cached_visualisation, top_channels,
                              visualise_channel)
from inference.probes.maps import activations

DEMO = Path(__file__).resolve().parent.parent / "resources" / "models" / "chest-nodule-demo"


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def demo_model() -> LoadedModel:
    if not (DEMO / "radscope-model.json").exists():
        pytest.skip(f"bundled demo model not built yet ({DEMO})")
    return load_model(str(DEMO))


@pytest.fixture(scope="module")
def phantom_slices() -> np.ndarray:
    """Axial slices (HU) of a demo-style chest phantom with nodules, a patient no model was trained on."""
    from phantom import ChestParams, make_chest_ct

    params = ChestParams(n_slices=8, matrix=(128, 128), n_nodules=3, vessel_min_radius_mm=1.5)
    return make_chest_ct(params, seed=987_123).hu


@pytest.fixture()
def small_model(tmp_path: Path) -> LoadedModel:
    torch.manual_seed(0)
    torch.save(DemoCNN(1, 1).eval().state_dict(), tmp_path / "w.pt")
    card = {"name": "fv-test", "version": "1", "dims": 2, "labels": ["x"], "output": "sigmoid",
            "input": {"size": [32, 32], "channels": 1, "window": {"center": 0, "width": 200}},
            "explain": {"target_layer": "features"}}
    return load_model(write_card(tmp_path, card, "w.pt", "state_dict", architecture="demo-cnn"))


@pytest.mark.slow  # 128 optimisation steps at the demo model's 256 px: ~4 s each on a busy 2-core machine
@pytest.mark.parametrize("depth", ["early", "target"])
def test_visualisation_excites_its_channel_far_beyond_real_slices(demo_model: LoadedModel,
                                                                  phantom_slices: np.ndarray, depth: str) -> None:
    layer = "features.block1" if depth == "early" else demo_model.card.target_layer
    real = activations(demo_model, layer, phantom_slices)
    channel = int(top_channels(real, 1, key="std")[0])  # the most input-dependent channel
    values = real[:, channel].double()
    h, w = values.shape[-2:]
    centre = values[:, h // 2, w // 2]  # the unit the visualisation maximises, on every real slice
    vis = visualise_channel(demo_model, layer, channel)
    assert vis.image.shape == tuple(demo_model.card.input.size)
    assert 0 <= vis.image.min() and vis.image.max() <= 1
    # far above the channel's mean on real slices, and above anything that unit reaches on them
    assert vis.activation > 2.5 * float(values.mean())
    assert vis.activation > float(centre.max())
    if depth == "target":  # the last block's unit: far beyond anything the channel does anywhere on real slices
        assert vis.activation > 3 * float(values.max())
    assert vis.trajectory[-8:].mean() > vis.trajectory[:8].mean()


def test_cache_hit_returns_the_stored_visualisation(small_model: LoadedModel, tmp_path: Path) -> None:
    params = FeatureVisParams(steps=6)
    first, hit1 = cached_visualisation(small_model, "features.1", 2, tmp_path / "fv", params)
    second, hit2 = cached_visualisation(small_model, "features.1", 2, tmp_path / "fv", params)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first.image, second.image)
    assert second.activation == pytest.approx(first.activation)
    (path,) = (tmp_path / "fv").glob("*.npz")
    assert small_model.sha256[:16] in path.name
    with np.load(path, allow_pickle=False) as z:
        assert str(z["layer"]) == "features.1" and int(z["channel"]) == 2
    # another channel, other parameters or another model's sha256 are misses
    cache = FeatureVisCache(tmp_path / "fv")
    assert cache.get(small_model.sha256, "features.1", 3, params) is None
    assert cache.get(small_model.sha256, "features.1", 2, FeatureVisParams(steps=7)) is None
    assert cache.get("0" * 64, "features.1", 2, params) is None


def test_damaged_cache_entry_is_recomputed(small_model: LoadedModel, tmp_path: Path) -> None:
    params = FeatureVisParams(steps=3)
    cache = FeatureVisCache(tmp_path)
    cache.path(small_model.sha256, "features.1", 0, params).write_bytes(b"not an npz")
    _, hit = cached_visualisation(small_model, "features.1", 0, tmp_path, params)
    assert not hit and cache.get(small_model.sha256, "features.1", 0, params) is not None


def test_cancel_and_bad_channel(small_model: LoadedModel) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(ProbeCancelled):
        visualise_channel(small_model, "features.1", 0, FeatureVisParams(steps=50), cancel, progress)
    assert seen == [1, 2]
    with pytest.raises(ValueError, match="16 channels"):
        visualise_channel(small_model, "features.1", 16, FeatureVisParams(steps=2))


def test_adam_steps_exactly_as_torch_optim_adam() -> None:
    """featurevis.Adam (which does not import torch._dynamo) takes torch.optim.Adam's steps bit for bit,
    including steps where some gradients are zero."""
    from inference.probes.featurevis import Adam

    torch.manual_seed(0)
    a = torch.randn(1, 16, 9, 2, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    weights = torch.randn(1, 16, 9, 2)
    ref, ours = torch.optim.Adam([a], lr=0.05), Adam(b, lr=0.05)
    for step in range(60):
        for p, opt in ((a, ref), (b, ours)):
            opt.zero_grad()
            ((p * weights).sin().sum() + 0.1 * (p ** 2).sum() + p.clamp(min=step / 30).sum()).backward()
            opt.step()
        assert torch.equal(a, b), step
    assert not torch.equal(a, torch.zeros_like(a))
