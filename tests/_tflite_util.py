"""Single-op TFLite models (written with ``intsim.tflite.builder``) and the LiteRT reference
interpreter (``OpResolverType.BUILTIN_REF``) as the peer."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from intsim.tflite.builder import OpSpec, TensorSpec, build

T = TensorSpec


def single_op(op: str, inputs: list, outputs: list, options: dict | None = None, version: int = 1) -> bytes:
    """A model of one operator; tensors without data are the graph inputs (``None`` = omitted)."""
    tensors = [t for t in inputs if t is not None] + list(outputs)
    index = {id(t): i for i, t in enumerate(tensors)}
    ins = [index[id(t)] if t is not None else -1 for t in inputs]
    graph_inputs = [index[id(t)] for t in inputs if t is not None and t.data is None]
    outs = [index[id(t)] for t in outputs]
    return build(tensors, [OpSpec(op, ins, outs, options or {}, version)], graph_inputs, outs)


# each LiteRT mode and the intsim profile that models it
MODES = {
    "tflite-reference": OpResolverType.BUILTIN_REF,
    "litert-builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "litert": OpResolverType.AUTO,  # the default Interpreter(): XNNPACK where its delegate takes the node
}


def reference(model: bytes, inputs: list) -> list[np.ndarray]:
    """Outputs of the LiteRT reference kernels."""
    return interpret(model, inputs, "tflite-reference")


def interpret(model: bytes, inputs: list, profile: str) -> list[np.ndarray]:
    """Outputs of LiteRT in the mode ``profile`` models (``MODES``)."""
    ip = Interpreter(model_content=model, experimental_op_resolver_type=MODES[profile])
    ip.allocate_tensors()
    for d, x in zip(ip.get_input_details(), inputs, strict=True):
        ip.set_tensor(d["index"], x)
    ip.invoke()
    return [ip.get_tensor(d["index"]).copy() for d in ip.get_output_details()]


def random_int(rng, shape, dtype):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64)
    # edge-heavy: a few extremes in every tensor
    flat = x.reshape(-1)
    if flat.size >= 4:
        flat[:2] = info.min, info.max
    return x.astype(dtype)
