"""inference/pt2graph.py: an inspected ``.pt2`` built without ``torch.export.load`` gives what
``torch.export.load(...).module()`` gives (outputs, explanations, parameters, layer metadata), on the bundled
models and on test packages, at batch sizes 1 and 3; the viewer's model path imports none of torch.export's
heavy chain; what the reader does not build falls back to torch.export.load."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inference.archives import safe_export_archive
from inference.explain.methods import explain_batch, supported_methods
from inference.graph import forward_graph, module_paths, split_at
from inference.loading import LoadedModel, load_model
from inference.package import read_card
from inference.preprocess import Preprocessor
from inference.pt2graph import UnsupportedProgram, load_program
from phantom import ChestParams, make_chest_ct
from tests.hostile.models import write_package
from tests.support.packages import TINY_FIELDS, write_odd_package, write_tiny_package

MODELS = Path(__file__).resolve().parent.parent / "resources" / "models"
BUNDLED = ["chest-nodule-demo", "cxr-nodule-demo"]
NAMES = [*BUNDLED, "tiny", "odd", "resnet18"]
HEAVY = ("sympy", "mpmath", "networkx", "torch._dynamo", "torch._inductor", "torch._export.serde", "torch.onnx")


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("pt2graph")
    from inference.architectures import build
    from inference.package import save_package

    torch.manual_seed(1)
    resnet = build("resnet18", 1, 2)  # residual blocks: a split inside one carries its input past the cut
    save_package(resnet, {**TINY_FIELDS, "input": {**TINY_FIELDS["input"], "size": [64, 64]},
                          "explain": {"target_layer": "layer3.1.conv1"}}, tmp / "resnet18", torch.zeros(2, 1, 64, 64))
    return {**{n: MODELS / n for n in BUNDLED}, "tiny": write_tiny_package(tmp / "tiny"),
            "odd": write_odd_package(tmp / "odd"), "resnet18": tmp / "resnet18"}


@pytest.fixture(scope="module")
def ct_slices() -> np.ndarray:
    """Three axial slices of a phantom chest CT in HU (real anatomy, nodules, noise)."""
    ph = make_chest_ct(ChestParams(n_slices=12, matrix=(256, 256), slice_spacing=2.5, seed=424_242))
    return ph.hu[[3, 6, 9]].astype(np.float32)


def _inspected(package: Path) -> bytes:
    card = read_card(str(package))
    return safe_export_archive(card.read_weights(), str(package / card.weights.file))


def _inputs(package: Path, ct_slices: np.ndarray) -> torch.Tensor:
    """Real images for the package's card: the CT slices for CT-windowed models, a radiograph's pixels for
    the CXR model, both through the viewer's preprocessing."""
    card = read_card(str(package))
    images = ct_slices
    if package.name == "cxr-nodule-demo":
        from inference.training.recipes import cxr_params, radiograph_pixels
        from phantom.radiograph import make_chest_radiograph

        films = [make_chest_radiograph(make_chest_ct(cxr_params(seed)), seed=seed, pixel_spacing=0.7)
                 for seed in (7, 8, 9)]
        rows = min(f.image.shape[0] for f in films)
        cols = min(f.image.shape[1] for f in films)
        images = np.stack([radiograph_pixels(f.image[:rows, :cols]) for f in films])
    return Preprocessor(card.input).to_model(images)


def _pair(package: Path) -> tuple[nn.Module, nn.Module]:
    data = _inspected(package)
    return load_program(data, str(package)), torch.export.load(io.BytesIO(data)).module()


@pytest.mark.parametrize("name", NAMES)
def test_outputs_equal_torch_export_load_at_batch_1_and_3(name: str, packages: dict[str, Path],
                                                          ct_slices: np.ndarray) -> None:
    ours, ref = _pair(packages[name])
    x = _inputs(packages[name], ct_slices)
    assert x.shape[0] == 3 and x.std() > 0
    with torch.no_grad():
        for n in (1, 3):
            got, want = ours(x[:n]), ref(x[:n])
            assert got.shape == want.shape == (n, len(read_card(str(packages[name])).labels))
            torch.testing.assert_close(got, want, rtol=0, atol=0)
            torch.testing.assert_close(forward_graph(ours)(x[:n]), forward_graph(ref)(x[:n]))


@pytest.mark.parametrize("name", NAMES)
def test_attributes_graph_and_layer_metadata_match(name: str, packages: dict[str, Path]) -> None:
    ours, ref = _pair(packages[name])
    assert [(k, tuple(p.shape), p.requires_grad) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape), p.requires_grad) for k, p in ref.named_parameters()]
    for (k, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        assert isinstance(p, nn.Parameter) and torch.equal(p, q), k
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in ref.named_buffers()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (k, b), (_, c) in zip(ours.named_buffers(), ref.named_buffers()):
        assert b.dtype == c.dtype and torch.equal(b, c), k
    nodes = [n for n in ref.graph.nodes if n.target != "_guards_fn"]
    assert [(n.op, n.target) for n in ours.graph.nodes] == [(n.op, n.target) for n in nodes]
    for mine, theirs in zip(ours.graph.nodes, nodes):
        assert mine.meta.get("nn_module_stack") == theirs.meta.get("nn_module_stack"), mine.name
    assert module_paths(ours) == module_paths(ref)
    layer = read_card(str(packages[name])).target_layer
    assert layer and split_at(ours, layer).n_carried == split_at(ref, layer).n_carried
    if name == "resnet18":  # the layer sits inside a residual block: its input is carried past the cut
        assert split_at(ours, layer).n_carried == 1


def _reference_model(package: Path) -> LoadedModel:
    card = read_card(str(package))
    source = torch.export.load(io.BytesIO(_inspected(package))).module()
    return LoadedModel(card, forward_graph(source), source, "reference")


@pytest.mark.parametrize("name", NAMES)
def test_explanations_equal_for_every_method(name: str, packages: dict[str, Path], ct_slices: np.ndarray) -> None:
    model, ref = load_model(packages[name]), _reference_model(packages[name])
    x = _inputs(packages[name], ct_slices)[:2]
    methods = supported_methods(model)
    assert "gradcam" in methods and "integrated-gradients" in methods
    for method in methods:
        logits, maps = explain_batch(model, x, [0], method)
        want_logits, want_maps = explain_batch(ref, x, [0], method)
        torch.testing.assert_close(logits, want_logits)
        torch.testing.assert_close(maps, want_maps, msg=lambda m: f"{name} {method}: {m}")
        assert maps.abs().sum() > 0, (name, method)


def test_load_model_never_calls_torch_export_load(packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("torch.export.load was called")

    monkeypatch.setattr(torch.export, "load", refuse)
    for name in NAMES:
        model = load_model(packages[name])
        assert isinstance(model.source, torch.fx.GraphModule)


class _Counting(nn.Module):
    """Counts its calls in a buffer: a functionalized export returns the new count as a buffer-mutation output."""

    def __init__(self) -> None:
        super().__init__()
        self.features, self.head = nn.Conv2d(1, 4, 3), nn.Linear(4, 2)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.head(self.features(x).relu().mean((2, 3)))


class _NonFinite(nn.Module):
    """Masks with -inf, clamps at +inf, and turns one channel NaN: floats torch.export writes as strings."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).amax((2, 3))
        f = f.masked_fill(f < 0, float("-inf")).clamp(max=float("inf"))
        return torch.cat([f[:, :2].softmax(1), f[:, 2:] * float("nan")], 1)


def test_non_finite_float_arguments_build_as_torch_export_load_does(tmp_path: Path) -> None:
    torch.manual_seed(3)
    program = torch.export.export(_NonFinite().eval(), (torch.randn(2, 1, 16, 16),))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    data = _inspected(write_package(tmp_path / "nonfinite", buf.getvalue()))
    assert b'"NaN"' in data or b"NaN" in data  # the serializer's spelling is what this test is about
    ours, ref = load_program(data, "nonfinite"), torch.export.load(io.BytesIO(data)).module()
    x = torch.randn(2, 1, 16, 16)
    got, want = ours(x), ref(x)
    assert torch.isnan(got[:, 2]).all() and torch.isfinite(got[:, :2]).all()
    torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)


def test_what_the_reader_does_not_build_falls_back_to_torch_export_load(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    program = torch.export.export(_Counting().eval(), (torch.randn(2, 1, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},)).run_decompositions({})
    buf = io.BytesIO()
    torch.export.save(program, buf)
    package = write_package(tmp_path / "train", buf.getvalue())
    data = _inspected(package)
    with pytest.raises(UnsupportedProgram, match="buffer"):
        load_program(data, "train")
    with caplog.at_level(logging.DEBUG, logger="inference.loading"):
        model = load_model(package)
    assert any("torch.export.load" in r.getMessage() and "buffer" in r.getMessage() for r in caplog.records)
    ref = torch.export.load(io.BytesIO(data)).module()
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(model.source(x), ref(x))


_VIEWER_PATH = """
import json, sys
import numpy as np
from viewer.torch_import import import_torch
import_torch()
from inference.runner import Runner
from inference.probes.tap import layer_tree
runner = Runner(sys.argv[1], device="cpu")
vol = np.random.default_rng(0).normal(-600, 300, (2, 256, 256)).astype(np.float32)
for method in runner.methods:
    for _ in runner.run(vol, method=method):
        pass
rows = layer_tree(runner.model, runner.pre.to_model(vol[:1]))
from inference.probes.featurevis import FeatureVisParams, visualise_channel
from inference.probes.maps import layer_gradcam
from inference.probes.sanity_maps import sanity_check
visualise_channel(runner.model, "features.block3", 0, FeatureVisParams(steps=3))
layer_gradcam(runner.model, "features.block2", vol[:1])
sanity_check(runner.model, vol[0])
print(json.dumps({"methods": list(runner.methods), "layers": len(rows),
                  "heavy": sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[2].split(","))))}))
"""


def test_the_viewer_model_path_imports_no_sympy_dynamo_or_inductor() -> None:
    """Loading, inferring with every explanation method and the layer inspector's probes (layer tree, feature
    visualisation, layer Grad-CAM, sanity check) in a fresh process leave none of torch.export.load's chain
    in sys.modules (torch.optim and the FX interpreter's error formatting would import it too)."""
    proc = subprocess.run([sys.executable, "-c", _VIEWER_PATH, str(MODELS / "chest-nodule-demo"), ",".join(HEAVY)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(doc["methods"]) >= 5 and doc["layers"] > 5
    assert doc["heavy"] == [], doc["heavy"]


def test_the_check_itself_sees_torch_export_loads_chain(tmp_path: Path) -> None:
    """The module names above are what torch.export.load really imports (so the test above can fail)."""
    inspected = tmp_path / "model.pt2"
    inspected.write_bytes(_inspected(MODELS / "chest-nodule-demo"))
    code = ("import io, sys, torch; torch.export.load(sys.argv[1]).module(); "
            "print(','.join(sorted({m for m in sys.modules if m.startswith(tuple(sys.argv[2].split(',')))})))")
    proc = subprocess.run([sys.executable, "-c", code, str(inspected), ",".join(HEAVY)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = proc.stdout.strip().split(",")
    assert "sympy" in loaded and any(m.startswith("torch._dynamo") for m in loaded)
