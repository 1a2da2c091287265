"""Model packages: read and validate ``radscope-model.json`` (or a MONAI bundle) into a `ModelCard`.

A package is a folder, or a ``.zip`` of one, holding the card and one weights file (see DESIGN.md,
"Model package"). Every missing or invalid field raises `ModelPackageError` naming the card file and
the field. The weights are read as bytes and their sha256 checked before anything deserialises them.
`save_package` writes a package from a module (``torch.export`` ``.pt2`` + card with the sha256).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping, Sequence

from inference import jsonsafe

from inference.ood import OODSpec, parse_ood
from inference.scope import ScopeRules, parse_scope

if TYPE_CHECKING:  # torch is only needed to export, never to read a card
    import torch

CARD_NAME = "radscope-model.json"
CARD_FORMAT = "radscope-model/1"
WEIGHT_FORMATS = ("torch.export", "torchscript", "safetensors", "state_dict")
ARCHITECTURE_FORMATS = ("safetensors", "state_dict")
OUTPUTS = ("sigmoid", "softmax")
MONAI_METADATA = "configs/metadata.json"
MONAI_WEIGHTS = "models/model.ts"
MAX_WEIGHTS_BYTES = 16 * 2**30
"""Largest weights file read (it is read whole, to check its sha256 before anything parses it)."""
MAX_RATIO = 200
"""Largest compression ratio of a zipped weights member (deflate bombs)."""
MAX_CARD_BYTES = 2**20
"""Largest card (or MONAI metadata) read: 1 MiB, checked before reading."""


class ModelPackageError(ValueError):
    """A model package that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Window:
    """Linear map of modality values to [0, 1]: ``clip((v - (center - width/2)) / width, 0, 1)``."""

    center: float
    width: float
    clip: bool = True
    """False: the same affine map without clipping (``input.window.clip``; MONAI's ``clip: false``)."""


@dataclass(frozen=True)
class Normalize:
    """``(x - mean) / std`` applied after the window; one value or one per channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class InputSpec:
    size: tuple[int, int]
    """(height, width) the model sees."""
    channels: int
    window: Window
    normalize: Normalize | None = None
    modalities: tuple[str, ...] = ()
    per_image: dict[str, Any] | None = None
    """Per-slice intensity normalisation after the window (``input.per_image``): ``{"kind": "zscore",
    "nonzero": bool}`` or ``{"kind": "minmax", "min": v, "max": v}`` (MONAI's NormalizeIntensity /
    ScaleIntensity without fixed values)."""
    stored_bits: int | None = None
    """``input.stored_bits``: the window is for images stored with this many bits; the caller scales images
    of another bit depth whose values are stored values (no rescale to modality units, e.g. CR/DX) onto it
    (a 15-bit film onto a 12-bit model: x 4095/32767) before the window (`viewer.ai.model_input`)."""


@dataclass(frozen=True)
class WeightsSpec:
    file: str
    format: str
    sha256: str | None
    """Lower-case hex; None only for MONAI bundles, whose metadata carries no checksum."""
    architecture: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """A validated model card plus where its package lives."""

    name: str
    version: str
    dims: int
    labels: tuple[str, ...]
    output: str
    input: InputSpec
    weights: WeightsSpec
    target_layer: str | None
    source: Path
    """The folder or .zip the card came from."""
    card_file: str
    """Display name of the card used in error messages (``chest/radscope-model.json``)."""
    root_in_zip: str | None = None
    """For zipped packages: the member folder holding the card ('' for the zip root)."""
    kind: str = "radscope"
    """``radscope`` or ``monai``."""
    thresholds: dict[str, float] = field(default_factory=dict)
    description: str = ""
    intended_use: str = ""
    training_data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    authors: tuple[str, ...] = ()
    license: str = ""
    scope: ScopeRules | None = None
    """Intended-use rules (``scope``; `inference.scope`), None when the card declares none."""
    ood: OODSpec | None = None
    """Out-of-distribution statistics (``ood``; `inference.ood`), None when the package has none."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def error(self, message: str) -> ModelPackageError:
        return ModelPackageError(f"{self.card_file}: {message}")

    def read_weights(self) -> bytes:
        """The weights file's bytes, after checking them against the card's sha256."""
        data = _read_member(self.source, self.root_in_zip, self.weights.file, self.card_file)
        digest = hashlib.sha256(data).hexdigest()
        if self.weights.sha256 is not None and digest != self.weights.sha256:
            raise self.error(
                f"weights.sha256 does not match {self.weights.file} (card {self.weights.sha256[:12]}..., "
                f"file {digest[:12]}...); refusing to load"
            )
        return data

    def weights_sha256(self) -> str:
        """The card's sha256, or (MONAI bundles) the file's."""
        if self.weights.sha256 is not None:
            return self.weights.sha256
        return hashlib.sha256(self.read_weights()).hexdigest()


# -- reading ---------------------------------------------------------------------------------


def read_card(path: str | Path) -> ModelCard:
    """Read and validate the package at ``path`` (folder, .zip, or the card file itself)."""
    path = Path(path)
    if path.is_file() and path.name == CARD_NAME:
        path = path.parent
    if not path.exists():
        raise ModelPackageError(f"{path}: no such model package")
    if path.is_dir():
        if (path / CARD_NAME).is_file():
            return _parse_radscope(_load_json(path / CARD_NAME, _label(path, CARD_NAME)), path, None,
                                   _label(path, CARD_NAME))
        if (path / MONAI_METADATA).is_file():
            return _parse_monai(path, None)
        raise ModelPackageError(f"{path}: neither {CARD_NAME} nor a MONAI bundle ({MONAI_METADATA})")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    raise ModelPackageError(f"{path}: not a model package (expected a folder or a .zip)")


def _label(folder: Path, member: str) -> str:
    return f"{folder.name}/{member}"


def _as_card(data: Any, label: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ModelPackageError(f"{label}: the card must be a JSON object")
    return data


def _load_json(file: Path, label: str) -> dict[str, Any]:
    """A card file, bounded in size (checked before reading) and depth (:mod:`inference.jsonsafe`)."""
    try:
        return _as_card(jsonsafe.read_file(file, MAX_CARD_BYTES, label), label)
    except jsonsafe.JsonLimitError as exc:
        raise ModelPackageError(str(exc)) from None


def _zip_json(zf: zipfile.ZipFile, member: str, label: str) -> dict[str, Any]:
    try:
        return _as_card(jsonsafe.read_member(zf, member, MAX_CARD_BYTES, label), label)
    except jsonsafe.JsonLimitError as exc:
        raise ModelPackageError(str(exc)) from None


def _read_zip(path: Path) -> ModelCard:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            for marker, monai in ((CARD_NAME, False), (MONAI_METADATA, True)):
                hits = [n for n in names if n == marker or n.endswith("/" + marker)]
                hits = [n for n in hits if n.count("/") - marker.count("/") <= 1]
                if not hits:
                    continue
                member = min(hits, key=len)
                root = member[: -len(marker)].rstrip("/")
                if monai:
                    return _parse_monai(path, root)
                label = f"{path.name}:{member}"
                return _parse_radscope(_zip_json(zf, member, label), path, root, label)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelPackageError(f"{path}: cannot read the zip ({exc})") from exc
    raise ModelPackageError(f"{path}: the zip holds no {CARD_NAME} (nor a MONAI bundle)")


def _safe_member(name: str, label: str) -> str:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name or not name:
        raise ModelPackageError(f"{label}: weights.file must be a plain relative path inside the package")
    return str(p)


def _read_member(source: Path, root_in_zip: str | None, name: str, label: str, max_bytes: int | None = None) -> bytes:
    """A package file's bytes: a regular file (not a device or FIFO behind a link) of at most ``max_bytes``
    (:data:`MAX_WEIGHTS_BYTES`); in a zip, a member that does not inflate more than :data:`MAX_RATIO`-fold."""
    name = _safe_member(name, label)
    limit = MAX_WEIGHTS_BYTES if max_bytes is None else max_bytes
    try:
        if root_in_zip is None:
            path = source / name
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise ModelPackageError(f"{label}: weights file {name} is not a regular file; refused")
            if st.st_size > limit:
                raise ModelPackageError(f"{label}: file {name} is {st.st_size} bytes, larger than {limit}; refused")
            return path.read_bytes()
        member = f"{root_in_zip}/{name}" if root_in_zip else name
        with zipfile.ZipFile(source) as zf:
            info = zf.getinfo(member)
            if info.file_size > limit or (
                    info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                raise ModelPackageError(f"{label}: weights member {member} would inflate to {info.file_size} bytes "
                                        f"from {info.compress_size}; refused")
            return zf.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelPackageError(f"{label}: weights file {name} cannot be read ({exc})") from exc


class _Fields:
    """Typed access to a JSON object with errors that name the file and the dotted field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, key: str, what: str) -> ModelPackageError:
        return ModelPackageError(f"{self.label}: {key} {what}")

    def get(self, obj: Mapping[str, Any], key: str, required: bool = True) -> Any:
        node: Any = obj
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if required:
                    raise self.fail(key, "is missing")
                return None
            node = node[part]
        return node

    def string(self, obj: Mapping[str, Any], key: str, required: bool = True, default: str = "") -> str:
        v = self.get(obj, key, required)
        if v is None and not required:
            return default
        if not isinstance(v, str) or (required and not v.strip()):
            raise self.fail(key, "must be a non-empty string" if required else "must be a string")
        return v

    def number(self, obj: Mapping[str, Any], key: str, positive: bool = False) -> float:
        v = self.get(obj, key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (positive and v <= 0):
            raise self.fail(key, "must be a positive number" if positive else "must be a number")
        return float(v)

    def integer(self, obj: Mapping[str, Any], key: str, allowed: Sequence[int] | None = None,
                minimum: int = 1) -> int:
        v = self.get(obj, key)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}")
        if allowed is not None and v not in allowed:
            raise self.fail(key, f"must be one of {list(allowed)}")
        return v

    def choice(self, obj: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str:
        v = self.get(obj, key)
        if v not in allowed:
            raise self.fail(key, f"must be one of {list(allowed)}, got {v!r}")
        return str(v)

    def strings(self, obj: Mapping[str, Any], key: str, required: bool = True) -> tuple[str, ...]:
        v = self.get(obj, key, required)
        if v is None:
            return ()
        if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v) or (required and not v):
            raise self.fail(key, "must be a non-empty list of strings" if required else "must be a list of strings")
        return tuple(v)

    def numbers(self, obj: Mapping[str, Any], key: str, n: int | None = None, positive: bool = False) -> tuple[float, ...]:
        v = self.get(obj, key)
        vals = v if isinstance(v, list) else [v]
        ok = bool(vals) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               and (not positive or x > 0) for x in vals)
        if not ok or (n is not None and len(vals) not in (1, n)):
            kind = "positive number" if positive else "number"
            raise self.fail(key, f"must be a {kind} or a list of {n or 'some'} {kind}s")
        return tuple(float(x) for x in vals)

    def mapping(self, obj: Mapping[str, Any], key: str) -> dict[str, Any]:
        v = self.get(obj, key, required=False)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.fail(key, "must be an object")
        return v

    def text(self, obj: Mapping[str, Any], key: str) -> str:
        """An optional free-text field (a string, or a list of strings joined by new lines)."""
        v = self.get(obj, key, required=False)
        if v is None:
            return ""
        if isinstance(v, list) and all(isinstance(s, str) for s in v):
            return "\n".join(v)
        if not isinstance(v, str):
            raise self.fail(key, "must be a string")
        return v


def _parse_input(f: _Fields, data: Mapping[str, Any]) -> InputSpec:
    size = f.get(data, "input.size")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise f.fail("input.size", "must be [height, width], two positive integers")
    channels = f.integer(data, "input.channels")
    clip = f.get(data, "input.window.clip", required=False)
    if clip is not None and not isinstance(clip, bool):
        raise f.fail("input.window.clip", "must be true or false")
    window = Window(f.number(data, "input.window.center"), f.number(data, "input.window.width", positive=True),
                    clip is not False)
    normalize = None
    if f.get(data, "input.normalize", required=False) is not None:
        f.mapping(data, "input.normalize")
        normalize = Normalize(f.numbers(data, "input.normalize.mean", channels),
                              f.numbers(data, "input.normalize.std", channels, positive=True))
    modalities = tuple(m.upper() for m in f.strings(data, "input.modalities", required=False))
    per_image = f.get(data, "input.per_image", required=False)
    if per_image is not None and not (
            isinstance(per_image, dict) and (
                (per_image.get("kind") == "zscore" and set(per_image) <= {"kind", "nonzero"}
                 and isinstance(per_image.get("nonzero", False), bool))
                or (per_image.get("kind") == "minmax" and set(per_image) == {"kind", "min", "max"}
                    and all(isinstance(per_image[k], (int, float)) and not isinstance(per_image[k], bool)
                            and math.isfinite(per_image[k]) for k in ("min", "max"))))):
        raise f.fail("input.per_image", 'must be {"kind": "zscore", "nonzero": bool} or '
                                        '{"kind": "minmax", "min": number, "max": number}')
    stored_bits = f.get(data, "input.stored_bits", required=False)
    if stored_bits is not None and not (isinstance(stored_bits, int) and not isinstance(stored_bits, bool)
                                        and 1 <= stored_bits <= 32):
        raise f.fail("input.stored_bits", "must be a whole number of bits, 1 to 32")
    return InputSpec((size[0], size[1]), channels, window, normalize, modalities, per_image, stored_bits)


def _parse_radscope(data: dict[str, Any], source: Path, root: str | None, label: str) -> ModelCard:
    f = _Fields(label)
    fmt = f.string(data, "format")
    if fmt != CARD_FORMAT:
        raise f.fail("format", f"must be {CARD_FORMAT!r}, got {fmt!r}")
    labels = f.strings(data, "labels")
    if len(set(labels)) != len(labels):
        raise f.fail("labels", "must not repeat a label")
    wformat = f.choice(data, "weights.format", WEIGHT_FORMATS)
    sha = f.string(data, "weights.sha256").lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise f.fail("weights.sha256", "must be 64 hex digits")
    arch = None
    if wformat in ARCHITECTURE_FORMATS:
        arch = f.string(data, "weights.architecture")
    wfile = _safe_member(f.string(data, "weights.file"), label)
    target = f.string(data, "explain.target_layer")
    thresholds = f.mapping(data, "thresholds")
    for k in thresholds:
        if k not in labels:
            raise f.fail(f"thresholds.{k}", "is not one of the labels")
        f.number(thresholds, k)
    authors = f.get(data, "authors", required=False)
    if isinstance(authors, str):
        authors = [authors]
    return ModelCard(
        name=f.string(data, "name"),
        version=f.string(data, "version"),
        dims=f.integer(data, "dims", allowed=(2,)),
        labels=labels,
        output=f.choice(data, "output", OUTPUTS),
        input=_parse_input(f, data),
        weights=WeightsSpec(wfile, wformat, sha, arch),
        target_layer=target,
        source=source,
        card_file=label,
        root_in_zip=root,
        thresholds={k: float(v) for k, v in thresholds.items()},
        description=f.text(data, "description"),
        intended_use=f.text(data, "intended_use"),
        training_data=f.text(data, "training_data"),
        metrics=f.mapping(data, "metrics"),
        authors=f.strings({"authors": authors}, "authors", required=False) if authors is not None else (),
        license=f.text(data, "license"),
        scope=parse_scope(data.get("scope"), f.fail),
        ood=parse_ood(data.get("ood"), f.fail),
        raw=data,
    )


def read_member(card: ModelCard, name: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a file inside ``card``'s package (a plain relative path; folder or zip), refused unread
    when larger than ``max_bytes`` (default: :data:`MAX_WEIGHTS_BYTES`)."""
    return _read_member(card.source, card.root_in_zip, name, card.card_file, max_bytes)


def _parse_monai(source: Path, root: str | None) -> ModelCard:
    """Map a MONAI bundle's ``network_data_format`` onto the card fields (weights: models/model.ts)."""
    if root is None:
        label = _label(source, MONAI_METADATA)
        data = _load_json(source / MONAI_METADATA, label)
    else:
        member = f"{root}/{MONAI_METADATA}" if root else MONAI_METADATA
        label = f"{source.name}:{member}"
        try:
            with zipfile.ZipFile(source) as zf:
                data = _zip_json(zf, member, label)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ModelPackageError(f"{label}: cannot read the zip ({exc})") from exc
    f = _Fields(label)
    fmt = f.mapping(data, "network_data_format")
    if not fmt:
        raise f.fail("network_data_format", "is missing")
    inputs = f.mapping(fmt, "inputs")
    outputs = f.mapping(fmt, "outputs")
    if len(inputs) != 1 or len(outputs) != 1:
        raise f.fail("network_data_format", "must have exactly one input and one output")
    in_name, out_name = next(iter(inputs)), next(iter(outputs))
    ik, ok = f"network_data_format.inputs.{in_name}", f"network_data_format.outputs.{out_name}"
    shape = f.get(data, f"{ik}.spatial_shape")
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise f.fail(f"{ik}.spatial_shape", "must be two positive integers (2D models only)")
    # value_range describes the data, not a window: the intensity pipeline comes from the inference config
    from inference import monai_bundle

    monai_bundle.check_output(f.mapping(outputs, out_name), ok, f.fail)
    members, read = _bundle_files(source, root)
    problem = monai_bundle.weights_message(members)
    if problem is not None:
        raise ModelPackageError(f"{label}: this MONAI bundle {problem}")
    pipeline = monai_bundle.intensity(monai_bundle.read_config(read, label, f.fail), f.fail)
    channels = f.integer(data, f"{ik}.num_channels")
    n_out = f.integer(data, f"{ok}.num_channels")
    chdef = f.mapping(data, f"{ok}.channel_def")
    labels = tuple(str(chdef.get(str(i), f"class{i}")) for i in range(n_out))
    modality = f.get(data, f"{ik}.modality", required=False)
    modalities = tuple(m.upper() for m in ([modality] if isinstance(modality, str) else modality or [])
                       if isinstance(m, str) and m.strip().lower() not in ("", "none", "any"))
    (center, width, clip), norm = pipeline.window, pipeline.normalize
    spec = InputSpec((shape[0], shape[1]), channels, Window(center, width, clip),
                     Normalize((norm[0],), (norm[1],)) if norm else None, modalities, pipeline.per_image)
    authors = f.get(data, "authors", required=False)
    return ModelCard(
        name=f.string(data, "name", required=False, default=source.stem if root is not None else source.name),
        version=f.string(data, "version"),
        dims=2,
        labels=labels,
        output="sigmoid" if n_out == 1 else "softmax",
        input=spec,
        weights=WeightsSpec(MONAI_WEIGHTS, "torchscript", None),
        target_layer=None,
        source=source,
        card_file=label,
        root_in_zip=root,
        kind="monai",
        description="\n".join(t for t in (f.text(data, "description"), f"Input pipeline: {pipeline.source}.") if t),
        intended_use=f.text(data, "intended_use"),
        training_data=f.text(data, "data_source"),
        authors=(authors,) if isinstance(authors, str) else tuple(authors or ()),
        license=f.text(data, "license") or f.text(data, "copyright"),
        raw=data,
    )


def _bundle_files(source: Path, root: str | None) -> tuple[set[str], Callable[[str], bytes | None]]:
    """The bundle's member names (relative to its root) and a reader for one of them (None if absent)."""
    if root is None:
        members = {str(p.relative_to(source)).replace("\\", "/") for p in (source / "models").glob("*") if p.is_file()}

        def read_folder(name: str) -> bytes | None:
            path = source / name
            return path.read_bytes() if path.is_file() else None

        return members, read_folder
    prefix = f"{root}/" if root else ""
    with zipfile.ZipFile(source) as zf:
        names = {n[len(prefix):] for n in zf.namelist() if n.startswith(prefix)}

    def read_zip(name: str) -> bytes | None:
        if name not in names:
            return None
        with zipfile.ZipFile(source) as zf:
            if zf.getinfo(prefix + name).file_size > MAX_CARD_BYTES * 4:
                raise ModelPackageError(f"{source.name}:{prefix + name}: larger than {MAX_CARD_BYTES * 4} bytes")
            return zf.read(prefix + name)

    return names, read_zip


# -- writing ---------------------------------------------------------------------------------


def save_package(module: torch.nn.Module, card_fields: Mapping[str, Any], out_dir: str | Path,
                 example_input: torch.Tensor) -> ModelCard:
    """Export ``module`` with ``torch.export`` (dynamic batch) into ``out_dir`` and write its card.

    ``card_fields`` holds every card key except ``weights`` (``format`` defaults to
    ``radscope-model/1``). The module must map ``(batch, channels, h, w)`` float32 to
    ``(batch, labels)`` logits. Returns the card as read back (so it is known valid).
    """
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    x = example_input
    if x.shape[0] < 2:  # a batch of 1 would specialise the exported batch dimension
        x = x.expand(2, *x.shape[1:]).contiguous()
    dyn = ({0: torch.export.Dim("batch", min=1, max=65536)},)
    with torch.no_grad():
        program = torch.export.export(module, (x,), dynamic_shapes=dyn)
        weights = out / "model.pt2"
        torch.export.save(program, weights)
        expected = module(x)
        from inference.archives import safe_export_archive  # read back exactly as load_model reads it

        got = torch.export.load(io.BytesIO(safe_export_archive(weights.read_bytes(), str(weights)))).module()(x)
    if not torch.allclose(expected, got, atol=1e-5, rtol=1e-4, equal_nan=True):
        raise ModelPackageError(f"{weights}: the exported program does not reproduce the module's output")
    card = {"format": CARD_FORMAT, **dict(card_fields)}
    card["weights"] = {"file": weights.name, "format": "torch.export",
                       "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    (out / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return read_card(out)


def write_card(out_dir: str | Path, card_fields: Mapping[str, Any], weights_file: str, weights_format: str,
               architecture: str | None = None) -> ModelCard:
    """Write a card for a weights file already in ``out_dir`` (TorchScript or safetensors)."""
    out = Path(out_dir)
    card = {"format": CARD_FORMAT, **dict(card_fields)}
    card["weights"] = {"file": weights_file, "format": weights_format,
                       "sha256": hashlib.sha256((out / weights_file).read_bytes()).hexdigest()}
    if architecture is not None:
        card["weights"]["architecture"] = architecture
    (out / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return read_card(out)
