"""Out-of-distribution statistics for a model package, from phantom images, without retraining it.

    python -m inference.training.ood [--models resources/models] [--only NAME ...] [--pooling mean_std]
                                     [--fit-phantoms N] [--quick] [--cache DIR] [--workers N]

For each bundled recipe: pooled features of the card's target layer on training phantoms give the
mean and covariance (`inference.ood.fit`); the threshold is the distance that 95% of the validation
phantoms' slices stay within (held out from training); the held-out test phantoms' pass rate is
reported in the card. Writes ``ood.npz`` beside the weights and the card's ``ood`` object (the weights
and their sha256 are untouched). `inference.training.pipeline` calls `write_ood` after training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np
import torch

from inference.loading import LoadedModel, load_model
from inference.ood import add_to_card, fit, pool_features, threshold_for, write_stats
from inference.training.dataset import SliceSet

DEFAULT_POOLING = "mean_std"
THRESHOLD_QUANTILE = 0.97
"""Share of the validation slices the threshold is set to let pass: a margin over the required 95%, so
that unseen held-out slices pass at 95% or more too (a threshold set at exactly 95% of one held-out set let
94.8% and 93.1% of the other pass)."""


def features(model: LoadedModel, data: SliceSet, layer: str, pooling: str, batch: int = 64) -> np.ndarray:
    """(n, F) pooled activations of ``layer`` for the set's model-input images."""
    split = model.split(layer)
    out = []
    with torch.inference_mode():
        for start in range(0, len(data), batch):
            x = torch.from_numpy(data.images[start: start + batch].astype(np.float32))[:, None]
            x = x.expand(-1, model.card.input.channels, -1, -1)
            out.append(pool_features(split.activation(x)[0], pooling).numpy())
    return np.concatenate(out).astype(np.float64)


def write_ood(package_dir: Path, fit_set: SliceSet, threshold_set: SliceSet, report_set: SliceSet,
              describe: dict[str, str], pooling: str = DEFAULT_POOLING, log: Callable[[str], None] = print,
              quantile: float = THRESHOLD_QUANTILE) -> dict[str, Any]:
    """Fit the statistics, set the threshold, write ``ood.npz`` and the card's ``ood``; returns the card object."""
    model = load_model(str(package_dir))
    layer = model.card.target_layer
    if not layer:
        raise ValueError(f"{package_dir}: the card has no explain.target_layer to take features from")
    mean, precision = fit(features(model, fit_set, layer, pooling))
    from inference.ood import OODStats

    stats = OODStats(mean, precision, 1.0, layer, pooling)
    threshold = threshold_for(stats.distances(features(model, threshold_set, layer, pooling)), quantile)
    report = stats.distances(features(model, report_set, layer, pooling))
    pass_rate = float((report <= threshold).mean())
    name, sha = write_stats(package_dir, mean, precision)
    fields = {
        "file": name, "sha256": sha, "layer": layer, "pooling": pooling, "threshold": round(threshold, 4),
        "held_out_pass_rate": round(pass_rate, 4),
        "notes": (f"Mahalanobis distance of the {layer} activation pooled per channel ({pooling}) to "
                  f"{len(fit_set)} training slices ({describe['fit']}); threshold: at least {quantile:.0%} "
                  f"of {len(threshold_set)} held-out slices ({describe['threshold']}) within it; pass rate "
                  f"{pass_rate:.1%} on {len(report_set)} further held-out slices ({describe['report']}). "
                  "Written by python -m inference.training.ood."),
    }
    add_to_card(package_dir, fields)
    log(f"[{model.card.name}] ood: threshold {threshold:.3f}, held-out pass rate {pass_rate:.3f}")
    return fields


def main(argv: list[str] | None = None) -> int:
    from inference.package import InputSpec, Window
    from inference.preprocess import Preprocessor
    from inference.training.dataset import build_set, default_cache_dir
    from inference.training.pipeline import phantom_code_digest
    from inference.training.recipes import QUICK, RECIPES

    parser = argparse.ArgumentParser(prog="python -m inference.training.ood", description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=Path("resources/models"), help="folder of the packages")
    parser.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="only these models")
    parser.add_argument("--pooling", default=DEFAULT_POOLING, choices=("mean", "mean_std"))
    parser.add_argument("--fit-phantoms", type=int, default=60, help="training phantoms to fit on (default 60)")
    parser.add_argument("--quantile", type=float, default=None,
                        help="share of validation slices within the threshold (default: the recipe's, "
                             f"{THRESHOLD_QUANTILE} unless it says otherwise)")
    parser.add_argument("--quick", action="store_true", help="the quick recipes (tests)")
    parser.add_argument("--cache", type=Path, default=None, help="phantom set cache folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipes = QUICK if args.quick else RECIPES
    cache = args.cache or default_cache_dir()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results = {}
    for name in args.only or sorted(recipes):
        r = recipes[name]
        pre = Preprocessor(InputSpec(size=r.size, channels=1, window=Window(*r.window), modalities=r.modalities))
        key = {"recipe": r.name, "generator": r.generator, "version": r.version, "phantom_code": phantom_code_digest()}
        fit_seeds = r.train_seeds[: args.fit_phantoms]
        sets = [build_set(f"{r.name}-{part}", key, seeds, r.make, pre, r.min_area_mm2, cache, log, args.workers)
                for part, seeds in (("train", fit_seeds), ("val", r.val_seeds), ("test", r.test_seeds))]
        describe = {"fit": f"phantom seeds {fit_seeds.start}-{fit_seeds.stop - 1}",
                    "threshold": f"validation seeds {r.val_seeds.start}-{r.val_seeds.stop - 1}",
                    "report": f"test seeds {r.test_seeds.start}-{r.test_seeds.stop - 1}"}
        results[name] = write_ood(args.models / name, sets[0], sets[1], sets[2], describe, args.pooling, log,
                                  args.quantile if args.quantile is not None else r.ood_quantile)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
