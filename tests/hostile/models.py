"""Hostile model packages: archives that would run code if torch read them as they are, bad cards,
wrong shapes. Each builder writes one package folder (a valid card whose sha256 matches: the attacker
writes the card) and returns it. Code that would run writes the file ``extra["marker"]`` names
(``MARKER`` below, relative to the case folder's parent): the tests assert it never appears.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile import case

MARKER = "PWNED"
FIELDS: dict[str, Any] = {
    "name": "hostile", "version": "1", "dims": 2, "labels": ["a", "b"], "output": "softmax",
    "input": {"size": [32, 32], "channels": 1, "window": {"center": 0, "width": 2}},
    "explain": {"target_layer": "features"},
}


class _Payload:
    """Unpickling this writes the marker file (what an attacker's ``__reduce__`` would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def marker_for(folder: Path) -> Path:
    """Where code from the case built in ``folder`` would write (beside the case folder)."""
    return folder.parent / MARKER


def evil_pickle(folder: Path) -> bytes:
    return pickle.dumps(_Payload(marker_for(folder)), protocol=2)


def evil_torch_save(folder: Path) -> bytes:
    """A ``torch.save``-shaped zip whose data.pkl runs code."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", evil_pickle(folder))
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/byteorder", "little")
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def good_pt2() -> bytes:
    """A small valid ``.pt2`` (DemoCNN exported by ``save_package``), built once per session."""
    import torch

    from inference.architectures import DemoCNN
    from inference.package import save_package

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_package(DemoCNN(1, 2, widths=(4, 8)).eval(), FIELDS, tmp, torch.zeros(2, 1, 32, 32))
        return (Path(tmp) / "model.pt2").read_bytes()


def write_package(folder: Path, weights: bytes, file: str = "model.pt2", fmt: str = "torch.export",
                  **fields: Any) -> Path:
    """A package folder with a card whose sha256 matches ``weights``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_bytes(weights)
    card = {"format": "radscope-model/1", **FIELDS, **fields,
            "weights": {"file": file, "format": fmt, "sha256": hashlib.sha256(weights).hexdigest()}}
    if fmt in ("state_dict", "safetensors"):
        card["weights"]["architecture"] = "demo-cnn"
    (folder / "radscope-model.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def rewrite_pt2(data: bytes, edit: Callable[[str, bytes], bytes | None], add: dict[str, bytes] | None = None) -> bytes:
    """``data`` with each member passed through ``edit(name, bytes)`` (None drops it) plus ``add``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the cases
        for info in src.infolist():
            body = edit(info.filename, src.read(info))
            if body is not None:
                dst.writestr(info.filename, body)
        for name, body in (add or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


def _edit_json(suffix: str, change: Callable[[dict[str, Any]], None]) -> Callable[[str, bytes], bytes]:
    def edit(name: str, body: bytes) -> bytes:
        if not name.endswith(suffix):
            return body
        doc = json.loads(body)
        change(doc)
        return json.dumps(doc).encode()

    return edit


def _pt2_case(name: str, member: str, mentions: tuple[str, ...] = ("refused",)) -> Callable[..., Any]:
    return case(f"model-{name}", "models", outcome="refused", mentions=(member, *mentions), member=member,
                marker=MARKER)


@_pt2_case("pt2-pickled-sample-inputs", "model/data/sample_inputs/model.pt", ("exec", "code execution"))
def pt2_pickled_sample_inputs(folder: Path) -> Path:
    """torch.export.load unpickles sample inputs with weights_only=False when weights_only fails."""
    evil = evil_torch_save(folder)
    data = rewrite_pt2(good_pt2(), lambda n, b: evil if n.endswith("data/sample_inputs/model.pt") else b)
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-bare-pickle-sample-inputs", "model/data/sample_inputs/model.pt", ("not a torch.save archive",))
def pt2_bare_pickle_sample_inputs(folder: Path) -> Path:
    evil = evil_pickle(folder)
    data = rewrite_pt2(good_pt2(), lambda n, b: evil if n.endswith("data/sample_inputs/model.pt") else b)
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-pickled-weight", "model/data/weights/model_weights_config.json", ("pickle",))
def pt2_pickled_weight(folder: Path) -> Path:
    """A weight marked ``use_pickle``: torch.load(weights_only=False) on the weight file."""
    def change(doc: dict[str, Any]) -> None:
        first = next(iter(doc["config"].values()))
        first["use_pickle"] = True

    evil = evil_torch_save(folder)
    cfg = _edit_json("model_weights_config.json", change)
    data = rewrite_pt2(good_pt2(), lambda n, b: evil if n.endswith("data/weights/weight_0") else cfg(n, b))
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-opaque-constant", "model/data/constants/opaque_obj_0", ("pickled object",))
def pt2_opaque_constant(folder: Path) -> Path:
    """An opaque-object constant: torch.export.load calls pickle.loads on it."""
    def change(doc: dict[str, Any]) -> None:
        doc["config"]["c"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}

    data = rewrite_pt2(good_pt2(), _edit_json("model_constants_config.json", change),
                       add={"model/data/constants/opaque_obj_0": evil_pickle(folder)})
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-legacy-pickled-weights", "model/data/weights/model.pt", ("pickled object",))
def pt2_legacy_pickled_weights(folder: Path) -> Path:
    data = rewrite_pt2(good_pt2(), lambda n, b: b, add={"model/data/weights/model.pt": evil_torch_save(folder)})
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-aotinductor-library", "model/data/aotinductor/model/model.so", ("shared library",))
def pt2_aotinductor_library(folder: Path) -> Path:
    data = rewrite_pt2(good_pt2(), lambda n, b: b, add={"model/data/aotinductor/model/model.so": b"\x7fELF" + bytes(64)})
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-sympy-eval", "model/models/model.json", ("shape expression",))
def pt2_sympy_eval(folder: Path) -> Path:
    """A symbolic shape torch parses with sympy.sympify (eval) that runs code."""
    code = f"__import__('builtins').exec(\"open({str(marker_for(folder))!r}, 'w')\")"
    sym = "Symbol('s77', positive=True, integer=True)"

    def change(doc: Any) -> None:
        stack, hits = [doc], 0
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("expr_str") == sym:
                    node["expr_str"] = f"{sym} if {code} is None else 0"
                    hits += 1
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        assert hits, "the exported program no longer has the symbolic batch this case edits"

    edit = _edit_json("models/model.json", change)
    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), edit))


@_pt2_case("pt2-guards-code", "model/models/model.json", ("guards_code",))
def pt2_guards_code(folder: Path) -> Path:
    """guards_code is turned into Python source and exec'd by ExportedProgram.module()."""
    def change(doc: dict[str, Any]) -> None:
        doc["guards_code"] = [f"__import__('builtins').exec(\"open({str(marker_for(folder))!r}, 'w')\") is None"]

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


@_pt2_case("pt2-python-target", "model/models/model.json", ("torch.os.system",))
def pt2_python_target(folder: Path) -> Path:
    """A node calling a Python function reachable from ``torch`` (would run at forward)."""
    def change(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


@_pt2_case("pt2-duplicate-member", "model/models/model.json", ("appears twice",))
def pt2_duplicate_member(folder: Path) -> Path:
    """Two members of one name: Python's zipfile and torch's reader may pick different ones."""
    with zipfile.ZipFile(io.BytesIO(good_pt2())) as zf:
        program = zf.read("model/models/model.json")
    data = rewrite_pt2(good_pt2(), lambda n, b: b, add={"model/models/model.json": program})
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-not-a-zip", "model.pt2", ("not a zip",))
def pt2_not_a_zip(folder: Path) -> Path:
    return write_package(folder / "pkg", evil_pickle(folder))


@functools.lru_cache(maxsize=1)
def good_torchscript() -> bytes:
    import torch

    from inference.architectures import DemoCNN

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(DemoCNN(1, 2, widths=(4, 8)).eval(), torch.zeros(1, 1, 32, 32)), buf)
    return buf.getvalue()


def _ts_root() -> str:
    with zipfile.ZipFile(io.BytesIO(good_torchscript())) as zf:
        return zf.namelist()[0].split("/")[0]


@case("model-torchscript-extra-pickle", "models", outcome="refused", mentions=("evil.pkl", "refused"),
      marker=MARKER)
def torchscript_extra_pickle(folder: Path) -> Path:
    data = rewrite_pt2(good_torchscript(), lambda n, b: b, add={f"{_ts_root()}/evil.pkl": evil_pickle(folder)})
    return write_package(folder / "pkg", data, file="model.ts", fmt="torchscript")


@case("model-torchscript-data-pkl-global", "models", outcome="refused", mentions=("data.pkl", "exec"),
      marker=MARKER)
def torchscript_data_pkl_global(folder: Path) -> Path:
    evil = evil_pickle(folder)
    data = rewrite_pt2(good_torchscript(), lambda n, b: evil if n.endswith("/data.pkl") else b)
    return write_package(folder / "pkg", data, file="model.ts", fmt="torchscript")


@case("model-state-dict-pickle", "models", outcome="refused", mentions=("model.pt", "weights_only"),
      marker=MARKER)
def state_dict_pickle(folder: Path) -> Path:
    buf = io.BytesIO()
    import torch

    torch.save({"w": _Payload(marker_for(folder))}, buf)
    return write_package(folder / "pkg", buf.getvalue(), file="model.pt", fmt="state_dict")


__all__ = ["FIELDS", "MARKER", "good_pt2", "marker_for", "rewrite_pt2", "write_package"]


# -- wrong shapes: the card says one thing, the weights another ----------------------------------------


def _exported(module: Any, channels: int, size: tuple[int, int], labels: list[str]) -> bytes:
    import torch

    from inference.package import save_package

    fields = {**FIELDS, "labels": labels, "input": {**FIELDS["input"], "channels": channels, "size": list(size)}}
    with tempfile.TemporaryDirectory() as tmp:
        save_package(module.eval(), fields, tmp, torch.zeros(2, channels, *size))
        return (Path(tmp) / "model.pt2").read_bytes()


@case("model-wrong-channels", "models", outcome="refused", mentions=("input.channels 1",), marker=MARKER)
def wrong_channels(folder: Path) -> Path:
    from inference.architectures import DemoCNN

    return write_package(folder / "pkg", _exported(DemoCNN(3, 2, widths=(4, 8)), 3, (32, 32), ["a", "b"]))


@case("model-wrong-label-count", "models", outcome="refused", mentions=("one score per label",), marker=MARKER)
def wrong_label_count(folder: Path) -> Path:
    from inference.architectures import DemoCNN

    return write_package(folder / "pkg", _exported(DemoCNN(1, 3, widths=(4, 8)), 1, (32, 32), ["a", "b", "c"]))


@case("model-wrong-input-size", "models", outcome="refused", mentions=("input.size 40x48",), marker=MARKER)
def wrong_input_size(folder: Path) -> Path:
    """A fully connected head fixes the input size; the card claims another."""
    from torch import nn

    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 32 * 32, 2))
    data = _exported(module, 1, (32, 32), ["a", "b"])
    return write_package(folder / "pkg", data, input={**FIELDS["input"], "size": [40, 48]},
                         explain={"target_layer": "0"})


# -- cards -----------------------------------------------------------------------------------------


def _card_folder(folder: Path, text: str | bytes) -> Path:
    pkg = write_package(folder / "pkg", good_pt2())
    card = pkg / "radscope-model.json"
    card.write_bytes(text.encode() if isinstance(text, str) else text)
    return pkg


@case("model-card-nested-100k", "models", outcome="refused", mentions=("nested",), marker=MARKER)
def card_nested(folder: Path) -> Path:
    pkg = write_package(folder / "pkg", good_pt2())
    doc = json.loads((pkg / "radscope-model.json").read_text())
    text = json.dumps(doc)[:-1] + ', "metrics": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    return _card_folder(folder, text)


@case("model-card-nested-100", "models", outcome="refused", mentions=("nested 10",), marker=MARKER)
def card_nested_parsable(folder: Path) -> Path:
    """Deep enough to be silly, shallow enough for json.loads: the depth limit (not recursion) refuses it."""
    pkg = write_package(folder / "pkg", good_pt2())
    doc = json.loads((pkg / "radscope-model.json").read_text())
    text = json.dumps(doc)[:-1] + ', "metrics": {"x": ' + "[" * 100 + "]" * 100 + "}}"
    return _card_folder(folder, text)


@case("model-card-huge", "models", outcome="refused", mentions=("larger than",), marker=MARKER,
      unbounded=True)
def card_huge(folder: Path) -> Path:
    pkg = write_package(folder / "pkg", good_pt2())
    card = pkg / "radscope-model.json"
    with open(card, "r+b") as fh:  # a sparse 3 GiB card: reading it whole would take 3 GiB of memory
        fh.truncate(3 * 2**30)
    return pkg


@case("model-card-not-json", "models", outcome="refused", mentions=("not valid json",), marker=MARKER)
def card_not_json(folder: Path) -> Path:
    return _card_folder(folder, b"\xff\xfe{not json")


@case("model-card-nan", "models", outcome="refused", mentions=("nan",), marker=MARKER)
def card_nan(folder: Path) -> Path:
    pkg = write_package(folder / "pkg", good_pt2())
    text = (pkg / "radscope-model.json").read_text().replace('"center": 0', '"center": NaN')
    return _card_folder(folder, text)


@case("model-weights-link-to-device", "models", outcome="refused", mentions=("not a regular file",), marker=MARKER,
      unbounded=True)
def weights_link_to_device(folder: Path) -> Path:
    """model.pt2 is a link to /dev/zero: reading it whole would never end."""
    pkg = write_package(folder / "pkg", good_pt2())
    (pkg / "model.pt2").unlink()
    (pkg / "model.pt2").symlink_to("/dev/zero")
    return pkg


@case("model-zip-weights-bomb", "models", outcome="refused", mentions=("would inflate",), marker=MARKER)
def zip_weights_bomb(folder: Path) -> Path:
    """A zipped package whose weights member inflates 1000-fold (64 MiB of zeros from about 64 KiB)."""
    card = json.loads((write_package(folder / "src", good_pt2()) / "radscope-model.json").read_text())
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/radscope-model.json", json.dumps(card))
        with zf.open("pkg/model.pt2", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(64):
                member.write(block)
    return path


@_pt2_case("pt2-empty-weight-huge-shape", "model/data/weights/model_weights_config.json", ("weight_0", "empty"))
def pt2_empty_weight_huge_shape(folder: Path) -> Path:
    """An empty weight member whose config claims 2**40 elements: torch.export.load would torch.zeros() it."""
    def change(doc: dict[str, Any]) -> None:
        first = next(iter(doc["config"].values()))
        assert first["path_name"] == "weight_0"
        first["tensor_meta"]["sizes"] = [{"as_int": 2**20}, {"as_int": 2**20}]

    cfg = _edit_json("model_weights_config.json", change)
    data = rewrite_pt2(good_pt2(), lambda n, b: b"" if n.endswith("data/weights/weight_0") else cfg(n, b))
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-from-file", "model/models/model.json", ("from_file",))
def pt2_from_file(folder: Path) -> Path:
    """A graph node calling aten.from_file (shared=True maps a file writable: a write primitive at inference)."""
    def change(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


@_pt2_case("pt2-debug-load-tensor", "model/models/model.json", ("debugprims.load_tensor",))
def pt2_debug_load_tensor(folder: Path) -> Path:
    def change(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.debugprims.load_tensor.default"

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


@case("model-torchscript-from-file", "models", outcome="refused", mentions=("code/", "from_file"), marker=MARKER)
def torchscript_from_file(folder: Path) -> Path:
    """TorchScript code that reads (or, shared, writes) a file through torch.from_file."""
    def edit(name: str, body: bytes) -> bytes:
        if name.endswith("code/__torch__/inference/architectures.py"):
            return body.replace(b"def forward(", b"def _unused(self) -> Tensor:\n    return torch.from_file(\"/etc/passwd\", True, 4)\n  def forward(", 1)
        return body

    return write_package(folder / "pkg", rewrite_pt2(good_torchscript(), edit), file="model.ts", fmt="torchscript")


@_pt2_case("pt2-operator-argument", "model/models/model.json", ("operator argument", "torch.os.system"))
def pt2_operator_argument(folder: Path) -> Path:
    """An operator passed as an argument (as higher-order ops take them) resolves to any attribute of torch."""
    def change(doc: dict[str, Any]) -> None:
        node = doc["graph_module"]["graph"]["nodes"][0]
        node["inputs"].append({"name": "op", "arg": {"as_operator": "torch.os.system"}, "kind": 2})

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


# -- what inference/pt2graph.py reads after the inspection ---------------------------------------------------------

def _weight_entry(doc: dict[str, Any], path: str) -> dict[str, Any]:
    (entry,) = [e for e in doc["config"].values() if e["path_name"] == path]
    return entry


@_pt2_case("pt2-weight-member-short", "weight_1", ("needs", "holds"))
def pt2_weight_member_short(folder: Path) -> Path:
    """A weight member shorter than its shape and strides say (torch would read past it or fail)."""
    data = rewrite_pt2(good_pt2(), lambda n, b: b[:8] if n.endswith("data/weights/weight_1") else b)
    return write_package(folder / "pkg", data)


@_pt2_case("pt2-weight-huge-sizes", "weight_1", ("elements",))
def pt2_weight_huge_sizes(folder: Path) -> Path:
    """A weight claiming 2**40 elements over a member of a few hundred bytes."""
    def change(doc: dict[str, Any]) -> None:
        meta = _weight_entry(doc, "weight_1")["tensor_meta"]
        meta["sizes"] = [{"as_int": 2**20}, {"as_int": 2**20}]
        meta["strides"] = [{"as_int": 2**20}, {"as_int": 1}]

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("model_weights_config.json", change)))


@_pt2_case("pt2-weight-zero-stride-repeat", "weight_1", ("elements", "repeating"))
def pt2_weight_zero_stride_repeat(folder: Path) -> Path:
    """Zero strides repeat a member's first element into 2**34 of them: the view fits its member, but the first
    use of the weight (BatchNorm folding, the forward pass) would allocate 64 GB."""
    def change(doc: dict[str, Any]) -> None:
        meta = _weight_entry(doc, "weight_1")["tensor_meta"]
        meta["sizes"] = [{"as_int": 2**17}, {"as_int": 2**17}]
        meta["strides"] = [{"as_int": 0}, {"as_int": 0}]

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("model_weights_config.json", change)))


@_pt2_case("pt2-weight-negative-stride", "model/data/weights/model_weights_config.json", ("negative strides",))
def pt2_weight_negative_stride(folder: Path) -> Path:
    """A negative stride walks backwards from the storage offset, out of the member."""
    def change(doc: dict[str, Any]) -> None:
        meta = _weight_entry(doc, "weight_1")["tensor_meta"]
        meta["strides"][0] = {"as_int": -4}

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("model_weights_config.json", change)))


@_pt2_case("pt2-unknown-operator", "model/models/model.json", ("no_such_op", "does not know"))
def pt2_unknown_operator(folder: Path) -> Path:
    def change(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.no_such_op.default"

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))


@_pt2_case("pt2-bad-json", "model/models/model.json", ("not valid JSON",))
def pt2_bad_json(folder: Path) -> Path:
    data = rewrite_pt2(good_pt2(), lambda n, b: b[: len(b) // 2] if n.endswith("models/model.json") else b)
    return write_package(folder / "pkg", data)


def _code_name(folder: Path) -> str:
    """A parameter name that torch.fx would paste into ``forward`` as ``getattr(self, "<name>")``: no dots (FX
    splits the path at them), the payload spelled with chr() so that it needs no quotes or dots either; it
    starts with ``0``, a real submodule of ``features``, so that the getattr before it succeeds."""
    code = f"open({str(marker_for(folder))!r}, 'w')"
    return '0"),exec(' + "+".join(f"chr({ord(c)})" for c in code) + '),("'


@_pt2_case("pt2-code-in-parameter-name", "model/data/weights/model_weights_config.json", ("not a module path",))
def pt2_code_in_parameter_name(folder: Path) -> Path:
    """A parameter renamed (in its config and the program's signature) to code: torch.export.load's
    ``module()`` writes it into the generated ``forward``, which runs it at the first call."""
    evil = "features." + _code_name(folder)

    def edit(name: str, body: bytes) -> bytes:
        if not name.endswith(("model_weights_config.json", "models/model.json")):
            return body
        doc = json.loads(body)
        if "config" in doc:
            first = next(iter(doc["config"]))
            doc["config"] = {(evil if k == first else k): v for k, v in doc["config"].items()}
        else:
            spec = doc["graph_module"]["signature"]["input_specs"][0]["parameter"]
            spec["parameter_name"] = evil
        return json.dumps(doc).encode()

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), edit))


@_pt2_case("pt2-code-in-value-name", "model/models/model.json", ("not an identifier",))
def pt2_code_in_value_name(folder: Path) -> Path:
    """A node's output named with a statement separator (FX names variables after values)."""
    def change(doc: dict[str, Any]) -> None:
        node = doc["graph_module"]["graph"]["nodes"][0]
        node["outputs"][0]["as_tensor"]["name"] = f"a;exec({_code_name(folder)!r});b"

    return write_package(folder / "pkg", rewrite_pt2(good_pt2(), _edit_json("models/model.json", change)))
