"""CAM explainers through the split graph: analytic truth, naive reference, one forward for all labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from inference.architectures import DemoCNN, ResNet18
from inference.explain import CAM_METHODS, layer_cams, normalize_maps
from inference.graph import LayerNotFoundError, split_at
from inference.package import InputSpec, Window
from inference.preprocess import Preprocessor


class BlobNet(nn.Module):
    """Class evidence = a bright round blob: a Gaussian matched filter, ReLU, global mean, linear.

    Grad-CAM at ``features`` is then ``relu(w / hw * A)`` with ``A`` the filter response, which peaks
    at the blob's centre: the correct heatmap is known analytically.
    """

    def __init__(self, sigma: float = 3.0) -> None:
        super().__init__()
        k = int(3 * sigma) * 2 + 1
        r = torch.arange(k, dtype=torch.float32) - k // 2
        g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
        conv = nn.Conv2d(1, 1, k, padding=k // 2, bias=True)
        conv.weight.data = (g / g.sum())[None, None]
        conv.bias.data.fill_(-0.05)
        self.features = nn.Sequential(conv, nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 1)
        self.fc.weight.data.fill_(5.0)
        self.fc.bias.data.fill_(-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _disk_image(shape: tuple[int, int], spacing_rc: tuple[float, float], centre_mm: tuple[float, float],
                radius_mm: float) -> np.ndarray:
    """A bright disk of a physical radius on a grid with (row, col) pixel spacing, in HU-like units."""
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    d2 = ((rr * spacing_rc[0] - centre_mm[0]) ** 2 + (cc * spacing_rc[1] - centre_mm[1]) ** 2)
    return np.where(d2 <= radius_mm**2, 200.0, -800.0).astype(np.float32)


ORIENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as-is": lambda a: a,
    "flipped-rows": lambda a: a[::-1],
    "flipped-cols": lambda a: a[:, ::-1],
    "transposed": lambda a: a.T,
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize("shape, spacing", [((300, 500), (0.7, 0.7)), ((300, 500), (1.2, 0.5)),
                                            ((512, 400), (0.5, 0.9))])
def test_gradcam_peak_lands_on_the_blob(shape: tuple[int, int], spacing: tuple[float, float],
                                        orientation: str) -> None:
    model = BlobNet().eval()
    split = split_at(model, "features")
    pre = Preprocessor(InputSpec((256, 256), 1, Window(-300, 1000)))
    rng = np.random.default_rng(sum(shape) + len(orientation))
    for _ in range(3):
        # centre somewhere inside, in mm, then its exact (continuous) pixel position
        centre_px = rng.uniform(0.2, 0.8, 2) * np.array(shape)
        centre_mm = (centre_px[0] * spacing[0], centre_px[1] * spacing[1])
        img = _disk_image(shape, spacing, centre_mm, radius_mm=12.0)
        truth = np.zeros(shape, dtype=bool)
        truth[int(round(centre_px[0])), int(round(centre_px[1]))] = True
        img, truth = ORIENTATIONS[orientation](img), ORIENTATIONS[orientation](truth)
        tr, tc = np.argwhere(truth)[0]
        _, maps = layer_cams(split, pre.to_model(img.copy()), [0])
        native = normalize_maps(Preprocessor.to_native(maps[0], img.shape))[0].numpy()
        pr, pc = np.unravel_index(np.argmax(native), img.shape)
        assert abs(pr - tr) <= 1.0 and abs(pc - tc) <= 1.0, (orientation, (pr, pc), (tr, tc))
        assert native.max() == pytest.approx(1.0) and native.min() >= 0.0


def _naive_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, label: int, method: str) -> torch.Tensor:
    """Reference: forward hooks on the eager module, full autograd from the output to the input."""
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        out.retain_grad()
        store["a"] = out

    handle = layer.register_forward_hook(hook)
    try:
        x = x.clone().requires_grad_(True)
        model(x)[:, label].sum().backward()
    finally:
        handle.remove()
    a, g = store["a"].detach(), store["a"].grad
    if method == "gradcam":
        return (g.mean((2, 3), keepdim=True) * a).sum(1).clamp(min=0)
    if method == "layercam":
        return (g.clamp(min=0) * a).sum(1).clamp(min=0)
    if method == "hirescam":
        return (g * a).sum(1).clamp(min=0)
    g2, g3 = g**2, g**3
    denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3
    alpha = torch.where(g != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g))
    w = (alpha * g.clamp(min=0)).sum((2, 3), keepdim=True)
    return (w * a).sum(1).clamp(min=0)


def _no_inplace(model: nn.Module) -> nn.Module:
    """Hooks + retain_grad need out-of-place ReLUs; the graph split does not care."""
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model


@pytest.mark.parametrize("method", CAM_METHODS)
@pytest.mark.parametrize("arch", ["demo", "resnet"])
def test_cam_equals_naive_full_autograd_reference(method: str, arch: str) -> None:
    torch.manual_seed(0)
    if arch == "demo":
        model, layer_name, x = DemoCNN(1, 3, widths=(8, 16, 16)), "features", torch.randn(4, 1, 48, 40)
    else:
        model, layer_name, x = ResNet18(1, 3), "layer4", torch.randn(2, 1, 64, 64)
    model = _no_inplace(model).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    split = split_at(model, layer_name)
    logits, maps = layer_cams(split, x, [0, 1, 2], method)
    torch.testing.assert_close(logits, model(x), atol=1e-4, rtol=1e-4)
    layer = model.get_submodule(layer_name)
    for label in range(3):
        ref = _naive_cam(model, layer, x, label, method)
        torch.testing.assert_close(maps[label], ref, atol=1e-4, rtol=1e-4)


def test_all_labels_in_one_forward_equal_one_label_at_a_time() -> None:
    torch.manual_seed(1)
    model = DemoCNN(1, 4, widths=(8, 16)).eval()
    split = split_at(model, "features")
    x = torch.randn(3, 1, 40, 40)
    _, together = layer_cams(split, x, [0, 1, 2, 3])
    for label in range(4):
        _, alone = layer_cams(split, x, [label])
        torch.testing.assert_close(together[label], alone[0], atol=1e-6, rtol=1e-6)


def test_exported_graph_split_matches_hooks_on_the_source_module() -> None:
    torch.manual_seed(2)
    model = ResNet18(1, 2).eval()
    x = torch.randn(2, 1, 64, 64)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    got: dict[str, torch.Tensor] = {}
    for name in ("layer3", "layer4.0.bn1"):  # a block output, and a layer inside a residual block
        h = model.get_submodule(name).register_forward_hook(lambda _m, _i, o, n=name: got.__setitem__(n, o.clone()))
        expected = model(x)
        h.remove()
        split = split_at(program.module(), name)
        act, carried = split.activation(x)
        torch.testing.assert_close(act, got[name], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(split.logits(act, carried), expected, atol=1e-4, rtol=1e-4)
        assert split.n_carried == (1 if name == "layer4.0.bn1" else 0)  # the residual identity is carried


def test_unknown_layer_lists_the_layers() -> None:
    with pytest.raises(LayerNotFoundError, match=r"'nope' is not a layer of the model .*features"):
        split_at(DemoCNN(1, 1, widths=(4,)), "nope")


def test_worker_thread_gets_gradients_even_when_grad_mode_is_off() -> None:
    import threading

    model = DemoCNN(1, 1, widths=(4, 8)).eval()
    split = split_at(model, "features")
    out: list[torch.Tensor] = []

    def work() -> None:
        with torch.no_grad():
            out.append(layer_cams(split, torch.randn(1, 1, 32, 32), [0])[1])

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out and out[0].shape == (1, 1, 8, 8)
