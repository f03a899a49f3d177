"""SHAPE, FILL, ZEROS_LIKE, CAST, ARG_MAX, ARG_MIN, REDUCE_MAX, REDUCE_MIN: operators that make
tensors, convert types or pick elements, with no rounding of their own."""

from __future__ import annotations

import numpy as np

from intsim.tflite.context import kernel
from intsim.tflite.kernels_shape import _same_quantization
from intsim.tflite.model import ModelError


@kernel("SHAPE")
def shape(ctx, op):
    """``shape.cc``: the input's shape in the output's type (``out_type``: int32 or int64)."""
    x, out = ctx.input(op, 0), ctx.out_tensor(op)
    if out.dtype not in (np.int32, np.int64):
        raise ModelError(f"{op.describe()}: {out.describe()} must be int32 or int64")
    return [np.array(x.shape, out.dtype)]


@kernel("FILL")
def fill(ctx, op):
    """``fill.cc``: ``dims`` (int32 or int64) filled with the one ``value``; quantized values keep
    the value's quantization (raw integers are copied)."""
    dims, value, out = np.asarray(ctx.input(op, 0)).reshape(-1), np.asarray(ctx.input(op, 1)), ctx.out_tensor(op)
    if value.size != 1 or value.dtype != out.dtype or np.any(dims < 0):
        raise ModelError(f"{op.describe()}: needs one value of {out.dtype} and non-negative dims, got "
                         f"{value.size} of {value.dtype} and {dims.tolist()}")  # fmt: skip
    _same_quantization(op, [ctx.in_tensor(op, 1)], out)
    return [np.full(tuple(int(d) for d in dims), value.reshape(-1)[0], out.dtype)]


@kernel("ZEROS_LIKE")
def zeros_like(ctx, op):
    """``zeros_like.cc``: raw zeros of the input's shape and type (int8: the integer 0, not the
    zero point).  LiteRT's kernel takes int32, int64 and float32; TFLite Micro's int8 too."""
    x = ctx.input(op, 0)
    if x.dtype not in (np.int32, np.int64, np.float32):
        ctx.refuse(op, litert=f"{x.dtype} input (int32, int64 or float32 only)",
                   tflm=None if x.dtype == np.int8 else f"{x.dtype} input (int8, int32, int64 or float32 only)")
    return [np.zeros_like(x)]


_CAST_TYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.float32, np.float64, np.bool_)
# TFLite Micro's cast.cc: its input and output types
_TFLM_CAST_IN = (np.int8, np.int16, np.int32, np.uint32, np.float32, np.bool_)
_TFLM_CAST_OUT = (np.int8, np.int16, np.int32, np.uint32, np.float32)


@kernel("CAST")
def cast(ctx, op):
    """``cast.cc``: each raw value converted, quantization ignored.  Between integers the value
    wraps (two's complement ``static_cast``); integers to float round to nearest even; to bool
    tests ``!= 0``.  A float to an integer type truncates toward zero and saturates; NaN gives
    the type's maximum in LiteRT (``SafeCast``, ``internal/quantization_util.h``) and 0 in the
    TFLite Micro runtime (tflite-micro 0.dev20261023; the 90b983c source's plain
    ``static_cast`` left it undefined).  TFLite Micro takes int8, int16, int32, uint32, float32
    and bool inputs and no uint8, bool or 64-bit outputs."""
    x, out = np.asarray(ctx.input(op, 0)), ctx.out_tensor(op)
    if x.dtype.type not in _CAST_TYPES or out.dtype.type not in _CAST_TYPES:
        raise ModelError(f"{op.describe()}: CAST from {x.dtype} to {out.dtype} is not supported")
    if x.dtype.type not in _TFLM_CAST_IN or out.dtype.type not in _TFLM_CAST_OUT:
        ctx.refuse(op, tflm=f"CAST from {x.dtype} to {out.dtype}")
    if x.dtype.kind == "f" and out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        nan = 0 if ctx.profile.kernels == "tflm" else info.max
        t = np.trunc(x.astype(np.float64))
        inside = (t >= info.min) & (t < float(info.max) + 1)  # float(2**63 - 1) is 2**63: compare before converting
        y = np.where(inside, np.where(inside, t, 0).astype(np.int64), np.where(t > 0, info.max, info.min))
        return [np.where(np.isnan(x), nan, y).astype(out.dtype)]
    if out.dtype == np.bool_:
        return [x != 0]
    return [x.astype(out.dtype)]  # numpy's integer conversion wraps as C++'s does


def _axes(op, x, axes) -> tuple[int, ...]:
    axes = [int(a) for a in np.asarray(axes).reshape(-1)]
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise ModelError(f"{op.describe()}: axes {axes} outside a rank-{x.ndim} tensor")
    return tuple(sorted({a % x.ndim for a in axes}))


@kernel("ARG_MAX", "ARG_MIN")
def arg_max_min(ctx, op):
    """``arg_min_max.cc`` (``reference_ops::ArgMinMax``): the index of the largest (smallest)
    raw value along the one axis, the first of equal ones, in the output's type."""
    x, out = ctx.input(op, 0), ctx.out_tensor(op)
    if x.dtype == np.int16:
        raise ModelError(f"{op.describe()}: int16 input, which LiteRT's and TFLite Micro's kernels refuse")
    a = np.asarray(ctx.input(op, 1)).reshape(-1)
    if a.size != 1:
        raise ModelError(f"{op.describe()}: needs exactly one axis, got {a.tolist()}")
    (axis,) = _axes(op, x, a)
    if out.dtype not in (np.int32, np.int64):
        raise ModelError(f"{op.describe()}: {out.describe()} must be int32 or int64")
    f = np.argmax if op.op == "ARG_MAX" else np.argmin  # the first occurrence, as the reference's strict compare
    return [f(x, axis=axis).astype(out.dtype)]


@kernel("REDUCE_MAX", "REDUCE_MIN")
def reduce_max_min(ctx, op):
    """``reduce.cc`` (``reference_ops::ReduceGeneric`` with max / min): the largest (smallest)
    raw value over ``axes``; input and output share one quantization."""
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    if x.dtype.kind in "iu" and x.dtype != np.int8:
        ctx.refuse(op, tflm=f"{x.dtype} input (micro/kernels/reduce_common.cc: int8 or float32 only)")
    axes = _axes(op, x, ctx.input(op, 1))
    if x.size == 0:
        raise ModelError(f"{op.describe()}: an empty input")
    f = np.max if op.op == "REDUCE_MAX" else np.min
    return [f(x, axis=axes, keepdims=bool(op.options.get("keep_dims", False)))]
