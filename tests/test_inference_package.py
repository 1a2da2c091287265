"""Model cards: validation errors name the file and field; sha256, zips, MONAI bundles, export."""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from inference.architectures import DemoCNN
from inference.package import ModelPackageError, read_card, save_package

WEIGHTS = b"not really weights"

CARD: dict[str, Any] = {
    "format": "radscope-model/1",
    "name": "chest-nodule-demo",
    "version": "1.0.0",
    "dims": 2,
    "labels": ["nodule", "mass"],
    "output": "sigmoid",
    "input": {"size": [256, 192], "channels": 3, "window": {"center": -600, "width": 1500},
              "normalize": {"mean": [0.5, 0.4, 0.3], "std": 0.25}, "modalities": ["ct"]},
    "weights": {"file": "model.pt2", "format": "torch.export", "sha256": hashlib.sha256(WEIGHTS).hexdigest()},
    "explain": {"target_layer": "features"},
    "thresholds": {"nodule": 0.4},
    "description": "A demo.",
    "authors": ["A", "B"],
    "metrics": {"auroc": 0.9},
}


def _write(folder: Path, card: dict[str, Any], weights: bytes = WEIGHTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "radscope-model.json").write_text(json.dumps(card))
    (folder / "model.pt2").write_bytes(weights)
    return folder


def _without(card: dict[str, Any], dotted: str) -> dict[str, Any]:
    card = copy.deepcopy(card)
    *parents, last = dotted.split(".")
    node = card
    for p in parents:
        node = node[p]
    del node[last]
    return card


def _with(card: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    card = copy.deepcopy(card)
    *parents, last = dotted.split(".")
    node = card
    for p in parents:
        node = node[p]
    node[last] = value
    return card


def test_valid_card_parses_every_field(tmp_path: Path) -> None:
    card = read_card(_write(tmp_path / "chest", CARD))
    assert card.name == "chest-nodule-demo" and card.labels == ("nodule", "mass")
    assert card.input.size == (256, 192) and card.input.channels == 3
    assert (card.input.window.center, card.input.window.width) == (-600.0, 1500.0)
    assert card.input.normalize is not None and card.input.normalize.std == (0.25,)
    assert card.input.modalities == ("CT",)
    assert card.target_layer == "features" and card.thresholds == {"nodule": 0.4}
    assert card.authors == ("A", "B") and card.metrics == {"auroc": 0.9}
    assert card.read_weights() == WEIGHTS


@pytest.mark.parametrize("field", ["format", "name", "version", "dims", "labels", "output", "input.size",
                                   "input.channels", "input.window.center", "input.window.width",
                                   "weights.file", "weights.format", "weights.sha256", "explain.target_layer"])
def test_missing_field_is_named(tmp_path: Path, field: str) -> None:
    with pytest.raises(ModelPackageError) as err:
        read_card(_write(tmp_path / "chest", _without(CARD, field)))
    assert str(err.value).startswith(f"chest/radscope-model.json: {field} ")


@pytest.mark.parametrize("field, value, says", [
    ("input.window.width", -5, "input.window.width must be a positive number"),
    ("input.window.width", "wide", "input.window.width must be a positive number"),
    ("input.size", [256], "input.size must be [height, width]"),
    ("input.channels", 0, "input.channels must be an integer >= 1"),
    ("input.stored_bits", 40, "input.stored_bits must be a whole number of bits, 1 to 32"),
    ("input.stored_bits", True, "input.stored_bits must be a whole number of bits, 1 to 32"),
    ("output", "relu", "output must be one of"),
    ("dims", 3, "dims must be one of [2]"),
    ("labels", [], "labels must be a non-empty list"),
    ("labels", ["a", "a"], "labels must not repeat"),
    ("weights.format", "pickle", "weights.format must be one of"),
    ("weights.sha256", "abc", "weights.sha256 must be 64 hex digits"),
    ("weights.file", "../x.pt2", "weights.file must be a plain relative path"),
    ("input.normalize.std", [1, 0, 1], "input.normalize.std must be a positive number"),
    ("input.normalize.mean", [1, 2], "input.normalize.mean must be a number or a list of 3"),
    ("thresholds", {"other": 0.5}, "thresholds.other is not one of the labels"),
    ("format", "radscope-model/2", "format must be 'radscope-model/1'"),
])
def test_invalid_field_is_named(tmp_path: Path, field: str, value: Any, says: str) -> None:
    with pytest.raises(ModelPackageError) as err:
        read_card(_write(tmp_path / "chest", _with(CARD, field, value)))
    assert str(err.value).startswith(f"chest/radscope-model.json: {says}")


def test_safetensors_needs_architecture(tmp_path: Path) -> None:
    bad = _with(CARD, "weights.format", "safetensors")
    with pytest.raises(ModelPackageError, match="weights.architecture is missing"):
        read_card(_write(tmp_path / "chest", bad))


def test_not_json_and_not_a_package(tmp_path: Path) -> None:
    folder = _write(tmp_path / "chest", CARD)
    (folder / "radscope-model.json").write_text("{nope")
    with pytest.raises(ModelPackageError, match="chest/radscope-model.json: not valid JSON"):
        read_card(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPackageError, match="neither radscope-model.json nor a MONAI bundle"):
        read_card(tmp_path / "empty")


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    card = read_card(_write(tmp_path / "chest", CARD, weights=WEIGHTS + b"tampered"))
    with pytest.raises(ModelPackageError, match="weights.sha256 does not match model.pt2"):
        card.read_weights()


@pytest.mark.parametrize("inner", ["chest/", ""])
def test_zipped_package(tmp_path: Path, inner: str) -> None:
    folder = _write(tmp_path / "chest", CARD)
    archive = tmp_path / "chest.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, inner + f.name)
    card = read_card(archive)
    assert card.name == "chest-nodule-demo" and card.read_weights() == WEIGHTS
    assert card.card_file == f"chest.zip:{inner}radscope-model.json"


def test_monai_bundle_maps_network_data_format(tmp_path: Path) -> None:
    bundle = tmp_path / "spleen_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "models" / "model.ts").write_bytes(b"ts")
    meta = {"name": "Lung nodule classifier", "version": "0.2.1", "authors": "MONAI",
            "description": "desc", "intended_use": "research", "data_source": "LIDC",
            "network_data_format": {
                "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
                                     "spatial_shape": [96, 128], "value_range": [-1000, 500]}},
                "outputs": {"pred": {"type": "probabilities", "format": "classes", "num_channels": 2,
                                     "channel_def": {"0": "benign", "1": "malignant"}}}}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    card = read_card(bundle)
    assert card.kind == "monai" and card.weights.format == "torchscript" and card.weights.file == "models/model.ts"
    assert card.labels == ("benign", "malignant") and card.output == "softmax"
    assert card.input.size == (96, 128) and card.input.modalities == ("CT",)
    # value_range describes the data, not a window: without an inference config the model gets raw values
    assert (card.input.window.center, card.input.window.width, card.input.window.clip) == (0.5, 1.0, False)
    assert card.training_data == "LIDC" and card.target_layer is None
    assert card.weights_sha256() == hashlib.sha256(b"ts").hexdigest()
    del meta["network_data_format"]["inputs"]["image"]["spatial_shape"]
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelPackageError, match=r"spleen_bundle/configs/metadata.json: "
                                                r"network_data_format.inputs.image.spatial_shape"):
        read_card(bundle)


def test_save_package_writes_a_loadable_card(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = DemoCNN(1, 2, widths=(4, 8))
    fields = {k: v for k, v in CARD.items() if k not in ("weights", "format")}
    fields["input"] = {"size": [32, 32], "channels": 1, "window": {"center": 40, "width": 400}}
    card = save_package(module, fields, tmp_path / "pkg", torch.randn(1, 1, 32, 32))
    data = card.read_weights()
    assert card.weights.format == "torch.export" and card.weights.sha256 == hashlib.sha256(data).hexdigest()
    program = torch.export.load(tmp_path / "pkg" / "model.pt2")
    x = torch.randn(5, 1, 32, 32)  # any batch size: the batch dimension is exported dynamic
    torch.testing.assert_close(program.module()(x), module(x))


def test_reading_a_card_does_not_import_torch(tmp_path: Path) -> None:
    """The GUI thread reads cards; torch must only ever load on the inference worker."""
    import subprocess
    import sys

    folder = _write(tmp_path / "chest", CARD)
    code = ("import sys; from inference.package import read_card; "
            f"read_card({str(folder)!r}).read_weights(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
