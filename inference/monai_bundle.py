"""MONAI bundles as their users write them: the input pipeline from ``configs/inference.json`` (or
``.yaml``), the weights that are there, and the outputs RadScope can show.

MONAI's ``network_data_format.inputs.<name>.value_range`` describes the data (often empty, as in the
official classification template), not a window: the intensity pipeline comes from the preprocessing
transforms of the bundle's inference config, read as data (``yaml.safe_load`` / JSON; no ``$``
expression is ever evaluated):

* ``ScaleIntensityRange(d)`` (``a_min``, ``a_max``, ``b_min``, ``b_max``, ``clip``) -> the window (clipped
  or not) plus a fixed affine map to ``[b_min, b_max]``;
* ``NormalizeIntensity(d)``: ``subtrahend`` + ``divisor`` -> a fixed normalisation; without them the
  per-image z-score (``nonzero`` honoured);
* ``ScaleIntensity(d)`` (``minv``, ``maxv``): per-image min-max scaling.

Without any of these the model receives the modality values unchanged. Weights: ``models/model.ts``
(TorchScript). A bundle with only ``models/model.pt`` (a state dict: it needs the network's code) gets a
clear message. A segmentation output (``type: image`` / ``format: segmentation``) gets one too: RadScope
shows per-image scores and heatmaps, not segmentation overlays (yet).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator, Mapping

CONFIGS = ("configs/inference.json", "configs/inference.yaml", "configs/inference.yml")
MAX_CONFIG_BYTES = 4 * 2**20
INTENSITY = ("ScaleIntensityRange", "NormalizeIntensity", "ScaleIntensity")

Fail = Callable[[str, str], Exception]


@dataclass(frozen=True)
class Intensity:
    """The input pipeline in RadScope's terms (see `inference.package.InputSpec`)."""

    window: tuple[float, float, bool]
    """(center, width, clip)."""
    normalize: tuple[float, float] | None
    """Fixed (mean, std) after the window."""
    per_image: dict[str, Any] | None
    """``{"kind": "zscore", "nonzero": bool}`` or ``{"kind": "minmax", "min": v, "max": v}``."""
    source: str
    """What it was read from, in words."""


IDENTITY = Intensity((0.5, 1.0, False), None, None, "no intensity transform: the model receives modality values")


def read_config(read: Callable[[str], bytes | None], label: str, fail: Fail) -> tuple[str, Any] | None:
    """The first inference config present as (member name, parsed data); None when there is none."""
    for name in CONFIGS:
        data = read(name)
        if data is None:
            continue
        if len(data) > MAX_CONFIG_BYTES:
            raise fail(name, f"is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            if name.endswith(".json"):
                return name, json.loads(data.decode("utf-8"))
            import yaml

            return name, yaml.safe_load(data.decode("utf-8"))
        except ImportError:
            raise fail(name, "is YAML and PyYAML is not installed; save it as inference.json") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise fail(name, f"cannot be read ({exc})") from None
        except Exception as exc:  # yaml.YAMLError
            raise fail(name, f"cannot be read ({type(exc).__name__}: {exc})") from None
    return None


def _transforms(node: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Dicts with a ``_target_`` naming an intensity transform, in document order."""
    if depth > 64:
        return
    if isinstance(node, Mapping):
        target = node.get("_target_")
        name = target.split(".")[-1] if isinstance(target, str) else ""
        if "Intensity" in name or "Normaliz" in name:
            yield node
        for value in node.values():
            yield from _transforms(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _transforms(item, depth + 1)


def _preprocessing(data: Any) -> Any:
    """The config's preprocessing transforms: ``preprocessing`` (following a plain ``@name`` / ``$@name``
    reference of its ``transforms``, as the MONAI templates write it), else ``transforms``, else all of it
    but the post-processing."""
    if not isinstance(data, Mapping):
        return data
    pre = data.get("preprocessing")
    if isinstance(pre, Mapping):
        ref = pre.get("transforms")
        if isinstance(ref, str):
            m = re.fullmatch(r"\$?@(\w+)", ref.strip())
            return data.get(m.group(1)) if m else None
        return pre
    if "transforms" in data:
        return data["transforms"]
    return {k: v for k, v in data.items() if "post" not in str(k).lower()}


def _number(t: Mapping[str, Any], key: str, default: float | None, where: str, fail: Fail) -> float | None:
    v = t.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise fail(f"{where}.{key}", f"must be a literal number (got {v!r}); RadScope evaluates no expressions")
    return float(v)


def intensity(config: tuple[str, Any] | None, fail: Fail) -> Intensity:
    """The intensity pipeline of an inference config (`IDENTITY` without one or without transforms)."""
    if config is None:
        return IDENTITY
    name, data = config
    found = list(_transforms(_preprocessing(data)))
    if not found:
        return IDENTITY
    window, normalize, per_image = (0.5, 1.0, False), None, None
    used = []
    for i, t in enumerate(found):
        kind = str(t["_target_"]).split(".")[-1].rstrip("d")
        where = f"{name}: {t['_target_']}"
        used.append(str(t["_target_"]))
        if kind not in INTENSITY:
            raise fail(where, f"is not supported (RadScope reads {', '.join(k + '(d)' for k in INTENSITY)})")
        if kind == "ScaleIntensityRange":
            if i != 0:
                raise fail(where, "after another intensity transform is not supported")
            a_min, a_max = _number(t, "a_min", None, where, fail), _number(t, "a_max", None, where, fail)
            b_min, b_max = _number(t, "b_min", None, where, fail), _number(t, "b_max", None, where, fail)
            if a_min is None or a_max is None or a_max == a_min:
                raise fail(where, "needs a_min < a_max")
            if a_max < a_min:
                raise fail(where, "with a_max < a_min (an inverted window) is not supported")
            clip = bool(t.get("clip", False))
            window = ((a_min + a_max) / 2, a_max - a_min, clip)
            if b_min is not None and b_max is not None and (b_min, b_max) != (0.0, 1.0):
                if b_max == b_min:
                    raise fail(where, "needs b_min != b_max")
                normalize = (-b_min / (b_max - b_min), 1.0 / (b_max - b_min))
        elif kind == "NormalizeIntensity":
            sub, div = _number(t, "subtrahend", None, where, fail), _number(t, "divisor", None, where, fail)
            if sub is not None and div is not None and div > 0:
                if normalize is not None or per_image is not None:
                    raise fail(where, "after another normalisation is not supported")
                normalize = (sub, div)
            elif sub is None and div is None:
                if per_image is not None or normalize is not None:
                    raise fail(where, "after another normalisation is not supported")
                per_image = {"kind": "zscore", "nonzero": bool(t.get("nonzero", False))}
            else:
                raise fail(where, "needs both subtrahend and divisor (a positive number), or neither")
        else:  # ScaleIntensity
            if t.get("factor") is not None:
                raise fail(where, "with factor is not supported")
            if per_image is not None or normalize is not None:
                raise fail(where, "after another normalisation is not supported")
            lo, hi = _number(t, "minv", 0.0, where, fail), _number(t, "maxv", 1.0, where, fail)
            if lo is None or hi is None:
                raise fail(where, "with minv or maxv null is not supported")
            per_image = {"kind": "minmax", "min": lo, "max": hi}
    return Intensity(window, normalize, per_image, f"{name}: {', '.join(used)}")


def check_output(outputs: Mapping[str, Any], key: str, fail: Fail) -> None:
    """Refuse outputs RadScope cannot show yet (segmentation maps), with a message saying so."""
    kind = str(outputs.get("type", "")).lower()
    fmt = str(outputs.get("format", "")).lower()
    shape = outputs.get("spatial_shape")
    spatial = isinstance(shape, list) and len(shape) >= 2 and all(isinstance(s, int) and s > 1 for s in shape)
    if kind == "image" or fmt == "segmentation" or spatial:
        raise fail(key, f"is a segmentation output (type {kind or '?'}, format {fmt or '?'}): RadScope shows "
                        "per-image scores with heatmaps; segmentation overlays are not supported yet")


def weights_message(members: set[str]) -> str | None:
    """Why a bundle's weights cannot be used, or None when ``models/model.ts`` is there."""
    if "models/model.ts" in members:
        return None
    if "models/model.pt" in members:
        return ("holds only models/model.pt, a weights-only state dict: it needs the network's code, which a "
                "bundle does not carry. Export a TorchScript models/model.ts (MONAI: `python -m monai.bundle "
                "ckpt_export ...`), or add a radscope-model.json naming a built-in architecture "
                "(demo-cnn, resnet18, densenet121) with weights.format state_dict")
    return "has no models/model.ts (TorchScript) to load"
