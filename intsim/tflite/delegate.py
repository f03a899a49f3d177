"""Which nodes LiteRT's default interpreter hands to its XNNPACK delegate (the ``litert``
profile, ``Profile.delegate="xnnpack"``): those run XNNPACK's arithmetic (profile ``xnnpack``),
the others LiteRT's optimized builtin kernels (the profile's own table, as ``litert-builtin``).

The conditions follow ai-edge-litert 2.3's delegate, google-ai-edge/LiteRT
``tflite/delegates/xnnpack/xnnpack_delegate.cc`` (its ``Visit*Node`` checks), for the operators
intsim runs; ``tests/test_litert_default.py`` checks them against the interpreter's partition
(``Interpreter._get_ops_details()`` lists a DELEGATE node where XNNPACK took one).
"""

from __future__ import annotations

import numpy as np

from intsim import profiles as _profiles
from intsim.tflite import xnnpack
from intsim.tflite.model import Model, ModelError, Operator

WEIGHTED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}  # filter channel axis
FUSED = (0, 1, 2, 3)  # NONE, RELU, RELU_N1_TO_1, RELU6: the fused activations the delegate accepts (1887)
# operators it takes whose results equal LiteRT's kernels' (data movement, max; LOGISTIC, TANH and
# DEQUANTIZE measured equal)
SAME = {"MAX_POOL_2D", "LOGISTIC", "TANH", "DEQUANTIZE", "PAD", "RESHAPE", "TRANSPOSE", "CONCATENATION",
        "STRIDED_SLICE", "SLICE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SPLIT", "REDUCE_MAX", "REDUCE_MIN"}  # fmt: skip
NEVER = {"HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "AVERAGE_POOL_2D", "SOFTMAX", "MAXIMUM", "MINIMUM", "DIV",
         "SQUARED_DIFFERENCE", "RSQRT", "PRELU", "EXP", "LOG", "GELU", "ABS"}  # fmt: skip
# (int8 MAXIMUM/MINIMUM: measured, never taken)
# operators the delegate has no visitor for, or one that returns at once (EXPAND_DIMS)
ABSENT = {"PADV2", "SQUEEZE", "EXPAND_DIMS", "SPLIT_V", "PACK", "UNPACK", "GATHER", "BROADCAST_TO", "SHAPE", "FILL",
          "ZEROS_LIKE", "CAST", "ARG_MAX", "ARG_MIN", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF",
          "RESIZE_NEAREST_NEIGHBOR", "EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL",
          "SELECT_V2", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND",
          "MIRROR_PAD", "TILE", "REVERSE_V2", "ADD_N", "GATHER_ND", "EMBEDDING_LOOKUP", "DYNAMIC_UPDATE_SLICE",
          "L2_NORMALIZATION", "CUMSUM", "LOG_SOFTMAX"}  # fmt: skip
f32 = np.float32


def _tensor(model: Model, op: Operator, k: int):
    i = op.inputs[k] if k < len(op.inputs) else -1
    return None if i < 0 else model.tensors[i]


def _same_quantization(a, b) -> bool:
    return np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)


def _weighted(model: Model, op: Operator) -> str | None:
    """CONV_2D 3983, DEPTHWISE_CONV_2D 4206, FULLY_CONNECTED 4933, TRANSPOSE_CONV 6838."""
    w, b = _tensor(model, op, 1), _tensor(model, op, 3 if op.op == "TRANSPOSE_CONV" else 2)
    if w is None or w.data is None:
        return "its filter is not a constant"
    if w.scale.size > 1 and w.quantized_dimension != WEIGHTED[op.op]:
        return f"its filter is quantized along axis {w.quantized_dimension}"
    if op.op == "FULLY_CONNECTED" and w.scale.size == 1 and w.zero_point.size and w.zero_point[0]:
        return "its filter has a zero point other than 0"
    if op.options.get("fused_activation_function", 0) not in FUSED:
        return "its fused activation is not one XNNPACK applies"
    if op.op == "TRANSPOSE_CONV":  # CalculateTransposeConvPaddings 1805
        (_, kh, kw, _), o = w.shape, op.options
        out = model.tensors[op.outputs[0]].shape
        if o.get("padding", 0) == 0 and (kh < o["stride_h"] or kw < o["stride_w"]):
            return "SAME padding with strides larger than its kernel"
        if o.get("padding", 0) == 1 and (kh > out[1] or kw > out[2]):
            return "VALID padding with an output smaller than its kernel"
    if b is None:
        return None if op.op in ("FULLY_CONNECTED", "TRANSPOSE_CONV") else "it has no bias"
    if b.data is None or b.scale.size == 0 or not np.all(b.scale > 0):
        return "its bias carries no quantization parameters"
    if op.op != "FULLY_CONNECTED" and (w.scale.size > 1) != (b.scale.size > 1):
        raise ModelError(f"{op.describe()}: LiteRT's default interpreter fails to prepare it (XNNPACK takes "
                         "the node, then refuses per-channel filters with a per-tensor bias or the converse)")  # fmt: skip
    return None


def builtin_reason(model: Model, op: Operator) -> str | None:
    """Why LiteRT's XNNPACK delegate leaves ``op`` to the builtin kernels, or None if it takes
    it (line numbers: ``xnnpack_delegate.cc`` at LiteRT 2.3.0).  Raises ``ModelError`` where the
    delegate takes a node XNNPACK then refuses: the default interpreter fails on that model."""
    x = _tensor(model, op, {"TRANSPOSE_CONV": 2, "SPLIT": 1}.get(op.op, 0))  # the data input
    out = model.tensors[op.outputs[0]] if op.outputs else None
    dtype = None if x is None else x.dtype
    if op.op in ABSENT:
        return f"XNNPACK's delegate does not take {op.op}"
    if op.op in NEVER:
        return f"XNNPACK's delegate takes {op.op} in float only"
    if dtype not in (np.int8, np.uint8) and not (op.op == "QUANTIZE" and dtype == np.float32):
        return f"XNNPACK's delegate takes 8-bit {op.op}, not {dtype}"
    if op.op in WEIGHTED:
        return _weighted(model, op)
    if op.op in ("ADD", "SUB", "MUL"):
        s1, s2, so = (f32(t.scale[0]) for t in (_tensor(model, op, 0), _tensor(model, op, 1), out))
        if op.op == "MUL":
            return None if xnnpack.xnnpack_takes_mul(s1, s2, so) else "its scale ratio lies outside XNNPACK's [2**-16, 2**8)"
        return None if xnnpack.xnnpack_takes_add(s1, s2, so) else "its scale ratios lie outside XNNPACK's [2**-10, 2**8)"
    if op.op == "QUANTIZE":
        if out.scale.size != 1:
            return "its output is quantized per channel"
        if dtype == np.float32:
            return None if out.dtype in (np.int8, np.uint8) else f"XNNPACK quantizes to 8 bits, not {out.dtype}"
        if out.dtype != dtype:
            return "XNNPACK requantizes within one 8-bit type"
        return None if xnnpack.xnnpack_takes_requantize(x.scale[0], out.scale[0]) else \
            "its scale ratio lies outside XNNPACK's [2**-8, 2**7]"
    if op.op == "LEAKY_RELU":  # 4649
        takes = xnnpack.xnnpack_takes_leaky_relu(x.scale[0], out.scale[0], op.options.get("alpha", 0.2))
        return None if takes else "its alpha or scale ratio lies outside XNNPACK's range"
    if op.op == "MAX_POOL_2D":  # 5234, 2144
        o = op.options
        if o["stride_h"] > o["filter_height"] or o["stride_w"] > o["filter_width"]:
            return "its stride exceeds its filter"
        if o["filter_height"] == o["filter_width"] == 1 and max(o["stride_h"], o["stride_w"]) > 1:
            return "a 1x1 pool with stride above 1"
    if op.op == "STRIDED_SLICE":  # 6245
        o, strides = op.options, _tensor(model, op, 3)
        if any(o.get(k, 0) for k in ("ellipsis_mask", "new_axis_mask", "shrink_axis_mask")):
            return "it has an ellipsis, new-axis or shrink-axis mask"
        if strides is None or strides.data is None or np.any(strides.data != 1):
            return "its strides are not all 1"
    if op.op == "SLICE":  # VisitSliceNode: static begin >= 0 and size > 0 (a size of -1 is refused)
        begin, size = _tensor(model, op, 1), _tensor(model, op, 2)
        if begin.data is None or size.data is None or np.any(begin.data < 0) or np.any(size.data <= 0):
            return "its begin or size is not static and positive"
    if op.op == "DEPTH_TO_SPACE" and op.options.get("block_size", 0) <= 1:  # 4342
        return "its block size is not above 1"
    if op.op == "SPACE_TO_DEPTH":  # 6064
        b = op.options.get("block_size", 0)
        if b <= 1 or x.shape[1] % b or x.shape[2] % b:
            return "its block size is not above 1 or does not divide its height and width"
    if op.op == "SPLIT":  # 6129: 2 to 4 outputs, a static int32 axis
        axis = _tensor(model, op, 0)
        if not 2 <= len(op.outputs) <= 4 or axis.data is None or axis.dtype != np.int32:
            return "it has other than 2 to 4 outputs or a non-static axis"
    if op.op in ("REDUCE_MAX", "REDUCE_MIN", "SUM"):  # 5303: static int32 axes, at least one
        axes = _tensor(model, op, 1)
        if axes.data is None or axes.dtype != np.int32 or axes.data.size == 0:
            return "its axes are not static int32 values"
    if op.op == "CONCATENATION" and not 2 <= len(op.inputs) <= 5:
        return "it joins fewer than 2 or more than 5 inputs"
    if op.op == "RESHAPE" and not _same_quantization(x, out):
        return "its input and output quantization differ"
    if op.op in ("MAX_POOL_2D", "PAD", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "CONCATENATION") and dtype == np.int8:
        ins = [model.tensors[i] for i in (op.inputs if op.op == "CONCATENATION" else op.inputs[:1])]
        if not all(_same_quantization(t, out) for t in ins):
            raise ModelError(f"{op.describe()}: LiteRT's default interpreter fails to prepare it (XNNPACK takes "
                             "the node, then refuses input and output quantization that differ)")  # fmt: skip
    if op.op == "BATCH_MATMUL":  # VisitBatchMatMulNode: int8 with a zero point of 0 on the right-hand side
        rhs = _tensor(model, op, 1)
        if rhs.dtype != np.int8 or (rhs.zero_point.size and rhs.zero_point[0]):
            return "its right-hand side has a zero point other than 0"
        return None
    if op.op == "RESIZE_BILINEAR":  # 5850: a static int32 size of two positive values
        size = _tensor(model, op, 1)
        if size is None or size.data is None or size.dtype != np.int32 or size.data.size != 2 or np.any(size.data <= 0):
            return "its size is not static"
        return None
    if op.op in ("MEAN", "LEAKY_RELU", "ELU", "SUM") or op.op in SAME:
        return None
    return f"XNNPACK's delegate does not take {op.op}"


def node_profile(model: Model, op: Operator, profile: _profiles.Profile) -> _profiles.Profile:
    """The profile whose arithmetic runs ``op`` under ``profile``: ``xnnpack`` for the nodes a
    ``delegate="xnnpack"`` profile's delegate takes, else ``profile`` itself (decided once per
    model, node and profile)."""
    if profile.delegate != "xnnpack":
        return profile
    key = ("node profile", op.index, profile)
    if key not in model.prepared:
        model.prepared[key] = _node_profile(model, op, profile)
    return model.prepared[key]


def _node_profile(model: Model, op: Operator, profile: _profiles.Profile) -> _profiles.Profile:
    if builtin_reason(model, op) is not None:
        return profile
    x = model.tensors[op.inputs[2 if op.op == "TRANSPOSE_CONV" else 0]]
    out = model.tensors[op.outputs[0]]
    if (x.dtype == np.uint8 or out.dtype == np.uint8) and op.op not in SAME and op.op != "QUANTIZE":
        raise ModelError(f"{op.describe()}: under profile {profile.name!r} LiteRT's XNNPACK delegate takes this "
                         f"node, and XNNPACK's uint8 {op.op} is not modelled yet")  # fmt: skip
    return _profiles.get("xnnpack")
