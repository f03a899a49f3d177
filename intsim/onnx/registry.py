"""The operator table of ``intsim.onnx`` and the context each operator runs in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim import frontend
from intsim import profiles as _profiles
from intsim.onnx.graph import MS_DOMAIN, ModelError, Node
from intsim.quant.affine import check_scale

OPS = frontend.Registry("ONNX operator")  # (domain, op_type) -> fn(ctx, node, *inputs) -> outputs


def op(*names, domain=""):
    """Register an operator implementation under one or more op types."""
    return OPS.register(*((domain, name) for name in names))


def ms_op(*names):
    return op(*names, domain=MS_DOMAIN)


def lookup(node: Node):
    """The implementation of ``node``, or ``ModelError`` naming the op and the node."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    try:
        return OPS[(domain, node.op_type)]
    except KeyError:
        where = f" in domain {node.domain!r}" if domain else ""
        raise ModelError(f"unsupported operator {node.op_type}{where}: {node.label()}") from None


@dataclass
class Context:
    """What an operator may read besides its inputs: the target profile and the backend."""

    profile: _profiles.Profile
    backend: str = "jit"
    constants: frozenset = frozenset()  # names of the graph's initializers
    prepared: dict | None = None  # the graph's prepared layers (None: prepare nothing)

    def prepared_layer(self, node: Node, key, build):
        """``build()``'s layer for ``node``, made once per graph when every input but the first
        is a constant (weights, scales, zero points, bias); None otherwise."""
        if self.prepared is None or any(n and n not in self.constants for n in node.inputs[1:]):
            return None
        return frontend.prepared(self.prepared, (node.index, node.op_type, key), self.profile, self.backend, build)


def scalar_param(node: Node, name: str, value, *, kind="f"):
    """A per-tensor scale or zero point, checked: one element of the expected kind."""
    a = np.asarray(value)
    if a.size != 1:
        raise ModelError(f"{node.label()}: {name} must hold one value, got shape {a.shape}")
    if kind == "f":
        if a.dtype.kind != "f":
            raise ModelError(f"{node.label()}: {name} must be a float tensor, got {a.dtype}")
        with frontend.reported(ModelError, node.label()):
            check_scale(a, name)
    return a.reshape(())


def require(node: Node, cond: bool, message: str):
    if not cond:
        raise ModelError(f"{node.label()}: {message}")
