"""Every weights format loads to the same outputs as its source module; pickles with code are refused."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from inference.architectures import DemoCNN
from inference.explain import layer_cams
from inference.loading import UnsupportedExplanationError, load_model
from inference.package import ModelPackageError, save_package, write_card

FIELDS: dict[str, Any] = {
    "name": "tiny", "version": "0.1", "dims": 2, "labels": ["a", "b"], "output": "softmax",
    "input": {"size": [40, 48], "channels": 1, "window": {"center": 0, "width": 2}},
    "explain": {"target_layer": "features"},
}


def _module() -> nn.Module:
    torch.manual_seed(3)
    m = DemoCNN(1, 2, widths=(4, 8, 8)).eval()
    for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return m


X = torch.randn(3, 1, 40, 48)


@pytest.fixture(scope="module")
def module() -> nn.Module:
    return _module()


def _package(tmp_path: Path, module: nn.Module, fmt: str) -> Path:
    out = tmp_path / fmt
    out.mkdir()
    if fmt == "torch.export":
        save_package(module, FIELDS, out, X)
        return out
    if fmt == "torchscript":
        torch.jit.save(torch.jit.trace(module, X), str(out / "model.ts"))
        write_card(out, FIELDS, "model.ts", "torchscript")
    elif fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(out / "model.safetensors"))
        write_card(out, FIELDS, "model.safetensors", "safetensors", architecture="demo-cnn-tiny-test")
    else:
        torch.save(module.state_dict(), out / "model.pt")
        write_card(out, FIELDS, "model.pt", "state_dict", architecture="demo-cnn-tiny-test")
    return out


@pytest.fixture(autouse=True)
def tiny_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference import architectures

    monkeypatch.setitem(architectures.ARCHITECTURES, "demo-cnn-tiny-test",
                        architectures.Architecture(lambda c, n: DemoCNN(c, n, widths=(4, 8, 8)), "features"))


@pytest.mark.parametrize("fmt", ["torch.export", "torchscript", "safetensors", "state_dict"])
def test_every_format_gives_the_source_outputs(tmp_path: Path, module: nn.Module, fmt: str) -> None:
    model = load_model(_package(tmp_path, module, fmt))
    with torch.no_grad():
        torch.testing.assert_close(model(X), module(X), atol=1e-5, rtol=1e-5)
        probs = model.probabilities(model(X))
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    if fmt == "torchscript":
        assert not model.has_layers
        with pytest.raises(UnsupportedExplanationError, match="input-space method"):
            model.split()
    else:
        logits, maps = layer_cams(model.split(), X, [0, 1])
        _, ref = layer_cams(__import__("inference.graph", fromlist=["split_at"]).split_at(module, "features"), X, [0, 1])
        torch.testing.assert_close(maps, ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logits, module(X), atol=1e-5, rtol=1e-5)


def test_loading_never_changes_the_outputs_of_a_zipped_package(tmp_path: Path, module: nn.Module) -> None:
    folder = _package(tmp_path, module, "torch.export")
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"tiny/{f.name}")
    with torch.no_grad():
        torch.testing.assert_close(load_model(archive)(X), module(X), atol=1e-5, rtol=1e-5)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (str(self.marker),))


def test_pickle_that_needs_code_execution_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "evil"
    out.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"fc.weight": torch.zeros(1), "x": _Evil(marker)}, out / "model.pt")
    write_card(out, FIELDS, "model.pt", "state_dict", architecture="demo-cnn-tiny-test")
    with pytest.raises(ModelPackageError, match=r"evil/radscope-model.json: model.pt is a pickle that needs code"):
        load_model(out)
    assert not marker.exists()
    # The same pickle presented as another format is refused too, and never unpickled.
    (out / "model.pt2").write_bytes(pickle.dumps(_Evil(marker)))
    write_card(out, FIELDS, "model.pt2", "torch.export")
    with pytest.raises(ModelPackageError, match=r"model.pt2 is not a zip archive .*; refused"):
        load_model(out)
    write_card(out, FIELDS, "model.pt2", "safetensors", architecture="demo-cnn-tiny-test")
    with pytest.raises(ModelPackageError, match=r"not a valid safetensors file"):
        load_model(out)
    assert not marker.exists()


def test_sha256_mismatch_refused_before_loading(tmp_path: Path, module: nn.Module) -> None:
    folder = _package(tmp_path, module, "torch.export")
    data = (folder / "model.pt2").read_bytes()
    buf = io.BytesIO(data)
    (folder / "model.pt2").write_bytes(buf.getvalue()[:-1] + bytes([buf.getvalue()[-1] ^ 1]))
    with pytest.raises(ModelPackageError, match="weights.sha256 does not match model.pt2"):
        load_model(folder)


def test_wrong_architecture_is_named(tmp_path: Path, module: nn.Module) -> None:
    folder = _package(tmp_path, module, "safetensors")
    write_card(folder, FIELDS, "model.safetensors", "safetensors", architecture="resnet18")
    with pytest.raises(ModelPackageError, match="does not fit architecture 'resnet18'"):
        load_model(folder)
    write_card(folder, FIELDS, "model.safetensors", "safetensors", architecture="nonet")
    with pytest.raises(ModelPackageError, match="weights.architecture: unknown architecture 'nonet'"):
        load_model(folder)
