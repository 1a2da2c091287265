"""JSON from files a user was handed: bounded in size (checked before reading) and nesting depth.

One error type, :class:`JsonLimitError`, whose message names the file and the reason; callers wrap it
in their own error (model card, review import, cache entry). No RecursionError, no multi-GB reads.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of objects/arrays accepted (cards and exports need fewer than 10)."""


class JsonLimitError(ValueError):
    """Unreadable, too large, too deep or not JSON; the message starts with the file's name."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def loads(data: bytes | str, label: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` (NaN/Infinity refused, depth limited) or raise :class:`JsonLimitError` naming ``label``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JsonLimitError(f"{label}: nested deeper than {max_depth} levels; refused") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise JsonLimitError(f"{label}: not valid JSON ({str(exc)[:200]})") from None
    depth = _depth(doc)
    if depth > max_depth:
        raise JsonLimitError(f"{label}: nested {depth} levels deep (at most {max_depth}); refused")
    return doc


def _depth(doc: Any) -> int:
    """Nesting depth of a parsed document, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in node)
    return deepest


def read_file(path: str | Path, max_bytes: int, label: str | None = None, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse the JSON file at ``path``; its size is checked before anything is read."""
    path = Path(path)
    label = label or str(path)
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > max_bytes:  # a regular file: refused before reading
                raise JsonLimitError(f"{label}: larger than {_size(max_bytes)}; refused")
            data = fh.read(max_bytes + 1)  # (a pipe or special file: bounded read)
    except OSError as exc:
        raise JsonLimitError(f"{label}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise JsonLimitError(f"{label}: larger than {_size(max_bytes)}; refused")
    return loads(data, label, max_depth=max_depth)


def read_member(zf: zipfile.ZipFile, member: str, max_bytes: int, label: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a zip member's JSON; the declared and the actual size are both bounded."""
    try:
        if zf.getinfo(member).file_size > max_bytes:
            raise JsonLimitError(f"{label}: larger than {_size(max_bytes)}; refused")
        with zf.open(member) as fh:
            data = fh.read(max_bytes + 1)
    except (KeyError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise JsonLimitError(f"{label}: cannot read ({exc})") from None
    if len(data) > max_bytes:
        raise JsonLimitError(f"{label}: larger than {_size(max_bytes)}; refused")
    return loads(data, label, max_depth=max_depth)


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


def finite(value: Any) -> bool:
    """A real JSON number (not bool), finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["JsonLimitError", "MAX_DEPTH", "finite", "loads", "read_file", "read_member"]
