"""Rounding modes shared by every layer, and the one integer rounding primitive kernels use.

Names (the ``rounding=`` keyword everywhere):

``nearest_even``  round to nearest, ties to the even code (IEEE 754 default, ONNX, numpy ``rint``)
``nearest_away``  round to nearest, ties away from zero (C ``round``, TFLite's ``TfLiteRound``)
``toward_zero``   truncate the magnitude
``up``            toward +infinity (ceiling)
``down``          toward -infinity (floor)
``stochastic``    round the magnitude up with probability equal to the discarded fraction, using
                  64 caller-supplied random bits per element: up iff ``r < floor(frac * 2**64)``
"""

from __future__ import annotations

import numpy as np

from intsim._jit import helper

NEAREST_EVEN, NEAREST_AWAY, TOWARD_ZERO, UP, DOWN, STOCHASTIC = range(6)
MODES = {
    "nearest_even": NEAREST_EVEN,
    "nearest_away": NEAREST_AWAY,
    "toward_zero": TOWARD_ZERO,
    "up": UP,
    "down": DOWN,
    "stochastic": STOCHASTIC,
}


def mode_id(rounding: str) -> int:
    try:
        return MODES[rounding]
    except (KeyError, TypeError):
        raise ValueError(f"rounding must be one of {tuple(MODES)}, got {rounding!r}") from None


def round_half_away(v):
    """C ``std::round`` (ties away from zero) on floats or float arrays, exactly: ``v - trunc(v)``
    is exact in binary floating point, unlike ``floor(v + 0.5)``.  Python's ``round`` and
    numpy's ``rint`` round ties to even instead."""
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0)


def x86_int32(v) -> np.ndarray:
    """C's ``static_cast<int32_t>`` of floats already rounded to integers, as x86-64 computes it
    (``cvttss2si``/``cvttsd2si``/``cvtps2dq``; C leaves it undefined): NaN and values outside
    int32 give INT32_MIN.  int64 array."""
    v = np.asarray(v)
    inside = (v >= -(2.0**31)) & (v < 2.0**31)  # False for NaN
    return np.where(inside, np.where(inside, v, 0).astype(np.int64), np.int64(-(2**31)))


def random_bits(size: int, seed) -> np.ndarray:
    """``size`` uint64 words from PCG64 seeded with ``seed`` (an int, None, or a Generator)."""
    if isinstance(seed, np.random.Generator):
        gen = seed
    else:
        gen = np.random.Generator(np.random.PCG64(seed))
    return gen.integers(0, 2**64 - 1, size=size, dtype=np.uint64, endpoint=True)


@helper
def round_magnitude(x, s, mode, negative, parity_base, rbits):
    """Round the non-negative integer ``x`` (< 2**61) divided by ``2**s``, for ``s >= 0``.

    ``negative`` is the sign of the value whose magnitude is ``x`` (for ``up``/``down``);
    ties to even look at the parity of ``parity_base + quotient`` (the code the quotient
    lands on, which differs from the quotient's own parity in formats without mantissa bits);
    ``rbits`` are the 64 random bits used by ``stochastic``.
    """
    if s == 0:
        return x
    if s < 62:
        q = x >> s
        rem = x & ((np.int64(1) << s) - 1)
        half = np.int64(1) << (s - 1)
        above = rem > half
        tie = rem == half
    else:  # x < 2**61 <= 2**s / 2: the discarded part is below one half
        q = np.int64(0)
        rem = x
        above = False
        tie = False
    if rem == 0:
        return q
    if mode == NEAREST_EVEN:
        if above or (tie and ((parity_base + q) & 1) == 1):
            q += 1
    elif mode == NEAREST_AWAY:
        if above or tie:
            q += 1
    elif mode == UP:
        if not negative:
            q += 1
    elif mode == DOWN:
        if negative:
            q += 1
    elif mode == STOCHASTIC:
        # threshold = floor(rem / 2**s * 2**64)
        if s <= 64:
            threshold = np.uint64(rem) << np.uint64(64 - s)
        elif s < 128:
            threshold = np.uint64(rem) >> np.uint64(s - 64)
        else:
            threshold = np.uint64(0)
        if rbits < threshold:
            q += 1
    return q
