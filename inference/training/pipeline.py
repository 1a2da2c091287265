"""One recipe end to end: data -> training -> threshold on validation -> held-out metrics -> package."""

from __future__ import annotations

import hashlib
import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import torch

from inference.loading import LoadedModel, load_model
from inference.package import InputSpec, ModelCard, Window, read_card, save_package, write_card
from inference.preprocess import Preprocessor
from inference.training.architectures import TARGET_LAYER, NoduleNet
from inference.training.dataset import Sample, SliceSet, build_set
from inference.training.evaluate import evaluate, predict
from inference.training.metrics import youden_threshold
from inference.training.train import TrainConfig, train_model

DISCLAIMER = "Demo trained on synthetic phantoms, not for clinical use."
LABEL = "nodule"


@dataclass(frozen=True)
class Recipe:
    """Everything that defines one bundled demo model."""

    name: str
    version: str
    description: str
    modalities: tuple[str, ...]
    window: tuple[float, float]
    """(center, width) in the modality units the DICOM engine delivers."""
    size: tuple[int, int]
    make: Callable[[int], Sample]
    """Seed -> one phantom's images with truth."""
    generator: str
    """What ``make`` runs, in words, for the card."""
    train_seeds: range
    val_seeds: range
    test_seeds: range
    min_area_mm2: float
    """Smallest nodule cross-section that makes an image positive (smaller slivers are not scored)."""
    dilate_mm: float
    """Pointing game: the Grad-CAM peak counts as a hit within this distance of the nodule mask."""
    train: TrainConfig = field(default_factory=TrainConfig)
    widths: tuple[int, int, int, int] = (16, 24, 48, 64)
    notes: tuple[str, ...] = ()
    scope: dict[str, Any] = field(default_factory=dict)
    """The card's intended-use rules (`inference.scope`)."""
    ood_quantile: float = 0.97
    """Share of the validation images the OOD threshold lets pass (a margin over 95% for unseen ones)."""
    stored_bits: int | None = None
    """The card's ``input.stored_bits`` (radiographs: the window is for stored values of this bit depth)."""


def phantom_code_digest() -> str:
    """sha256 over the phantom package's sources: cached sets go stale when the generator changes."""
    import phantom

    h = hashlib.sha256()
    for path in sorted(Path(phantom.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _children_cpu() -> float:
    """CPU seconds used by finished child processes (the phantom workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rounded(v: float) -> float | None:
    """Rounded for the card; None where undefined (JSON has no NaN)."""
    return round(v, 4) if math.isfinite(v) else None


def _seed_text(r: range) -> str:
    return f"{r.start}-{r.stop - 1}" if len(r) > 1 else str(r.start)


def _training_text(recipe: Recipe) -> str:
    """The training settings in words, for the card."""
    cfg = recipe.train
    steps = f" x {cfg.steps_per_epoch} steps" if cfg.steps_per_epoch else ""
    parts = [f"NoduleNet widths {list(recipe.widths)}", f"{cfg.epochs} epochs{steps}, batch {cfg.batch_size} "
             f"({cfg.positive_fraction:.0%} positives)", f"AdamW one-cycle lr {cfg.lr:g}",
             f"loss: image BCE + {cfg.map_weight:g} x evidence-map BCE (nodule cells weighted {cfg.map_pos_weight:g})"]
    if cfg.crop:
        parts.append(f"{cfg.crop}-px crops, whole images for the last {cfg.full_image_fraction:.0%} of steps")
        if cfg.matched_negative_crops:
            parts.append("negatives cropped where the batch's nodules lie")
    if cfg.flip:
        parts.append("left-right flips")
    if cfg.gamma_jitter:
        parts.append(f"tone-curve jitter (gamma up to x{1 + cfg.gamma_jitter:g})")
    return ", ".join(parts) + f", seed {cfg.seed}"


def _safe_metrics(model: LoadedModel, data: SliceSet, recipe: Recipe, threshold: float | None) -> dict[str, Any]:
    try:
        return evaluate(model, data, recipe.dilate_mm, threshold)
    except ValueError as exc:  # a tiny (--quick) set may lack a class
        return {"error": str(exc), **data.counts}


def _card_fields(recipe: Recipe, train: SliceSet, val: SliceSet, test: SliceSet) -> dict[str, Any]:
    """Every card key except weights, thresholds and metrics."""
    return {
        "name": recipe.name,
        "version": recipe.version,
        "dims": 2,
        "labels": [LABEL],
        "output": "sigmoid",
        "input": {"size": list(recipe.size), "channels": 1,
                  "window": {"center": recipe.window[0], "width": recipe.window[1]},
                  **({"stored_bits": recipe.stored_bits} if recipe.stored_bits else {}),
                  "modalities": list(recipe.modalities)},
        "explain": {"target_layer": TARGET_LAYER},
        **({"scope": recipe.scope} if recipe.scope else {}),
        "description": f"{recipe.description} {DISCLAIMER}",
        "intended_use": (f"{DISCLAIMER} For demonstrating and testing RadScope's AI overlay, heatmaps and "
                         "review workflow only; its output means nothing about real patients."),
        "training_data": [
            f"generator: {recipe.generator}",
            f"seeds: train {_seed_text(recipe.train_seeds)}, validation {_seed_text(recipe.val_seeds)}, "
            f"held-out test {_seed_text(recipe.test_seeds)} (one phantom per seed)",
            f"counts: train {train.counts}, validation {val.counts}, test {test.counts}",
            f"labels: positive when the nodule cross-section is >= {recipe.min_area_mm2:g} mm2 (a disc of "
            f"{2.0 * math.sqrt(recipe.min_area_mm2 / math.pi):.1f} mm), "
            "negative when there is none; smaller slivers are neither trained on as images nor scored",
            f"training: {_training_text(recipe)}; reproduce with `python -m inference.training`",
            *recipe.notes,
        ],
        "authors": ["RadScope team"],
        "license": "MIT (weights and code); synthetic training data, no patient data",
    }


def run_recipe(recipe: Recipe, out_root: Path, cache_dir: Path | None,
               log: Callable[[str], None] = print, workers: int = 1) -> tuple[ModelCard, dict[str, Any]]:
    """Train, evaluate and package ``recipe`` into ``out_root / recipe.name``; returns (card, summary)."""
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    spec = InputSpec(size=recipe.size, channels=1, window=Window(*recipe.window), modalities=recipe.modalities)
    pre = Preprocessor(spec)
    key = {"recipe": recipe.name, "generator": recipe.generator, "version": recipe.version,
           "phantom_code": phantom_code_digest()}
    log(f"[{recipe.name}] generating phantoms")
    train = build_set(f"{recipe.name}-train", key, recipe.train_seeds, recipe.make, pre, recipe.min_area_mm2, cache_dir, log,
                      workers)
    val = build_set(f"{recipe.name}-val", key, recipe.val_seeds, recipe.make, pre, recipe.min_area_mm2, cache_dir, log,
                      workers)
    test = build_set(f"{recipe.name}-test", key, recipe.test_seeds, recipe.make, pre, recipe.min_area_mm2, cache_dir, log,
                      workers)
    t_data = time.perf_counter() - t0

    log(f"[{recipe.name}] training {recipe.train.epochs} epochs on {train.counts}")
    torch.manual_seed(recipe.train.seed)
    model = NoduleNet(widths=recipe.widths)
    history = train_model(model, train, recipe.train, log)
    t_train = time.perf_counter() - t0 - t_data

    out = out_root / recipe.name
    fields = _card_fields(recipe, train, val, test)
    save_package(model, fields, out, torch.zeros(2, 1, *recipe.size))
    loaded = load_model(str(out))  # measure the package exactly as the viewer will run it
    val_scores = predict(loaded, val)
    scored = val.labels >= 0
    try:
        threshold, sens, spec_ = youden_threshold(val_scores[scored], val.labels[scored] == 1)
    except ValueError:  # a tiny (--quick) set may lack a class
        threshold, sens, spec_ = 0.5, float("nan"), float("nan")
    metrics_val = _safe_metrics(loaded, val, recipe, None)
    metrics_test = _safe_metrics(loaded, test, recipe, threshold)
    log(f"[{recipe.name}] validation {metrics_val}; threshold {threshold:.4f}")
    log(f"[{recipe.name}] held-out test {metrics_test}")
    fields["thresholds"] = {LABEL: round(threshold, 6)}
    fields["metrics"] = {
        "held_out_test": metrics_test,
        "validation": {**metrics_val, "youden_sensitivity": _rounded(sens), "youden_specificity": _rounded(spec_)},
        "notes": (f"AUROC over images of the held-out phantoms (seeds never used in training); pointing game: "
                  f"share of positive images whose Grad-CAM ({TARGET_LAYER}) peak on the native grid lies within "
                  f"{recipe.dilate_mm:g} mm of the nodule mask. Threshold: Youden point on the validation phantoms. "
                  "Measured on this package through inference.loading and inference.explain."),
    }
    write_card(out, fields, "model.pt2", "torch.export")
    from inference.training.ood import write_ood  # the package's OOD statistics (its sha256 and threshold in the card)

    write_ood(out, train, val, test, {"fit": f"train seeds {_seed_text(recipe.train_seeds)}",
                                      "threshold": f"validation seeds {_seed_text(recipe.val_seeds)}",
                                      "report": f"test seeds {_seed_text(recipe.test_seeds)}"}, log=log,
              quantile=recipe.ood_quantile)
    saved = read_card(out)
    elapsed = time.perf_counter() - t0
    summary = {"name": recipe.name, "seconds": {"data": round(t_data, 1), "train": round(t_train, 1),
                                               "total": round(elapsed, 1)},
               "cpu_seconds": round(time.process_time() - c0 + _children_cpu() - k0, 1),
               "load_average": [round(v, 2) for v in os.getloadavg()],
               "history": history, "test": metrics_test, "validation": metrics_val,
               "weights_bytes": (out / "model.pt2").stat().st_size}
    log(f"[{recipe.name}] wrote {out} ({summary['weights_bytes']} bytes) in {elapsed:.1f} s")
    return saved, summary
