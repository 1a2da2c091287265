"""Inspect weights archives before torch reads them, so that loading a model never runs code.

``torch.export.load`` unpickles with ``weights_only=False`` (sample inputs, pickled weights and
constants, opaque objects), loads AOTInductor shared libraries, evaluates symbolic shapes with
``sympy.sympify`` (``eval``) and executes ``guards_code``; a graph node's target may name any Python
attribute reachable from ``torch``. :func:`safe_export_archive` therefore checks every member of a
``.pt2`` against what ``torch.export.save`` writes (an allowlist), refuses pickled payloads, checks
the program JSON (node targets are ``torch.ops`` operators or plain arithmetic, shape expressions
use a small grammar, no guard code) and returns a rebuilt archive holding exactly the inspected
members with the sample inputs emptied, so nothing in it is ever unpickled.

TorchScript archives (:func:`check_torchscript_archive`) are read by libtorch's own deserializer:
its unpickler only builds tensors and TorchScript classes compiled from the archive's ``code/``
(TorchScript has no imports, ``eval`` or Python calls). The members are still held to what
``torch.jit.save`` writes and every pickle's globals to what TorchScript itself emits.

Pickles are inspected statically (:func:`pickle_globals` reads opcodes; nothing is unpickled).
"""

from __future__ import annotations

import io
import json
import math
import pickletools
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

MAX_JSON_BYTES = 256 * 2**20
"""Largest program / config JSON member read."""
MAX_TOTAL_BYTES = 16 * 2**30
"""Largest total uncompressed size of an archive's members."""
MAX_RATIO = 200
"""Largest compression ratio of a member over 1 MiB (deflate bombs)."""


class ArchiveRefusedError(ValueError):
    """A weights archive holds something that could run code or is not what torch writes."""


# -- pickles (static) ---------------------------------------------------------------------------

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}
_MEMO_OPS = {"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"}
_FORBIDDEN_OPS = {"INST", "OBJ", "EXT1", "EXT2", "EXT4"}


def pickle_globals(data: bytes) -> list[str]:
    """Every ``module.name`` a pickle imports, read from its opcodes without unpickling.

    Raises ValueError for a malformed pickle, an opcode that imports or builds by other routes
    (INST, OBJ, extension registry) or a STACK_GLOBAL whose names are not literal strings.
    """
    found: list[str] = []
    recent: list[str | None] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in _FORBIDDEN_OPS:
                raise ValueError(f"opcode {name}")
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                found.append(f"{module}.{attr}")
            elif name == "STACK_GLOBAL":
                if len(recent) < 2 or recent[-1] is None or recent[-2] is None:
                    raise ValueError("STACK_GLOBAL of computed names")
                found.append(f"{recent[-2]}.{recent[-1]}")
            if name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else None)
            elif name not in _MEMO_OPS:
                recent.append(None)
            recent = recent[-2:]
    except ValueError:
        raise
    except Exception as exc:  # pickletools raises assorted errors on garbage
        raise ValueError(f"not a readable pickle ({exc})") from exc
    return found


_TENSOR_GLOBALS = re.compile(r"^(torch\._utils\._rebuild_(tensor_v2|parameter)|torch\.[A-Za-z]+Storage"
                             r"|collections\.OrderedDict|torch\.device)$")
_TORCHSCRIPT_GLOBALS = re.compile(r"^(__torch__(\.[A-Za-z_][A-Za-z0-9_]*)+|torch\.jit\._pickle\.[a-z_]+"
                                  r"|torch\._utils\._rebuild_(tensor_v2|qtensor)|torch\.[A-Za-z]+Storage"
                                  r"|collections\.OrderedDict|torch\.device)$")


def _check_pickle(data: bytes, allowed: re.Pattern[str], where: str) -> None:
    try:
        names = pickle_globals(data)
    except ValueError as exc:
        raise ArchiveRefusedError(f"{where} is a pickle RadScope cannot verify ({exc}); refused, "
                                  "never unpickled") from exc
    bad = [n for n in names if not allowed.match(n)]
    if bad:
        raise ArchiveRefusedError(f"{where} is a pickle that would import {bad[0]} (code execution); refused, "
                                  "never unpickled")


def _check_torch_save(data: bytes, where: str) -> None:
    """A ``torch.save`` zip whose pickles only rebuild tensors."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = _members(zf, where)
            for info in members:
                if info.filename.endswith(".pkl"):
                    _check_pickle(zf.read(info), _TENSOR_GLOBALS, f"{where} ({info.filename})")
    except zipfile.BadZipFile as exc:
        raise ArchiveRefusedError(f"{where} is not a torch.save archive (a bare pickle?); refused") from exc


# -- zip members --------------------------------------------------------------------------------


def _members(zf: zipfile.ZipFile, where: str) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ArchiveRefusedError(f"{where}: member {dup} appears twice; refused")
    total = 0
    for i in infos:
        total += i.file_size
        if i.file_size > 2**20 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ArchiveRefusedError(f"{where}: member {i.filename} inflates {i.file_size // max(i.compress_size, 1)}"
                                      f"-fold; refused")
    if total > MAX_TOTAL_BYTES:
        raise ArchiveRefusedError(f"{where}: members total {total / 2**30:.1f} GiB; refused")
    return infos


def _root(infos: list[zipfile.ZipInfo], where: str) -> str:
    roots = {i.filename.split("/", 1)[0] for i in infos}
    if len(roots) != 1 or any("/" not in i.filename for i in infos):
        raise ArchiveRefusedError(f"{where}: members are not under one folder as torch writes them; refused")
    return roots.pop()


def _rebuild(members: Iterator[tuple[str, bytes]]) -> bytes:
    """A fresh uncompressed zip of exactly these members (what torch reads is what was inspected)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def _open(data: bytes, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveRefusedError(f"{where} is not a zip archive ({exc}); refused") from exc


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Any:
    if info.file_size > MAX_JSON_BYTES:
        raise ArchiveRefusedError(f"{where}: member {info.filename} is {info.file_size} bytes; refused")
    try:
        return json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ArchiveRefusedError(f"{where}: member {info.filename} is not valid JSON ({str(exc)[:200]})") from exc


# -- torch.export (.pt2) ------------------------------------------------------------------------

_PT2_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PT2_PATTERNS = re.compile(
    r"^(models/(?P<model>[A-Za-z0-9_.-]+)\.json"
    r"|data/weights/(?P<wcfg>[A-Za-z0-9_.-]+)_weights_config\.json"
    r"|data/weights/weight_\d+"
    r"|data/constants/(?P<ccfg>[A-Za-z0-9_.-]+)_constants_config\.json"
    r"|data/constants/tensor_\d+"
    r"|data/sample_inputs/(?P<sample>[A-Za-z0-9_.-]+)\.pt"
    r"|extra/[A-Za-z0-9_.-]+)$")
_OPERATOR_NAMES = frozenset(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor not_ invert "
    "lshift rshift".split())
_TARGET = re.compile(r"^(torch\.ops\.(?P<ns>[A-Za-z][A-Za-z0-9_]*)\.(?P<name>[A-Za-z][A-Za-z0-9_]*)"
                     r"(\.[A-Za-z][A-Za-z0-9_]*)?|torch\.(sym_[a-z_]+|_sym_sqrt)"
                     r"|math\.[a-z][a-z0-9]*|_operator\.(?P<op>[a-z_]+))$")
OP_NAMESPACES = frozenset({"aten", "prims", "higher_order"})
"""Operator namespaces a model graph may call (not I/O, distributed, profiler or debugging operators)."""
IO_OPERATORS = frozenset({"from_file", "_print"})
"""aten operators that touch files or the console (``from_file(shared=True)`` maps a file writable)."""
_EXPR_CHARS = re.compile(r"^[A-Za-z0-9_ +\-*/%(),=.'<>!&|~]*$")
_EXPR_WORDS = frozenset(
    "Symbol Integer Float Rational True False positive integer real nonnegative finite "
    "FloorDiv ModularIndexing Where PythonMod Mod CleanDiv CeilToInt FloorToInt CeilDiv IntTrueDiv FloatTrueDiv "
    "LShift RShift IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat "
    "Identity PowByNatural FloatPow Max Min Abs Eq Ne Lt Le Gt Ge And Or Not oo zoo nan".split())
_SYMBOL = re.compile(r"^[a-z]+\d+$")


def _check_expr(expr: str, where: str) -> None:
    """A symbolic-shape expression that ``sympy.sympify`` (``eval``) may read: names, numbers, arithmetic."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'[a-z]+\d+'", "", expr))
    ok = (len(expr) <= 4096 and _EXPR_CHARS.match(expr) is not None and "__" not in expr
          and all(w in _EXPR_WORDS or _SYMBOL.match(w) for w in words)
          and not re.search(r"[A-Za-z0-9_)\]]\s*\.\s*[A-Za-z_]", expr))
    if not ok:
        raise ArchiveRefusedError(f"{where}: shape expression {expr[:80]!r} is not plain arithmetic; refused")


def _check_target(target: str, where: str) -> None:
    m = _TARGET.match(target)
    if m is None or (m.group("op") is not None and m.group("op") not in _OPERATOR_NAMES) or (
            m.group("ns") is not None and (m.group("ns") not in OP_NAMESPACES or m.group("name") in IO_OPERATORS)):
        raise ArchiveRefusedError(f"{where} calls {target[:80]!r}, not an allowed torch operator; refused")


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_PATH = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
_SPEC_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"})


def _check_names(doc: dict[str, Any], where: str) -> None:
    """Every name torch.fx writes into the Python source it generates for the program (value and node names,
    input names, attribute paths, input/output tree specs) is an identifier or a dotted path of them: FX
    formats a path part that is not an identifier as ``getattr(self, "<part>")``, so a quote in a parameter
    name would put the archive's own code into ``forward``."""
    gm = doc["graph_module"]
    stack: list[Any] = [gm.get("graph"), gm.get("signature")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("name", "as_name") and isinstance(value, str) and not _IDENTIFIER.match(value):
                    raise ArchiveRefusedError(f"{where}: value name {value[:80]!r} is not an identifier; refused")
                if key.endswith("_name") and key != "as_name" and isinstance(value, str) and not _MODULE_PATH.match(value):
                    raise ArchiveRefusedError(f"{where}: {key} {value[:80]!r} is not a module path; refused")
                if key != "metadata":
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    for entry in gm.get("module_call_graph") or []:
        if not isinstance(entry, dict):
            continue
        fqn = entry.get("fqn")
        if isinstance(fqn, str) and fqn and not _MODULE_PATH.match(fqn):
            raise ArchiveRefusedError(f"{where}: module path {fqn[:80]!r} is not a dotted name; refused")
        sig = entry.get("signature")
        if not isinstance(sig, dict):
            continue
        for arg in sig.get("forward_arg_names") or []:
            if not isinstance(arg, str) or not _IDENTIFIER.match(arg):
                raise ArchiveRefusedError(f"{where}: forward argument {str(arg)[:80]!r} is not an identifier; refused")
        for key in ("in_spec", "out_spec"):
            if sig.get(key) is not None:
                _check_treespec(sig[key], f"{where}: {key}")


def _check_treespec(text: Any, where: str) -> None:
    """A serialized pytree spec of plain containers whose dict keys are identifiers (FX's pytree code
    generation makes keyword parameters of them)."""
    try:
        spec = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        spec = None
    if not isinstance(spec, list) or len(spec) != 2:
        raise ArchiveRefusedError(f"{where} is not a serialized tree spec; refused")
    stack: list[Any] = [spec[1]]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or node.get("type") not in _SPEC_TYPES:
            kind = node.get("type") if isinstance(node, dict) else node
            raise ArchiveRefusedError(f"{where} holds a {str(kind)[:60]!r} container; refused (plain tuples, lists "
                                      "and dicts only)")
        if node.get("type") in ("builtins.dict", "collections.OrderedDict"):
            try:
                keys = json.loads(node.get("context") or "[]")
            except (TypeError, ValueError):
                keys = None
            if not isinstance(keys, list) or not all(isinstance(k, str) and _IDENTIFIER.match(k) for k in keys):
                raise ArchiveRefusedError(f"{where}: dict keys {str(node.get('context'))[:60]} are not identifiers; "
                                          "refused")
        stack.extend(node.get("children_spec") or [])


def _check_program(doc: Any, where: str) -> None:
    """Node targets, shape expressions, guard code and generated-code names of a serialized ExportedProgram."""
    if not isinstance(doc, dict) or not isinstance(doc.get("graph_module"), dict):
        raise ArchiveRefusedError(f"{where} is not a serialized ExportedProgram; refused")
    if doc.get("guards_code"):
        raise ArchiveRefusedError(f"{where}: guards_code holds Python that torch would execute; refused")
    _check_names(doc, where)
    ranges = doc.get("range_constraints") or {}
    for sym, bounds in (ranges.items() if isinstance(ranges, dict) else [("", None)]):
        if not (isinstance(sym, str) and _SYMBOL.match(sym) and isinstance(bounds, dict) and all(
                bounds.get(k) is None or (isinstance(bounds.get(k), int) and not isinstance(bounds.get(k), bool))
                for k in ("min_val", "max_val"))):
            raise ArchiveRefusedError(f"{where}: range constraint {str(sym)[:40]!r} is not a symbol with integer "
                                      "bounds; refused")
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target = node.get("target")
            if isinstance(target, str) and "inputs" in node and "outputs" in node:
                _check_target(target, f"{where}: node {str(node.get('name'))[:80]!r}")
            if isinstance(node.get("as_operator"), str):  # an operator passed as an argument (it gets called)
                _check_target(node["as_operator"], f"{where}: an operator argument")
            if node.get("as_custom_obj") is not None:
                raise ArchiveRefusedError(f"{where}: custom (script) object arguments are refused")
            expr = node.get("expr_str")
            if isinstance(expr, str):
                _check_expr(expr, where)
            if node.get("custom_obj_values"):
                raise ArchiveRefusedError(f"{where}: custom (script) objects are refused")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


MAX_REPEATED = 2**20
"""Most elements a weight or constant may declare beyond one per byte of its member (a small constant expanded
by zero strides); larger shapes must be stored."""


def _check_payload_config(doc: Any, kind: str, where: str, sizes: dict[str, int]) -> None:
    """Every entry a plain tensor in a member of its folder (``sizes``: member name -> bytes); an empty
    member may only hold an empty tensor (torch would allocate the declared shape with ``torch.zeros``), and
    no entry declares more elements than its member has bytes (zero strides would repeat a few bytes into
    terabytes), beyond MAX_REPEATED."""
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise ArchiveRefusedError(f"{where} is not a torch.export payload config; refused")
    for fqn, meta in config.items():
        if not isinstance(meta, dict):
            raise ArchiveRefusedError(f"{where}: entry {fqn!r} is not an object; refused")
        if not _MODULE_PATH.match(fqn):
            raise ArchiveRefusedError(f"{where}: {kind} name {fqn[:80]!r} is not a module path; refused")
        if meta.get("use_pickle") is not False:
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} is stored as a pickle; refused, never unpickled")
        path = meta.get("path_name")
        prefix = "weight_" if kind == "weight" else "tensor_"
        if not isinstance(path, str) or not re.fullmatch(prefix + r"\d+", path):
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} is stored as {str(path)[:60]!r}, not a plain tensor; "
                                      "refused")
        tmeta = meta.get("tensor_meta")
        raw = tmeta.get("sizes") if isinstance(tmeta, dict) else None
        dims: list[Any] = [d.get("as_int") if isinstance(d, dict) else None for d in raw] if isinstance(raw, list) else []
        if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} has no plain integer shape; refused")
        if path not in sizes:
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} is stored in {path}, which the archive lacks; refused")
        if sizes[path] == 0 and math.prod(dims) > 0:
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} declares shape {dims} but its member {path} is "
                                      "empty; refused (torch would allocate it)")
        if math.prod(dims) > max(sizes[path], MAX_REPEATED):
            raise ArchiveRefusedError(f"{where}: {kind} {fqn!r} declares shape {dims[:8]} ({math.prod(dims)} elements) "
                                      f"over its member {path} of {sizes[path]} bytes; refused (a view repeating "
                                      "the member's data, which any use of it would allocate whole)")


def safe_export_archive(data: bytes, where: str) -> bytes:
    """The ``.pt2`` bytes for ``torch.export.load`` after inspection (sample inputs emptied).

    ``where`` names the file in messages. Raises :class:`ArchiveRefusedError` naming the member.
    """
    with _open(data, where) as zf:
        infos = _members(zf, where)
        root = _root(infos, where)
        kept: list[tuple[str, bytes]] = []
        models: set[str] = set()
        configs: set[str] = set()
        infos = [i for i in infos if not i.is_dir()]
        for info in infos:  # names first: an unexpected member is refused before anything is parsed
            rel = info.filename[len(root) + 1:]
            if rel not in _PT2_FIXED and _PT2_PATTERNS.match(rel) is None:
                why = ("a compiled shared library (AOTInductor)" if rel.startswith(("data/aotinductor/", "data/mtia"))
                       else "a pickled object" if rel.endswith((".pt", ".pkl", ".pickle")) or "_obj_" in rel
                       else "not something torch.export.save writes")
                raise ArchiveRefusedError(f"{where} member {info.filename} is {why}; refused "
                                          "(RadScope never runs code from a model file)")
        for info in infos:
            rel = info.filename[len(root) + 1:]
            member = f"{where} member {info.filename}"
            m = _PT2_PATTERNS.match(rel)
            body = zf.read(info)
            if m is not None and m.group("sample"):
                _check_torch_save(body, member)
                body = b""  # never unpickled: example inputs are not needed to run the program
            elif m is not None and m.group("model"):
                _check_program(_read_json(zf, info, where), member)
                models.add(m.group("model"))
            elif m is not None and (m.group("wcfg") or m.group("ccfg")):
                kind = "weight" if m.group("wcfg") else "constant"
                folder = rel.rsplit("/", 1)[0] + "/"
                sizes = {i.filename[len(root) + 1 + len(folder):]: i.file_size for i in infos
                         if i.filename.startswith(f"{root}/{folder}")}
                _check_payload_config(_read_json(zf, info, where), kind, member, sizes)
                configs.add(f"{kind}:{m.group('wcfg') or m.group('ccfg')}")
            kept.append((info.filename, body))
        for model in models:
            for kind in ("weight", "constant"):
                if f"{kind}:{model}" not in configs:
                    raise ArchiveRefusedError(f"{where}: program {model} has no {kind}s config (a legacy pickled "
                                              "archive?); refused")
        if not models:
            raise ArchiveRefusedError(f"{where}: no models/<name>.json program in the archive; refused")
    return _rebuild(iter(kept))


# -- TorchScript ----------------------------------------------------------------------------------

_TS_PATTERNS = re.compile(r"^(data\.pkl|constants\.pkl|traced_inputs\.pkl|traced_inputs/\d+|version|byteorder|\.data/version|\.data/serialization_id"
                          r"|\.data/[A-Za-z0-9_.-]+|data/\d+|constants/\d+|extra/[A-Za-z0-9_.-]+"
                          r"|code/(__torch__|__torch__/[A-Za-z0-9_./-]+)\.py(\.debug_pkl)?|code/__torch__\.py"
                          r"|code/[A-Za-z0-9_./-]+\.(py|py\.debug_pkl))$")


_TS_OPS = re.compile(rb"\bops\.([A-Za-z_][A-Za-z0-9_]*)")
_TS_IO = re.compile(rb"\b(from_file|load_tensor)\b|torch\.classes\.")


def _check_torchscript_code(code: bytes, where: str) -> None:
    """TorchScript source may call operators only from :data:`OP_NAMESPACES` (and ``prim``), never file I/O."""
    io_call = _TS_IO.search(code)
    if io_call is not None:
        raise ArchiveRefusedError(f"{where} calls {io_call.group(0).decode(errors='replace')} (file access or "
                                  "custom classes); refused")
    for ns in _TS_OPS.findall(code):
        if ns.decode() not in OP_NAMESPACES | {"prim"}:
            raise ArchiveRefusedError(f"{where} calls operators of namespace {ns.decode(errors='replace')!r}; refused")


def check_torchscript_archive(data: bytes, where: str) -> None:
    """Refuse a TorchScript archive with members ``torch.jit.save`` does not write or unexpected pickle globals."""
    allowed: Callable[[str], bool] = _TS_PATTERNS.match  # type: ignore[assignment]
    with _open(data, where) as zf:
        infos = _members(zf, where)
        root = _root(infos, where)
        for info in infos:
            rel = info.filename[len(root) + 1:]
            if info.is_dir():
                continue
            if ".." in rel.split("/") or not allowed(rel):
                raise ArchiveRefusedError(f"{where} member {info.filename} is not something torch.jit.save writes; "
                                          "refused")
            if rel.endswith(".pkl"):
                _check_pickle(zf.read(info), _TORCHSCRIPT_GLOBALS, f"{where} member {info.filename}")
            elif rel.endswith(".py"):
                _check_torchscript_code(zf.read(info), f"{where} member {info.filename}")


__all__ = ["ArchiveRefusedError", "check_torchscript_archive", "pickle_globals", "safe_export_archive"]
