"""``radscope infer PATH ... --out DIR``: run a model over series, write scores.json and heatmaps.

Per stack: ``DIR/<series_uid>/scores.json`` and one ``heatmap_<label>.nii.gz`` per label (float32 in
[0, 1]) on exactly the geometry ``radscope convert`` writes (tilted volumes resampled the same way).
Without ``--series`` every stack found is inferred; a series split into several stacks writes the
extra ones under their stack ids. Without ``--model`` each series gets the installed model offered
for its modality. Results are cached under ``RADSCOPE_HOME/cache`` by (stack, model sha256, method).
Slices reach the model as :func:`viewer.ai.model_input.model_input` gives them (MONOCHROME1 inverted
over its stored range, as in the viewer). A series no installed model is offered for is skipped with a
message. Progress goes to stderr.
Exit codes: 0 written; 1 no usable series; 2 bad model or method, or no model for any series.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from inference.runner import Runner
    from viewer.dicom import Volume


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files, folders, .zip archives or DICOMDIRs")
    parser.add_argument("--model", metavar="NAME|PATH", help="installed model name or package path "
                        "(default: the installed model offered for each series' modality)")
    parser.add_argument("--series", metavar="UID", help="only this series UID (its largest stack) or stack id")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--explain", metavar="METHOD", default="default",
                        help="gradcam, gradcam++, layercam, hirescam, integrated-gradients or none "
                             "(default: the model's first supported method)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="slices per batch (default: from the device)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the results cache")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _say(msg: str) -> None:
    print(f"radscope infer: {msg}", file=sys.stderr, flush=True)


def safe_label(label: str) -> str:
    """A label as it appears in ``heatmap_<label>.nii.gz``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "label"


def write_heatmap(vol: Volume, heat: np.ndarray, path: Path) -> None:
    """``heat`` (k, j, i) as float32 NIfTI on the geometry ``radscope convert`` gives ``vol``."""
    import SimpleITK as sitk

    from viewer.dicom import Volume
    from viewer.dicom.writers import orthogonal_volume

    hv = orthogonal_volume(Volume(array=heat.astype(np.float32), origin=vol.origin, spacing=vol.spacing,
                                  direction=vol.direction, sop_instance_uids=list(vol.sop_instance_uids)))
    img = sitk.GetImageFromArray(np.clip(hv.array, 0.0, 1.0).astype(np.float32))
    img.SetOrigin(tuple(float(v) for v in hv.origin))
    img.SetSpacing(tuple(float(v) for v in hv.spacing))
    img.SetDirection(tuple(float(v) for v in hv.direction.reshape(-1)))
    sitk.WriteImage(img, str(path), useCompression=True)


def _infer_stack(runner: Runner, vol: Volume, method: str, cache_key: str | None, label: str
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], str, float, bool]:
    """Scores (k, L), heatmaps {label: (k, j, i)}, device, seconds, whether the cache answered."""
    from inference.cache import ResultCache
    from viewer import paths
    from viewer.ai.model_input import model_input

    cache = ResultCache(paths.subdir("cache")) if cache_key else None
    sha = runner.model.sha256
    if cache is not None and cache_key is not None:
        hit = cache.get(cache_key, sha, method)
        if hit is not None and len(hit.indices) == vol.shape[0]:
            _say(f"{label}: results from the cache")
            return hit.scores, hit.heatmaps, str(hit.meta.get("device", "cache")), 0.0, True
    k = vol.shape[0]
    scores = np.zeros((k, len(runner.card.labels)), dtype=np.float32)
    heat = {name: np.zeros(vol.shape, dtype=np.float32) for name in runner.card.labels} if method != "none" else {}
    t0 = time.perf_counter()
    device = str(runner.device)
    for res in runner.run(model_input(vol), method=method, progress=lambda e: _say(f"{label}: {e.message}")):
        idx = list(res.indices)
        scores[idx] = res.scores
        for name, maps in res.heatmaps.items():
            heat[name][idx] = maps
        device = res.device
    seconds = time.perf_counter() - t0
    if cache is not None and cache_key is not None:
        cache.put(cache_key, sha, method, runner.card.labels, list(range(k)), scores, heat, {"device": device})
    return scores, heat, device, seconds, False


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    from inference.cache import stack_key
    from inference.package import ModelPackageError
    from inference.registry import choose_package, find_packages
    from viewer import paths
    from viewer.dicom import DicomFileError, load_volume, scan

    if args.batch_size is not None and args.batch_size < 1:
        _say("--batch-size must be at least 1")
        return 2
    result = scan(args.paths)
    for err in result.errors:
        _say(f"skipped {err.path}: {err.error}")
    if args.series:
        stack = result.find(args.series)
        stacks = [stack] if stack is not None else []
    else:
        stacks = list(result.stacks)
    if not stacks:
        _say(f"no {'series ' + args.series if args.series else 'image series'} found")
        return 1
    entries = find_packages([paths.resources_dir() / "models", paths.subdir("models")])
    runners: dict[str, Runner] = {}
    out_root = Path(args.out)
    written = no_model = 0
    for stack in stacks:
        label = stack.stack_id
        try:
            card = choose_package(entries, args.model, stack.info.modality)
        except ModelPackageError as exc:
            if args.model:  # the model asked for is unusable: nothing else can run
                _say(str(exc))
                return 2
            _say(f"{label}: {exc}; skipped")
            no_model += 1
            continue
        key = f"{card.source}:{card.root_in_zip}"
        t_model = time.perf_counter()
        if key not in runners:
            from inference.runner import Runner

            try:
                runners[key] = Runner(card, device=args.device, batch_size=args.batch_size)
            except (ModelPackageError, ValueError) as exc:
                _say(str(exc))
                return 2
            _say(f"model {card.name} {card.version} on {runners[key].device}")
        runner = runners[key]
        model_s = time.perf_counter() - t_model
        method = "none" if args.explain == "none" else (runner.methods[0] if args.explain == "default" else args.explain)
        if method != "none" and method not in runner.methods:
            _say(f"--explain {method} is not available for {card.name} ({card.weights.format}); "
                 f"choose one of {', '.join(runner.methods)} or none")
            return 2
        t_load = time.perf_counter()
        try:
            vol = load_volume(stack)
        except DicomFileError as exc:
            _say(f"{label}: {exc}")
            continue
        if vol.is_color:
            _say(f"{label}: colour images are not supported by the models; skipped")
            continue
        load_s = time.perf_counter() - t_load
        cache_key = None if args.no_cache else stack_key(stack.stack_id, vol.sop_instance_uids)
        scores, heat, device, infer_s, cached = _infer_stack(runner, vol, method, cache_key, label)
        t_write = time.perf_counter()
        folder = out_root / (stack.info.series_uid if stack.stack_id == stack.info.series_uid or args.series
                             else stack.stack_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, maps in heat.items():
            write_heatmap(vol, maps, folder / f"heatmap_{safe_label(name)}.nii.gz")
        doc: dict[str, Any] = {
            "model": {"name": card.name, "version": card.version, "sha256": runner.model.sha256},
            "method": method,
            "device": device,
            "labels": list(card.labels),
            "series_uid": stack.info.series_uid,
            "stack_id": stack.stack_id,
            "modality": stack.info.modality,
            "cached": cached,
            "monochrome1_inverted": bool(vol.info.monochrome1),
            "slices": [{"index": k, "sop_instance_uid": vol.sop_instance_uids[k],
                        "scores": {name: round(float(scores[k, j]), 6) for j, name in enumerate(card.labels)}}
                       for k in range(vol.shape[0])],
            "timing_s": {"load_model": round(model_s, 4), "load_volume": round(load_s, 4),
                         "inference": round(infer_s, 4), "write": 0.0, "total": 0.0},
        }
        doc["timing_s"]["write"] = round(time.perf_counter() - t_write, 4)
        doc["timing_s"]["total"] = round(time.perf_counter() - t_start, 4)
        (folder / "scores.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        _say(f"{label}: wrote {folder} ({vol.shape[0]} slices, {len(heat)} heatmaps)")
        written += 1
    if written:
        return 0
    return 2 if no_model else 1
