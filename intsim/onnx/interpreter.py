"""Running an ONNX graph: topological execution over the operator table.

``qdq="fused"`` (default) first rewrites every DequantizeLinear -> op -> QuantizeLinear group
into the integer operator onnxruntime's QDQ transformer would run (``intsim.onnx.fuse``);
``qdq="float"`` runs the graph literally, quantized tensors dequantized to float around float
operators.  ``run`` reports the mode in ``Result.qdq`` and the rewrites in ``Result.fused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from intsim import frontend
from intsim import profiles as _profiles
from intsim.onnx import fuse as _fuse
from intsim.onnx import ops_float, ops_quant  # noqa: F401  (register the operators)
from intsim.onnx import graph as _graph
from intsim.onnx.graph import Graph, ModelError, Node
from intsim.onnx.registry import Context, lookup

QDQ_MODES = ("fused", "float")


@dataclass
class Result:
    outputs: dict[str, np.ndarray]
    qdq: str
    fused: list[str] = field(default_factory=list)  # one line per rewritten QDQ group
    values: dict[str, np.ndarray] | None = None  # every tensor by name, on request


def check_supported(graph: Graph, nodes: list[Node] | None = None) -> None:
    """Every node (of ``graph``, or the rewritten ``nodes``) has an implementation and every
    input is produced by an earlier node, a graph input or an initializer."""
    known = set(graph.initializers) | {v.name for v in graph.inputs} | {""}
    for node in graph.nodes if nodes is None else nodes:
        lookup(node)
        for name in node.inputs:
            if name not in known:
                raise ModelError(f"{node.label()}: input {name!r} is neither a graph input, an "
                                 "initializer nor the output of an earlier node")  # fmt: skip
        known.update(node.outputs)
    for out in graph.outputs:
        if out.name not in known:
            raise ModelError(f"graph output {out.name!r} is never produced")


def load(model) -> Graph:
    """Parse and check ``model`` (path, bytes, ModelProto or Graph): a malformed file, an
    unsupported operator (op type and node named) or a dangling input fails here."""
    graph = _graph.load(model)
    if not graph.plans:
        check_supported(graph)
    return graph


def _check_inputs(graph: Graph, inputs: dict) -> dict:
    feeds = {}
    names = [v.name for v in graph.inputs]
    unknown = set(inputs) - set(names) - set(graph.initializers)
    if unknown:
        raise ValueError(f"unknown input(s) {sorted(unknown)}; the model takes {names}")
    for v in graph.inputs:
        if v.name not in inputs:
            raise ValueError(f"missing input {v.name!r}; the model takes {names}")
        a = np.asarray(inputs[v.name])
        if a.dtype != v.dtype:
            raise ValueError(f"input {v.name!r} must be {v.dtype}, got {a.dtype}")
        if len(a.shape) != len(v.shape) or any(d is not None and d != s for d, s in zip(v.shape, a.shape)):
            want = tuple("?" if d is None else d for d in v.shape)
            raise ValueError(f"input {v.name!r} must have shape {want}, got {a.shape}")
        feeds[v.name] = a
    return feeds


def execute(graph: Graph, nodes: list[Node], values: dict, ctx: Context) -> dict:
    """Run ``nodes`` in order over ``values`` (name -> array), adding every output."""
    for node in nodes:
        fn = lookup(node)
        args = [values[name] if name else None for name in node.inputs]
        while args and args[-1] is None:
            args.pop()
        with frontend.reported(ModelError, node.label()):
            outs = fn(ctx, node, *args)
        for name, v in zip(node.outputs, outs):
            if name:
                values[name] = v
    return values


def run(model, inputs: dict, *, profile="onnxruntime-cpu", qdq: str = "fused",
        return_intermediates: bool = False, backend: str = "jit"):  # fmt: skip
    """Run ``model`` (path, bytes, ModelProto or loaded Graph) on ``inputs`` (name -> array).

    Returns the outputs as a dict, or with ``return_intermediates=True`` a ``Result`` holding
    every tensor by name, the QDQ mode and the list of fused groups."""
    if qdq not in QDQ_MODES:
        raise ValueError(f"qdq must be one of {QDQ_MODES}, got {qdq!r}")
    graph = load(model)
    if qdq not in graph.plans:  # fused once per loaded graph, not on every call
        nodes, fused = _fuse.fuse(graph) if qdq == "fused" else (graph.nodes, [])
        check_supported(graph, nodes)
        graph.plans[qdq] = (nodes, fused)
    nodes, fused = graph.plans[qdq]
    values = dict(graph.initializers)
    values.update(_check_inputs(graph, inputs))
    ctx = Context(_profiles.get(profile), backend, graph.constants, graph.prepared)
    execute(graph, nodes, values, ctx)
    outputs = {v.name: values[v.name] for v in graph.outputs}
    if not return_intermediates:
        return outputs
    return Result(outputs, qdq, fused, values)
