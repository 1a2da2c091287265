"""Build the runnable module of an inspected ``.pt2`` exported program without ``torch.export.load``.

``torch.export.load`` imports ``torch._export.serde.serialize``, which pulls sympy, networkx,
``torch._dynamo`` and ``torch._inductor`` (about 95 MB resident for a 1 MB model) only to rebuild
symbolic shapes that running the graph never needs. :func:`load_program` reads what
:func:`inference.archives.safe_export_archive` has already inspected (the program JSON
``models/<name>.json`` and the raw weight/constant members with their payload configs) and builds the
``torch.fx.GraphModule`` that ``torch.export.load(...).module()`` gives: one ``call_function`` node per
serialized node calling ``torch.ops.<ns>.<op>.<overload>`` (``operator.getitem`` for multi-output
nodes), parameters, buffers and tensor constants as attributes at their module paths (get_attr nodes
in input order), each node's ``nn_module_stack`` metadata (what :func:`inference.graph.split_at` cuts
at), and the user-facing output structure. Symbolic dimensions need nothing here: their values are
``aten.sym_size`` nodes computed from the real input at run time.

What this reader does not implement (higher-order operators with subgraphs, custom objects, mutated
buffers or inputs, symbolic or non-tensor user inputs, nested input/output structures, other byte
orders) raises :class:`UnsupportedProgram`; the caller then falls back to ``torch.export.load`` on the
same inspected archive. Anything malformed or inconsistent (weights that do not fit their members,
negative strides, unknown dtypes or operators, names that are not identifiers) raises
:class:`inference.archives.ArchiveRefusedError` naming the archive and the member or node.
"""

from __future__ import annotations

import io
import json
import keyword
import math
import operator
import re
import sys
import zipfile
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from inference.archives import MAX_JSON_BYTES, ArchiveRefusedError

_NON_FINITE = ("NaN", "Infinity", "-Infinity")
"""How torch.export's serializer writes non-finite floats (masking with -inf is common; NaN is a value too)."""


class UnsupportedProgram(Exception):
    """The program uses something this reader does not build; ``torch.export.load`` may."""


# ScalarType numbers of torch/_export/serde/schema.py
DTYPES: dict[int, torch.dtype] = {
    1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16,
    7: torch.float32, 8: torch.float64, 9: torch.complex32, 10: torch.complex64, 11: torch.complex128,
    12: torch.bool, 13: torch.bfloat16, 28: torch.uint16, 29: torch.float8_e4m3fn, 30: torch.float8_e5m2,
    31: torch.float8_e4m3fnuz, 32: torch.float8_e5m2fnuz, 33: torch.float8_e8m0fnu, 34: torch.uint32,
    35: torch.uint64,
}
_LAYOUTS: dict[int, torch.layout] = {7: torch.strided}
_MEMORY_FORMATS: dict[int, torch.memory_format] = {
    1: torch.contiguous_format, 2: torch.channels_last, 3: torch.channels_last_3d, 4: torch.preserve_format}
_SYM_OPS: dict[str, Callable[..., Any]] = {
    **{f"_operator.{n}": getattr(operator, n) for n in
       "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ lshift rshift".split()},
    **{f"torch.{n}": getattr(torch, n) for n in "sym_not sym_int sym_float sym_ite sym_max sym_min sym_sqrt".split()},
    "math.trunc": math.trunc,
}
"""Targets torch serializes as plain functions of symbolic values (arguments in order)."""
_POSITIONAL, _KEYWORD = 1, 2  # ArgumentKind
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FQN = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
MAX_DIM = 2**40
"""Largest size or stride taken from a tensor's metadata (the member's length is the real bound)."""


class _Reader:
    """One program of one archive: ``where`` names the archive in messages."""

    def __init__(self, zf: zipfile.ZipFile, root: str, name: str, where: str) -> None:
        self.zf, self.root, self.name, self.where = zf, root, name, where
        self.program = f"member {root}/models/{name}.json"
        self.nodes: dict[str, fx.Node] = {}
        self.graph = fx.Graph()

    # -- members -------------------------------------------------------------------------------
    def refuse(self, what: str) -> ArchiveRefusedError:
        return ArchiveRefusedError(f"{self.where}: {what}; refused")

    def json(self, rel: str) -> Any:
        path = f"{self.root}/{rel}"
        try:
            info = self.zf.getinfo(path)
        except KeyError:
            raise self.refuse(f"member {path} is missing") from None
        if info.file_size > MAX_JSON_BYTES:
            raise self.refuse(f"member {path} is {info.file_size} bytes")
        try:
            return json.loads(self.zf.read(info).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.refuse(f"member {path} is not valid JSON ({str(exc)[:200]})") from None

    def payloads(self, kind: str) -> dict[str, torch.Tensor]:
        """{fqn: tensor} of ``data/weights`` (``kind`` "weights") or ``data/constants``; members that
        several entries name are read once and shared (aliasing is kept, as torch keeps it)."""
        folder = f"data/{kind}"
        member = f"{folder}/{self.name}_{kind}_config.json"
        doc = self.json(member)
        config = doc.get("config") if isinstance(doc, dict) else None
        if not isinstance(config, dict):
            raise self.refuse(f"member {self.root}/{member} is not a payload config")
        flat: dict[str, torch.Tensor] = {}
        out: dict[str, torch.Tensor] = {}
        for fqn, meta in config.items():
            where = f"member {self.root}/{member}: {kind[:-1]} {str(fqn)[:80]!r}"
            if not isinstance(meta, dict) or not isinstance(meta.get("tensor_meta"), dict) or meta.get("use_pickle"):
                raise self.refuse(f"{where} is not a plain tensor")
            path = meta.get("path_name")
            if not isinstance(path, str) or not re.fullmatch(r"(weight|tensor)_\d+", path):
                raise self.refuse(f"{where} names member {str(path)[:60]!r}")
            tm = meta["tensor_meta"]
            dtype = DTYPES.get(tm.get("dtype")) if isinstance(tm.get("dtype"), int) else None
            if dtype is None:
                raise self.refuse(f"{where} has unknown dtype {str(tm.get('dtype'))[:20]}")
            if tm.get("layout", 7) not in _LAYOUTS:
                raise UnsupportedProgram(f"{where} has layout {tm.get('layout')}")
            sizes = self._ints(tm.get("sizes"), f"{where} sizes")
            strides = self._ints(tm.get("strides"), f"{where} strides")
            offset = self._ints([tm.get("storage_offset")], f"{where} storage offset")[0]
            if len(strides) != len(sizes):
                raise self.refuse(f"{where} has {len(sizes)} sizes but {len(strides)} strides")
            if path not in flat:
                flat[path] = self._member_tensor(f"{folder}/{path}", dtype, where)
            storage = flat[path]
            if storage.dtype != dtype:
                raise self.refuse(f"{where} reads member {path} as {dtype}, another entry as {storage.dtype}")
            need = 0 if 0 in sizes else offset + sum((s - 1) * st for s, st in zip(sizes, strides)) + 1
            if need > storage.numel():
                raise self.refuse(f"{where} needs {need} elements of {dtype} from member {path}, which holds "
                                  f"{storage.numel()}")
            tensor = storage.as_strided(sizes, strides, offset) if need else torch.zeros(sizes, dtype=dtype)
            if meta.get("is_param"):
                tensor = nn.Parameter(tensor, requires_grad=bool(tm.get("requires_grad")))
            out[str(fqn)] = tensor
        return out

    def _ints(self, raw: Any, what: str) -> list[int]:
        if not isinstance(raw, list) or len(raw) > 64:
            raise self.refuse(f"{what} are not a list of integers")
        vals = [d.get("as_int") if isinstance(d, dict) else None for d in raw]
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_DIM for v in vals):
            raise self.refuse(f"{what} {str(raw)[:80]} are not plain integers in 0..2**40 (negative strides and "
                              "symbolic weight shapes are not accepted)")
        return vals  # type: ignore[return-value]

    def _member_tensor(self, rel: str, dtype: torch.dtype, where: str) -> torch.Tensor:
        path = f"{self.root}/{rel}"
        try:
            info = self.zf.getinfo(path)
        except KeyError:
            raise self.refuse(f"{where} is stored in {path}, which the archive lacks") from None
        size = torch.empty((), dtype=dtype).element_size()
        if info.file_size % size:
            raise self.refuse(f"member {path} holds {info.file_size} bytes, not a whole number of {dtype}")
        raw = torch.empty(info.file_size, dtype=torch.uint8)  # torch's own (aligned) allocation, filled in place
        view, done = memoryview(raw.numpy().data), 0
        with self.zf.open(info) as member:  # a ZipExtFile: it has readinto
            while done < info.file_size:
                n = member.readinto(view[done:])  # type: ignore[attr-defined]
                if not n:
                    raise self.refuse(f"member {path} ends after {done} of its {info.file_size} bytes")
                done += n
        return raw.view(dtype)

    # -- graph ---------------------------------------------------------------------------------
    def node(self, name: Any) -> fx.Node:
        if not isinstance(name, str) or name not in self.nodes:
            raise self.refuse(f"{self.program} uses value {str(name)[:80]!r} before defining it")
        return self.nodes[name]

    def define(self, name: Any, node: fx.Node) -> None:
        if not isinstance(name, str) or name in self.nodes:
            raise self.refuse(f"{self.program} defines value {str(name)[:80]!r} twice or without a name")
        self.nodes[name] = node

    def argument(self, arg: Any) -> Any:
        """One serialized argument (a one-key object) as the value an FX node holds."""
        if not isinstance(arg, dict) or len(arg) != 1:
            raise self.refuse(f"{self.program}: argument {str(arg)[:80]} is not a serialized argument")
        ((kind, v),) = arg.items()
        if kind == "as_none":
            return None
        if kind == "as_tensor":
            return self.node(v.get("name") if isinstance(v, dict) else None)
        if kind == "as_float" and v in _NON_FINITE:  # torch.export writes these floats as strings
            return float(v)
        if kind in ("as_int", "as_float", "as_bool", "as_string"):
            want: dict[str, type | tuple[type, ...]] = {"as_int": int, "as_float": (float, int), "as_bool": bool,
                                                        "as_string": str}
            if not isinstance(v, want[kind]) or (kind == "as_int" and isinstance(v, bool)):
                raise self.refuse(f"{self.program}: argument {kind} holds {str(v)[:40]}")
            return float(v) if kind == "as_float" else v  # type: ignore[arg-type]
        if kind in ("as_ints", "as_floats", "as_bools", "as_strings"):
            if not isinstance(v, list):
                raise self.refuse(f"{self.program}: argument {kind} is not a list")
            return [self.argument({kind[:-1]: x}) for x in v]
        if kind == "as_scalar_type":
            return self._enum(DTYPES, v, "dtype")
        if kind == "as_memory_format":
            return self._enum(_MEMORY_FORMATS, v, "memory format")
        if kind == "as_layout":
            return self._enum(_LAYOUTS, v, "layout")
        if kind == "as_device":
            if not isinstance(v, dict) or v.get("type") not in ("cpu", "cuda", "mps", "meta"):
                raise UnsupportedProgram(f"device argument {str(v)[:60]}")
            index = v.get("index")
            return torch.device(v["type"], index) if isinstance(index, int) else torch.device(v["type"])
        if kind in ("as_sym_int", "as_sym_float", "as_sym_bool"):
            return self._sym(v, kind)
        if kind in ("as_sym_ints", "as_sym_floats", "as_sym_bools"):
            if not isinstance(v, list):
                raise self.refuse(f"{self.program}: argument {kind} is not a list")
            return [self._sym(x, kind[:-1]) for x in v]
        if kind in ("as_tensors", "as_optional_tensors"):
            if not isinstance(v, list):
                raise self.refuse(f"{self.program}: argument {kind} is not a list")
            if kind == "as_tensors":
                return [self.argument({"as_tensor": x}) for x in v]
            return [self.argument(x) for x in v]
        if kind == "as_complex" and isinstance(v, dict):
            return complex(float(v.get("real", 0.0)), float(v.get("imag", 0.0)))
        raise UnsupportedProgram(f"argument kind {kind}")

    def _enum(self, table: dict[int, Any], v: Any, what: str) -> Any:
        if not isinstance(v, int) or v not in table:
            raise self.refuse(f"{self.program}: unknown {what} {str(v)[:20]}")
        return table[v]

    def _sym(self, v: Any, kind: str) -> Any:
        literal = {"as_sym_int": "as_int", "as_sym_float": "as_float", "as_sym_bool": "as_bool"}[kind]
        if isinstance(v, dict) and len(v) == 1 and "as_name" in v:
            return self.node(v["as_name"])
        if isinstance(v, dict) and len(v) == 1 and literal in v:
            return self.argument({literal: v[literal]})
        raise self.refuse(f"{self.program}: symbolic argument {str(v)[:80]} is neither a name nor a literal")

    def target(self, name: Any, where: str) -> Callable[..., Any]:
        if not isinstance(name, str):
            raise self.refuse(f"{where} has no operator")
        if name in _SYM_OPS:
            return _SYM_OPS[name]
        parts = name.split(".")
        if parts[:2] == ["torch", "ops"] and len(parts) == 5 and parts[2] in ("aten", "prims"):
            try:
                op = getattr(getattr(getattr(torch.ops, parts[2]), parts[3]), parts[4])
            except (AttributeError, RuntimeError):
                raise self.refuse(f"{where} calls {name[:80]!r}, which this torch does not know") from None
            if isinstance(op, torch._ops.OpOverload):
                return op
        raise UnsupportedProgram(f"{where} calls {name[:80]}")

    def call_args(self, op: Callable[..., Any], inputs: Any, where: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments as torch's deserializer orders them (by the op's schema)."""
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "arg" in i for i in inputs):
            raise self.refuse(f"{where} has malformed inputs")
        if not isinstance(op, torch._ops.OpOverload):
            return tuple(self.argument(i["arg"]) for i in inputs), {}
        actual = {i.get("name"): self.argument(i["arg"]) for i in inputs}
        kinds = {i.get("name"): i.get("kind") for i in inputs}
        schema = {a.name for a in op._schema.arguments}
        unknown = [n for n in actual if n not in schema]
        if unknown:
            raise self.refuse(f"{where} passes {str(unknown[0])[:40]!r}, which {op} does not take")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for a in op._schema.arguments:
            if a.name in actual:
                if kinds[a.name] == _POSITIONAL:
                    args.append(actual[a.name])
                    continue
                if kinds[a.name] == _KEYWORD and not keyword.iskeyword(a.name):
                    kwargs[a.name] = actual[a.name]
                    continue
            if not a.has_default_value() and not a.kwarg_only:
                if a.name not in actual:
                    raise self.refuse(f"{where} lacks argument {a.name} of {op}")
                args.append(actual[a.name])
            elif keyword.iskeyword(a.name):
                args.append(actual[a.name])
            elif a.name in actual:
                kwargs[a.name] = actual[a.name]
        return tuple(args), kwargs

    def add_node(self, sn: Any) -> None:
        if not isinstance(sn, dict):
            raise self.refuse(f"{self.program} has a node that is not an object")
        where = f"{self.program} node {str(sn.get('name'))[:80]!r}"
        op = self.target(sn.get("target"), where)
        args, kwargs = self.call_args(op, sn.get("inputs"), where)
        meta = _metadata(sn.get("metadata"), self, where)
        outputs = sn.get("outputs")
        if not isinstance(outputs, list):
            raise self.refuse(f"{where} has no outputs list")
        name = sn.get("name") if isinstance(sn.get("name"), str) and _IDENT.match(sn["name"]) else None
        node = self.graph.create_node("call_function", op, args, kwargs, name)
        node.meta.update(meta)
        if not outputs:
            return
        if len(outputs) == 1 and isinstance(outputs[0], dict) and len(outputs[0]) == 1:
            ((kind, v),) = outputs[0].items()
            if kind == "as_tensor" and isinstance(v, dict):
                self._rename(node, v.get("name"))
                return
            if kind in ("as_sym_int", "as_sym_float", "as_sym_bool") and isinstance(v, dict) and "as_name" in v:
                self._rename(node, v["as_name"])
                return
            if kind == "as_none":
                return
            if kind == "as_tensors" and isinstance(v, list) and v:
                outputs = [{"as_tensor": x} for x in v]
        self._getitems(node, outputs, meta, where)

    def _rename(self, node: fx.Node, name: Any) -> None:
        if not isinstance(name, str) or not _IDENT.match(name):
            raise self.refuse(f"{self.program}: value name {str(name)[:80]!r} is not an identifier")
        self.define(name, node)
        if node.name != name:
            node._rename(name)

    def _getitems(self, node: fx.Node, outputs: list[Any], meta: dict[str, Any], where: str) -> None:
        """One ``operator.getitem`` node per output (nested for list outputs), as torch builds them."""
        for idx, out in enumerate(outputs):
            if not isinstance(out, dict) or len(out) != 1:
                raise self.refuse(f"{where} has a malformed output")
            ((kind, v),) = out.items()
            if kind == "as_none":
                item = self.graph.create_node("call_function", operator.getitem, (node, idx), name="as_none")
                item.meta.update(meta)
            elif kind in ("as_tensor", "as_sym_int", "as_sym_float") and isinstance(v, dict):
                item = self.graph.create_node("call_function", operator.getitem, (node, idx))
                item.meta.update(meta)
                self._rename(item, v.get("name") if kind == "as_tensor" else v.get("as_name"))
            elif kind in ("as_tensors", "as_sym_ints", "as_sym_floats") and isinstance(v, list):
                inner = [{"as_tensor": x} if kind == "as_tensors" else {kind[:-1]: x} for x in v]
                item = self.graph.create_node("call_function", operator.getitem, (node, idx))
                item.meta.update(meta)
                self._getitems(item, inner, meta, where)
            else:
                raise UnsupportedProgram(f"{where} has an output of kind {kind}")


def _metadata(raw: Any, reader: _Reader, where: str) -> dict[str, Any]:
    """``nn_module_stack`` ({key: (path, type)}) from a node's serialized metadata (stack traces and the
    rest are left out: nothing here reads them, and FX prints stack traces into generated code)."""
    meta: dict[str, Any] = {"nn_module_stack": {}}
    if not isinstance(raw, dict):
        return meta
    text = raw.get("nn_module_stack")
    if isinstance(text, str) and text:
        stack: dict[str, tuple[str, str]] = {}
        for item in text.split(";"):
            parts = _split_top(item)
            if len(parts) != 3:
                raise reader.refuse(f"{where} has a malformed nn_module_stack entry {item[:80]!r}")
            stack[parts[0]] = (parts[1], parts[2])
        meta["nn_module_stack"] = stack
    return meta


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets (torch's ``metadata_split``)."""
    out, start, depth = [], 0, 0
    for i, c in enumerate(text):
        if c in "[(":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def _leaves(spec: Any) -> int | None:
    """Number of leaves of a flat tuple treespec (JSON node), 0 for a leaf itself, None otherwise."""
    if not isinstance(spec, dict):
        return None
    if spec.get("type") is None:
        return 0
    kids = spec.get("children_spec")
    if spec.get("type") == "builtins.tuple" and isinstance(kids, list) and all(
            isinstance(k, dict) and k.get("type") is None for k in kids):
        return len(kids)
    return None


def _specs(doc: dict[str, Any], n_user: int) -> tuple[list[str] | None, int]:
    """(forward argument names, output leaves: 0 = one tensor) from the root module call signature;
    raises UnsupportedProgram for kwargs or nested structures."""
    graph = doc["graph_module"].get("module_call_graph")
    sig = graph[0].get("signature") if isinstance(graph, list) and graph and isinstance(graph[0], dict) else None
    if not isinstance(sig, dict):
        raise UnsupportedProgram("no root module call signature")
    try:
        in_spec = json.loads(sig.get("in_spec") or "null")
        out_spec = json.loads(sig.get("out_spec") or "null")
    except ValueError:
        raise UnsupportedProgram("unreadable input/output tree specs") from None
    if not (isinstance(in_spec, list) and len(in_spec) == 2 and in_spec[0] == 1 and isinstance(out_spec, list)
            and len(out_spec) == 2 and out_spec[0] == 1):
        raise UnsupportedProgram("input/output tree specs of an unknown protocol")
    root = in_spec[1]
    kids = root.get("children_spec") if isinstance(root, dict) else None
    if not (isinstance(kids, list) and len(kids) == 2 and root.get("type") == "builtins.tuple"
            and _leaves(kids[0]) == n_user and isinstance(kids[1], dict) and kids[1].get("type") == "builtins.dict"
            and not kids[1].get("children_spec")):
        raise UnsupportedProgram("inputs are not a flat tuple of tensors without keyword arguments")
    n_out = _leaves(out_spec[1])
    if n_out is None:
        raise UnsupportedProgram("outputs are not one tensor or a flat tuple")
    names = sig.get("forward_arg_names")
    ok = isinstance(names, list) and len(names) == n_user and all(isinstance(n, str) and _IDENT.match(n) for n in names)
    return (names if ok else None), n_out


def _signature(reader: _Reader, doc: dict[str, Any]) -> tuple[list[tuple[str, str, str, bool]], list[str]]:
    """Inputs as (kind, graph name, fqn or "", persistent) in order and the user output names."""
    sig = doc["graph_module"].get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("input_specs"), list) or not isinstance(
            sig.get("output_specs"), list):
        raise reader.refuse(f"{reader.program} has no graph signature")
    inputs: list[tuple[str, str, str, bool]] = []
    for spec in sig["input_specs"]:
        ((kind, v),) = spec.items() if isinstance(spec, dict) and len(spec) == 1 else ((None, None),)
        if not isinstance(v, dict):
            raise reader.refuse(f"{reader.program}: an input spec is malformed")
        arg = v.get("arg") or {}
        if kind == "user_input":
            if not isinstance(arg, dict) or set(arg) != {"as_tensor"}:
                raise UnsupportedProgram(f"user input {str(arg)[:60]} is not a tensor")
            inputs.append(("user_input", str(arg["as_tensor"].get("name")), "", True))
            continue
        fqn = v.get({"parameter": "parameter_name", "buffer": "buffer_name",
                     "tensor_constant": "tensor_constant_name"}.get(str(kind), ""))
        if kind not in ("parameter", "buffer", "tensor_constant"):
            raise UnsupportedProgram(f"input of kind {kind}")
        if not isinstance(fqn, str) or not _FQN.match(fqn):
            raise reader.refuse(f"{reader.program}: {kind} name {str(fqn)[:80]!r} is not a module path")
        inputs.append((str(kind), str(arg.get("name")), fqn, v.get("persistent") is not False))
    outputs: list[str] = []
    for spec in sig["output_specs"]:
        ((kind, v),) = spec.items() if isinstance(spec, dict) and len(spec) == 1 else ((None, None),)
        arg = v.get("arg") if isinstance(v, dict) else None
        if kind != "user_output":
            raise UnsupportedProgram(f"output of kind {kind} (a mutated buffer or input)")
        if not isinstance(arg, dict) or set(arg) != {"as_tensor"}:
            raise UnsupportedProgram(f"user output {str(arg)[:60]} is not a tensor")
        outputs.append(str(arg["as_tensor"].get("name")))
    return inputs, outputs


def _attach(root: nn.Module, fqn: str, value: torch.Tensor, kind: str, persistent: bool) -> None:
    *path, field = fqn.split(".")
    mod = root
    for part in path:
        child = mod._modules.get(part)
        if child is None:
            child = nn.Module()
            mod.add_module(part, child)
        mod = child
    if kind == "parameter":
        if not isinstance(value, nn.Parameter):
            value = nn.Parameter(value, requires_grad=False)
        mod.register_parameter(field, value)
    elif kind == "buffer":
        mod.register_buffer(field, value.detach(), persistent=persistent)
    else:
        setattr(mod, field, value.detach())


def _build(reader: _Reader, doc: dict[str, Any]) -> fx.GraphModule:
    if doc.get("guards_code"):
        raise reader.refuse(f"{reader.program}: guards_code holds Python")
    sg = doc["graph_module"].get("graph")
    if not isinstance(sg, dict) or not isinstance(sg.get("nodes"), list) or not isinstance(sg.get("inputs"), list):
        raise reader.refuse(f"{reader.program} has no graph")
    if sg.get("custom_obj_values"):
        raise UnsupportedProgram("custom objects")
    inputs, user_outputs = _signature(reader, doc)
    if len(inputs) != len(sg["inputs"]):
        raise reader.refuse(f"{reader.program} has {len(sg['inputs'])} graph inputs but {len(inputs)} input specs")
    n_user = sum(1 for k, *_ in inputs if k == "user_input")
    arg_names, n_out = _specs(doc, n_user)
    if not ((n_out == 0 and len(user_outputs) == 1) or (n_out >= 1 and n_out == len(user_outputs))):
        raise UnsupportedProgram(f"{len(user_outputs)} user outputs under an output spec of {n_out}")
    weights = reader.payloads("weights")
    constants = reader.payloads("constants")
    root = nn.Module()
    user_i = 0
    for (kind, name, fqn, persistent), garg in zip(inputs, sg["inputs"]):
        gname = garg.get("as_tensor", {}).get("name") if isinstance(garg, dict) else None
        if gname != name:
            raise reader.refuse(f"{reader.program}: graph input {str(gname)[:60]!r} does not match its input spec {name[:60]!r}")
        if kind == "user_input":
            label = arg_names[user_i] if arg_names else name
            user_i += 1
            if not _IDENT.match(label) or keyword.iskeyword(label):
                raise reader.refuse(f"{reader.program}: input name {label[:60]!r} is not an identifier")
            node = reader.graph.placeholder(label)
            reader.define(name, node)
            continue
        table = weights if kind == "parameter" or (kind == "buffer" and persistent) else constants
        if fqn not in table:
            raise reader.refuse(f"{reader.program}: {kind} {fqn!r} has no stored tensor")
        _attach(root, fqn, table[fqn], kind, persistent)
        reader.define(name, reader.graph.get_attr(fqn))
    for sn in sg["nodes"]:
        reader.add_node(sn)
    outs = [reader.node(n) for n in user_outputs]
    reader.graph.output(outs[0] if n_out == 0 else tuple(outs))
    try:
        reader.graph.lint()
        gm = fx.GraphModule(root, reader.graph)
    except Exception as exc:  # FX refuses graphs whose values or attributes do not line up
        raise reader.refuse(f"{reader.program} does not form a valid graph ({str(exc)[:200]})") from None
    for kind, _name, fqn, persistent in inputs:  # FX copies every tensor attribute as a persistent buffer
        *path, field = fqn.split(".")
        owner = gm.get_submodule(".".join(path))
        if kind == "buffer" and not persistent:
            owner._non_persistent_buffers_set.add(field)
        elif kind == "tensor_constant" and field in owner._buffers:  # a plain attribute, as torch unlifts it
            value = owner._buffers.pop(field)
            setattr(owner, field, value)
    return gm


def load_program(data: bytes, where: str) -> fx.GraphModule:
    """The runnable module of an inspected ``.pt2`` (``safe_export_archive``'s output): what
    ``torch.export.load(...).module()`` gives, without importing ``torch.export``'s deserializer.

    Raises :class:`UnsupportedProgram` (fall back to ``torch.export.load``) or :class:`ArchiveRefusedError`.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveRefusedError(f"{where} is not a zip archive ({exc}); refused") from None
    with zf:
        names = zf.namelist()
        root = names[0].split("/", 1)[0] if names else ""
        programs = [n[len(root) + len("/models/"):-len(".json")] for n in names
                    if n.startswith(f"{root}/models/") and n.endswith(".json")]
        if programs != ["model"]:
            raise UnsupportedProgram(f"programs {programs[:4]} (one named 'model' is read)")
        if f"{root}/byteorder" in names and zf.read(f"{root}/byteorder").decode(errors="replace").strip() != sys.byteorder:
            raise UnsupportedProgram("stored in the other byte order")
        reader = _Reader(zf, root, "model", where)
        doc = reader.json("models/model.json")
        if not isinstance(doc, dict) or not isinstance(doc.get("graph_module"), dict):
            raise reader.refuse(f"{reader.program} is not a serialized ExportedProgram")
        return _build(reader, doc)


__all__ = ["DTYPES", "UnsupportedProgram", "load_program"]
