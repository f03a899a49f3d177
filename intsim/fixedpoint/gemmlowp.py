"""gemmlowp fixed-point math beyond the primitives, vectorized over numpy arrays, as the TFLite
kernels call it (exp, logistic, tanh, reciprocal, the int16 helpers).

Transliterated from google/gemmlowp ``fixedpoint/fixedpoint.h`` (int32 raw values) and the
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


def srmpot(x, exponent: int) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` (int32): a saturating left shift for
    ``exponent > 0``, ``RoundingDivideByPOT`` for ``exponent < 0``."""
    x = i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, I32_MAX, np.where(x < -threshold, I32_MIN, x << exponent))


def rescale(x, src_bits: int, dst_bits: int) -> np.ndarray:
    """``Rescale<dst_bits>`` of a ``FixedPoint<int32, src_bits>``."""
    return srmpot(x, src_bits - dst_bits)


def rounding_half_sum(a, b) -> np.ndarray:
    s = i64(a) + i64(b)
    return trunc_div(s + np.where(s >= 0, 1, -1), 2)


def _exp_quarter(a) -> np.ndarray:
    """``exp_on_interval_between_negative_one_quarter_and_0_excl`` (Q0.31 in and out)."""
    constant_term, one_third = 1895147668, 715827883  # exp(-1/8), 1/3
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap32(srdhm(wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip  exp(-2**k) in Q0.31


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """``exp_on_negative_values`` of a ``FixedPoint<int32, integer_bits>``: Q0.31 result."""
    a = i64(a)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_quarter(rescale(a_mod, integer_bits, 0))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, I32_MAX, result)


def _newton_reciprocal(a) -> np.ndarray:
    """``1 / ((1 + a) / 2)`` in Q2.29 for Q0.31 ``a`` in [0, 1): the three Newton-Raphson steps
    shared by ``one_over_one_plus_x_for_x_in_0_1`` and ``one_minus_x_over_one_plus_x_for_x_in_0_1``."""
    half_denominator = rounding_half_sum(a, I32_MAX)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """``1 / (1 + a)`` for Q0.31 ``a`` in [0, 1)."""
    return rescale(_newton_reciprocal(a), 1, 0)  # ExactMulByPot<-1>, then Rescale<0>


def logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``logistic`` of a ``FixedPoint<int32, integer_bits>``: Q0.31 result."""
    a = i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap32(-a))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_input), integer_bits))
    if_negative = wrap32(I32_MAX - if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """``(1 - a) / (1 + a)`` for Q0.31 ``a`` in [0, 1)."""
    return rescale(wrap32(_newton_reciprocal(a) - (1 << 29)), 2, 0)


def tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``tanh`` of a ``FixedPoint<int32, integer_bits>``: Q0.31 result."""
    a = i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap32(-a))
    # neg_tanh_on_negative_values: ExactMulByPot<1> reinterprets n with one more integer bit
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap32(-t), t))


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
