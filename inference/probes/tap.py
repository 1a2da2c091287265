"""Layer access for probes: the module tree of a model and its activations at any layer.

Every layer-bearing format (``torch.export`` programs and eager modules) is reached through its FX
graph: ``nn_module_stack`` metadata says which module path each node ran under, and a layer's
output is the one node inside that path whose value is used outside it. `GraphTap.run` executes the
graph node by node (an ``fx.Interpreter``), copies the wanted layers' outputs as they appear (later
in-place ops such as ``relu_`` cannot change them) and stops as soon as it has them all. No hooks
are used: they do not fire on exported programs, and ScriptModules refuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import torch
import torch.fx as fx

from inference.graph import LayerNotFoundError, as_graph_module
from inference.loading import LoadedModel, UnsupportedExplanationError

TORCHSCRIPT_NOTE = ("TorchScript model: module types and parameter counts only; ScriptModules refuse hooks and "
                    "carry no layer metadata, so output shapes, activations and layer-wise maps are not available")


@dataclass(frozen=True)
class LayerInfo:
    """One module of the model: its path (``""`` is the whole model), type, output shape and size."""

    path: str
    type_name: str
    output_shape: tuple[int, ...] | None
    """Shape of the layer's output for the dry-run batch; None when unknown (TorchScript, several outputs)."""
    n_params: int
    """Parameters of the module and everything inside it."""
    depth: int
    note: str = ""
    """Why ``output_shape`` is missing, when it is."""

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1] if self.path else "(model)"


def _type_name(value: Any) -> str:
    name = value.__name__ if isinstance(value, type) else str(value)
    return name.rsplit(".", 1)[-1]


def _stack(node: fx.Node) -> dict[str, str]:
    """{module path: type name} of every module the node ran under."""
    stack = node.meta.get("nn_module_stack") or {}
    return {str(v[0]): _type_name(v[1]) for v in stack.values()}


class _Done(Exception):
    """Raised inside the interpreter once every wanted value has been captured."""


class RedirectedReLU(torch.autograd.Function):
    """ReLU whose gradient is redirected when none gets through (Lucid's ``redirected_relu_grad``).

    Where a sample's ordinary ReLU gradient is zero everywhere (a dead unit: optimisation could never
    start), the incoming gradient passes wherever it would not push an already negative input further
    down; otherwise the ordinary gradient is used. The forward pass is an ordinary ReLU.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        relu_grad = torch.where(x < 0, torch.zeros_like(grad), grad)
        # grad is d(loss)/d(out) for a loss being minimised: grad > 0 would push x lower
        redirected = torch.where((x < 0) & (grad > 0), torch.zeros_like(grad), grad)
        through = relu_grad.flatten(1).norm(dim=1) > 0 if grad.ndim > 1 else relu_grad.norm() > 0
        shape = (-1,) + (1,) * (grad.ndim - 1) if grad.ndim > 1 else ()
        return torch.where(through.reshape(shape), relu_grad, redirected)


_RELU_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.ops.aten.relu.default, torch.ops.aten.relu_.default}


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, wanted: dict[fx.Node, list[str]], shapes: bool,
                 redirect_relu: bool = False) -> None:
        super().__init__(gm, garbage_collect_values=True)
        # _Done (the early stop) is an exception: with extra_traceback the Interpreter would format the whole
        # graph (print_readable, which imports sympy and torch._dynamo: ~90 MB) for a structured-trace log each time
        self.extra_traceback = False
        self.wanted = wanted
        self.values: dict[str, torch.Tensor] = {}
        self.shapes: dict[fx.Node, tuple[int, ...]] | None = {} if shapes else None
        self.redirect_relu = redirect_relu

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        if self.redirect_relu and target in _RELU_FUNCTIONS:
            return RedirectedReLU.apply(args[0])
        return super().call_function(target, args, kwargs)

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        if self.redirect_relu and isinstance(self.fetch_attr(target), torch.nn.ReLU):
            return RedirectedReLU.apply(args[0])
        return super().call_module(target, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if self.shapes is not None and isinstance(out, torch.Tensor):
            self.shapes[n] = tuple(out.shape)
        if n in self.wanted:
            value = out.clone() if isinstance(out, torch.Tensor) else out
            for path in self.wanted[n]:
                self.values[path] = value
            if len(self.values) == sum(len(v) for v in self.wanted.values()) and self.shapes is None:
                raise _Done
        return out


class GraphTap:
    """Activations of any layer of a `LoadedModel` (``torch.export`` or eager), from its unfolded graph."""

    def __init__(self, model: LoadedModel) -> None:
        if not model.has_layers:
            raise UnsupportedExplanationError(f"{model.card.card_file}: {TORCHSCRIPT_NOTE}")
        self.model = model
        self.gm = as_graph_module(model.source)
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ValueError(f"only single-input models are supported (graph has {len(placeholders)} inputs)")
        self.types: dict[str, str] = {}
        inside: dict[str, list[fx.Node]] = {}
        for node in self.gm.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            for path, type_name in _stack(node).items():
                if path:
                    self.types.setdefault(path, type_name)
                    inside.setdefault(path, []).append(node)
        self._outputs: dict[str, fx.Node | None] = {}
        self.n_outputs: dict[str, int] = {}
        for path, nodes in inside.items():
            members = set(nodes)
            leaving = [n for n in nodes if any(u not in members for u in n.users)]
            self._outputs[path] = leaving[0] if len(leaving) == 1 else None
            self.n_outputs[path] = len(leaving)
        self._root_output = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]

    @property
    def layers(self) -> list[str]:
        """Module paths in the order the forward pass reaches them."""
        return list(self.types)

    def output_node(self, layer: str) -> fx.Node:
        if layer not in self._outputs:
            known = ", ".join(self.layers[:40])
            raise LayerNotFoundError(f"{layer!r} is not a layer of {self.model.card.name} (layers: {known})")
        node = self._outputs[layer]
        if node is None:
            raise LayerNotFoundError(f"layer {layer!r} produces {self.n_outputs[layer]} tensors used outside it "
                                 "(e.g. a module called more than once); pick its parent or a sub-layer")
        return node

    def run(self, x: torch.Tensor, layers: Sequence[str], redirect_relu: bool = False) -> dict[str, torch.Tensor]:
        """``{layer: output}`` for ``x`` (model input, on the model's device); autograd follows the
        caller's grad mode. Stops after the last wanted layer. ``redirect_relu`` swaps every ReLU for
        `RedirectedReLU` (same values, gradients that can revive dead units: feature visualisation)."""
        wanted: dict[fx.Node, list[str]] = {}
        for layer in layers:
            wanted.setdefault(self.output_node(layer), []).append(layer)
        rec = _Recorder(self.gm, wanted, shapes=False, redirect_relu=redirect_relu)
        try:
            rec.run(x)
        except _Done:
            pass
        return rec.values

    def shapes(self, x: torch.Tensor) -> dict[str, tuple[int, ...] | None]:
        """Output shape of every layer (and ``""``: the model) for one dry run on ``x``."""
        rec = _Recorder(self.gm, {}, shapes=True)
        with torch.inference_mode():
            out = rec.run(x)
        while isinstance(out, (tuple, list)) and len(out) == 1:
            out = out[0]
        shapes: dict[str, tuple[int, ...] | None] = {
            "": tuple(out.shape) if isinstance(out, torch.Tensor) else None}
        for path, node in self._outputs.items():
            shapes[path] = rec.shapes.get(node) if node is not None and rec.shapes is not None else None
        return shapes


def _param_counts(module: torch.nn.Module) -> dict[str, int]:
    """Parameters per module path, each counted for its owner and every ancestor ("" is the model)."""
    counts: dict[str, int] = {"": 0}
    for name, p in module.named_parameters():
        parts = name.split(".")[:-1]
        counts[""] += p.numel()
        for i in range(1, len(parts) + 1):
            key = ".".join(parts[:i])
            counts[key] = counts.get(key, 0) + p.numel()
    return counts


def _script_types(module: torch.nn.Module) -> dict[str, str]:
    return {path: getattr(m, "original_name", type(m).__name__) for path, m in module.named_modules()}


def layer_tree(model: LoadedModel, x: torch.Tensor | None = None) -> list[LayerInfo]:
    """Every module of ``model``, in forward order, with its output shape for ``x`` (a model-input
    batch; without it, shapes are None). TorchScript: types and parameter counts only (see
    `TORCHSCRIPT_NOTE`)."""
    counts = _param_counts(model.source)
    if not model.has_layers:
        types = _script_types(model.source)
        return [LayerInfo(p, t, None, counts.get(p, 0), p.count(".") + 1 if p else 0, "TorchScript: not available")
                for p, t in types.items()]
    tap = GraphTap(model)
    shapes = tap.shapes(x.to(model.device)) if x is not None else {}
    root_type = _type_name(model.card.weights.architecture or type(model.source).__name__)
    if model.format == "torch.export":
        root_type = "ExportedProgram"
    rows = [LayerInfo("", root_type, shapes.get(""), counts[""], 0)]
    for path in tap.layers:
        n = tap.n_outputs[path]
        note = "" if n == 1 else f"{n} outputs (called more than once)" if n else "no output used outside it"
        rows.append(LayerInfo(path, tap.types[path], shapes.get(path), counts.get(path, 0), path.count(".") + 1, note))
    return rows
