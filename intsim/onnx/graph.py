"""Reading an ONNX model into plain Python objects: nodes, attributes, initializers as numpy.

The parser is the ``onnx`` package's protobuf code (``onnx.load_model_from_string``), with
``onnx.checker`` run on every model; nothing here reads bytes by hand.  Low-precision tensors
come out as ``ml_dtypes`` arrays (float8, float4, E8M0, int4, uint4, int2, uint2), and travel
through ``intsim.onnx`` that way, so each value keeps its ONNX element type.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from intsim import frontend

MS_DOMAIN = "com.microsoft"


class ModelError(frontend.ModelError):
    """A malformed or unreadable model, or one that uses something intsim does not run."""


# TensorProto element type -> (intsim format name or None, numpy dtype the values travel as)
ELEM_TYPES = {
    TensorProto.FLOAT: ("float32", np.dtype(np.float32)),
    TensorProto.DOUBLE: (None, np.dtype(np.float64)),
    TensorProto.FLOAT16: ("float16", np.dtype(np.float16)),
    TensorProto.BFLOAT16: ("bfloat16", np.dtype(ml_dtypes.bfloat16)),
    TensorProto.FLOAT8E4M3FN: ("float8_e4m3fn", np.dtype(ml_dtypes.float8_e4m3fn)),
    TensorProto.FLOAT8E4M3FNUZ: ("float8_e4m3fnuz", np.dtype(ml_dtypes.float8_e4m3fnuz)),
    TensorProto.FLOAT8E5M2: ("float8_e5m2", np.dtype(ml_dtypes.float8_e5m2)),
    TensorProto.FLOAT8E5M2FNUZ: ("float8_e5m2fnuz", np.dtype(ml_dtypes.float8_e5m2fnuz)),
    TensorProto.FLOAT4E2M1: ("float4_e2m1fn", np.dtype(ml_dtypes.float4_e2m1fn)),
    TensorProto.INT8: ("int8", np.dtype(np.int8)),
    TensorProto.UINT8: ("uint8", np.dtype(np.uint8)),
    TensorProto.INT16: ("int16", np.dtype(np.int16)),
    TensorProto.UINT16: ("uint16", np.dtype(np.uint16)),
    TensorProto.INT32: ("int32", np.dtype(np.int32)),
    TensorProto.UINT32: (None, np.dtype(np.uint32)),
    TensorProto.INT64: (None, np.dtype(np.int64)),
    TensorProto.UINT64: (None, np.dtype(np.uint64)),
    TensorProto.BOOL: (None, np.dtype(np.bool_)),
    TensorProto.INT4: ("int4", np.dtype(ml_dtypes.int4)),
    TensorProto.UINT4: ("uint4", np.dtype(ml_dtypes.uint4)),
}
for _name, _fmt, _dt in (("FLOAT8E8M0", "float8_e8m0fnu", ml_dtypes.float8_e8m0fnu),
                         ("INT2", "int2", ml_dtypes.int2), ("UINT2", "uint2", ml_dtypes.uint2)):  # fmt: skip
    if hasattr(TensorProto, _name):
        ELEM_TYPES[getattr(TensorProto, _name)] = (_fmt, np.dtype(_dt))

def elem_format(elem_type: int) -> str | None:
    """The intsim format name of an ONNX element type (None for types without one)."""
    try:
        return ELEM_TYPES[elem_type][0]
    except KeyError:
        raise ModelError(f"unsupported tensor element type {TensorProto.DataType.Name(elem_type)}") from None


def elem_dtype(elem_type: int) -> np.dtype:
    try:
        return ELEM_TYPES[elem_type][1]
    except KeyError:
        raise ModelError(f"unsupported tensor element type {TensorProto.DataType.Name(elem_type)}") from None


def to_numpy(tensor: TensorProto) -> np.ndarray:
    """An initializer or constant as numpy (int4, float8, ... as ml_dtypes arrays)."""
    try:
        a = np.asarray(numpy_helper.to_array(tensor))
    except Exception as e:  # raw data that does not match the shape, say
        raise ModelError(f"tensor {tensor.name!r} cannot be read: {e}") from None
    elem_dtype(tensor.data_type)  # reject element types intsim does not model
    return a


@dataclass
class Node:
    index: int
    op_type: str
    domain: str
    name: str
    inputs: list[str]  # "" marks an omitted optional input
    outputs: list[str]
    attrs: dict = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.op_type} node {self.index} ({self.name or 'unnamed'})"

    def attr(self, name, default=None):
        return self.attrs.get(name, default)


@dataclass
class ValueInfo:
    name: str
    elem_type: int
    shape: tuple  # ints, or None for symbolic dimensions

    @property
    def dtype(self) -> np.dtype:
        return elem_dtype(self.elem_type)


@dataclass
class Graph:
    nodes: list[Node]
    initializers: dict[str, np.ndarray]
    inputs: list[ValueInfo]  # graph inputs that are not initializers
    outputs: list[ValueInfo]
    opset: dict[str, int]
    source: str
    proto: onnx.ModelProto
    plans: dict = field(default_factory=dict, repr=False)  # qdq mode -> (nodes, fused), by run()
    prepared: dict = field(default_factory=dict, repr=False)  # layers with constant weights, by run()

    @functools.cached_property
    def constants(self) -> frozenset:
        """Names of the initializers (computed once; ``run`` asks on every call)."""
        return frozenset(self.initializers)


def _attribute(a: onnx.AttributeProto):
    if a.type == onnx.AttributeProto.TENSOR:
        return to_numpy(a.t)
    if a.type == onnx.AttributeProto.GRAPH:
        raise ModelError(f"attribute {a.name!r} holds a subgraph; control flow is not supported")
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode() for s in v]
    return v


def _value_info(v: onnx.ValueInfoProto) -> ValueInfo:
    t = v.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    return ValueInfo(v.name, t.elem_type, dims)


def load(model) -> Graph:
    """Parse ``model`` (a path, bytes, or an ``onnx.ModelProto``) and check it.

    Raises ``ModelError`` naming the file for anything unreadable: a missing or truncated file,
    bytes that are not an ONNX model, or a model that ``onnx.checker`` rejects."""
    if isinstance(model, Graph):
        return model
    source = "<ModelProto>"
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        if isinstance(model, bytes | bytearray):
            source, data = "<bytes>", bytes(model)
        else:
            source = str(model)
            try:
                data = Path(model).read_bytes()
            except OSError as e:
                raise ModelError(f"{source}: cannot read the model file: {e.strerror or e}") from None
        try:
            proto = onnx.load_model_from_string(data)
        except Exception as e:
            raise ModelError(f"{source}: not a readable ONNX model (truncated or corrupt?): {e}") from None
        if not proto.graph.node and not proto.graph.output:
            raise ModelError(f"{source}: not an ONNX model (no graph)")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise ModelError(f"{source}: the ONNX checker rejects the model: {str(e).splitlines()[0]}") from None
    g = proto.graph
    initializers = {t.name: to_numpy(t) for t in g.initializer}
    nodes = [
        Node(i, n.op_type, n.domain or "", n.name, list(n.input), list(n.output),
             {a.name: _attribute(a) for a in n.attribute})
        for i, n in enumerate(g.node)
    ]  # fmt: skip
    inputs = [_value_info(v) for v in g.input if v.name not in initializers]
    outputs = [_value_info(v) for v in g.output]
    opset = {(o.domain or ""): o.version for o in proto.opset_import}
    return Graph(nodes, initializers, inputs, outputs, opset, source, proto)
