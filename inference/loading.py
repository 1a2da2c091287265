"""Load a model package's weights into a `LoadedModel` without running pickled code.

Formats: ``torch.export`` (``.pt2``; graph with ``nn_module_stack`` metadata, so layers are
reachable; built by :mod:`inference.pt2graph` without ``torch.export.load`` and its sympy/dynamo/inductor
imports, which remain the fallback for programs that reader does not build), ``torchscript`` (forward only: input-space explanations), ``safetensors`` and
``state_dict`` (a ``torch.load`` file that must load with ``weights_only=True``), both with a
built-in ``weights.architecture``. The sha256 is checked before any of them is deserialised, and
``.pt2`` / TorchScript archives are inspected first (:mod:`inference.archives`): nothing pickled with
code, no compiled libraries, no Python in the program is ever run.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from inference import architectures
from inference.archives import ArchiveRefusedError, check_torchscript_archive, safe_export_archive
from inference.graph import SplitGraph, fold_batchnorm, forward_graph, split_at
from inference.package import ModelCard, ModelPackageError, read_card
from inference.pt2graph import UnsupportedProgram, load_program

log = logging.getLogger(__name__)


class UnsupportedExplanationError(ValueError):
    """The model's format cannot give what the explainer needs (e.g. layer access in TorchScript)."""


@dataclass
class LoadedModel:
    """A model ready to run: ``model(x) -> logits`` and, where the format allows, graph splits."""

    card: ModelCard
    module: nn.Module
    """The runnable module: a BatchNorm-folded GraphModule, or a ScriptModule."""
    source: nn.Module
    """What was loaded (exported module, eager module or ScriptModule), unfolded."""
    sha256: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _splits: dict[str, SplitGraph] = field(default_factory=dict, repr=False)

    @property
    def format(self) -> str:
        return self.card.weights.format

    @property
    def has_layers(self) -> bool:
        """Whether layer activations can be reached (CAM methods, layer probes)."""
        return not isinstance(self.source, torch.jit.ScriptModule)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores from logits as the card's ``output`` says (sigmoid or softmax)."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.card.output == "sigmoid" else torch.softmax(logits, dim=1)

    def split(self, target_layer: str | None = None) -> SplitGraph:
        """Trunk/head split at ``target_layer`` (default: the card's), BatchNorm folded, cached."""
        layer = target_layer or self.card.target_layer
        if not self.has_layers:
            raise UnsupportedExplanationError(
                f"{self.card.card_file}: {self.format} models do not expose layers (ScriptModules refuse hooks); "
                "use an input-space method such as integrated-gradients")
        if not layer:
            raise UnsupportedExplanationError(f"{self.card.card_file}: explain.target_layer is not set")
        if layer not in self._splits:
            s = split_at(self.source, layer)
            s = SplitGraph(fold_batchnorm(s.trunk), fold_batchnorm(s.head), s.target_layer, s.n_carried)
            s.trunk.to(self.device)
            s.head.to(self.device)
            self._splits[layer] = s
        return self._splits[layer]

    def refresh(self) -> None:
        """Re-derive the runnable graph and splits from ``source`` (after its weights changed)."""
        self._splits.clear()
        if not isinstance(self.source, torch.jit.ScriptModule):
            self.module = _runnable(self.source).to(self.device)

    def to(self, device: torch.device | str) -> LoadedModel:
        """Move every part to ``device`` (in place); returns self."""
        self.device = torch.device(device)
        for m in (self.module, self.source, *(p for s in self._splits.values() for p in (s.trunk, s.head))):
            m.to(self.device)
        return self

    def copy(self) -> LoadedModel:
        """An independent deep copy (the sanity check randomises weights of a copy)."""
        source = copy.deepcopy(self.source)
        module = source if self.module is self.source else copy.deepcopy(self.module)
        return LoadedModel(self.card, module, source, self.sha256, self.device)


def _refuse_pickle(card: ModelCard, data: bytes, exc: Exception) -> ModelPackageError:
    is_pickle = data[:1] == b"\x80" or data[:2] == b"PK" and b"data.pkl" in data[:4096]
    hint = " (the file is a pickle; RadScope never unpickles code)" if is_pickle else ""
    return card.error(f"{card.weights.file} is not a valid {card.weights.format} file{hint}: {exc}")


def _load_state_dict(card: ModelCard, data: bytes) -> dict[str, torch.Tensor]:
    if card.weights.format == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise _refuse_pickle(card, data, exc) from exc
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refusal is an UnpicklingError; anything else is a bad file
        raise card.error(f"{card.weights.file} is a pickle that needs code execution to load; refused "
                         f"(only weights_only=True pickles are accepted): {str(exc).splitlines()[0]}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise card.error(f"{card.weights.file} does not hold a state dict of tensors")
    return state


def _build_eager(card: ModelCard, data: bytes) -> nn.Module:
    name = card.weights.architecture or ""
    try:
        module = architectures.build(name, card.input.channels, len(card.labels))
    except KeyError as exc:
        raise card.error(f"weights.architecture: {exc.args[0]}") from exc
    state = _load_state_dict(card, data)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise card.error(f"{card.weights.file} does not fit architecture {name!r}: "
                         f"{str(exc).splitlines()[0]} ...") from exc
    return module.eval()


def read_exported(data: bytes, where: str) -> nn.Module:
    """The runnable module of an inspected ``.pt2`` (:func:`inference.archives.safe_export_archive`'s
    output): built by :mod:`inference.pt2graph`; a program that reader does not build goes through
    ``torch.export.load`` (said in a debug log). Raises ArchiveRefusedError for a malformed program."""
    try:
        return load_program(data, where)
    except ArchiveRefusedError:
        raise
    except UnsupportedProgram as exc:
        log.debug("%s: %s; loading it through torch.export.load (imports sympy, dynamo, inductor)", where, exc)
    except Exception as exc:  # a case the reader gets wrong must not make a valid, inspected program unusable
        log.debug("%s: the graph reader failed (%s: %s); loading it through torch.export.load", where,
                  type(exc).__name__, exc)
    return torch.export.load(io.BytesIO(data)).module()


def _load_source(card: ModelCard, data: bytes) -> nn.Module:
    fmt = card.weights.format
    where = f"{card.card_file}: {card.weights.file}"
    if fmt == "torch.export":
        try:
            data = safe_export_archive(data, where)
        except ArchiveRefusedError as exc:
            raise ModelPackageError(str(exc)) from None
        try:
            return read_exported(data, where)
        except ArchiveRefusedError as exc:
            raise ModelPackageError(str(exc)) from None
        except Exception as exc:
            raise _refuse_pickle(card, data, exc) from exc
    if fmt == "torchscript":
        try:
            check_torchscript_archive(data, where)
        except ArchiveRefusedError as exc:
            raise ModelPackageError(str(exc)) from None
        try:
            return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
        except Exception as exc:
            raise _refuse_pickle(card, data, exc) from exc
    return _build_eager(card, data)


def _runnable(source: nn.Module) -> nn.Module:
    """What runs the forward pass: the BatchNorm-folded graph (a ScriptModule runs as is)."""
    if isinstance(source, torch.jit.ScriptModule):
        return source
    return forward_graph(source)


def load_model(package: ModelCard | str, device: torch.device | str = "cpu") -> LoadedModel:
    """Read (if needed), check and load a package; the returned model is in eval mode on ``device``."""
    card = package if isinstance(package, ModelCard) else read_card(package)
    if card.dims != 2:
        raise card.error("dims: only 2D models are supported")
    data = card.read_weights()  # raises on a sha256 mismatch before anything is deserialised
    sha = card.weights.sha256 or hashlib.sha256(data).hexdigest()
    source = _load_source(card, data)
    try:
        module = _runnable(source)
    except Exception as exc:
        raise card.error(f"cannot prepare the model graph: {exc}") from exc
    model = LoadedModel(card, module, source, sha)
    check_shapes(model)
    return model.to(device)


def check_shapes(model: LoadedModel) -> None:
    """Run one blank input of the card's shape and check the output has one score per label: a model
    whose channels, input size or label count differ from its card is refused now, naming the package,
    not with a traceback in the middle of a run."""
    card = model.card
    h, w = card.input.size
    shape = (1, card.input.channels, h, w)
    try:
        with torch.no_grad():
            out = model(torch.zeros(shape, device=model.device))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise card.error(f"the model does not accept the input its card describes (input.channels "
                         f"{card.input.channels}, input.size {h}x{w}): {first}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, len(card.labels)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise card.error(f"the model gives {got} for one image, not (1, {len(card.labels)}): one score "
                         f"per label ({', '.join(card.labels)}) is expected")


__all__ = ["LoadedModel", "UnsupportedExplanationError", "check_shapes", "load_model", "read_exported"]
