"""The bundled demo models (resources/models): valid packages that find nodules in unseen phantoms.

Held-out cases use phantom seeds far from every training/validation/test range of
`inference.training.recipes`, and compare each case with the *same* patient generated without
nodules (the phantom draws anatomy and nodules from independent random streams), so a pass means
the model reacts to the nodule, not to the anatomy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.explain.methods import explain_batch
from inference.loading import LoadedModel, load_model
from inference.package import read_card
from inference.preprocess import Preprocessor
from inference.training.architectures import TARGET_LAYER, NoduleNet
from inference.training.metrics import auroc, dilate_mask, pointing_hit, youden_threshold
from inference.training.recipes import RECIPES, cxr_params, radiograph_pixels
from phantom import ChestParams, NoduleSpec, make_chest_ct
from phantom.radiograph import make_chest_radiograph

MODELS = Path(__file__).resolve().parent.parent / "resources" / "models"
CT, CXR = "chest-nodule-demo", "cxr-nodule-demo"
UNSEEN_SEED = 987_001  # outside every seed range the recipes train, validate or test on


@pytest.fixture(scope="module")
def ct_model() -> LoadedModel:
    return load_model(str(MODELS / CT))


@pytest.fixture(scope="module")
def cxr_model() -> LoadedModel:
    return load_model(str(MODELS / CXR))


def _score_and_heatmap(model: LoadedModel, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (n,) and native-grid Grad-CAM maps (n, rows, cols), the way the viewer gets them."""
    pre = Preprocessor(model.card.input)
    logits, maps = explain_batch(model, pre.to_model(images), [0], "gradcam")
    return model.probabilities(logits)[:, 0].numpy(), pre.to_native(maps[0].float(), images.shape[1:]).numpy()


def _peak_distance_mm(heatmap: np.ndarray, center_rc: tuple[float, float], spacing_rc: tuple[float, float]) -> float:
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return float(np.hypot((peak[0] - center_rc[0]) * spacing_rc[0], (peak[1] - center_rc[1]) * spacing_rc[1]))


# -- the packages ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [CT, CXR])
def test_bundled_package_card_is_complete(name: str) -> None:
    card = read_card(MODELS / name)
    raw = json.loads((MODELS / name / "radscope-model.json").read_text())
    weights = MODELS / name / card.weights.file
    assert card.weights.format == "torch.export" and weights.name == "model.pt2"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card.weights.sha256
    assert weights.stat().st_size <= 10 * 1024 * 1024
    assert card.labels == ("nodule",) and card.output == "sigmoid" and card.input.channels == 1
    assert card.input.modalities == RECIPES[name].modalities
    assert (card.input.window.center, card.input.window.width) == RECIPES[name].window
    for text in (card.description, card.intended_use):
        assert "demo trained on synthetic phantoms, not for clinical use" in text.lower()
    assert card.target_layer == TARGET_LAYER
    assert TARGET_LAYER in dict(NoduleNet().named_modules())
    assert 0.0 < card.thresholds["nodule"] < 1.0
    test = card.metrics["held_out_test"]
    assert 0.5 < test["auroc"] <= 1.0 and 0.0 <= test["pointing_game"] <= 1.0 and test["n_positive"] > 10
    assert "seeds" in card.training_data and "counts" in card.training_data
    assert card.authors and card.license and raw["version"] == RECIPES[name].version


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / CT
    folder.mkdir()
    (folder / "radscope-model.json").write_bytes((MODELS / CT / "radscope-model.json").read_bytes())
    data = bytearray((MODELS / CT / "model.pt2").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.pt2").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_model(str(folder))


# -- CT: held-out phantoms -----------------------------------------------------------------------

def _ct_pair(spec: NoduleSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float], tuple[float, float]]:
    """The slice through one nodule's centre, the same slice of the same patient without it, the mask,
    the nodule centre (row, col) and the pixel spacing."""
    params = ChestParams(n_slices=24, matrix=(256, 256), slice_spacing=2.5, n_nodules=0, nodules=(spec,),
                         seed=UNSEEN_SEED)
    with_nodule = make_chest_ct(params)
    without = make_chest_ct(replace(params, nodules=()))
    k, j, i = with_nodule.nodules[0].center_voxel
    k = int(round(k))
    spacing = (with_nodule.spacing_zyx[1], with_nodule.spacing_zyx[2])
    return with_nodule.hu[k], without.hu[k], with_nodule.nodule_mask[k], (j, i), spacing


def test_ct_model_finds_an_unseen_nodule(ct_model: LoadedModel) -> None:
    """A clear case: a 22 mm solid nodule."""
    spec = NoduleSpec(kind="solid", diameter_mm=22.0, side="left", height=0.5)
    pos, neg, mask, center, spacing = _ct_pair(spec)
    assert mask.any()
    scores, heat = _score_and_heatmap(ct_model, np.stack([pos, neg]))
    threshold = ct_model.card.thresholds["nodule"]
    assert scores[0] > threshold > scores[1], (scores, threshold)
    assert _peak_distance_mm(heat[0], center, spacing) <= spec.diameter_mm / 2 + 10.0


def test_ct_model_finds_an_unseen_10mm_nodule(ct_model: LoadedModel) -> None:
    """What a radiologist expects of it: a 10 mm solid nodule in the lung is called and the heatmap peaks on it."""
    spec = NoduleSpec(kind="solid", diameter_mm=10.0, side="right", height=0.6)
    pos, neg, mask, center, spacing = _ct_pair(spec)
    assert mask.sum() * spacing[0] * spacing[1] >= RECIPES[CT].min_area_mm2  # a positive by the card's label
    scores, heat = _score_and_heatmap(ct_model, np.stack([pos, neg]))
    threshold = ct_model.card.thresholds["nodule"]
    assert scores[0] > threshold > scores[1], (scores, threshold)
    assert pointing_hit(heat[0], mask, (10.0 / spacing[0], 10.0 / spacing[1]))


# -- radiographs ----------------------------------------------------------------------------------

def test_cxr_model_finds_an_unseen_nodule(cxr_model: LoadedModel) -> None:
    """MONOCHROME2 values, as every model is fed (see the viewer-feed test below for MONOCHROME1 films)."""
    base = cxr_params(UNSEEN_SEED)
    spec = NoduleSpec(kind="solid", diameter_mm=24.0, side="right", height=0.45)
    with_nodule = make_chest_ct(replace(base, n_nodules=0, nodules=(spec,)))
    without = make_chest_ct(replace(base, n_nodules=0, nodules=()))
    rad = make_chest_radiograph(with_nodule, seed=5, pixel_spacing=0.7)
    rad0 = make_chest_radiograph(without, seed=5, pixel_spacing=0.7)
    images = np.stack([radiograph_pixels(r.image) for r in (rad, rad0)])
    scores, heat = _score_and_heatmap(cxr_model, images)
    threshold = cxr_model.card.thresholds["nodule"]
    assert scores[0] > threshold > scores[1], (scores, threshold)
    nod = rad.nodules[0]
    assert _peak_distance_mm(heat[0], (nod.row, nod.col), rad.pixel_spacing) <= spec.diameter_mm / 2 + 15.0


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_cxr_training_pixels_match_what_the_viewer_feeds(tmp_path: Path, photometric: str) -> None:
    """The training radiographs' values equal what the viewer feeds a model from a written-then-loaded
    radiograph (`viewer.ai.model_input`: MONOCHROME1 inverted over the stored range), for both polarities."""
    from viewer.ai.model_input import model_input
    from viewer.dicom import open_volume
    from viewer.dicom.synthetic import write_radiograph

    rad = make_chest_radiograph(make_chest_ct(cxr_params(UNSEEN_SEED, voxel_mm=8.0)), seed=1, pixel_spacing=2.0)
    write_radiograph(rad, tmp_path / "xr.dcm", modality="CR", photometric=photometric)
    vol = open_volume(tmp_path / "xr.dcm")
    assert vol.info.monochrome1 == (photometric == "MONOCHROME1")
    np.testing.assert_array_equal(vol.array[0], radiograph_pixels(rad.image, vol.info.monochrome1))
    np.testing.assert_array_equal(np.asarray(model_input(vol))[0], radiograph_pixels(rad.image))


# -- metrics -------------------------------------------------------------------------------------

def test_auroc_matches_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, 200).astype(float)  # many ties
    labels = rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    expected = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(expected)
    assert auroc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    with pytest.raises(ValueError, match="both"):
        auroc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_youden_threshold_separates_separable_scores() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.35])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t, sens, spec = youden_threshold(scores, labels)
    assert 0.3 < t <= 0.35 and sens == 1.0 and spec == 1.0


def test_pointing_hit_respects_dilation() -> None:
    mask = np.zeros((50, 60), bool)
    mask[20:25, 30:35] = True
    heat = np.zeros((50, 60))
    heat[20, 40] = 1.0  # 6 columns right of the mask
    assert not pointing_hit(heat, mask, (5.0, 5.0))
    assert pointing_hit(heat, mask, (6.0, 6.0))
    assert dilate_mask(mask, (0.0, 0.0)).sum() == mask.sum()


# -- the training script -------------------------------------------------------------------------

@pytest.mark.slow
def test_quick_training_writes_loadable_packages(tmp_path: Path) -> None:
    from inference.training.__main__ import main

    assert main(["--quick", "--out", str(tmp_path), "--no-cache", "--workers", "1"]) == 0
    for name in (CT, CXR):
        model = load_model(str(tmp_path / name))
        size = model.card.input.size
        logits = model(torch.zeros(3, 1, *size))
        assert logits.shape == (3, 1) and torch.isfinite(logits).all()
        assert "held_out_test" in model.card.metrics
        # the pipeline writes the package's OOD statistics: readable, sha256 checked, the threshold lets the
        # validation slices (the threshold set) pass at 95% at least
        from inference.ood import read_stats

        stats = read_stats(model.card)
        assert stats is not None and stats.layer == model.card.target_layer and stats.threshold > 0
        assert model.card.scope is not None
