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
FUSED = (0, 1, 2, 3)  # NONE, RELU, RELU_N1_TO_1, RELU6: the fused activations the delegate accepts
# operators the delegate takes whose arithmetic there intsim does not model yet
UNMODELLED = {"LEAKY_RELU": "XNNPACK's qs8 leaky ReLU", "MEAN": "XNNPACK's qs8 mean"}
# operators it takes whose result equals LiteRT's kernels' (data movement, max, or measured equal)
SAME = {"MAX_POOL_2D", "LOGISTIC", "TANH", "DEQUANTIZE", "PAD", "RESHAPE", "TRANSPOSE", "CONCATENATION"}


def _tensor(model: Model, op: Operator, k: int):
    i = op.inputs[k] if k < len(op.inputs) else -1
    return None if i < 0 else model.tensors[i]


def builtin_reason(model: Model, op: Operator) -> str | None:
    """Why LiteRT's XNNPACK delegate leaves ``op`` to the builtin kernels, or None if it takes it."""
    x = _tensor(model, op, 2 if op.op == "TRANSPOSE_CONV" else 0)
    dtype = None if x is None else x.dtype
    if dtype != np.int8 and not (op.op == "QUANTIZE" and dtype == np.float32):
        return f"XNNPACK takes int8 {op.op}, not {dtype}"
    if op.op in WEIGHTED:
        w, b = _tensor(model, op, 1), _tensor(model, op, 3 if op.op == "TRANSPOSE_CONV" else 2)
        if w is None or w.data is None:
            return "its filter is not a constant"
        if w.scale.size > 1 and w.quantized_dimension != WEIGHTED[op.op]:
            return f"its filter is quantized along axis {w.quantized_dimension}"
        if b is None:
            return None if op.op in ("FULLY_CONNECTED", "TRANSPOSE_CONV") else "it has no bias"
        if b.data is None or b.scale.size == 0:
            return "its bias carries no quantization parameters"
        if op.options.get("fused_activation_function", 0) not in FUSED:
            return "its fused activation is not one XNNPACK applies"
        return None
    if op.op in ("ADD", "SUB"):
        s1, s2, so = (float(t.scale[0]) for t in (_tensor(model, op, 0), _tensor(model, op, 1),
                                                  model.tensors[op.outputs[0]]))  # fmt: skip
        return None if xnnpack.xnnpack_takes_add(s1, s2, so) else "its scale ratios lie outside XNNPACK's range"
    if op.op == "QUANTIZE":
        out = model.tensors[op.outputs[0]]
        if out.dtype != np.int8:
            return f"XNNPACK quantizes to int8, not {out.dtype}"
        if dtype == np.int8 and not xnnpack.xnnpack_takes_requantize(float(x.scale[0]), float(out.scale[0])):
            return "its scale ratio lies outside XNNPACK's range"
        return None
    if op.op == "MUL" or op.op in UNMODELLED or op.op in SAME:
        return None
    return f"XNNPACK's delegate does not take int8 {op.op}"


def node_profile(model: Model, op: Operator, profile: _profiles.Profile) -> _profiles.Profile:
    """The profile whose arithmetic runs ``op`` under ``profile``: ``xnnpack`` for the nodes a
    ``delegate="xnnpack"`` profile's delegate takes, else ``profile`` itself."""
    if profile.delegate != "xnnpack" or builtin_reason(model, op) is not None:
        return profile
    if op.op in UNMODELLED or (op.op == "QUANTIZE" and model.tensors[op.inputs[0]].dtype == np.float32):
        what = UNMODELLED.get(op.op, "XNNPACK's float32 to int8 conversion")
        raise ModelError(f"{op.describe()}: under profile {profile.name!r} LiteRT's XNNPACK delegate takes this "
                         f"node, and {what} is not modelled yet")  # fmt: skip
    return _profiles.get("xnnpack")
