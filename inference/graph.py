"""FX graphs of models: find a layer through ``nn_module_stack`` metadata and split the graph there.

A ``.pt2`` program's module (built by :mod:`inference.pt2graph`, or ``torch.export``'s ``module()``) and
``torch.fx.symbolic_trace`` of an eager module record, on every node, the stack of module paths it was
traced under. `split_at` cuts a graph at the
output of one module path into a *trunk* (input -> activation) and a *head* (activation -> logits),
so that explainers run the trunk without autograd and back-propagate through the head only. Hooks
are not needed (they do not fire on exported programs, and ScriptModules refuse them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn


class LayerNotFoundError(ValueError):
    """The target layer is not a module path of the model's graph."""


def as_graph_module(module: nn.Module) -> fx.GraphModule:
    """The module itself if it already is a GraphModule, else its ``symbolic_trace``."""
    if isinstance(module, fx.GraphModule):
        return module
    return fx.symbolic_trace(module)


def _paths(node: fx.Node) -> set[str]:
    stack = node.meta.get("nn_module_stack") or {}
    return {str(v[0]) for v in stack.values()}


def module_paths(gm: fx.GraphModule) -> list[str]:
    """Every module path the graph's nodes were traced under, in first-seen order."""
    seen: dict[str, None] = {}
    for node in gm.graph.nodes:
        for path in sorted(_paths(node), key=len):
            if path:
                seen.setdefault(path, None)
    return list(seen)


def _ancestors(nodes: list[fx.Node]) -> set[fx.Node]:
    out: set[fx.Node] = set()
    todo = list(nodes)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        todo.extend(n.all_input_nodes)
    return out


def _output_node(gm: fx.GraphModule) -> fx.Node:
    out = next(n for n in gm.graph.nodes if n.op == "output")
    value = out.args[0]
    while isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError("the model must return one (batch, labels) tensor")
        value = value[0]
    if not isinstance(value, fx.Node):
        raise ValueError("the model must return one (batch, labels) tensor")
    return value


def _subgraph(gm: fx.GraphModule, inputs: list[fx.Node], outputs: list[fx.Node]) -> fx.GraphModule:
    """A new GraphModule computing ``outputs`` from ``inputs`` (sharing gm's parameters)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for i, n in enumerate(inputs):
        env[n] = graph.placeholder(f"in{i}_{n.name}")
    needed: set[fx.Node] = set()
    todo = list(outputs)
    while todo:
        n = todo.pop()
        if n in needed or n in env:
            continue
        needed.add(n)
        todo.extend(n.all_input_nodes)
    for n in gm.graph.nodes:
        if n in needed and n not in env:
            if n.op == "placeholder":
                raise ValueError(f"graph split needs input {n.name} that was not provided")
            env[n] = graph.node_copy(n, lambda a: env[a])
    graph.output(tuple(env[o] for o in outputs) if len(outputs) > 1 else env[outputs[0]])
    sub = fx.GraphModule(gm, graph)
    sub.graph.lint()
    return sub


@dataclass
class SplitGraph:
    """``trunk(x) -> act`` (or ``(act, *carried)``), ``head(act, *carried) -> logits``."""

    trunk: fx.GraphModule
    head: fx.GraphModule
    target_layer: str
    n_carried: int
    """Trunk values other than the activation that the head also reads (skip connections)."""

    def activation(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        out = self.trunk(x)
        if self.n_carried:
            return out[0], tuple(out[1:])
        return out, ()

    def logits(self, act: torch.Tensor, carried: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        return self.head(act, *carried)


def split_at(module: nn.Module, target_layer: str) -> SplitGraph:
    """Split ``module``'s graph at the output of the module path ``target_layer``."""
    gm = as_graph_module(module)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"only single-input models are supported (graph has {len(placeholders)} inputs)")
    inside = [n for n in gm.graph.nodes if n.op != "output" and target_layer in _paths(n)]
    if not inside:
        known = ", ".join(module_paths(gm)[:40])
        raise LayerNotFoundError(f"explain.target_layer {target_layer!r} is not a layer of the model (layers: {known})")
    inside_set = set(inside)
    leaving = [n for n in inside if any(u not in inside_set for u in n.users)]
    if len(leaving) != 1:
        raise LayerNotFoundError(
            f"layer {target_layer!r} must produce exactly one tensor used outside it, found {len(leaving)}")
    act = leaving[0]
    logits = _output_node(gm)
    trunk_nodes = _ancestors([act])
    # Walk back from the logits, stopping at the activation and at trunk values (skip connections).
    carried: list[fx.Node] = []
    seen: set[fx.Node] = set()
    todo = [logits]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n is act:
            continue
        if n in trunk_nodes and n.op != "get_attr":
            carried.append(n)
            continue
        todo.extend(n.all_input_nodes)
    if logits is act or act not in seen:
        raise LayerNotFoundError(f"layer {target_layer!r} does not feed the model's output")
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    carried.sort(key=order.__getitem__)
    trunk = _subgraph(gm, placeholders, [act, *carried])
    head = _subgraph(gm, [act, *carried], [logits])
    return SplitGraph(trunk, head, target_layer, len(carried))


def _fetch_attr(gm: nn.Module, target: str) -> torch.Tensor:
    obj: object = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    assert isinstance(obj, torch.Tensor)
    return obj


def _fold_aten_batchnorm(gm: fx.GraphModule) -> int:
    """Fold eval-mode ``aten.batch_norm`` into the ``aten.conv2d`` feeding it (exported graphs)."""
    aten = torch.ops.aten
    folded = 0
    for bn in list(gm.graph.nodes):
        if bn.op != "call_function" or bn.target is not aten.batch_norm.default:
            continue
        conv, bn_w, bn_b, mean, var, training, _momentum, eps = bn.args[:8]
        if training or not isinstance(conv, fx.Node) or conv.target is not aten.conv2d.default or len(conv.users) != 1:
            continue
        params = [conv.args[1], conv.args[2] if len(conv.args) > 2 else None, bn_w, bn_b, mean, var]
        if not all(p is None or (isinstance(p, fx.Node) and p.op == "get_attr") for p in params):
            continue
        w, b, gamma, beta, mu, sigma2 = (None if p is None else _fetch_attr(gm, p.target) for p in params)
        if w is None or mu is None or sigma2 is None:
            continue
        scale = torch.rsqrt(sigma2.double() + float(eps))
        if gamma is not None:
            scale = scale * gamma.double()
        new_w = (w.double() * scale.view(-1, *([1] * (w.ndim - 1)))).to(w.dtype)
        shift = -mu.double() * scale + (beta.double() if beta is not None else 0.0)
        new_b = (shift + (b.double() * scale if b is not None else 0.0)).to(w.dtype)
        name_w, name_b = f"_bnfold{folded}_weight", f"_bnfold{folded}_bias"
        gm.register_buffer(name_w, new_w.detach().clone())
        gm.register_buffer(name_b, new_b.detach().clone())
        with gm.graph.inserting_before(conv):
            wn, bnode = gm.graph.get_attr(name_w), gm.graph.get_attr(name_b)
        args = list(conv.args) + [None] * (7 - len(conv.args))
        defaults = [None, None, None, [1, 1], [0, 0], [1, 1], 1]
        args = [a if a is not None or i < 3 else defaults[i] for i, a in enumerate(args)]
        args[1], args[2] = wn, bnode
        conv.args = tuple(args)
        bn.replace_all_uses_with(conv)
        gm.graph.erase_node(bn)
        folded += 1
    return folded


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """A copy of ``gm`` with every eval-mode BatchNorm that follows a convolution folded into it."""
    import copy

    from torch.fx.experimental.optimization import fuse

    gm = copy.deepcopy(gm)
    if any(n.op == "call_module" for n in gm.graph.nodes):
        gm = fuse(gm, inplace=True, no_trace=True)  # symbolic_trace graphs: Conv2d + BatchNorm2d modules
    if _fold_aten_batchnorm(gm):
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return gm


def forward_graph(module: nn.Module) -> fx.GraphModule:
    """``module``'s graph reduced to input -> logits (drops guard calls), BatchNorm folded."""
    gm = as_graph_module(module)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"only single-input models are supported (graph has {len(placeholders)} inputs)")
    return fold_batchnorm(_subgraph(gm, placeholders, [_output_node(gm)]))
