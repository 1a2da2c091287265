"""MONAI bundles as users write them: the classification template's metadata, inference-config intensity
transforms (read as data), a bundle with only model.pt, and segmentation outputs refused in words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.architectures import DemoCNN
from inference.package import ModelPackageError, read_card
from inference.preprocess import Preprocessor
from inference.runner import Runner

TEMPLATE_META = {  # Project-MONAI/model-zoo models/classification_template/configs/metadata.json (abridged)
    "version": "0.0.2", "name": "Classification Template", "task": "Classification Template in 2D images",
    "description": "This is a template bundle for classifying in 2D.", "authors": "Yun Liu",
    "copyright": "Copyright (c) 2023 MONAI Consortium",
    "network_data_format": {
        "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "none", "num_channels": 1,
                             "spatial_shape": [128, 128], "dtype": "float32", "value_range": [],
                             "is_patch_data": False, "channel_def": {"0": "image"}}},
        "outputs": {"pred": {"type": "probabilities", "format": "classes", "num_channels": 4,
                             "spatial_shape": [1, 4], "dtype": "float32", "value_range": [0, 1, 2, 3],
                             "is_patch_data": False,
                             "channel_def": {"0": "background", "1": "circle", "2": "triangle", "3": "rectangle"}}}},
}
TEMPLATE_YAML = """
imports:
- $import torch
image: $monai.utils.CommonKeys.IMAGE
network_def:
  _target_: DenseNet121
  spatial_dims: 2
  in_channels: 1
  out_channels: 4
transforms:
- _target_: LoadImaged
  keys: '@image'
- _target_: EnsureChannelFirstd
  keys: '@image'
- _target_: ScaleIntensityd
  keys: '@image'
preprocessing:
  _target_: Compose
  transforms: $@transforms
"""


def _bundle(tmp_path: Path, meta: dict, config: tuple[str, str] | None = None, weights: str = "model.ts",
            n_out: int = 4) -> Path:
    b = tmp_path / "bundle"
    (b / "configs").mkdir(parents=True)
    (b / "models").mkdir()
    (b / "configs" / "metadata.json").write_text(json.dumps(meta))
    if config is not None:
        (b / "configs" / config[0]).write_text(config[1])
    torch.manual_seed(0)
    net = DemoCNN(1, n_out, widths=(4, 8)).eval()
    if weights == "model.ts":
        torch.jit.save(torch.jit.script(net), str(b / "models" / "model.ts"))
    else:
        torch.save(net.state_dict(), b / "models" / "model.pt")
    return b


def test_classification_template_with_yaml_scale_intensity(tmp_path: Path) -> None:
    card = read_card(_bundle(tmp_path, TEMPLATE_META, ("inference.yaml", TEMPLATE_YAML)))
    assert card.labels == ("background", "circle", "triangle", "rectangle") and card.output == "softmax"
    assert card.input.modalities == ()  # "none" restricts nothing
    assert card.input.per_image == {"kind": "minmax", "min": 0.0, "max": 1.0}
    assert "ScaleIntensityd" in card.description and card.authors == ("Yun Liu",)
    # what reaches the model: MONAI's ScaleIntensity (min-max to [0, 1]) of the raw slice, then the resize
    rng = np.random.default_rng(0)
    slice_ = rng.normal(300, 80, (128, 128)).astype(np.float32)
    x = Preprocessor(card.input).to_model(slice_)
    want = (slice_ - slice_.min()) / (slice_.max() - slice_.min())
    np.testing.assert_allclose(x[0, 0].numpy(), want, atol=1e-6)
    (res,) = Runner(card, device="cpu").run(slice_[None], method=None)
    assert res.scores.shape == (1, 4) and np.isclose(res.scores.sum(), 1.0, atol=1e-5)


@pytest.mark.parametrize(("transform", "check"), [
    ({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 500, "b_min": 0.0,
      "b_max": 1.0, "clip": True},
     lambda v: np.clip((v + 1000) / 1500, 0, 1)),
    ({"_target_": "monai.transforms.ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 500,
      "b_min": -1.0, "b_max": 1.0, "clip": False},
     lambda v: (v + 1000) / 1500 * 2 - 1),
    ({"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True},
     lambda v: np.where(v != 0, (v - v[v != 0].mean()) / v[v != 0].std(), 0)),
    ({"_target_": "NormalizeIntensityd", "keys": "image", "subtrahend": 100.0, "divisor": 50.0},
     lambda v: (v - 100) / 50),
])
def test_inference_json_intensity_transforms(tmp_path: Path, transform: dict, check) -> None:  # type: ignore[no-untyped-def]
    config = {"preprocessing": {"_target_": "Compose", "transforms": [{"_target_": "LoadImaged"}, transform]}}
    card = read_card(_bundle(tmp_path, TEMPLATE_META, ("inference.json", json.dumps(config))))
    v = np.random.default_rng(1).normal(0, 600, (128, 128)).astype(np.float32)
    v[:10] = 0.0
    np.testing.assert_allclose(Preprocessor(card.input).to_model(v)[0, 0].numpy(), check(v), atol=1e-4)


@pytest.mark.parametrize(("transform", "message"), [
    ({"_target_": "ScaleIntensityRanged", "a_min": "@a_min", "a_max": 500}, "must be a literal number"),
    ({"_target_": "ScaleIntensityRangePercentilesd", "lower": 1, "upper": 99}, "is not supported"),
])
def test_unsupported_transforms_are_named(tmp_path: Path, transform: dict, message: str) -> None:
    config = {"preprocessing": {"transforms": [transform]}}
    with pytest.raises(ModelPackageError, match=rf"configs/metadata.json: configs/inference.json: .*{message}"):
        read_card(_bundle(tmp_path, TEMPLATE_META, ("inference.json", json.dumps(config))))


def test_bundle_with_only_model_pt_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match=r"holds only models/model.pt, a weights-only state dict: it "
                                                r"needs the network's code.*ckpt_export"):
        read_card(_bundle(tmp_path, TEMPLATE_META, weights="model.pt"))


def test_segmentation_output_is_refused_in_words(tmp_path: Path) -> None:
    meta = json.loads(json.dumps(TEMPLATE_META))
    meta["network_data_format"]["outputs"]["pred"] = {
        "type": "image", "format": "segmentation", "num_channels": 2, "spatial_shape": [128, 128],
        "channel_def": {"0": "background", "1": "spleen"}}
    with pytest.raises(ModelPackageError, match=r"outputs.pred is a segmentation output .*segmentation overlays "
                                                r"are not supported yet"):
        read_card(_bundle(tmp_path, meta))
