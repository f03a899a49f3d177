"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, pooling and MEAN.

Conv, depthwise and fully connected run on ``intsim.ops`` (numba GEMM/conv kernels with their
references), so they follow the profile's requantization rule; the rest are small numpy
transliterations of LiteRT ``tflite/kernels/internal/reference/integer_ops/{pooling,
transpose_conv}.h`` and ``reference/reduce.h`` (``QuantizedMeanOrSum``).
"""

from __future__ import annotations

import numpy as np

from intsim import fixedpoint as fxp
from intsim import ops
from intsim import profiles as _profiles
from intsim.kernels.geometry import windows
from intsim.kernels.pool import average_pool
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite.context import (
    act_range, activation_name, check_types, geometry, kernel, padding_name, qparams, type_range,
)  # fmt: skip
from intsim.tflite import optimized, xnnpack
from intsim.tflite.model import ModelError

ACT_TYPES = (np.int8, np.int16)


def _conv_args(ctx, op):
    x = ctx.input(op, 0)
    return (x, *_conv_params(ctx, op))


def _conv_params(ctx, op):
    """(filter, bias, op keywords) of a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: everything
    but the input value, checked."""
    xt, wt, ot = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    check_types(op, [xt, ot], ACT_TYPES)
    if wt.dtype != np.int8:
        raise ModelError(f"{op.describe()}: filter {wt.describe()} must be INT8 or INT4")
    w = ctx.input(op, 1)
    bias = ctx.input(op, 2, required=False)
    if bias is not None and xt.dtype == np.int16:
        bias = np.asarray(bias).astype(np.int64)  # int16x8 kernels take int32 or int64 bias
    s_in, zp_in = qparams(xt, op)
    s_out, zp_out = qparams(ot, op)
    if not wt.quantized:
        raise ModelError(f"{op.describe()}: filter {wt.describe()} is not quantized")
    return w, bias, dict(
        input_scale=s_in, input_zero_point=zp_in, filter_scale=wt.scale, output_scale=s_out,
        output_zero_point=zp_out, activation=activation_name(op), profile=ctx.profile,
        backend=ctx.backend,
    )  # fmt: skip


def _prepared(ctx, op, build):
    """The op's ``ops.PreparedLayer``, built on first use and kept on the model, when its
    weights and bias are constant tensors (as in every converted model); None otherwise."""
    if any(i >= 0 and (i in ctx.values or ctx.tensor(i).data is None) for i in op.inputs[1:3]):
        return None
    return ctx.once(op.index, build)


def _conv(ctx, op, depthwise: bool):
    x, w, bias, q = _conv_args(ctx, op)
    o = op.options
    geometry_args = dict(strides=(o["stride_h"], o["stride_w"]), padding=padding_name(op),
                         dilations=(o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)))  # fmt: skip
    if depthwise:
        if w.shape[3] % x.shape[3]:
            raise ModelError(f"{op.describe()}: {w.shape[3]} filter channels for {x.shape[3]} input channels")
        geometry_args["depth_multiplier"] = w.shape[3] // x.shape[3]
    layer = _prepared(ctx, op, lambda: ops.prepare_conv2d(
        w, bias, input_shape=x.shape, input_dtype=x.dtype, **geometry_args, **q))  # fmt: skip
    if layer is not None:
        return [layer(x)]
    if depthwise:
        return [ops.depthwise_conv2d(x, w, bias, **geometry_args, **q)]
    return [ops.conv2d(x, w, bias, **geometry_args, **q)]


@kernel("CONV_2D")
def conv_2d(ctx, op):
    return _conv(ctx, op, depthwise=False)


@kernel("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(ctx, op):
    return _conv(ctx, op, depthwise=True)


@kernel("FULLY_CONNECTED")
def fully_connected(ctx, op):
    x = ctx.input(op, 0)
    w, bias, q, filter_zp, layer = fc_parts(ctx, op, x.size, x.dtype)
    if layer is not None:
        y = layer(x.reshape(-1, w.shape[1]))
    else:
        y = ops.fully_connected(x.reshape(-1, w.shape[1]), w, bias, filter_zero_point=filter_zp, **q)
    if op.options.get("keep_num_dims", False):
        return [y.reshape(x.shape[:-1] + (w.shape[0],))]
    return [y]


def fc_parts(ctx, op, x_size: int, x_dtype):
    """FULLY_CONNECTED's checked (filter, bias, op keywords, filter zero point, prepared layer)
    for an input of ``x_size`` elements; the layer (``ops.prepare_fully_connected``, kept on the
    model) is None when the filter or bias is not constant.  The whole-model program reads its
    parameters from the same layer."""
    w, bias, q = _conv_params(ctx, op)
    if w.ndim != 2:
        raise ModelError(f"{op.describe()}: filter must be 2-D (units, depth), got {w.shape}")
    if x_size % w.shape[1]:
        raise ModelError(f"{op.describe()}: input of {x_size} elements is not a multiple of depth {w.shape[1]}")
    wt = ctx.in_tensor(op, 1)
    filter_zp = int(wt.zero_point[0]) if wt.scale.size == 1 else 0  # 0 for per-channel filters
    if wt.scale.size == 1:
        ctx.once(("bias scale", op.index), lambda: _check_bias_scale(ctx, op))  # the model's constants: once
    layer = _prepared(ctx, op, lambda: ops.prepare_fully_connected(
        w, bias, input_dtype=x_dtype, filter_zero_point=filter_zp, **q))  # fmt: skip
    return w, bias, q, filter_zp, layer


def _check_bias_scale(ctx, op) -> None:
    """LiteRT's and TFLite Micro's ``GetQuantizedConvolutionMultipler`` (``kernel_util.cc``), for
    per-tensor FULLY_CONNECTED: the bias scale (0 for a bias without one scale) must lie within
    2% of the output scale of ``s_in * s_w``, or both runtimes refuse the node."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return
    bt = ctx.tensor(op.inputs[2])
    s_bias = float(bt.scale[0]) if bt.scale.size == 1 else 0.0
    product = float(ctx.in_tensor(op, 0).scale[0]) * float(ctx.in_tensor(op, 1).scale[0])
    s_out = float(ctx.out_tensor(op).scale[0])
    if abs(product - s_bias) / s_out > 0.02:
        raise ModelError(f"{op.describe()}: bias scale {s_bias:.6g} differs from input scale x filter scale "
                         f"{product:.6g} by more than 2% of the output scale {s_out:.6g}; LiteRT and TFLite Micro "
                         "refuse the node (kernel_util.cc GetQuantizedConvolutionMultipler)")  # fmt: skip


@kernel("TRANSPOSE_CONV")
def transpose_conv(ctx, op):
    """LiteRT ``reference_integer_ops::TransposeConv``: scatter-accumulate ``x * w`` into an
    int32 (int64 for int16x8) buffer, add bias, requantize per channel with MBQM (double
    rounding; the int64 rule for int16x8).  Inputs: output shape, filter OHWI, input, bias."""
    shape = np.asarray(ctx.input(op, 0)).astype(np.int64)
    w = ctx.input(op, 1)
    x = ctx.input(op, 2)
    bias = ctx.input(op, 3, required=False)
    xt, wt, ot = ctx.in_tensor(op, 2), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    dtype = check_types(op, [xt, ot], ACT_TYPES)
    s_in, zp_in = qparams(xt, op)
    s_out, zp_out = qparams(ot, op)
    o = op.options
    sh, sw = o["stride_h"], o["stride_w"]
    n, out_h, out_w, out_c = (int(v) for v in shape)
    _, kh, kw, _ = w.shape
    # LiteRT calls ComputePaddingHeightWidth with the *output* size as the input size
    (in_h, in_w), (pad_t, pad_l) = geometry(op, (out_h, out_w), (kh, kw), (sh, sw))
    if (in_h, in_w) != x.shape[1:3] or w.shape[3] != x.shape[3] or w.shape[0] != out_c:
        raise ModelError(f"{op.describe()}: input {x.shape}, filter {w.shape} and output shape {shape.tolist()} disagree")
    full_h = max((x.shape[1] - 1) * sh + kh, pad_t + out_h)
    full_w = max((x.shape[2] - 1) * sw + kw, pad_l + out_w)
    acc = np.zeros((n, full_h, full_w, out_c), np.int64)
    xs = x.astype(np.int64) - zp_in
    ws = w.astype(np.int64)
    for fy in range(kh):
        for fx in range(kw):
            contrib = np.einsum("nhwi,oi->nhwo", xs, ws[:, fy, fx, :])
            acc[:, fy : fy + sh * x.shape[1] : sh, fx : fx + sw * x.shape[2] : sw, :] += contrib
    acc = acc[:, pad_t : pad_t + out_h, pad_l : pad_l + out_w, :]
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    lo, hi = act_range(op, ot)
    int16x8 = dtype == np.int16
    req = ctx.once(("transpose_conv", op.index), lambda: _profiles.Requantizer(
        ctx.profile, s_in, wt.scale, s_out, zp_out, qmin=lo, qmax=hi, op="int16" if int16x8 else "transpose-conv",
        backend=ctx.backend, channels=acc.shape[-1]))  # fmt: skip
    acc = acc if int16x8 else g.wrap32(acc).astype(np.int32)  # int32 scratch buffer (int8)
    return [req(np.ascontiguousarray(acc)).astype(dtype)]


@kernel("AVERAGE_POOL_2D")
def average_pool_2d(ctx, op):
    """``reference_integer_ops::AveragePool`` (``kernels.pool.average_pool``): mean of the in-image
    taps, rounded half away from zero by integer division, then the fused activation clamp (no
    requantization)."""
    x = ctx.input(op, 0)
    dtype = check_types(op, [ctx.in_tensor(op, 0), ctx.out_tensor(op)], ACT_TYPES)
    o = op.options
    kh, kw, sh, sw = o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"]
    out_hw, pad_tl = geometry(op, x.shape[1:3], (kh, kw), (sh, sw))
    try:
        avg = average_pool(x, filter_hw=(kh, kw), stride_hw=(sh, sw), pad_tl=pad_tl, out_hw=out_hw,
                           clamp=act_range(op, ctx.out_tensor(op)), backend=ctx.backend)  # fmt: skip
    except ValueError as e:
        raise ModelError(f"{op.describe()}: {e}") from None
    return [avg.astype(dtype)]


@kernel("MAX_POOL_2D")
def max_pool_2d(ctx, op):
    """``reference_integer_ops::MaxPool``: the largest in-image tap, then the activation clamp."""
    x = ctx.input(op, 0)
    dtype = check_types(op, [ctx.in_tensor(op, 0), ctx.out_tensor(op)], ACT_TYPES)
    o = op.options
    kernel_hw, strides = (o["filter_height"], o["filter_width"]), (o["stride_h"], o["stride_w"])
    out_hw, pad_tl = geometry(op, x.shape[1:3], kernel_hw, strides)
    lowest = np.iinfo(np.int64).min  # outside the image: never the maximum
    nchw = np.moveaxis(x.astype(np.int64), 3, 1)
    best = np.maximum.reduce([taps for taps, _ in windows(nchw, kernel_hw, out_hw, pad_tl, strides, lowest)])
    lo, hi = act_range(op, ctx.out_tensor(op))
    return [np.clip(np.moveaxis(best, 1, 3), lo, hi).astype(dtype)]


@kernel("MEAN", "SUM")
def mean(ctx, op):
    """LiteRT ``reference_ops::QuantizedMeanOrSum`` (TFLite Micro's ``reduce_common.cc`` too):
    int32 sum over the axes; for MEAN the multiplier ``s_in/s_out`` folded with ``1/n`` as
    ``(q << k) / n`` (``k = floor(log2 n)`` capped at 32 and ``31 + shift``), for SUM
    ``s_in/s_out`` as it is; then MBQM of ``sum - zp_in * n`` and ``+ zp_out``.  A profile with
    ``kernels="optimized"`` runs int8 4-D H-and-W means with ``keep_dims`` as
    ``optimized_integer_ops::Mean`` (``tflite.optimized``), as LiteRT's reduce.cc does; one
    with ``kernels="xnnpack"`` every int8 MEAN and SUM as XNNPACK does
    (``tflite.xnnpack.xnnpack_mean``).  LiteRT's optimized SUM requantizes in float32
    (``optimized.reduce_sum``).  LiteRT's reference SUM (``BUILTIN_REF``) reads int8 and
    int16 tensors as uint8 (``reduce.cc``, ``EvalSum<kReference>``): that bug is not modelled,
    the profile raises."""
    x = ctx.input(op, 0)
    xt, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    dtype = check_types(op, [xt, ot], ACT_TYPES)
    axes = sorted({int(a) % x.ndim for a in np.asarray(ctx.input(op, 1)).reshape(-1)})
    s_in, zp_in = qparams(xt, op)
    s_out, zp_out = qparams(ot, op)
    keep = bool(op.options.get("keep_dims", False))
    is_sum = op.op == "SUM"
    if is_sum and ctx.profile.kernels == "reference":
        raise ModelError(f"{op.describe()}: LiteRT's reference SUM reads {dtype} tensors as uint8 (reduce.cc "
                         "EvalSum<kReference>), a bug not modelled; profiles litert-builtin and tflm model the "
                         "kernels that compute the sum")  # fmt: skip
    if is_sum and dtype == np.int16 and ctx.profile.kernels != "tflm" and (zp_in or zp_out):
        raise ModelError(f"{op.describe()}: int16 SUM needs zero points 0 in LiteRT")
    if not is_sum and ctx.profile.kernels == "optimized" and optimized.takes_mean(x.shape, axes, keep, dtype):
        return [optimized.mean_hw(x, s_in, zp_in, s_out, zp_out, ctx.backend)]
    if ctx.profile.kernels == "xnnpack" and dtype == np.int8 and axes:
        return [xnnpack.xnnpack_mean(x, axes, keep, s_in, zp_in, s_out, zp_out, mean=not is_sum).reshape(ot.shape)]
    n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    total = x.astype(np.int64).sum(axis=tuple(axes), keepdims=keep)
    total = g.wrap32(total)  # int32 temp_sum
    if is_sum and ctx.profile.kernels in ("optimized", "xnnpack"):  # XNNPACK leaves int16 to the builtin kernel
        return [optimized.reduce_sum(total, n, s_in, zp_in, s_out, zp_out, dtype).reshape(ot.shape)]
    q, shift = fxp.quantize_multiplier(float(np.float64(s_in) / np.float64(s_out)), single_rounding=ctx.rounding(op) == "single")
    k = 0 if is_sum else min(n.bit_length() - 1, 32, 31 + shift)
    q = (q << k) // (1 if is_sum else n)
    shifted = g.wrap32(total - zp_in * n)
    y = ctx.mbqm_raw(op, shifted, q, shift - k) + zp_out
    lo, hi = type_range(dtype)
    return [np.clip(y, lo, hi).astype(dtype).reshape(ot.shape if ot.shape else y.shape)]
