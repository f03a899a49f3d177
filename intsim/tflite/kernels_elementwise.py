"""ADD, SUB, MUL, RELU, RELU6, LEAKY_RELU, HARD_SWISH, QUANTIZE, DEQUANTIZE.

Each follows the LiteRT reference kernel named in its docstring (``tflite/kernels/<op>.cc``
Prepare for the multipliers, ``tflite/kernels/internal/reference/...`` for the arithmetic); the
MBQM calls use the profile's build (double or single rounding).  Float expressions that C
evaluates in float32 (``float * float / float``) are evaluated in float32 here too.
"""

from __future__ import annotations

import numpy as np

from intsim import fixedpoint as fxp
from intsim.tflite import optimized, xnnpack
from intsim.tflite.add import quantized_add
from intsim.rounding import round_half_away, x86_int32
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite.context import act_range, broadcast, check_types, kernel, qparams, type_range
from intsim.tflite.model import ModelError

f32, f64 = np.float32, np.float64



@kernel("ADD", "SUB")
def add_sub(ctx, op):
    """``reference_integer_ops::Add`` / ``reference_ops::Sub`` general path (int8, and int16 with
    ``pot_scale_int16 = false``): inputs shifted left by 20 (int8) or 15 (int16), each scaled by
    ``s_i / (2 max(s1, s2))``, summed, scaled by ``2 max(s1, s2) / (2**shift * s_out)``
    (``tflite.add.quantized_add``).  A profile with ``kernels="xnnpack"`` runs int8 ADD/SUB
    as XNNPACK does instead (``tflite.xnnpack.xnnpack_add``); int16 ones, and int8 ones whose scale
    ratios XNNPACK does not take, stay with LiteRT's kernels, as in its default interpreter.  One
    with ``kernels="optimized"`` runs int8 ADD as LiteRT's optimized kernel does
    (``tflite.optimized.add_int8``).  The parameters depend on the model only: derived once per
    op and kept on the model."""
    dtype, params = ctx.once(("add_sub", op.index), lambda: _add_sub_params(ctx, op))
    x1, x2 = ctx.input(op, 0), ctx.input(op, 1)
    if x1.shape != x2.shape:
        x1, x2 = broadcast(op, x1, x2)
    if "xnnpack" in params:
        p = params["xnnpack"]
        return [xnnpack.xnnpack_add(x1, x2, p, output_zero_point=params["output_zero_point"], clamp=params["clamp"],
                            backend=ctx.backend).astype(dtype)]  # fmt: skip
    if "optimized" in params:
        p = {k: params[k] for k in ("zero_points", "multipliers", "shifts", "output_zero_point", "clamp")}
        return [optimized.add_int8(x1, x2, ctx.in_tensor(op, 0).shape, ctx.in_tensor(op, 1).shape, **p, backend=ctx.backend)]
    return [quantized_add(x1, x2, **params, backend=ctx.backend).astype(dtype)]


def _add_sub_params(ctx, op):
    t1, t2, ot = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    dtype = check_types(op, [t1, t2, ot], (np.int8, np.int16))
    (s1, z1), (s2, z2), (so, zo) = qparams(t1, op), qparams(t2, op), qparams(ot, op)
    if dtype == np.int16:
        if z1 or z2 or zo:
            raise ModelError(f"{op.describe()}: int16 {op.op} needs zero points of 0")
        if op.options.get("pot_scale_int16", True) and all(_is_pot(s) for s in (s1, s2, so)):
            raise ModelError(f"{op.describe()}: int16 {op.op} with pot_scale_int16 and power-of-two scales "
                             "(the LSTM-only path) is not supported")  # fmt: skip
    if dtype == np.int8 and ctx.profile.kernels == "xnnpack" and xnnpack.xnnpack_takes_add(s1, s2, so):
        return dtype, dict(xnnpack=xnnpack.xnnpack_add_params(s1, z1, s2, z2, so, op.op == "SUB"), output_zero_point=zo,
                           clamp=act_range(op, ot))  # fmt: skip
    left_shift = 15 if dtype == np.int16 else 20
    twice_max = f64(f32(2) * max(s1, s2))
    reals = (f64(s1) / twice_max, f64(s2) / twice_max, twice_max / f64(f32(1 << left_shift) * so))
    rounding = ctx.rounding(op)
    single = rounding == "single"
    mults, shifts = zip(*(fxp.quantize_multiplier(m, single_rounding=single) for m in reals), strict=True)
    params = dict(zero_points=(z1, z2), left_shift=left_shift, multipliers=mults, shifts=shifts,
                  output_zero_point=zo, clamp=act_range(op, ot), subtract=op.op == "SUB", rounding=rounding)
    if dtype == np.int8 and op.op == "ADD" and ctx.profile.kernels == "optimized" and rounding == "double":
        params["optimized"] = True  # sub.cc runs int8 SUB with the reference kernel
    return dtype, params


def _is_pot(scale) -> bool:
    m, _ = np.frexp(f32(scale))
    return m == 0.5


@kernel("MUL")
def mul(ctx, op):
    """``reference_integer_ops::Mul`` / ``reference_ops::Mul<int16_t>``: ``MBQM((x1 - z1) *
    (x2 - z2))`` with the multiplier ``s1 * s2 / s_out`` derived as the profile's ``"mul"`` class
    says (LiteRT's mul.cc in float32, TFLite Micro's mul_common.cc in double).  A
    profile with ``kernels="xnnpack"`` requantizes the int8 product as XNNPACK's qs8 vmul
    does (``src/qs8-vmul``, fp32: the ``float32`` rule with that same multiplier) where LiteRT's
    delegate takes the node (``xnnpack.xnnpack_takes_mul``); one with ``kernels="optimized"``
    narrows int8 as LiteRT's optimized kernel does (``optimized.mul_int8``)."""
    t1, t2, ot = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    dtype = check_types(op, [t1, t2, ot], (np.int8, np.int16))
    (s1, z1), (s2, z2), (so, zo) = qparams(t1, op), qparams(t2, op), qparams(ot, op)
    x1, x2 = broadcast(op, ctx.input(op, 0), ctx.input(op, 1))
    m = ctx.profile.real_multiplier(s1, s2, so, "mul")
    lo, hi = act_range(op, ot)
    if dtype == np.int8 and ctx.profile.kernels == "xnnpack" and xnnpack.xnnpack_takes_mul(s1, s2, so):
        acc = ((x1 - z1) * (x2 - z2)).astype(np.int32)  # |acc| <= 255 * 255
        return [fxp.requantize_float(acc, m, zo, qmin=lo, qmax=hi, rule="float32", backend=ctx.backend).astype(dtype)]
    scaled = ctx.mbqm(op, g.wrap32((x1 - z1) * (x2 - z2)), m)
    if dtype == np.int8 and ctx.profile.kernels == "optimized" and ctx.rounding(op) == "double":
        return [optimized.mul_int8(scaled, zo, (lo, hi), t1.shape, t2.shape)]
    return [np.clip(scaled + zo, lo, hi).astype(dtype)]


def _relu_x(ctx, op, act_min: float, act_max: float | None):
    """``reference_ops::ReluX``: ``zp_out + MBQM(x - zp_in, s_in / s_out)`` clamped to
    ``[max(qmin, zp + roundf(min / s)), min(qmax, zp + roundf(max / s))]`` (float32 division)."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    dtype = check_types(op, [it, ot], (np.int8, np.int16))
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    qmin, qmax = type_range(dtype)
    lo = max(qmin, zo + int(round_half_away(f32(act_min) / so)))
    hi = qmax if act_max is None else min(qmax, zo + int(round_half_away(f32(act_max) / so)))
    y = zo + ctx.mbqm(op, ctx.input(op, 0).astype(np.int64) - zi, f64(f32(si / so)))
    return [np.clip(y, lo, hi).astype(dtype)]


@kernel("RELU")
def relu(ctx, op):
    return _relu_x(ctx, op, 0.0, None)


@kernel("RELU6")
def relu6(ctx, op):
    """As ``_relu_x``; a profile with ``kernels="tflm"`` clamps in the *input's* quantization and
    leaves the values unscaled, as TFLite Micro does (``micro/kernels/activations_common.cc``
    Relu6Prepare: ``six = FloatToQuantizedType(6.0f, s_in, zp_in)``, then ``Relu6Quantized``
    clamps to ``[zp_in, six]``), whatever the output's quantization."""
    if ctx.profile.kernels == "tflm":
        it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
        dtype = check_types(op, [it, ot], (np.int8, np.int16))
        si, zi = qparams(it, op)
        qmin, qmax = type_range(dtype)
        six = min(max(int(round_half_away(f64(f32(6.0) / si))) + zi, qmin), qmax)  # round(float / float)
        return [np.clip(ctx.input(op, 0), zi, six).astype(dtype)]
    return _relu_x(ctx, op, 0.0, 6.0)


@kernel("RELU_N1_TO_1")
def relu_n1_to_1(ctx, op):
    return _relu_x(ctx, op, -1.0, 1.0)


@kernel("LEAKY_RELU")
def leaky_relu(ctx, op):
    """``reference_ops::QuantizeLeakyRelu``: identity multiplier ``s_in / s_out`` for
    ``x >= zp``, alpha multiplier ``s_in * alpha / s_out`` (float32) otherwise; a negative alpha
    multiplier is applied to the magnitude and negated.  A profile with ``kernels="xnnpack"``
    follows XNNPACK's qs8 leaky ReLU where LiteRT's delegate takes the node
    (``xnnpack.xnnpack_leaky_relu``); one with ``kernels="optimized"`` runs int16 as
    ``optimized.leaky_relu_int16``."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    dtype = check_types(op, [it, ot], (np.int8, np.int16))
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    alpha = f32(op.options.get("alpha", 0.2))
    if dtype == np.int8 and ctx.profile.kernels == "xnnpack" and xnnpack.xnnpack_takes_leaky_relu(si, so, alpha):
        return [xnnpack.xnnpack_leaky_relu(ctx.input(op, 0), si, zi, so, zo, alpha)]
    if dtype == np.int16 and ctx.profile.kernels == "optimized" and ctx.rounding(op) == "double" and zi == zo == 0:
        return [optimized.leaky_relu_int16(ctx.input(op, 0), si, so, alpha)]
    m_alpha = f64(f32(f32(si * alpha) / so))
    m_id = f64(f32(si / so))
    v = ctx.input(op, 0).astype(np.int64) - zi
    pos = ctx.mbqm(op, v, m_id)
    neg = ctx.mbqm(op, v, abs(m_alpha))
    if m_alpha < 0:
        neg = -neg
    lo, hi = type_range(dtype)
    return [np.clip(zo + np.where(v >= 0, pos, neg), lo, hi).astype(dtype)]


@kernel("HARD_SWISH")
def hard_swish(ctx, op):
    """``reference_ops::HardSwish`` (int8): the int16 fixed-point pipeline of
    ``reference/hard_swish.h`` with the multipliers of activations.cc ``HardSwishPrepare``."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    dtype = check_types(op, [it, ot], (np.int8,))
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    hires = f32(f32(1.0 / 128.0) * si)
    out_q, out_e = _int16_multiplier(f32(hires / so))
    if out_e > 0:
        raise ModelError(f"{op.describe()}: HARD_SWISH needs output_multiplier_exponent <= 0, got {out_e}")
    relu_q, relu_e = _int16_multiplier(f32(hires / f32(3.0 / 32768.0)))
    x = ctx.input(op, 0).astype(np.int64) - zi
    x_hires = g.wrap16(x * 128)
    preshift = g.srdhm16(x_hires, out_q)
    r = x_hires
    if relu_e > 0:
        r = g.saturating_left_shift16(r, relu_e - 1)
    r = g.srdhm16(r, relu_q)
    if relu_e > 0:
        r = g.saturating_left_shift16(r, 1)
    if relu_e < 0:
        r = g.rdbpot(r, -relu_e)
    r = (r + (1 << 15)) >> 1
    y = g.wrap16(g.rdbpot(g.sdhm16(r, preshift), -out_e) + zo)
    lo, hi = type_range(dtype)
    return [np.clip(y, lo, hi).astype(dtype)]


def _int16_multiplier(real) -> tuple[int, int]:
    """``QuantizeMultiplier`` then ``DownScaleInt32ToInt16Multiplier``."""
    q, e = fxp.quantize_multiplier(float(real))
    q16 = 2**15 - 1 if q >= 2**31 - 1 - (1 << 15) else (q + (1 << 15)) >> 16
    return q16, e


@kernel("QUANTIZE")
def quantize_op(ctx, op):
    """float32 -> int: ``reference_ops::AffineQuantize`` / ``PerChannelQuantize``
    (``static_cast<int32_t>(round_half_away(x / float32(scale))) + zp``, the division in float32;
    the cast as x86-64 computes it: NaN and values beyond int32 give INT32_MIN, and ``+ zp`` wraps
    before the clamp, so -inf with a negative zero point gives the type's maximum); int -> int: ``reference_ops::Requantize``
    (``tensorflow/lite/kernels/internal/reference/requantize.h``: MBQM of ``x - zp_in`` by
    ``double(s_in) / double(s_out)``, then ``+ zp_out`` in int32, clamped to the output type).
    Integer pairs: int8, uint8 and int16 to each other except int16 -> uint8, int8 and int16 to
    int32 (int16 -> int32 in LiteRT too; int8 -> int32 in TFLite Micro only), int32 to int8 and
    int16; TFLite Micro takes uint8 only to or from int8 (float32 -> uint8, uint8 -> uint8 and
    uint8 -> int16 are LiteRT's alone).  A profile with
    ``kernels="optimized"`` quantizes float32 per tensor as ``optimized_ops::AffineQuantize``
    and requantizes between int8 and uint8 as ``optimized_ops::Requantize``
    (``tflite.optimized``); one with ``kernels="xnnpack"`` quantizes float32 to int8 and
    requantizes int8 -> int8 as XNNPACK does where LiteRT's delegate takes the node
    (``tflite.xnnpack``)."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    x = ctx.input(op, 0)
    if ot.dtype not in (np.int8, np.uint8, np.int16, np.int32) or (it.dtype == np.float32 and ot.dtype == np.int32):
        raise ModelError(f"{op.describe()}: QUANTIZE to {ot.describe()} is not supported")
    if it.dtype == np.int16 and ot.dtype == np.uint8:
        raise ModelError(f"{op.describe()}: QUANTIZE from int16 to uint8, which LiteRT's and TFLite Micro's kernels refuse")
    pair = f"QUANTIZE from {it.dtype} to {ot.dtype}"
    if it.dtype == np.int8 and ot.dtype == np.int32:
        ctx.refuse(op, litert=pair)
    if np.uint8 in (it.dtype, ot.dtype) and not (it.dtype == np.int8 or ot.dtype == np.int8):
        ctx.refuse(op, tflm=pair + " (micro/kernels/quantize_common.cc: uint8 only to or from int8)")
    if it.dtype == np.float32:
        axis = ot.quantized_dimension if ot.scale.size > 1 else None
        if ctx.profile.kernels == "optimized" and axis is None and ot.dtype != np.int32:
            return [optimized.affine_quantize(x, ot.scale[0], int(ot.zero_point[0]), ot.dtype)]
        if ctx.profile.kernels == "xnnpack" and axis is None and ot.dtype in (np.int8, np.uint8):
            return [xnnpack.xnnpack_quantize(x, ot.scale[0], int(ot.zero_point[0]), ot.dtype)]
        shape = [1] * x.ndim
        if axis is not None:
            shape[axis] = -1
        scale, zp = ot.scale.astype(f32).reshape(shape), ot.zero_point.astype(np.int64).reshape(shape)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            q = x86_int32(round_half_away((x.astype(f32) / scale).astype(f32)))  # float32 division
        lo, hi = type_range(ot.dtype)
        return [np.clip(fxp.wrap32(q + zp), lo, hi).astype(ot.dtype)]
    check_types(op, [it], (np.int8, np.uint8, np.int16, np.int32))
    if it.dtype == np.int32 and ot.dtype not in (np.int8, np.int16):
        raise ModelError(f"{op.describe()}: QUANTIZE from int32 to {ot.describe()} is not supported")
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    if (it.dtype == ot.dtype and it.dtype in (np.int8, np.uint8) and ctx.profile.kernels == "xnnpack"
            and xnnpack.xnnpack_takes_requantize(si, so)):  # fmt: skip
        return [xnnpack.xnnpack_requantize(x, si, zi, so, zo, it.dtype).astype(it.dtype)]
    eight_bit = (np.int8, np.uint8)
    if ctx.profile.kernels == "optimized" and it.dtype in eight_bit and ot.dtype in eight_bit and ctx.rounding(op) == "double":
        return [optimized.requantize_8bit(x, si, zi, so, zo, ot.dtype)]
    y = fxp.wrap32(ctx.mbqm(op, fxp.wrap32(x.astype(np.int64) - zi), f64(si) / f64(so)).astype(np.int64) + zo)
    lo, hi = type_range(ot.dtype)
    return [np.clip(y, lo, hi).astype(ot.dtype)]


@kernel("DEQUANTIZE")
def dequantize_op(ctx, op):
    """``reference_ops::Dequantize``: ``float32(double(scale) * (x - zp))``; a profile with
    ``kernels="optimized"`` follows ``optimized_ops::Dequantize`` (``tflite.optimized``)."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    if ot.dtype != np.float32 or it.dtype not in (np.int8, np.uint8, np.int16, np.float16):
        raise ModelError(f"{op.describe()}: DEQUANTIZE from {it.describe()} to {ot.describe()} is not supported")
    x = ctx.input(op, 0)
    if it.dtype == np.float16:
        return [x.astype(np.float32)]
    if ctx.profile.kernels == "optimized" and it.scale.size == 1:
        return [optimized.dequantize(x, it.scale[0], int(it.zero_point[0]))]
    if it.scale.size > 1:
        shape = [1] * x.ndim
        shape[it.quantized_dimension] = -1
        s, z = it.scale.astype(f64).reshape(shape), it.zero_point.reshape(shape)
    else:
        s, z = qparams(it, op)
        s = f64(s)
    return [(s * (x.astype(np.int64) - z)).astype(np.float32)]
