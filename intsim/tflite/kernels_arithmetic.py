"""DIV, SQUARED_DIFFERENCE, RSQRT, PRELU, BATCH_MATMUL, ABS, ADD_N, CUMSUM, L2_NORMALIZATION:
quantized arithmetic with multipliers of their own.

Every MultiplyByQuantizedMultiplier here is the profile's build for the ``arithmetic`` class
(double rounding in both runtimes' default builds; the ``...GreaterThanOne`` and
``...SmallerThanOneExp`` variants are MBQM with a non-negative and a non-positive shift).  The
kernels are LiteRT's and TFLite Micro's shared reference code (``internal/reference/div.h``,
``prelu.h``, ``integer_ops``); where the two runtimes derive a multiplier differently or accept
other types, the profile (``Profile.kernels``) decides.
"""

from __future__ import annotations

import numpy as np

from intsim import fixedpoint as fxp
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite.context import act_range, broadcast, kernel, qparams, type_range
from intsim.tflite.model import ModelError

f32 = np.float32



def _same_types(op, tensors, allowed):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or dtypes.pop() not in [np.dtype(a) for a in allowed]:
        raise ModelError(f"{op.describe()}: unsupported types ({', '.join(t.describe() for t in tensors)})")


def _count_leading_sign_bits(x) -> np.ndarray:
    """``CountLeadingSignBits`` of int32 values (31 for 0 and -1)."""
    x = np.asarray(x, np.int64)
    return g.count_leading_zeros32(np.where(x >= 0, x, ~x)) - 1


@kernel("DIV")
def div(ctx, op):
    """``reference_ops::DivElementwise`` (``internal/reference/div.h``): ``a = x1 - zp1``,
    ``b = x2 - zp2`` (signs moved to ``a`` when ``b < 0``); ``GetReciprocal(b, 31)``; ``a``
    shifted up by its leading sign bits and multiplied by the reciprocal; then the output
    multiplier ``float32(s1 / (s2 * s_out))`` (float in both runtimes) with the shift left over,
    ``+ zp_out``, clamped to the fused activation's range.  int8 in both runtimes, int16 in LiteRT
    only.  A divisor equal to its zero point is an error in LiteRT (``CheckNonZero``) and
    undefined in TFLite Micro: it raises here."""
    t1, t2, to = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    _same_types(op, [t1, t2, to], (np.int8, np.int16))
    if to.dtype == np.int16:
        ctx.refuse(op, tflm="int16 DIV (micro/kernels/div.cc: float32, int32 and int8 only)")
    (s1, z1), (s2, z2), (so, zo) = qparams(t1, op), qparams(t2, op), qparams(to, op)
    q, shift = fxp.quantize_multiplier(float(f32(s1 / f32(s2 * so))), single_rounding=ctx.rounding(op) == "single")
    a, b = broadcast(op, ctx.input(op, 0), ctx.input(op, 1))
    a, b = a - z1, b - z2
    if np.any(b == 0):
        raise ModelError(f"{op.describe()}: a divisor equals its zero point ({z2}): division by zero")
    a, b = np.where(b < 0, -a, a), np.abs(b)
    recip, recip_shift = g.get_reciprocal(b, 31)
    headroom = _count_leading_sign_bits(a)
    unscaled = _mbqm_array(ctx, op, a, recip, headroom)
    total_shift = shift - recip_shift - headroom
    if np.any(total_shift > 0):
        raise ModelError(f"{op.describe()}: a quotient's shift is positive (undefined in the reference kernel)")
    if ctx.rounding(op) == "double":
        y = _rdbpot_x86(g.srdhm(unscaled, q), -total_shift) + zo
        if ctx.profile.kernels == "tflm":  # the tflite-micro runtime rounds exact ties away from zero
            tie, away = _exact_ties(a, b, q, shift)
            y = np.where(tie, away + zo, y)
    elif np.any(total_shift < -31):
        raise ModelError(f"{op.describe()}: a quotient's right shift exceeds 31 (undefined in the reference kernel)")
    else:
        y = _mbqm_array(ctx, op, unscaled, q, total_shift) + zo
    lo, hi = act_range(op, to)
    return [np.clip(y, lo, hi).astype(to.dtype)]


def _exact_ties(a, b, q: int, shift: int):
    """Where ``a / b * q * 2**(shift - 31)`` (``b > 0``) is exactly half an odd integer, and
    that value rounded half away from zero.  The tflite-micro runtime (0.dev20261023, built from
    a commit newer than the sources read) gives those ties away from zero where the reference
    kernel's reciprocal lands just short of them; elsewhere the two agree (measured)."""
    num = 2 * np.abs(a) * q  # 2|a| q 2**shift / (b 2**31) is an odd integer at a tie
    num, den = (num << max(shift, 0)), b << (31 + max(-shift, 0))
    ratio, rest = np.divmod(num, den)
    tie = (rest == 0) & (ratio % 2 == 1) & (a != 0)
    return tie, np.sign(a) * ((ratio + 1) // 2)


def _rdbpot_x86(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` on int32 as x86-64 builds run it for any exponent >= 0:
    past 31 (undefined in C++, reached by DIV when ``x1 == zp1`` or ``|x1 - zp1| = 1``) the
    mask ``int32((1 << e) - 1)`` is -1 and the shift count is taken modulo 32, so 0 rounds to 1.
    Measured against LiteRT 2.3 and the TFLite Micro runtime."""
    x, e = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    big = e > 31
    mask = np.where(big, -1, (np.int64(1) << np.minimum(e, 31)) - 1)
    threshold = (mask >> 1) + (x < 0)
    return (x >> np.where(big, e & 31, e)) + ((x & mask) > threshold)


def _mbqm_array(ctx, op, x, q, shift) -> np.ndarray:
    """MBQM with per-element multipliers and shifts (arrays broadcast with ``x``)."""
    x, q, shift = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(q, np.int64), np.asarray(shift, np.int64))
    flat = [a.reshape(-1) for a in (x, q, shift)]
    out = fxp.apply(fxp.get_rule(ctx.rounding(op)), fxp.wrap32(flat[0]), flat[1], flat[2], 0, fxp.INT32_MIN,
                    fxp.INT32_MAX, axis=0, backend=ctx.backend)  # fmt: skip
    return np.asarray(out, np.int64).reshape(x.shape)


@kernel("SQUARED_DIFFERENCE")
def squared_difference(ctx, op):
    """``squared_difference.cc``: each input shifted left (7 for int8, 0 for int16), scaled by
    ``s_i / (2 max(s1, s2))``, the difference squared in int32, then scaled by
    ``(2 max)**2 / (2**(2 shift) * s_out)`` (a float product in the denominator), ``+ zp_out``,
    clamped.  int8 in both runtimes; int16 (zero points 0) in TFLite Micro only.  LiteRT
    requires the output multiplier below 1 (it aborts otherwise: refused)."""
    t1, t2, to = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    _same_types(op, [t1, t2, to], (np.int8, np.int16))
    (s1, z1), (s2, z2), (so, zo) = qparams(t1, op), qparams(t2, op), qparams(to, op)
    if to.dtype == np.int16:
        ctx.refuse(op, litert="int16 SQUARED_DIFFERENCE (float32, int32 and int8 only)")
        if z1 or z2 or zo:
            raise ModelError(f"{op.describe()}: int16 SQUARED_DIFFERENCE needs zero points 0")
    left_shift = 7 if to.dtype == np.int8 else 0
    twice_max = 2.0 * float(max(s1, s2))
    single = ctx.rounding(op) == "single"
    (q1, e1), (q2, e2) = (fxp.quantize_multiplier(float(s) / twice_max, single_rounding=single) for s in (s1, s2))
    real_out = twice_max * twice_max / float(f32(f32(1 << (2 * left_shift)) * so))
    if real_out >= 1:
        ctx.refuse(op, litert=f"an output multiplier of {real_out:.3g} >= 1 (QuantizeMultiplierSmallerThanOneExp)")
    q_out, e_out = fxp.quantize_multiplier(real_out, single_rounding=single)
    a, b = broadcast(op, ctx.input(op, 0), ctx.input(op, 1))
    d1 = ctx.mbqm_raw(op, (a - z1) << left_shift, q1, e1)
    d2 = ctx.mbqm_raw(op, (b - z2) << left_shift, q2, e2)
    diff = d1.astype(np.int64) - d2
    y = ctx.mbqm_raw(op, fxp.wrap32(diff * diff), q_out, e_out) + zo
    lo, hi = type_range(to.dtype)
    return [np.clip(y, lo, hi).astype(to.dtype)]


@kernel("RSQRT")
def rsqrt(ctx, op):
    """int8 RSQRT (LiteRT and TFLite Micro ``elementwise.cc``): ``v = x - zp_in`` (negative:
    an error in both; 0: 127), ``MBQM(1, GetInvSqrtQuantizedMultiplierExp(v), shift + 20)``,
    then ``MBQM(., 1 / (sqrt(s_in) * s_out), shift - 20) + zp_out`` (``sqrt`` and the product
    in float), clamped.  A function of the 256 inputs: a table per operator."""
    ti, to = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    _same_types(op, [ti, to], (np.int8,))
    x = ctx.input(op, 0).astype(np.int64)
    (si, zi), (so, zo) = qparams(ti, op), qparams(to, op)
    if np.any(x < zi):
        raise ModelError(f"{op.describe()}: RSQRT of a negative value (both runtimes fail)")
    rounding = ctx.rounding(op)

    def table():
        q, shift = fxp.quantize_multiplier(1.0 / float(f32(f32(np.sqrt(si)) * so)), single_rounding=rounding == "single")
        out = np.full(256, 127, np.int64)
        for v in range(1, 256):
            m, e = g.inv_sqrt_quantized_multiplier(v)
            data = fxp.mbqm_reference(1, m, e + 20, rounding)
            out[v] = min(max(fxp.mbqm_reference(data, q, shift - 20, rounding) + zo, -128), 127)
        return out

    return [ctx.once(("rsqrt", op.index), table)[x - zi].astype(np.int8)]


@kernel("PRELU")
def prelu(ctx, op):
    """``reference_ops::BroadcastPrelu4DSlow`` (``internal/reference/prelu.h``): ``v = x - zp``;
    ``MBQM(v, s_in / s_out)`` where ``v >= 0``, else ``MBQM(v * (alpha - zp_alpha), s_in *
    s_alpha / s_out)``; ``+ zp_out``, clamped.  The multipliers are float32 in LiteRT
    (activations.cc), double in TFLite Micro (prelu_common.cc).  int8 and int16 inputs, int8
    alpha for int16."""
    ti, ta, to = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    if ti.dtype not in (np.int8, np.int16) or to.dtype != ti.dtype or ta.dtype not in (ti.dtype, np.int8):
        raise ModelError(f"{op.describe()}: unsupported types ({ti.describe()}, {ta.describe()}, {to.describe()})")
    (si, zi), (sa, za), (so, zo) = qparams(ti, op), qparams(ta, op), qparams(to, op)
    single = ctx.rounding(op) == "single"
    if ctx.profile.kernels == "tflm":
        m1, m2 = float(si) / float(so), float(si) * float(sa) / float(so)
    else:
        m1, m2 = float(f32(si / so)), float(f32(f32(si * sa) / so))
    (q1, e1), (q2, e2) = (fxp.quantize_multiplier(m, single_rounding=single) for m in (m1, m2))
    x, alpha = broadcast(op, ctx.input(op, 0), ctx.input(op, 1))
    v = x - zi
    pos = ctx.mbqm_raw(op, v, q1, e1)
    neg = ctx.mbqm_raw(op, fxp.wrap32(v * (alpha - za)), q2, e2)
    lo, hi = type_range(to.dtype)
    return [np.clip(np.where(v >= 0, pos, neg) + zo, lo, hi).astype(to.dtype)]


@kernel("BATCH_MATMUL")
def batch_matmul(ctx, op):
    """``reference_ops::BatchMatMul`` (LiteRT ``batch_matmul.cc``, which runs it in every mode;
    TFLite Micro ``batch_matmul.cc``): ``lhs`` [..., M, K] times ``rhs`` [..., K, N]
    (``adj_x`` / ``adj_y`` transpose the last two axes first; batch axes broadcast), zero points
    subtracted, int32 sums (int8; they wrap) or int64 (int16, zero points 0), then
    ``MultiplyByQuantizedMultiplier`` (the int64 one for int16) by ``float32(s_l * s_r) /
    s_out``, ``+ zp_out``, clamped.  XNNPACK, which LiteRT's default interpreter gives int8
    BATCH_MATMUL whose ``rhs`` zero point is 0, requantizes by the profile's ``fc`` rule
    (float32)."""
    tl, tr, to = ctx.in_tensor(op, 0), ctx.in_tensor(op, 1), ctx.out_tensor(op)
    _same_types(op, [tl, tr, to], (np.int8, np.int16))
    (sl, zl), (sr, zr), (so, zo) = qparams(tl, op), qparams(tr, op), qparams(to, op)
    if to.dtype == np.int16 and (zl or zr or zo):
        raise ModelError(f"{op.describe()}: int16 BATCH_MATMUL needs zero points 0")
    lhs, rhs = (np.asarray(ctx.input(op, k), np.int64) for k in (0, 1))
    if lhs.ndim < 2 or rhs.ndim < 2:
        raise ModelError(f"{op.describe()}: both inputs need two or more axes, got {lhs.shape} and {rhs.shape}")
    if op.options.get("adj_x", False):
        lhs = np.swapaxes(lhs, -1, -2)
    if op.options.get("adj_y", False):
        rhs = np.swapaxes(rhs, -1, -2)
    if lhs.shape[-1] != rhs.shape[-2]:
        raise ModelError(f"{op.describe()}: inner dimensions {lhs.shape[-1]} and {rhs.shape[-2]} differ")
    try:
        acc = np.matmul(lhs - zl, rhs - zr)
    except ValueError:
        raise ModelError(f"{op.describe()}: batch shapes {lhs.shape[:-2]} and {rhs.shape[:-2]} do not broadcast") from None
    lo, hi = type_range(to.dtype)
    if ctx.profile.kernels == "xnnpack" and to.dtype == np.int8:
        y = ctx.profile.requantize(fxp.wrap32(acc), sl, sr, so, zo, qmin=lo, qmax=hi, op="fc", backend=ctx.backend)
        return [np.asarray(y).astype(np.int8)]
    real = float(f32(sl * sr)) / float(so)  # GetQuantizedConvolutionMultipler
    if to.dtype == np.int16:
        q, shift = fxp.quantize_multiplier(real)
        y = fxp.multiply_by_quantized_multiplier_int64(acc.reshape(-1), q, shift, backend=ctx.backend).reshape(acc.shape)
    else:
        y = ctx.mbqm(op, fxp.wrap32(acc), real)
    return [np.clip(y.astype(np.int64) + zo, lo, hi).astype(to.dtype)]


@kernel("ABS")
def abs_op(ctx, op):
    """``elementwise.cc`` (LiteRT and TFLite Micro, int8 and int16): ``|x - zp_in|``, then
    ``+ zp_out`` when the two scales are equal, else ``MBQM(., QuantizeMultiplier(s_in / s_out))
    + zp_out`` (the ratio in float32), clamped."""
    ti, to = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    _same_types(op, [ti, to], (np.int8, np.int16))
    (si, zi), (so, zo) = qparams(ti, op), qparams(to, op)
    v = np.abs(ctx.input(op, 0).astype(np.int64) - zi)
    if si != so:
        q, shift = fxp.quantize_multiplier(float(f32(si / so)), single_rounding=ctx.rounding(op) == "single")
        v = ctx.mbqm_raw(op, v, q, shift)
    lo, hi = type_range(to.dtype)
    return [np.clip(v + zo, lo, hi).astype(to.dtype)]


def _shifted_sum(ctx, op, s, zp: int, s_out):
    """The sums of TFLite Micro's ADD_N and CUMSUM (``add_n.cc``, ``cumsum.cc``): each value
    ``MBQM((x - zp) << 20, s / 2s)``; the seed the reference kernels start from, the same of
    ``-zp`` (``input1_offset``, where their comment says 0); the sum's rescaling
    ``MBQM(., 2s / (2**20 s_out))``.  Returns (scaled, seed, rescale)."""
    single = ctx.rounding(op) == "single"
    q_in, e_in = fxp.quantize_multiplier(float(s) / (2 * float(s)), single_rounding=single)
    q_out, e_out = fxp.quantize_multiplier(2 * float(s) / ((1 << 20) * float(s_out)), single_rounding=single)
    scaled = lambda x: ctx.mbqm_raw(op, (np.asarray(x, np.int64) - zp) << 20, q_in, e_in).astype(np.int64)  # noqa: E731
    seed = int(ctx.mbqm_raw(op, np.array([-zp << 20]), q_in, e_in)[0])
    return scaled, seed, lambda total: ctx.mbqm_raw(op, total, q_out, e_out)


@kernel("ADD_N")
def add_n(ctx, op):
    """int8 ADD_N, TFLite Micro only (LiteRT's takes float32 and int32): ``reference_ops::AddN``
    (``internal/reference/add_n.h``) with ``micro/kernels/add_n.cc``'s parameters.  Each input
    ``(x - zp) << 20`` scaled by ``s / 2s`` (MBQM), summed in int32, then scaled by
    ``2s / (2**20 s_out)``, ``+ zp_out``.  The sum starts from the scaled ``-zp`` rather than 0
    (``const int32_t x = params.input1_offset;  // x = 0``): modelled as the runtime computes
    it, which shifts every output by ``-zp * s / s_out``."""
    ins = [ctx.in_tensor(op, k) for k in range(len(op.inputs))]
    to = ctx.out_tensor(op)
    _same_types(op, [*ins, to], (np.int8,))
    ctx.refuse(op, litert="int8 ADD_N (add_n.cc: float32 and int32 only)")
    if len(ins) < 2 or any(qparams(t, op) != qparams(ins[0], op) or t.shape != ins[0].shape for t in ins):
        raise ModelError(f"{op.describe()}: needs two or more inputs of one shape, scale and zero point")
    (s, zp), (so, zo) = qparams(ins[0], op), qparams(to, op)
    scaled, seed, rescale = _shifted_sum(ctx, op, s, zp, so)
    total = np.full(ins[0].shape, seed, np.int64)
    for k in range(len(ins)):
        total = fxp.wrap32(total + scaled(ctx.input(op, k)))
    y = rescale(total) + zo
    return [np.clip(y, -128, 127).astype(np.int8)]


@kernel("L2_NORMALIZATION")
def l2_normalization(ctx, op):
    """``reference_integer_ops::L2Normalization`` (LiteRT in every mode, TFLite Micro), int8:
    per row of the last axis, ``acc = sum (x - zp)**2`` (int32), its inverse square root by
    ``GetInvSqrtQuantizedMultiplierExp``, then ``MBQM(x - zp, m, shift + 7)`` clamped: the output
    in 1/128 (scale 1/128, zero point 0)."""
    ti, to = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    _same_types(op, [ti, to], (np.int8,))
    (_, zi), (so, zo) = qparams(ti, op), qparams(to, op)
    if so != f32(1 / 128) or zo != 0:
        raise ModelError(f"{op.describe()}: int8 L2_NORMALIZATION output must have scale 1/128 and zero point 0")
    v = ctx.input(op, 0).astype(np.int64) - zi
    acc = fxp.wrap32((v * v).sum(axis=-1))
    pairs = [g.inv_sqrt_quantized_multiplier(int(a)) for a in acc.reshape(-1)]
    m = np.array([p[0] for p in pairs], np.int64).reshape(acc.shape)[..., None]
    shift = np.array([p[1] for p in pairs], np.int64).reshape(acc.shape)[..., None] + 7
    return [np.clip(_mbqm_array(ctx, op, v, m, shift), -128, 127).astype(np.int8)]


@kernel("CUMSUM")
def cumsum(ctx, op):
    """int8 CUMSUM, TFLite Micro only (LiteRT's takes int32, int64 and float32):
    ``reference_ops::CumSum`` (``internal/reference/cumsum.h``) with ``micro/kernels/cumsum.cc``'s
    parameters, the arithmetic of ADD_N along one axis (``exclusive``, ``reverse``): each value
    ``MBQM((x - zp) << 20, s / 2s)``, the running int32 sum seeded, like ADD_N's, with the scaled
    ``-zp``, then ``MBQM(., 2s / (2**20 s_out)) + zp_out``."""
    ti, to = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    _same_types(op, [ti, to], (np.int8,))
    ctx.refuse(op, litert="int8 CUMSUM (cumsum.cc: int32, int64 and float32 only)")
    x = ctx.input(op, 0).astype(np.int64)
    a = np.asarray(ctx.input(op, 1)).reshape(-1)
    if a.size != 1 or not -x.ndim <= int(a[0]) < x.ndim:
        raise ModelError(f"{op.describe()}: needs one axis within rank {x.ndim}, got {a.tolist()}")
    axis = int(a[0]) % x.ndim
    (s, zp), (so, zo) = qparams(ti, op), qparams(to, op)
    scaled, seed, rescale = _shifted_sum(ctx, op, s, zp, so)
    v = scaled(x)
    if op.options.get("reverse", False):
        v = np.flip(v, axis)
    total = np.cumsum(v, axis=axis)
    if op.options.get("exclusive", False):
        total = total - v
    total = fxp.wrap32(total + seed)
    if op.options.get("reverse", False):
        total = np.flip(total, axis)
    y = rescale(np.ascontiguousarray(total)) + zo
    return [np.clip(y, -128, 127).astype(np.int8)]
