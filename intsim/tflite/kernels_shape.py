"""RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, PAD, PADV2, CONCATENATION, SLICE, STRIDED_SLICE, and
MAXIMUM / MINIMUM: data movement and comparisons only.

These ops never change a quantized value, so they check that their output's quantization matches
the input's (LiteRT refuses the cases that would need rescaling) and move integers."""

from __future__ import annotations

import math

import numpy as np

from intsim.tflite.context import kernel, qparams
from intsim.tflite.model import ModelError


def _same_quantization(op, tensors, out):
    for t in tensors:
        if t.dtype != out.dtype:
            raise ModelError(f"{op.describe()}: {t.describe()} and {out.describe()} differ in type")
        if out.quantized and (qparams(t, op) != qparams(out, op)):
            raise ModelError(f"{op.describe()}: {t.describe()} and {out.describe()} differ in scale or zero point "
                             "(rescaling in a data-movement op is not supported)")  # fmt: skip


def _resolve_shape(op, size, shape):
    shape = [int(d) for d in shape]
    if shape.count(-1) > 1:
        raise ModelError(f"{op.describe()}: shape {shape} has more than one -1")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or size % known:
            raise ModelError(f"{op.describe()}: cannot reshape {size} elements to {shape}")
        shape[shape.index(-1)] = size // known
    if math.prod(shape) != size:
        raise ModelError(f"{op.describe()}: cannot reshape {size} elements to {shape}")
    return tuple(shape)


@kernel("RESHAPE")
def reshape(ctx, op):
    x = ctx.input(op, 0)
    ctx.once(("same_quantization", op.index), lambda: _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op)))
    shape_in = ctx.input(op, 1, required=False)
    if shape_in is not None and np.asarray(shape_in).ndim == 1:
        shape = np.asarray(shape_in).tolist()
    elif op.options.get("new_shape"):
        shape = op.options["new_shape"]
    else:
        shape = ctx.out_tensor(op).shape
    return [x.reshape(_resolve_shape(op, x.size, shape))]


@kernel("SQUEEZE")
def squeeze(ctx, op):
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    dims = op.options.get("squeeze_dims") or [i for i, d in enumerate(x.shape) if d == 1]
    axes = tuple(sorted({d % x.ndim for d in dims}))
    if any(x.shape[a] != 1 for a in axes):
        raise ModelError(f"{op.describe()}: cannot squeeze axes {axes} of shape {x.shape}")
    return [np.squeeze(x, axis=axes)]


@kernel("TRANSPOSE")
def transpose(ctx, op):
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    perm = [int(p) % x.ndim for p in np.asarray(ctx.input(op, 1)).reshape(-1)]
    if sorted(perm) != list(range(x.ndim)):
        raise ModelError(f"{op.describe()}: {perm} is not a permutation of {x.ndim} axes")
    return [np.ascontiguousarray(np.transpose(x, perm))]


@kernel("PAD", "PADV2")
def pad(ctx, op):
    """Pad with the output zero point (PAD) or the constant input (PADV2)."""
    x = ctx.input(op, 0)
    out = ctx.out_tensor(op)
    _same_quantization(op, [ctx.in_tensor(op, 0)], out)
    pads = np.asarray(ctx.input(op, 1)).astype(np.int64)
    if pads.shape != (x.ndim, 2) or np.any(pads < 0):
        raise ModelError(f"{op.describe()}: paddings must be ({x.ndim}, 2) non-negative, got {pads.tolist()}")
    value = ctx.input(op, 2, required=False) if op.op == "PADV2" else None
    if value is None:
        value = qparams(out, op)[1] if out.quantized else 0
    return [np.pad(x, pads.tolist(), constant_values=np.asarray(value).reshape(-1)[0])]


@kernel("CONCATENATION")
def concatenation(ctx, op):
    """Inputs of the output's quantization, joined.  LiteRT's kernel refuses a fused activation
    (``concatenation.cc`` Prepare); its XNNPACK delegate, which takes the node first in the
    default interpreter, ignores it (``xnnpack_delegate.cc`` VisitConcatenationNode)."""
    if op.options.get("fused_activation_function", 0) and ctx.profile.kernels != "xnnpack":
        raise ModelError(f"{op.describe()}: a fused activation on CONCATENATION, which LiteRT's kernels refuse "
                         "(tflite/kernels/concatenation.cc)")  # fmt: skip
    xs = [ctx.input(op, k) for k in range(len(op.inputs))]
    out = ctx.out_tensor(op)
    _same_quantization(op, [ctx.in_tensor(op, k) for k in range(len(op.inputs))], out)
    axis = int(op.options.get("axis", 0))
    try:
        y = np.concatenate(xs, axis=axis)
    except (ValueError, np.exceptions.AxisError) as e:
        raise ModelError(f"{op.describe()}: {e}") from None
    return [y.astype(out.dtype) if out.quantized else y]


@kernel("STRIDED_SLICE")
def strided_slice(ctx, op):
    """TFLite ``strided_slice_logic.h``: begin/end clamped per axis by the sign of the stride,
    ``begin_mask``/``end_mask`` for full ranges, ``shrink_axis_mask`` keeps one index and drops
    the axis, ``offset`` makes ``end`` relative to ``begin``."""
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    begin, end, strides = (np.asarray(ctx.input(op, k)).reshape(-1).astype(np.int64) for k in (1, 2, 3))
    o = op.options
    if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0):
        raise ModelError(f"{op.describe()}: ellipsis_mask and new_axis_mask are not supported")
    if not len(begin) == len(end) == len(strides) <= x.ndim:
        raise ModelError(f"{op.describe()}: begin/end/strides lengths {len(begin)}/{len(end)}/{len(strides)} for rank {x.ndim}")
    shrink = []
    for axis in range(len(begin)):
        dim, s = x.shape[axis], int(strides[axis])
        if s == 0:
            raise ModelError(f"{op.describe()}: stride 0 on axis {axis}")
        lo_clamp, hi_clamp = (0, dim) if s > 0 else (-1, dim - 1)
        if o.get("begin_mask", 0) >> axis & 1:
            start = 0 if s > 0 else dim - 1
        else:
            start = int(begin[axis]) + (dim if begin[axis] < 0 else 0)
            start = min(max(start, lo_clamp), hi_clamp)
        if o.get("shrink_axis_mask", 0) >> axis & 1:
            stop, s = start + 1, 1
            shrink.append(axis)
        elif o.get("end_mask", 0) >> axis & 1:
            stop = dim if s > 0 else -1
        else:
            stop = int(end[axis]) + (int(begin[axis]) if o.get("offset", False) else 0)
            stop += dim if stop < 0 else 0
            stop = min(max(stop, lo_clamp), hi_clamp)
        x = np.take(x, np.arange(start, stop, s), axis=axis)
    return [np.squeeze(x, axis=tuple(shrink)) if shrink else x]


@kernel("EXPAND_DIMS")
def expand_dims(ctx, op):
    """``expand_dims.cc``: a new axis of size 1 at ``axis`` (negative counts from the end of the
    output's rank)."""
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    axis = np.asarray(ctx.input(op, 1)).reshape(-1)
    if axis.size != 1:
        raise ModelError(f"{op.describe()}: axis must hold one value, got {axis.size}")
    a = int(axis[0]) + (x.ndim + 1 if int(axis[0]) < 0 else 0)
    if not 0 <= a <= x.ndim:
        raise ModelError(f"{op.describe()}: axis {int(axis[0])} outside a rank-{x.ndim + 1} output")
    return [np.expand_dims(x, a)]


@kernel("SLICE")
def slice_(ctx, op):
    """``slice.cc``: ``begin`` and ``size`` per axis (``size`` -1: to the end)."""
    x = ctx.input(op, 0)
    _same_quantization(op, [ctx.in_tensor(op, 0)], ctx.out_tensor(op))
    begin, size = (np.asarray(ctx.input(op, k)).reshape(-1).astype(np.int64) for k in (1, 2))
    if begin.size != x.ndim or size.size != x.ndim:
        raise ModelError(f"{op.describe()}: begin and size need {x.ndim} values, got {begin.size} and {size.size}")
    end = [x.shape[i] if s == -1 else b + s for i, (b, s) in enumerate(zip(begin, size, strict=True))]
    if any(b < 0 or e < b or e > d for b, e, d in zip(begin, end, x.shape, strict=True)):
        raise ModelError(f"{op.describe()}: begin {begin.tolist()} and size {size.tolist()} leave shape {x.shape}")
    return [x[tuple(slice(int(b), int(e)) for b, e in zip(begin, end, strict=True))]]


@kernel("MAXIMUM", "MINIMUM")
def maximum_minimum(ctx, op):
    """``maximum_minimum.cc``: the larger (smaller) integer of each broadcast pair.  LiteRT compares
    the raw integers whatever the scales; the inputs and the output must share one quantization
    here (with two, the raw comparison would not compare the real values: refused)."""
    x1, x2 = ctx.input(op, 0), ctx.input(op, 1)
    _same_quantization(op, [ctx.in_tensor(op, 0), ctx.in_tensor(op, 1)], ctx.out_tensor(op))
    try:
        return [(np.maximum if op.op == "MAXIMUM" else np.minimum)(x1, x2)]
    except ValueError:
        raise ModelError(f"{op.describe()}: input shapes {x1.shape} and {x2.shape} do not broadcast") from None
