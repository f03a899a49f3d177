"""EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER, GREATER_EQUAL, SELECT_V2, LOGICAL_AND,
LOGICAL_OR, LOGICAL_NOT.

Quantized comparisons (``tflite/kernels/comparisons.cc``, ``internal/reference/comparisons.h``
``ComparisonWithScaling``; TFLite Micro ``comparisons.cc``) rescale both int8 inputs to a
common scale first: ``MBQM((x - zp) << 8, QuantizeMultiplier(s))`` for each, then compare the
int32 results, so inputs of different scales compare by real value (up to that rounding).
int16: LiteRT rescales for EQUAL and NOT_EQUAL only and compares the raw integers otherwise;
TFLite Micro has int16 GREATER alone, with unset scaling parameters: refused there.
"""

from __future__ import annotations

import numpy as np

from intsim import fixedpoint as fxp
from intsim.tflite.context import broadcast, kernel, qparams
from intsim.tflite.kernels_shape import _same_quantization
from intsim.tflite.model import ModelError

COMPARE = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal,
           "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal}  # fmt: skip



def _rescaled(ctx, op, k, x):
    """``MultiplyByQuantizedMultiplierSmallerThanOneExp((x - zp) * 2**8, QuantizeMultiplier(s))``."""
    scale, zp = qparams(ctx.in_tensor(op, k), op)
    if scale >= 1:
        raise ModelError(f"{op.describe()}: input {k} has scale {float(scale)} >= 1, which the comparison's rescaling "
                         "does not take (a negative rounding shift: undefined)")  # fmt: skip
    q, shift = fxp.quantize_multiplier(float(scale), single_rounding=ctx.rounding(op) == "single")
    return ctx.mbqm_raw(op, (x.astype(np.int64) - zp) << 8, q, shift)


@kernel(*COMPARE)
def compare(ctx, op):
    t1, t2, to = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    if t1.dtype != t2.dtype or to.dtype != np.bool_:
        raise ModelError(f"{op.describe()}: inputs of one type and a bool output needed ({t1.describe()}, "
                         f"{t2.describe()}, {to.describe()})")  # fmt: skip
    a, b = broadcast(op, ctx.input(op, 0), ctx.input(op, 1))
    if t1.dtype == np.int16:
        ctx.refuse(op, tflm="int16 comparison (TFLite Micro has int16 GREATER only, with unset scaling parameters)")
    quantized = t1.quantized and t1.dtype in (np.int8, np.uint8, np.int16)
    if quantized and (t1.dtype != np.int16 or op.op in ("EQUAL", "NOT_EQUAL")):
        a, b = _rescaled(ctx, op, 0, a), _rescaled(ctx, op, 1, b)
    elif t1.dtype.kind not in "iub":
        raise ModelError(f"{op.describe()}: {t1.dtype} comparisons are not supported")
    return [COMPARE[op.op](a, b)]


@kernel("SELECT_V2")
def select_v2(ctx, op):
    """``select.cc`` / TFLite Micro ``select.cc``: ``condition ? x : y``, broadcast, raw
    integers copied (x, y and the output share one quantization)."""
    cond, x, y = (np.asarray(ctx.input(op, k)) for k in range(3))
    if cond.dtype != np.bool_:
        raise ModelError(f"{op.describe()}: the condition must be bool, got {cond.dtype}")
    _same_quantization(op, [ctx.in_tensor(op, 1), ctx.in_tensor(op, 2)], ctx.out_tensor(op))
    try:
        return [np.where(cond, x, y)]
    except ValueError:
        raise ModelError(f"{op.describe()}: shapes {cond.shape}, {x.shape}, {y.shape} do not broadcast") from None


@kernel("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT")
def logical(ctx, op):
    xs = [np.asarray(ctx.input(op, k)) for k in range(len(op.inputs))]
    if any(x.dtype != np.bool_ for x in xs):
        raise ModelError(f"{op.describe()}: inputs must be bool")
    if op.op == "LOGICAL_NOT":
        return [~xs[0]]
    a, b = broadcast(op, xs[0], xs[1])
    return [(np.logical_and if op.op == "LOGICAL_AND" else np.logical_or)(a, b)]
