"""Build one-node ONNX models and run them under onnxruntime and the onnx reference evaluator."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ONNX_TYPES = {
    "int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int16": TensorProto.INT16,
    "uint16": TensorProto.UINT16, "int32": TensorProto.INT32, "int4": TensorProto.INT4,
    "uint4": TensorProto.UINT4, "int2": TensorProto.INT2, "uint2": TensorProto.UINT2,
    "float8_e4m3fn": TensorProto.FLOAT8E4M3FN, "float8_e5m2": TensorProto.FLOAT8E5M2,
    "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ, "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
    "float4_e2m1fn": TensorProto.FLOAT4E2M1,
}  # fmt: skip


def opset_for(dtype: str) -> int:
    return 25 if dtype in ("int2", "uint2") else 21


def make_model(nodes, inputs, outputs, initializers, opset: int):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 11 if opset >= 23 else 10
    return model


def run_onnxruntime(model, feeds: dict) -> list:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def run_reference(model, feeds: dict) -> list:
    return ReferenceEvaluator(model).run(None, feeds)


def qdq_model(shape, dtype: str, scale, zero_point, *, axis=None, block_size=None, saturate=1):
    """x -> QuantizeLinear -> (values as int32 or float32 via DequantizeLinear(scale 1)), and
    DequantizeLinear(q, scale, zero_point) -> y.  Outputs: [q_values, y]."""
    t = ONNX_TYPES[dtype]
    np_type = helper.tensor_dtype_to_np_dtype(t)
    attrs = {}
    if axis is not None:
        attrs["axis"] = axis
    if block_size is not None:
        attrs["block_size"] = block_size
    inits = [
        numpy_helper.from_array(np.asarray(scale, np.float32), "scale"),
        numpy_helper.from_array(np.asarray(zero_point).astype(np_type), "zp"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.zeros((), np_type), "zero"),
    ]
    quant_attrs = dict(attrs, saturate=saturate) if t in (
        TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E4M3FNUZ,
        TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT4E2M1) else attrs  # fmt: skip
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], **quant_attrs)]
    if dtype.startswith("float"):
        nodes.append(helper.make_node("DequantizeLinear", ["q", "one", "zero"], ["q_values"]))
        q_type = TensorProto.FLOAT
    else:
        nodes.append(helper.make_node("Cast", ["q"], ["q_values"], to=TensorProto.INT32))
        q_type = TensorProto.INT32
    nodes.append(helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["y"], **attrs))
    return make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("q_values", q_type, list(shape)),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        inits, opset_for(dtype),
    )  # fmt: skip
