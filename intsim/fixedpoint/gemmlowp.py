"""gemmlowp fixed-point math beyond the primitives, vectorized over numpy arrays, as the TFLite
kernels call it (exp, logistic, tanh, reciprocal, the int16 helpers).

Transliterated from google/gemmlowp ``fixedpoint/fixedpoint.h`` (int32 raw values; ``bits=16``
for the int16 specializations LiteRT's LSTM uses) and the
helpers in LiteRT ``tflite/kernels/internal/common.h`` (``GetReciprocal``) and
``reference/hard_swish.h`` (the int16 helpers).  A ``FixedPoint<int32, IntegerBits>`` value is
its raw int32; arrays here are int64 holding int32 values, and every sum that the C code does in
int32 is wrapped back to int32 (``wrap32``), as the hardware does.  ``tests/test_tflite_gemmlowp``
checks each function against a scalar Python-int transliteration.
"""

from __future__ import annotations

import numpy as np

from intsim.fixedpoint.primitives import INT32_MAX, INT32_MIN, i64, rdbpot, srdhm, trunc_div, wrap32

I32_MIN, I32_MAX = INT32_MIN, INT32_MAX
I16_MIN, I16_MAX = -(2**15), 2**15 - 1


def _wrap(x, bits: int) -> np.ndarray:
    """The C conversion to the raw type (int32 or int16): two's complement wrap."""
    return wrap32(x) if bits == 32 else wrap16(x)


def _srdhm(a, b, bits: int) -> np.ndarray:
    return srdhm(a, b) if bits == 32 else srdhm16(a, b)


def _constant(raw32: int, bits: int) -> int:
    """A gemmlowp constant written as its int32 raw value, for the raw type of ``bits``
    (``GEMMLOWP_CHECKED_FIXEDPOINT_CONSTANT``: ``RoundingDivideByPOT(raw32, 16)`` for int16)."""
    return raw32 if bits == 32 else int(rdbpot(np.int64(raw32), 16))


def _one(bits: int) -> int:
    """``FixedPoint<raw, 0>::One()``: the largest raw value."""
    return (1 << (bits - 1)) - 1


def srmpot(x, exponent: int, bits: int = 32) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` on raw values of ``bits`` (32 or 16): a
    saturating left shift for ``exponent > 0``, ``RoundingDivideByPOT`` for ``exponent < 0``."""
    x = i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (bits - 1 - exponent)) - 1
    lo, hi = -_one(bits) - 1, _one(bits)
    return np.where(x > threshold, hi, np.where(x < -threshold, lo, x << exponent))


def rescale(x, src_bits: int, dst_bits: int, bits: int = 32) -> np.ndarray:
    """``Rescale<dst_bits>`` of a ``FixedPoint<raw, src_bits>`` (raw of ``bits``)."""
    return srmpot(x, src_bits - dst_bits, bits)


def rounding_half_sum(a, b) -> np.ndarray:
    s = i64(a) + i64(b)
    return trunc_div(s + np.where(s >= 0, 1, -1), 2)


def _exp_quarter(a, bits: int = 32) -> np.ndarray:
    """``exp_on_interval_between_negative_one_quarter_and_0_excl`` (Q0.31 or Q0.15 in and out);
    the last addition saturates for int16 (``AddSaturatingIf16Bit``)."""
    constant_term, one_third = _constant(1895147668, bits), _constant(715827883, bits)  # exp(-1/8), 1/3
    x = _wrap(a + (1 << (bits - 4)), bits)  # + 1/8
    x2 = _srdhm(x, x, bits)
    x3 = _srdhm(x2, x, bits)
    x4 = _srdhm(x2, x2, bits)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_wrap(_srdhm(_wrap(x4_over_4 + x3, bits), one_third, bits) + x2, bits), 1)
    total = constant_term + _srdhm(constant_term, _wrap(x + poly, bits), bits)
    return wrap32(total) if bits == 32 else np.clip(total, I16_MIN, I16_MAX)


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip  exp(-2**k) in Q0.31


def exp_on_negative_values(a, integer_bits: int, bits: int = 32) -> np.ndarray:
    """``exp_on_negative_values`` of a ``FixedPoint<raw, integer_bits>`` (raw of ``bits``, 32
    or 16): a Q0.31 (Q0.15) result."""
    a = i64(a)
    frac = bits - 1 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod = _wrap((a & (one_quarter - 1)) - one_quarter, bits)
    result = _exp_quarter(rescale(a_mod, integer_bits, 0, bits), bits)
    remainder = _wrap(a_mod - a, bits)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac + exponent)
            result = np.where(remainder & bit, _srdhm(result, _constant(multiplier, bits), bits), result)
    if integer_bits > 5:
        result = np.where(a < _constant(-(1 << (36 - integer_bits)), bits), 0, result)
    return np.where(a == 0, _one(bits), result)


def _newton_reciprocal(a, bits: int = 32) -> np.ndarray:
    """``1 / ((1 + a) / 2)`` in Q2.29 (Q2.13) for Q0.31 (Q0.15) ``a`` in [0, 1): the three
    Newton-Raphson steps shared by ``one_over_one_plus_x_for_x_in_0_1`` and
    ``one_minus_x_over_one_plus_x_for_x_in_0_1``."""
    half_denominator = rounding_half_sum(a, _one(bits))
    c48, c32 = _constant(1515870810, bits), _constant(-1010580540, bits)  # 48/17, -32/17
    x = _wrap(c48 + _srdhm(half_denominator, c32, bits), bits)
    for _ in range(3):
        one_minus = _wrap((1 << (bits - 3)) - _srdhm(half_denominator, x, bits), bits)
        x = _wrap(x + rescale(_srdhm(x, one_minus, bits), 4, 2, bits), bits)
    return x


def one_over_one_plus_x_for_x_in_0_1(a, bits: int = 32) -> np.ndarray:
    """``1 / (1 + a)`` for Q0.31 (Q0.15) ``a`` in [0, 1)."""
    return rescale(_newton_reciprocal(a, bits), 1, 0, bits)  # ExactMulByPot<-1>, then Rescale<0>


def logistic(a, integer_bits: int, bits: int = 32) -> np.ndarray:
    """gemmlowp ``logistic`` of a ``FixedPoint<raw, integer_bits>``: Q0.31 (int16: Q0.15)."""
    a = i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, _wrap(-a, bits))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_wrap(-abs_input, bits), integer_bits, bits),
                                                   bits)  # fmt: skip
    if_negative = _wrap(_one(bits) - if_positive, bits)
    return np.where(a == 0, 1 << (bits - 2), np.where(positive, if_positive, if_negative))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a, bits: int = 32) -> np.ndarray:
    """``(1 - a) / (1 + a)`` for Q0.31 (Q0.15) ``a`` in [0, 1)."""
    return rescale(_wrap(_newton_reciprocal(a, bits) - (1 << (bits - 3)), bits), 2, 0, bits)


def tanh(a, integer_bits: int, bits: int = 32) -> np.ndarray:
    """gemmlowp ``tanh`` of a ``FixedPoint<raw, integer_bits>``: Q0.31 (int16: Q0.15)."""
    a = i64(a)
    negative = a < 0
    n = np.where(negative, a, _wrap(-a, bits))
    # neg_tanh_on_negative_values: ExactMulByPot<1> reinterprets n with one more integer bit
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1, bits), bits)
    return np.where(a == 0, 0, np.where(negative, _wrap(-t, bits), t))


def count_leading_zeros32(x) -> np.ndarray:
    """Leading zeros of ``x`` read as uint32."""
    u = i64(x) & 0xFFFFFFFF
    _, e = np.frexp(u.astype(np.float64))  # exact: u < 2**32; e = bit length, 0 for 0
    return 32 - e.astype(np.int64)


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """LiteRT ``GetReciprocal``: (Q0.31 ``1/x`` mantissa, ``num_bits_over_unit``)."""
    x = i64(x)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = (((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - 2**31
    return one_over_one_plus_x_for_x_in_0_1(wrap32(shifted)), num_bits_over_unit


# ---- int16 helpers (reference/hard_swish.h, fixedpoint.h int16 specializations) ------------------


def srdhm16(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int16."""
    a, b = i64(a), i64(b)
    ab = a * b
    r = trunc_div(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 1 << 15)
    return np.where((a == b) & (a == I16_MIN), I16_MAX, r)


def sdhm16(a, b) -> np.ndarray:
    """``SaturatingDoublingHighMul`` (int16, truncating: ARM SQDMULH)."""
    a, b = i64(a), i64(b)
    r = trunc_div(a * b, 1 << 15)
    return np.where((a == b) & (a == I16_MIN), I16_MAX, r)


def saturating_left_shift16(x, amount: int) -> np.ndarray:
    return np.clip(i64(x) * (1 << amount), I16_MIN, I16_MAX)


def wrap16(x) -> np.ndarray:
    return ((i64(x) + 2**15) & 0xFFFF) - 2**15


# ---- log (tflite/kernels/internal/common.h, log_x_for_x_greater_than_or_equal_to_1) ---------------


def _srmpot_param(x, exponent) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOTParam`` (int32, ``exponent >= 0`` per element): a
    saturating left shift."""
    x, e = i64(x), i64(exponent)
    threshold = (np.int64(1) << (31 - e)) - 1
    shifted = x << e
    return np.where(e == 0, x, np.where(x > threshold, I32_MAX, np.where(x < -threshold, I32_MIN, shifted)))


def _saturating_add(a, b) -> np.ndarray:
    return np.clip(i64(a) + i64(b), I32_MIN, I32_MAX)


def log_x_ge_1(a, output_integer_bits: int, input_integer_bits: int) -> np.ndarray:
    """``log_x_for_x_greater_than_or_equal_to_1<OutputIntegerBits>`` of a
    ``FixedPoint<int32, InputIntegerBits>`` raw ``a >= 1``: the exponent from the leading zeros
    (two candidates a quarter apart, the input also premultiplied by sqrt(1/2)), then a rational
    approximation of the mantissa's log with ``one_over_one_plus_x_for_x_in_0_1``."""
    log_2, sqrt_sqrt_half, sqrt_half, one_quarter = 1488522236, 1805811301, 1518500250, 536870912
    alpha_n, alpha_d, alpha_i, alpha_f = 117049297, 127690142, 1057819769, 638450708
    accum_bits = output_integer_bits + 1
    shifted_quarter = rescale(np.int64(one_quarter), 0, accum_bits)
    z_a = i64(a)
    z_a_headroom_plus_1 = count_leading_zeros32(z_a)
    r_a_tmp = _srmpot_param(z_a, z_a_headroom_plus_1 - 1)
    r_a = _srmpot_param(srdhm(r_a_tmp, sqrt_half), 1)
    z_a_pow_2_adj = _saturating_add(_srmpot_param(input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits),
                                    shifted_quarter)  # fmt: skip
    z_b = srdhm(z_a, sqrt_half)
    z_b_headroom = count_leading_zeros32(z_b) - 1
    r_b = _srmpot_param(z_a, z_b_headroom)
    z_b_pow_2_adj = np.clip(_srmpot_param(input_integer_bits - z_b_headroom, 31 - accum_bits) - shifted_quarter,
                            I32_MIN, I32_MAX)  # fmt: skip
    r = np.minimum(r_a, r_b)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = rounding_half_sum(r, sqrt_sqrt_half)
    q = wrap32(r - sqrt_sqrt_half)
    q = wrap32(q + q)
    common_sq = srdhm(q, q)
    num = wrap32(srdhm(q, r) + srdhm(srdhm(q, common_sq), alpha_n))
    denom_minus_one = wrap32(srdhm(p, wrap32(wrap32(alpha_i + q) + srdhm(alpha_d, common_sq))) + srdhm(alpha_f, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = rescale(num, 0, accum_bits)
    total = wrap32(srdhm(z_pow_2_adj, log_2) + srdhm(num_scaled, recip_denom))
    return rescale(total, accum_bits, output_integer_bits)


def inv_sqrt_quantized_multiplier(value: int) -> tuple[int, int]:
    """LiteRT ``GetInvSqrtQuantizedMultiplierExp(value, kReverseShift=-1)``
    (``tflite/kernels/internal/common.h``; RSQRT, L2_NORMALIZATION, the LSTM's layer norm) on
    Python ints: ``(multiplier, shift)`` of ``1 / sqrt(value)`` for MultiplyByQuantizedMultiplier,
    by five Newton-Raphson steps in gemmlowp F3 arithmetic; ``value <= 1`` gives ``(2**31 - 1, 0)``."""
    if value <= 1:
        return 2**31 - 1, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1  # CountLeadingZeros - 1, in bit pairs, less one
    shift -= pairs
    value <<= 2 * pairs
    x_in = value >> 1  # F3
    half_input = int(rdbpot(np.int64(x_in), 1))
    half_three = (1 << 28) + (1 << 27)  # 1.5 in F3
    x = (1 << 28)  # F3::One()

    def mul(a, b):  # FixedPoint product: SRDHM of the raws (integer bits add up)
        return int(srdhm(a, b))

    def rescale(v, exponent):  # Rescale: SaturatingRoundingMultiplyByPOT<exponent>
        return int(srmpot(np.int64(v), exponent))

    for _ in range(5):
        x3 = rescale(mul(mul(x, x), x), 6)  # F9 -> F3
        x = rescale(wrap32(mul(half_three, x) - mul(half_input, x3)), 3)  # F6 -> F3
    x = mul(x, 1518500250)  # * sqrt(2)/2 (F0)
    if shift < 0:
        x = int(wrap32(x << -shift))
        shift = 0
    return x, -shift
