"""The gemmlowp integer primitives every fixed-point rule is built from, once each: numpy forms
(over int64 arrays holding int32 values: the references, and the TFLite reference kernels'
vectorized math) and numba scalars (inlined in the kernels).

Transliterated from google/gemmlowp ``fixedpoint/fixedpoint.h``:

``wrap32``            two's-complement wrap to int32 (C's int32 overflow on every target here)
``srdhm``             SaturatingRoundingDoublingHighMul (ARM VQRDMULH): ``(a*b + nudge) / 2**31``
                      truncated, nudge ``2**30`` or ``1 - 2**30`` by sign, ``(MIN, MIN) -> MAX``;
                      that is ``floor((a*b + 2**30) / 2**31)``: ties toward +inf, as VQRDMULH
``rdbpot``            RoundingDivideByPOT: ``x / 2**e`` to nearest, ties away from zero

and the rounding right shift of ARM's VRSHL (``vrshlq_s32`` by a negative amount) and of ruy's
x86 kernels (``ruy/kernel_avx2_fma.cc``, ``rounding_right_shift``):

``rshift_round_up``   ``(x + 2**(e-1)) >> e`` in wide arithmetic: to nearest, ties toward +inf
"""

from __future__ import annotations

import numpy as np

from intsim._jit import helper

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(v):
    """Two's-complement wrap to int32: of a Python int, a Python int; of anything else, an int64
    array."""
    if not isinstance(v, int):
        v = i64(v)
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def trunc_div(x, d: int) -> np.ndarray:
    """C integer division (truncates toward zero) by a positive ``d``."""
    x = i64(x)
    return np.where(x >= 0, x // d, -((-x) // d))


def srdhm(a, b) -> np.ndarray:
    """``SaturatingRoundingDoublingHighMul`` of int32 values (numpy, broadcasting)."""
    a, b = i64(a), i64(b)
    ab = a * b  # |ab| <= 2**62
    r = trunc_div(ab + np.where(ab >= 0, 2**30, 1 - 2**30), 2**31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, r)


def rdbpot(x, exponent) -> np.ndarray:
    """``RoundingDivideByPOT`` (numpy, broadcasting), ``0 <= exponent <= 31``."""
    x, e = i64(x), i64(exponent)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def rshift_round_up(x, exponent) -> np.ndarray:
    """VRSHL's rounding right shift (numpy, broadcasting), ``0 <= exponent <= 31``."""
    x, e = i64(x), i64(exponent)
    return (x + ((np.int64(1) << e) >> 1)) >> e


def srdhm_reference(a: int, b: int) -> int:
    """``srdhm`` of two ints, as a Python int."""
    return int(srdhm(a, b))


def rounding_divide_by_pot_reference(x: int, exponent: int) -> int:
    """``rdbpot`` of two ints, as a Python int."""
    return int(rdbpot(x, exponent))


# ---- numba scalars (int64-held values) ------------------------------------------------------------


@helper
def wrap_int32(v):
    """``wrap32`` inside numba kernels."""
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@helper
def srdhm_scalar(a, b):
    """``srdhm`` without branches (random signs would mispredict them): the nudge and C's
    truncating division by 2**31 are masks of the sign; the one overflowing case,
    a == b == INT32_MIN, gives 2**31 and saturates by the min."""
    ab = a * b  # |ab| <= 2**62
    num = ab + ((1 << 30) + ((ab >> 63) & (1 - (1 << 31))))  # nudge: 2**30, or 1 - 2**30 if ab < 0
    q = (num + ((num >> 63) & 0x7FFFFFFF)) >> 31  # truncates toward zero
    return min(q, np.int64(2147483647))


@helper
def rounding_divide_by_pot_scalar(x, exponent):
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + ((x >> 63) & 1)  # + 1 if x < 0
    return (x >> exponent) + np.int64(remainder > threshold)


@helper
def rshift_round_up_scalar(x, exponent):
    return (x + ((np.int64(1) << exponent) >> 1)) >> exponent
