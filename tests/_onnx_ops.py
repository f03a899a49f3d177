"""One-node ONNX models for the integer operators, run by onnxruntime and the onnx reference."""

from __future__ import annotations

import numpy as np
from _onnx_util import make_model, run_onnxruntime, run_reference
from onnx import helper, numpy_helper


def _vi(name, arr):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))


def one_node(op, inputs: dict, output_dtype, attrs=None, initializers=(), opset=21, domain=""):
    """A model with graph inputs ``inputs`` (name -> array; None skips an optional input),
    everything in ``initializers`` as constants, one output ``y`` of ``output_dtype``."""
    inputs = {n: (None if v is None else np.asarray(v)) for n, v in inputs.items()}
    names = [n if v is not None else "" for n, v in inputs.items()]
    feeds = {n: v for n, v in inputs.items() if v is not None and n not in initializers}
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in inputs.items() if v is not None and n in initializers]
    node = helper.make_node(op, names, ["y"], domain=domain, **(attrs or {}))
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(output_dtype)), None)
    model = make_model([node], [_vi(n, v) for n, v in feeds.items()], [out], inits, opset)
    return model, feeds


def run_both(op, inputs, output_dtype, attrs=None, initializers=()):
    model, feeds = one_node(op, inputs, output_dtype, attrs, initializers)
    return run_onnxruntime(model, feeds)[0], run_reference(model, feeds)[0]


def run_ort(op, inputs, output_dtype, attrs=None, initializers=()):
    model, feeds = one_node(op, inputs, output_dtype, attrs, initializers)
    return run_onnxruntime(model, feeds)[0]


def run_ref(op, inputs, output_dtype, attrs=None, initializers=()):
    model, feeds = one_node(op, inputs, output_dtype, attrs, initializers)
    return run_reference(model, feeds)[0]

