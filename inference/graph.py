"""FX graphs of models: find a layer through ``nn_module_stack`` metadata and split the graph there.

Both a ``torch.export`` program's ``module()`` and ``torch.fx.symbolic_trace`` of an eager module
record, on every node, the stack of module paths it was traced under. `split_at` cuts a graph at the
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
