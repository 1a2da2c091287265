"""Train RadScope's bundled demo models from synthetic phantoms.

    python -m inference.training [--quick] [--out resources/models] [--cache DIR] [--only NAME ...]
                                 [--workers N] [--threads N]

Writes one package per model (``model.pt2`` + ``radscope-model.json``) under ``--out``; fixed seeds
make every run reproducible. Generated phantom sets are cached (``--cache``; default
``$RADSCOPE_HOME/cache/demo-training`` or the system temp dir), never in git. ``--quick`` trains
tiny versions on a few small phantoms for one epoch (seconds; for tests and smoke checks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from inference.training.dataset import default_cache_dir
from inference.training.pipeline import run_recipe
from inference.training.recipes import QUICK, RECIPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.training", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch (seconds)")
    parser.add_argument("--out", type=Path, default=Path("resources/models"), help="where packages go")
    parser.add_argument("--cache", type=Path, default=None, help="phantom set cache folder")
    parser.add_argument("--no-cache", action="store_true", help="generate every phantom afresh")
    parser.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="train only these models")
    parser.add_argument("--workers", type=int, default=2, help="processes generating phantoms (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    recipes = QUICK if args.quick else RECIPES
    cache = None if args.no_cache else (args.cache or default_cache_dir())
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    summaries = []
    for name in args.only or sorted(recipes):
        _, summary = run_recipe(recipes[name], args.out, cache, log, args.workers)
        summaries.append(summary)
    total = time.perf_counter() - t0
    print(json.dumps({"total_seconds": round(total, 1), "models": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
