"""SOFTMAX, LOG_SOFTMAX, LOGISTIC and TANH: the fixed-point and table paths of the reference
kernels.

- SOFTMAX int8: ``reference_ops::Softmax`` (LiteRT and TFLite Micro alike): input differences
  scaled by ``PreprocessSoftmaxScaling``'s multiplier into Q5.26, gemmlowp
  ``exp_on_negative_values``, a Q12.19 sum, ``GetReciprocal`` and a rounding shift.
- SOFTMAX int16: ``reference_ops::SoftmaxInt16``: two 513-entry interpolated tables (exp on
  [-10, 0] and 1/(1+x) on [0, 1]) built by ``LUTPopulateInt16<double>``.
- LOGISTIC / TANH int8: LiteRT builds a 256-entry table from float32 math (``LUTPopulateInt8``);
  TFLite Micro (profile ``activation_impl="fixed-point"``) runs
  ``reference_integer_ops::Logistic``/``Tanh`` in gemmlowp fixed point.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from intsim.tflite.softmax import input_radius, softmax_int8
from intsim.rounding import round_half_away, x86_int32
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite import int16_activations
from intsim.tflite.float_softmax import log_softmax_optimized, softmax_int16_optimized
from intsim.tflite.log_softmax import log_softmax_reference
from intsim.tflite.context import check_types, checked_log2, kernel, qparams
from intsim.tflite.model import ModelError

f32, f64 = np.float32, np.float64


# ---- SOFTMAX ----------------------------------------------------------------------------------------


@kernel("SOFTMAX")
def softmax(ctx, op):
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    si, _ = qparams(it, op)
    so, zo = qparams(ot, op)
    beta = op.options.get("beta", 1.0)
    if it.dtype == np.int8 and ot.dtype == np.int16:  # softmax.cc / softmax_common.cc: int8 in, int16 out
        if zo != -32768 or abs(so - 1 / 65536) > 0.001 / 65536:
            raise ModelError(f"{op.describe()}: int16 output of int8 SOFTMAX must have scale 1/65536 and zero point -32768")
        if ctx.profile.kernels == "optimized":  # optimized_ops::Softmax<int8_t, int16_t>: a float table
            return [softmax_int16_optimized(ctx.input(op, 0), si, beta)]
        return [softmax_int8(ctx.input(op, 0), beta, si, ctx.rounding(op), backend=ctx.backend, out_dtype=np.int16)]
    dtype = check_types(op, [it, ot], (np.int8, np.int16))
    if dtype == np.int8:
        if zo != -128 or abs(so - 1 / 256) > 0.001 / 256:
            raise ModelError(f"{op.describe()}: int8 SOFTMAX output must have scale 1/256 and zero point -128")
        return [softmax_int8(ctx.input(op, 0), beta, si, ctx.rounding(op), backend=ctx.backend)]
    if zo != 0 or abs(so - 1 / 32768) > 0.001 / 32768:
        raise ModelError(f"{op.describe()}: int16 SOFTMAX output must have scale 1/32768 and zero point 0")
    return [softmax_int16(ctx.input(op, 0).astype(np.int64), beta, si, ctx, op)]


@kernel("LOG_SOFTMAX")
def log_softmax(ctx, op):
    """int8 LOG_SOFTMAX (``tflite.log_softmax``): the reference kernel (LiteRT BUILTIN_REF, TFLite
    Micro), or LiteRT's optimized float-table one under ``kernels="optimized"``; the output at
    scale 16/256 and zero point 127, as both runtimes require."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    check_types(op, [it, ot], (np.int8,))
    si, _ = qparams(it, op)
    so, zo = qparams(ot, op)
    if so != f32(16 / 256) or zo != 127:
        raise ModelError(f"{op.describe()}: int8 LOG_SOFTMAX output must have scale 16/256 and zero point 127")
    x = ctx.input(op, 0)
    if ctx.profile.kernels == "optimized":
        return [log_softmax_optimized(x, si)]
    try:
        return [log_softmax_reference(x, si, backend=ctx.backend)]
    except ValueError as e:
        raise ModelError(f"{op.describe()}: {e}") from None


def lut_int16(input_scale, input_zp, output_scale, output_zp, fn) -> np.ndarray:
    """``LUTPopulateInt16<double>``: 512 samples of ``fn`` with a midpoint bias correction, plus
    the end point (513 int16 entries)."""
    input_min = input_scale * (-32768 - input_zp)
    input_max = input_scale * (32767 - input_zp)
    output_min = output_scale * (-32768 - output_zp)
    output_max = output_scale * (32767 - output_zp)
    step = (input_max - input_min) / 512
    half_step = step / 2
    inv = 65536.0 / (output_max - output_min)
    i = np.arange(512, dtype=f64)
    val = fn(input_min + i * step)
    val_mid = fn(input_min + i * step + half_step)
    val_next = fn(input_min + (i + 1) * step)
    sample = round_half_away(val * inv)
    interp = round_half_away((val_next * inv + round_half_away(val * inv)) / 2)
    bias = round_half_away((interp - round_half_away(val_mid * inv)) / 2)
    lut = np.empty(513, np.int64)
    lut[:512] = np.clip(sample - bias, -32768, 32767)
    lut[512] = np.clip(round_half_away(fn(np.array([input_max]))[0] * inv), -32768, 32767)
    return lut


def lut_lookup(value, lut) -> np.ndarray:
    """``LUTLookup`` (int16 in, int16 out): 9-bit index, 7-bit linear interpolation."""
    v = g.i64(value)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    base = lut[index]
    slope = lut[index + 1] - base
    return g.wrap16(base + ((slope * offset + 64) >> 7))


_RANGE = 65535
@functools.cache
def _softmax_luts():
    """SoftmaxPrepare's two int16 tables: exp on [-10, 0] and 1/(1+x) on [0, 1]."""
    return (
        lut_int16(10.0 / _RANGE, 32767, 2.0 / _RANGE, 0, np.exp),
        lut_int16(1.0 / _RANGE, -32768, 2.0 / _RANGE, 0, lambda v: 1.0 / (1.0 + v)),
    )


def softmax_int16(x, beta, input_scale, ctx, op) -> np.ndarray:
    """``reference_ops::SoftmaxInt16`` over the last axis."""
    exp_lut, recip_lut = _softmax_luts()
    real = f64(f32(f32(input_scale) * f32(beta))) / (10.0 / 65535.0)
    diff = x - x.max(axis=-1, keepdims=True)
    scaled = ctx.mbqm(op, diff, real)
    exps = lut_lookup(np.clip(scaled + 32767, -32768, 32767), exp_lut)
    total = g.wrap32(exps.sum(axis=-1, keepdims=True))
    headroom = g.count_leading_zeros32(total)
    shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
    recip = lut_lookup(np.clip(shifted - (1 << 15) - (1 << 16), -32768, 32767), recip_lut)
    right_shift = 31 - headroom
    out = (exps * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(out, 0, 32767).astype(np.int16)


# ---- LOGISTIC / TANH --------------------------------------------------------------------------------


def lut_int8(input_scale, input_zp, output_scale, output_zp, fn, x86_cast: bool = False) -> np.ndarray:
    """``LUTPopulateInt8`` (float32 throughout), indexed by ``value + 128``: ``static_cast<int32_t>
    (round(fn(x) / s_out) + zp)`` clamped.  A value past int32 saturates as LiteRT's build converts
    it; ``x86_cast``: as a plain x86 ``cvttss2si`` (INT32_MIN, then -128: TFLite Micro's ELU)."""
    vals = np.arange(-128, 128)
    deq = f32(input_scale) * (vals - input_zp).astype(f32)
    with np.errstate(over="ignore", invalid="ignore"):
        rescaled = round_half_away(fn(deq) * (f32(1) / f32(output_scale))) + f32(output_zp)  # roundf: float32
    if x86_cast:
        return np.clip(x86_int32(rescaled), -128, 127)
    return np.clip(np.nan_to_num(rescaled, nan=0.0), -128, 127).astype(np.int64)


def _sigmoid_f32(v):
    with np.errstate(over="ignore"):
        return f32(1) / (f32(1) + np.exp(-v))


def _fixed_point_input(input_scale):
    """TFLite Micro's int8 LOGISTIC/TANH prepare: Q4.27 input multiplier via ``frexp``, and the
    input radius beyond which the output saturates."""
    real = f64(f32(input_scale)) * float(1 << 27)
    m, left_shift = math.frexp(real)
    q = int(round_half_away(m * 2.0**31))
    if q >= 2**31:
        raise ModelError(f"input scale {input_scale} rounds to a Q31 multiplier of 2**31")
    return q, left_shift, input_radius(4, left_shift)


def _int16_input_scaling(op, input_scale, name) -> tuple[int, int]:
    """LOGISTIC / TANH int16 Prepare (LiteRT ``activations.cc``, TFLite Micro
    ``logistic_common.cc``, ``tanh.cc``): ``(0, shift)`` for a power-of-two input scale of
    2**-12 (TANH: or 2**-11), else the multiplier ``s_in * 4096 * 3`` doubled up past 16383.5
    and truncated, with its shift."""
    p, exact = checked_log2(input_scale)
    shift = 12 + p
    if exact and (shift == 0 or (name == "TANH" and shift == 1)):
        return 0, shift
    multiplier, shift = float(input_scale) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if multiplier > 32767:
        raise ModelError(f"{op.describe()}: int16 {name} input scale {float(input_scale)} is too large for the table")
    return int(multiplier), shift


def _activation_int16(ctx, op, name):
    """int16 LOGISTIC / TANH: ``reference_integer_ops::Logistic`` / ``Tanh`` (the table
    interpolation of ``int16_activations``) in both runtimes' reference kernels; LiteRT's
    optimized kernels take power-of-two input scales (2**-12; TANH also 2**-11, saturating-
    doubled first) to gemmlowp's int16 ``logistic``/``tanh`` on F3 (``optimized_ops.h``).  Zero
    points 0 and an output scale of 2**-15."""
    (si, zi), (so, zo) = qparams(ctx.in_tensor(op, 0), op), qparams(ctx.out_tensor(op), op)
    p, exact = checked_log2(so)
    if zi or zo or not exact or p != -15:
        raise ModelError(f"{op.describe()}: int16 {name} needs zero points 0 and an output scale of 2**-15")
    multiplier, shift = _int16_input_scaling(op, si, name)
    x = ctx.input(op, 0)
    if multiplier == 0 and ctx.profile.kernels == "optimized":
        v = g.srmpot(x, shift, 16) if shift else x
        kind = "logistic" if name == "LOGISTIC" else "tanh"
        return [int16_activations.gemmlowp16(kind, 3, v, ctx.backend).astype(np.int16)]
    f = int16_activations.sigmoid_int16 if name == "LOGISTIC" else int16_activations.tanh_int16
    return [f(x, multiplier, shift, backend=ctx.backend)]


def _activation(ctx, op, name):
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    if check_types(op, [it, ot], (np.int8, np.int16)) == np.int16:
        return _activation_int16(ctx, op, name)
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    x = ctx.input(op, 0).astype(np.int64)
    if not ctx.tflm:
        fn = _sigmoid_f32 if name == "LOGISTIC" else np.tanh
        return [lut_int8(si, zi, so, zo, fn)[x + 128].astype(np.int8)]
    q, left_shift, radius = _fixed_point_input(si)
    v = x - zi
    q4 = ctx.mbqm_raw(op, np.clip(v, -radius, radius), q, left_shift)
    if name == "LOGISTIC":
        y = g.rdbpot(g.logistic(q4, 4), 23) - 128
    else:
        y = g.rdbpot(g.tanh(q4, 4), 24)
    y = np.where(v <= -radius, -128, np.where(v >= radius, 127, np.clip(y, -128, 127)))
    return [y.astype(np.int8)]


@kernel("LOGISTIC")
def logistic(ctx, op):
    if ctx.out_tensor(op).dtype == np.int8:
        so, zo = qparams(ctx.out_tensor(op), op)
        if so != f32(1 / 256) or zo != -128:
            raise ModelError(f"{op.describe()}: int8 LOGISTIC output must have scale 1/256 and zero point -128")
    return _activation(ctx, op, "LOGISTIC")


@kernel("TANH")
def tanh(ctx, op):
    return _activation(ctx, op, "TANH")
