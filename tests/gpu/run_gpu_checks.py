"""One prepared accelerator check: correctness of Grad-CAM on the GPU, then timings against competitors.

    python tests/gpu/run_gpu_checks.py [--device cuda] [--wheels DIR] [--out DIR] [--quick]

1. Installs ``captum`` / ``grad-cam`` (pytorch-grad-cam) from ``--wheels DIR`` when given and missing
   (``pip install --no-index --find-links DIR``; no network needed). A competitor that is still
   missing is skipped, and the report says so.
2. Correctness: a DenseNet-121 (random weights, non-trivial BatchNorm statistics) through the
   `Runner` on the device (bf16 autocast, channels_last, CUDA-graph trunk at batch 1) against the
   same package on the CPU in float32: scores within 0.03, heatmap correlation >= 0.97, peak
   positions within one feature cell (bf16 tolerance); batch-1 (graphed) maps correlate >= 0.97
   with batched ones.
3. Timings, DenseNet-121 at 512 px, batch 32 and batch 1, one label: forward alone (bf16), our
   Grad-CAM (model-input tensor on the device -> maps), our full runner (host volume of 512 x 512
   slices -> native heatmaps on the host), Captum LayerGradCam and pytorch-grad-cam GradCAM (both
   under the same bf16 autocast where they allow it). Goals: >= 1,500 slices/s at batch 32, <= 4 ms
   per single slice.

``--quick`` (with ``--device cpu``) is a smoke test of this script on any machine: 64 px, small
batches, few repeats. Results print as a table and go to ``<out>/gpu_checks.json`` (``--out``, else
``$OUT`` when set).
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
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.architectures import DenseNet121  # noqa: E402
from inference.explain import normalize_maps  # noqa: E402
from inference.package import save_package  # noqa: E402
from inference.preprocess import Preprocessor  # noqa: E402
from inference.runner import Runner  # noqa: E402

COMPETITORS = {"captum": "captum", "pytorch_grad_cam": "grad-cam"}


def ensure_competitors(wheels: str | None) -> dict[str, str]:
    """Import each competitor, installing it from local wheels if needed; {module: status}."""
    status = {}
    for module, dist in COMPETITORS.items():
        try:
            importlib.import_module(module)
            status[module] = "installed"
            continue
        except ImportError:
            pass
        if wheels:
            cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels, "--no-deps", dist]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode == 0:
                try:
                    importlib.invalidate_caches()
                    importlib.import_module(module)
                    status[module] = f"installed from {wheels}"
                    continue
                except ImportError as exc:
                    status[module] = f"skipped: installed but import fails ({exc})"
                    continue
            status[module] = f"skipped: pip install from {wheels} failed ({proc.stderr.strip().splitlines()[-1:]})"
        else:
            status[module] = "skipped: not installed (pass --wheels DIR)"
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
        if status.get("captum", "").startswith("installed"):
            from captum.attr import LayerAttribution, LayerGradCam

            cam = LayerGradCam(eager, eager.features)

            def captum_step() -> None:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    a = cam.attribute(x, target=0, relu_attributions=True)
                LayerAttribution.interpolate(a.float(), (size, size), "bilinear")

            row["captum_layergradcam"] = timed(captum_step, device, repeat)
        if status.get("pytorch_grad_cam", "").startswith("installed"):
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

            gc = GradCAM(model=eager, target_layers=[eager.features])
            targets = [ClassifierOutputTarget(0)] * bs
            row["pytorch_grad_cam"] = timed(lambda: gc(input_tensor=x, targets=targets), device, max(3, repeat // 4))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--wheels", help="folder of wheels for the competitors (captum, grad-cam)")
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_checks.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; use --device cpu --quick for a smoke test", file=sys.stderr)
        return 2
    size, batches, repeat = (64, [4, 1], 3) if args.quick else (512, [32, 1], 30)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "torch": torch.__version__, "size": size}
    report["competitors"] = status = ensure_competitors(args.wheels)
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "densenet"
        model = make_model(size)
        save_package(model, {"name": "densenet121-check", "version": "0", "dims": 2, "labels": ["finding"],
                             "output": "sigmoid", "explain": {"target_layer": "features"},
                             "input": {"size": [size, size], "channels": 1, "window": {"center": 0.5, "width": 2}}},
                     package, torch.zeros(2, 1, size, size))
        report["correctness"] = correctness(package, device, size, 4 if args.quick else 8)
        report["timings_s_per_call"] = timings(model, package, device, size, batches, repeat, status)
    print(f"device: {report['device']}  torch {report['torch']}  {size} px")
    for name, st in status.items():
        print(f"  {name}: {st}")
    c = report["correctness"]
    print(f"correctness {'OK' if c['ok'] else 'FAILED'}: score diff {c['max_score_diff']:.4f}, heatmap corr "
          f"{c['min_heatmap_corr']:.4f} (max abs diff {c['max_heatmap_abs_diff']:.3f}), peak error "
          f"{c['max_peak_err_px']:.1f} px (cell {c['feature_cell_px']:.0f} px), batch-1 vs batch corr "
          f"{c['batch1_vs_batch_min_corr']:.4f}")
    for row in report["timings_s_per_call"]:
        bs = row["batch"]
        parts = [f"{k} {1000 * v / bs:.2f} ms/slice ({bs / v:,.0f}/s)" for k, v in row.items() if k != "batch"]
        print(f"batch {bs}: " + "; ".join(parts))
    goal32 = next((r for r in report["timings_s_per_call"] if r["batch"] == 32), None)
    goal1 = next((r for r in report["timings_s_per_call"] if r["batch"] == 1), None)
    if goal32 and goal1 and not args.quick:
        print(f"goals: {32 / goal32['ours_gradcam']:,.0f} slices/s with Grad-CAM at batch 32 (goal >= 1,500); "
              f"single slice {1000 * goal1['ours_gradcam']:.2f} ms (goal <= 4)")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_checks.json").write_text(json.dumps(report, indent=1))
    return 0 if c["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
