"""One prepared accelerator check: correctness of Grad-CAM on the GPU, then timings against competitors.

    python tests/gpu/run_gpu_checks.py --fetch-wheels build/gpu-wheels        # here, where pip reaches an index
    python3 tests/gpu/run_gpu_checks.py --device cuda --wheels build/gpu-wheels --out $OUT   # on the GPU box
    python tests/gpu/run_gpu_checks.py --device cpu --quick                    # smoke test anywhere

0. ``--fetch-wheels DIR`` (no checks): writes the pinned competitor wheels (`COMPETITOR_WHEELS`) into DIR,
   to be carried to the GPU machine, which has no network. grad-cam publishes only an sdist, so its
   wheel is built here (pure Python).
1. Prints the device (name, memory, torch and CUDA versions) at once. Imports ``captum`` and
   ``pytorch_grad_cam``; with ``--wheels DIR`` every wheel in DIR is first installed into a temporary
   folder (``pip install --no-index --no-deps --target``) put first on ``sys.path``. A competitor that
   is still missing or fails is skipped, and the report says why.
2. Correctness: a DenseNet-121 (random weights, non-trivial BatchNorm statistics) through the
   `Runner` on the device (bf16 autocast, channels_last, CUDA-graph trunk at batch 1) against the
   same package on the CPU in float32: scores within 0.03, heatmap correlation >= 0.97, peak
   positions within one feature cell (bf16 tolerance); batch-1 (graphed) maps correlate >= 0.97
   with batched ones. Exit code 1 when this fails.
3. Timings (median), DenseNet-121 at 512 px, batch 32 and batch 1, one label: forward alone (bf16
   autocast on CUDA: the reference), our Grad-CAM (model-input tensor on the device -> maps), our full
   runner (host volume of 512 x 512 slices -> native heatmaps on the host; at batch 1 this is the
   single-slice latency a viewer sees), Captum LayerGradCam (same bf16 autocast; called under
   ``torch.no_grad`` so its result does not keep the forward's autograd graph, see
   tests/benchmarks/bench_inference.py) and pytorch-grad-cam GradCAM (float32: it moves activations to
   numpy, which has no bf16). Goals (issue 4): >= 1,500 slices/s at batch 32, <= 4 ms per single slice.

``--quick`` (with ``--device cpu``) is a smoke test of this script on any machine: 64 px, small
batches, few repeats. Results print as they come and at the end as a table, and go to
``<out>/gpu_checks.json`` (``--out``, else ``$OUT`` when set), rewritten after every stage so that a run
cut short still leaves what it measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.architectures import DenseNet121  # noqa: E402
from inference.package import save_package  # noqa: E402
from inference.runner import Runner  # noqa: E402

COMPETITORS = ("captum", "pytorch_grad_cam")
COMPETITOR_WHEELS = ("captum==0.9.0", "ttach==0.0.3", "grad-cam==1.5.7")
"""Pinned wheels for the GPU machine: Captum (as in this project's environment), pytorch-grad-cam and its
one dependency that the machine's image lacks (the rest: torchvision, opencv, matplotlib, scikit-learn,
scipy, tqdm, Pillow are there)."""


def say(msg: str) -> None:
    print(msg, flush=True)


def fetch_wheels(dest: Path) -> int:
    """Download (or build, for sdist-only grad-cam) the pinned competitor wheels into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for spec in COMPETITOR_WHEELS:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest), spec]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            say(f"could not get {spec}: {proc.stderr.strip().splitlines()[-1:]}")
            return 1
    wheels = sorted(dest.glob("*.whl"))
    say(f"{len(wheels)} wheels in {dest} ({sum(w.stat().st_size for w in wheels) / 2**20:.1f} MB): "
        + ", ".join(w.name for w in wheels))
    return 0


def install_wheels(wheels: Path) -> str:
    """Install every wheel in ``wheels`` into a temporary folder first on ``sys.path``; a status line."""
    files = sorted(str(w) for w in wheels.glob("*.whl"))
    if not files:
        return f"no wheels in {wheels}"
    target = Path(tempfile.mkdtemp(prefix="gpu-check-site-"))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
           "--target", str(target), *files]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"pip install from {wheels} failed: {proc.stderr.strip().splitlines()[-1:]}"
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return f"installed {len(files)} wheels from {wheels}"


def ensure_competitors(wheels: str | None) -> dict[str, str]:
    """Import each competitor (after installing ``wheels`` if one is missing); {module: status}."""
    status: dict[str, str] = {}
    note = ""
    for module in COMPETITORS:
        for attempt in (0, 1):
            try:
                mod = importlib.import_module(module)
                version = getattr(mod, "__version__", "")
                if not version:
                    from importlib.metadata import version as dist_version

                    version = dist_version("grad-cam" if module == "pytorch_grad_cam" else module)
                status[module] = f"installed {version}" + (f" ({note})" if note else "")
                break
            except ImportError as exc:
                if attempt == 0 and wheels and not note:
                    note = install_wheels(Path(wheels))
                    continue
                status[module] = f"skipped: {exc}" + (f" ({note})" if note else " (pass --wheels DIR)")
                break
    return status


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeat: int, warmup: int = 3) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def attempt(fn: Callable[[], float], what: str) -> float | str:
    """``fn()``, or the error as text: one competitor failing must not lose the other figures."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        say(f"  {what} failed: {type(exc).__name__}: {exc}")
        return f"failed: {type(exc).__name__}: {str(exc)[:200]}"


def _per_slice(v: float | str, bs: int) -> str:
    return v if isinstance(v, str) else f"{1000 * v / bs:.2f} ms/slice ({bs / v:,.0f}/s)"


def make_model(size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = DenseNet121(1, 1).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False  # competitors' hooks need out-of-place activations
    return model


def correctness(package: Path, device: torch.device, size: int, n: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    vol = rng.normal(0, 0.1, (n, size, size)).astype(np.float32)
    for k in range(n):  # a bright blob somewhere on each slice
        cy, cx = rng.integers(size // 5, 4 * size // 5, 2)
        vol[k] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 20) ** 2)).astype(np.float32)
    cpu = list(Runner(package, device="cpu", batch_size=n).run(vol))[0]
    dev_runner = Runner(package, device=str(device), batch_size=n)
    dev = list(dev_runner.run(vol))[0]
    single = [list(dev_runner.run(vol[k:k + 1]))[0] for k in range(min(n, 4))]  # batch 1: CUDA-graph trunk
    a, b = cpu.heatmaps["finding"], dev.heatmaps["finding"]
    corr = [float(np.corrcoef(a[k].ravel(), b[k].ravel())[0, 1]) for k in range(n)]
    cell = size / 32  # DenseNet features are at stride 32
    peak_err = [float(np.abs(np.subtract(np.unravel_index(a[k].argmax(), a[k].shape),
                                         np.unravel_index(b[k].argmax(), b[k].shape))).max()) for k in range(n)]
    single_corr = min(float(np.corrcoef(s.heatmaps["finding"][0].ravel(), b[k].ravel())[0, 1])
                      for k, s in enumerate(single))
    out = {"max_score_diff": float(np.abs(cpu.scores - dev.scores).max()), "min_heatmap_corr": min(corr),
           "max_heatmap_abs_diff": float(np.abs(a - b).max()), "max_peak_err_px": max(peak_err),
           "feature_cell_px": cell, "batch1_vs_batch_min_corr": single_corr}
    out["ok"] = bool(out["max_score_diff"] <= 0.03 and out["min_heatmap_corr"] >= 0.97
                     and out["max_peak_err_px"] <= cell and single_corr >= 0.97)
    return out


def timings(model: torch.nn.Module, package: Path, device: torch.device, size: int, batches: list[int],
            repeat: int, status: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    eager = model.to(device).to(memory_format=torch.channels_last)
    bf16 = device.type == "cuda"
    for bs in batches:
        runner = Runner(package, device=str(device), batch_size=bs)
        x = torch.randn(bs, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
        host = np.random.default_rng(1).normal(0, 1, (bs, size, size)).astype(np.float32)
        row: dict[str, Any] = {"batch": bs}

        def forward() -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                runner.model(x)

        row["forward_bf16" if bf16 else "forward"] = timed(forward, device, repeat)
        row["ours_gradcam"] = timed(lambda: runner._step(x, "gradcam", [0]), device, repeat)
        row["ours_runner_host_to_host"] = timed(lambda: list(runner.run(host)), device, repeat)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if status.get("captum", "").startswith("installed"):
            def captum_timing() -> float:
                from captum.attr import LayerAttribution, LayerGradCam

                cam = LayerGradCam(eager, eager.features)

                def step() -> None:
                    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        a = cam.attribute(x, target=0, relu_attributions=True)
                    LayerAttribution.interpolate(a.float(), (size, size), "bilinear")

                return timed(step, device, repeat)

            row["captum_layergradcam"] = attempt(captum_timing, "Captum")
        if status.get("pytorch_grad_cam", "").startswith("installed"):
            def grad_cam_timing() -> float:
                from pytorch_grad_cam import GradCAM
                from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

                targets = [ClassifierOutputTarget(0)] * bs
                with GradCAM(model=eager, target_layers=[eager.features]) as cam:
                    return timed(lambda: cam(input_tensor=x, targets=targets), device, max(3, repeat // 4))

            row["pytorch_grad_cam"] = attempt(grad_cam_timing, "pytorch-grad-cam")
        say(f"  batch {bs}: " + "; ".join(f"{k} {_per_slice(v, bs)}" for k, v in row.items() if k != "batch"))
        rows.append(row)
    return rows


def describe_device(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {"device": device.type, "torch": torch.__version__}
    props = torch.cuda.get_device_properties(device)
    return {"device": torch.cuda.get_device_name(device), "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count, "torch": torch.__version__, "cuda": torch.version.cuda}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--wheels", help="folder of competitor wheels (made by --fetch-wheels) to install from")
    p.add_argument("--fetch-wheels", metavar="DIR", help="only write the pinned competitor wheels into DIR")
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_checks.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    args = p.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(Path(args.fetch_wheels))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; use --device cpu --quick for a smoke test", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    size, batches, repeat = (64, [4, 1], 3) if args.quick else (512, [32, 1], 30)
    report: dict[str, Any] = {**describe_device(device), "size": size}
    say("device: " + ", ".join(f"{k} {v}" for k, v in report.items()))
    out = Path(args.out) if args.out else None

    def save() -> None:
        report["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu_checks.json").write_text(json.dumps(report, indent=1))

    report["competitors"] = status = ensure_competitors(args.wheels)
    for name, st in status.items():
        say(f"  {name}: {st}")
    save()
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "densenet"
        model = make_model(size)
        save_package(model, {"name": "densenet121-check", "version": "0", "dims": 2, "labels": ["finding"],
                             "output": "sigmoid", "explain": {"target_layer": "features"},
                             "input": {"size": [size, size], "channels": 1, "window": {"center": 0.5, "width": 2}}},
                     package, torch.zeros(2, 1, size, size))
        say(f"package exported ({time.perf_counter() - t_start:.0f} s); correctness against the CPU in float32 ...")
        report["correctness"] = c = correctness(package, device, size, 4 if args.quick else 8)
        say(f"correctness {'OK' if c['ok'] else 'FAILED'}: score diff {c['max_score_diff']:.4f}, heatmap corr "
            f"{c['min_heatmap_corr']:.4f} (max abs diff {c['max_heatmap_abs_diff']:.3f}), peak error "
            f"{c['max_peak_err_px']:.1f} px (cell {c['feature_cell_px']:.0f} px), batch-1 vs batch corr "
            f"{c['batch1_vs_batch_min_corr']:.4f}")
        save()
        say(f"timings (median of {repeat}) ...")
        report["timings_s_per_call"] = rows = timings(model, package, device, size, batches, repeat, status)
        save()
    say(f"device: {report['device']}  torch {report['torch']}  {size} px  ({report['elapsed_s']:.0f} s)")
    for row in rows:
        bs = row["batch"]
        say(f"batch {bs}: " + "; ".join(f"{k} {_per_slice(v, bs)}" for k, v in row.items() if k != "batch"))
    by_batch = {r["batch"]: r for r in rows}
    if 32 in by_batch and 1 in by_batch and not args.quick:
        b32, b1 = by_batch[32], by_batch[1]
        fwd = b32[next(k for k in b32 if k.startswith("forward"))]
        say(f"goals: {32 / b32['ours_gradcam']:,.0f} slices/s with Grad-CAM at batch 32 (goal >= 1,500; "
            f"forward alone {32 / fwd:,.0f}/s); single slice {1000 * b1['ours_gradcam']:.2f} ms "
            f"on the device, {1000 * b1['ours_runner_host_to_host']:.2f} ms host slice to host heatmap (goal <= 4)")
    return 0 if c["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
