"""Scalar references for encoding, in exact rational arithmetic (``fractions.Fraction``).

These spell out the rules of ``intsim.formats.codec`` one value at a time, with no bit tricks:
find the two representable neighbours of ``|x|`` on the format's grid, pick one by the
rounding rule, then apply the overflow, zero and NaN rules.  They are the ``backend="reference"``
of ``encode`` and the oracle the jitted kernels are tested against.
"""

from __future__ import annotations

import math
from fractions import Fraction

from intsim.formats.spec import FloatFormat, IntFormat

HALF = Fraction(1, 2)


def round_fraction(t: Fraction, rounding: str, negative: bool, is_odd, rbits: int = 0) -> int:
    """Round ``t >= 0`` to an integer.

    ``negative`` is the sign of the value whose magnitude ``t`` measures (for ``up``/``down``);
    ``is_odd(n)`` says whether integer ``n`` lands on an odd code (for ties to even);
    ``rbits`` is the 64-bit random word of ``stochastic``: round up iff
    ``rbits < floor(frac(t) * 2**64)``.
    """
    lo = math.floor(t)
    frac = t - lo
    if frac == 0:
        return lo
    if rounding == "nearest_even":
        up = frac > HALF or (frac == HALF and is_odd(lo))
    elif rounding == "nearest_away":
        up = frac >= HALF
    elif rounding == "toward_zero":
        up = False
    elif rounding == "up":
        up = not negative
    elif rounding == "down":
        up = negative
    elif rounding == "stochastic":
        up = rbits < math.floor(frac * 2**64)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return lo + int(up)


def floor_log2(v: Fraction) -> int:
    """``floor(log2(v))`` for ``v > 0``, exactly."""
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > v else e


def magnitude_code(fmt: FloatFormat, value: Fraction) -> int:
    """Code fields of a non-negative value on ``fmt``'s grid, extended past its largest binade."""
    if value == 0:
        return 0
    e = floor_log2(value)
    if fmt.subnormals and e < fmt.emin:
        m = value / Fraction(2) ** (fmt.emin - fmt.man_bits)
        assert m.denominator == 1
        return int(m)
    m = value / Fraction(2) ** (e - fmt.man_bits) - (1 << fmt.man_bits)
    assert m.denominator == 1 and 0 <= m < (1 << fmt.man_bits)
    return ((e + fmt.bias) << fmt.man_bits) | int(m)


def _overflow_code(fmt: FloatFormat, negative: bool) -> int:
    """Non-saturating overflow: +-inf, else NaN, else +-max (formats with neither)."""
    sign = fmt.sign_bit if negative else 0
    if fmt.has_inf:
        return fmt.inf_mag_code | sign
    if fmt.has_nan:
        return fmt.nan_code(negative and fmt.specials != "fnuz")
    return fmt.max_mag_code | sign


def encode_scalar(
    x: float, fmt, *, saturate: bool, rounding: str, rbits: int = 0, nan: str = "raise"
) -> int:
    """The code of Python float ``x`` in ``fmt`` (see ``intsim.formats.codec`` for the rules)."""
    if isinstance(fmt, IntFormat):
        return _encode_int(x, fmt, saturate, rounding, rbits, nan)
    negative = math.copysign(1.0, x) < 0
    if math.isnan(x):
        code = fmt.nan_code(negative and fmt.signed)
        if code is None:
            if nan == "zero":
                return 0
            raise ValueError(f"NaN has no code in {fmt.name}")
        return code
    if negative and not fmt.signed:
        return fmt.nan_code(False)
    sign = fmt.sign_bit if negative else 0
    max_code = fmt.max_mag_code | sign
    if math.isinf(x):
        return max_code if saturate else _overflow_code(fmt, negative)
    if x == 0:
        if not fmt.has_zero:
            return 0 if saturate else fmt.nan_code(False)
        return sign if fmt.has_negative_zero else 0

    v = Fraction(abs(x))
    e = max(floor_log2(v), fmt.emin)
    quantum = Fraction(2) ** (e - fmt.man_bits)

    def is_odd(n: int) -> bool:
        value = n * quantum
        if not fmt.has_zero and value < fmt.min_normal:
            return False  # tie between "0" (absent) and the smallest value: either gives it
        return magnitude_code(fmt, value) % 2 == 1

    value = round_fraction(v / quantum, rounding, negative, is_odd, rbits) * quantum
    if value > Fraction(fmt.max):
        toward_zero = rounding == "toward_zero" or rounding == ("up" if negative else "down")
        return max_code if (saturate or toward_zero) else _overflow_code(fmt, negative)
    if value == 0 and fmt.has_zero:
        return sign if fmt.has_negative_zero else 0
    if not fmt.has_zero and value < fmt.min_normal:
        value = Fraction(fmt.min_normal)
    return magnitude_code(fmt, value) | sign


def _encode_int(x: float, fmt: IntFormat, saturate, rounding, rbits, nan) -> int:
    if math.isnan(x):
        if nan == "zero":
            return 0
        raise ValueError(f"NaN has no code in {fmt.name}")
    if math.isinf(x):
        if not saturate:
            raise ValueError(f"+-inf cannot wrap into {fmt.name}")
        return fmt.code(fmt.min if x < 0 else fmt.max)
    negative = x < 0
    n = round_fraction(abs(Fraction(x)), rounding, negative, lambda n: n % 2 == 1, rbits)
    value = -n if negative else n
    if saturate:
        value = min(max(value, fmt.min), fmt.max)
    return value % (1 << fmt.bits)
