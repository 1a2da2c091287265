"""``radscope models [--json]``: list the installed model packages (bundled + user folder).

Bad packages are listed with their error; the exit code is 0 unless no valid package is installed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _folders() -> list[tuple[str, Path]]:
    from viewer import paths

    return [("bundled", paths.resources_dir() / "models"), ("user", paths.subdir("models"))]


def listing() -> dict[str, Any]:
    """``{"models": [...], "errors": [{"path", "error"}]}`` for the installed packages."""
    from inference.registry import find_packages

    models, errors = [], []
    for origin, folder in _folders():
        for entry in find_packages([folder]):
            if entry.card is None:
                errors.append({"path": str(entry.path), "error": entry.error or ""})
                continue
            c = entry.card
            models.append({
                "name": c.name, "version": c.version, "origin": origin, "path": str(entry.path),
                "labels": list(c.labels), "output": c.output, "modalities": list(c.input.modalities),
                "input_size": list(c.input.size), "format": c.weights.format, "sha256": c.weights.sha256,
                "target_layer": c.target_layer, "description": c.description, "intended_use": c.intended_use,
                "license": c.license, "metrics": c.metrics,
            })
    return {"models": models, "errors": errors}


def run(args: argparse.Namespace) -> int:
    doc = listing()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        if not doc["models"]:
            print("no model packages installed")
        for m in doc["models"]:
            mods = ", ".join(m["modalities"]) or "any modality"
            print(f"{m['name']} {m['version']}  [{m['origin']}]  labels: {', '.join(m['labels'])}  "
                  f"({mods}; {m['format']})  {m['path']}")
        for e in doc["errors"]:
            print(f"BAD {e['path']}: {e['error']}")
    return 0 if doc["models"] else 1
