"""TFLite's ``QuantizeMultiplier`` and the checks of a requantization's parameters.

Transliterated from tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/
quantization_util.cc`` (QuantizeMultiplier) and ``common.cc`` (the ranges
MultiplyByQuantizedMultiplier defines a result for).
"""

from __future__ import annotations

import math

import numpy as np

from intsim.fixedpoint.primitives import INT32_MAX, INT32_MIN
from intsim.rounding import round_half_away


def _quantize_multiplier_scalar(real: float, single_rounding: bool) -> tuple[int, int]:
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and non-negative, got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * 2.0**31))
    if abs(q_fixed) == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if single_rounding and shift > 30:
        return INT32_MAX, 30
    if q_fixed > INT32_MAX:
        raise ValueError(f"multiplier {real!r} does not fit the Q31 format")
    return q_fixed, shift


def quantize_multiplier(real, *, single_rounding: bool = False):
    """TFLite ``QuantizeMultiplier``: a real multiplier as ``(multiplier, shift)``, with
    ``real ~= multiplier * 2**(shift - 31)`` and ``multiplier`` in ``[2**30, 2**31)``.

    A scalar gives two Python ints; an array gives two int32 arrays of its shape.
    ``single_rounding=True`` reproduces builds with ``TFLITE_SINGLE_ROUNDING`` (and CMSIS-NN's
    ``CMSIS_NN_USE_SINGLE_ROUNDING``), which clamp shifts above 30 to ``(2**31 - 1, 30)``.
    A real multiplier is a ratio of scales: a negative or non-finite one raises ``ValueError``.
    """
    if np.ndim(real) == 0:
        return _quantize_multiplier_scalar(float(real), single_rounding)
    m = np.asarray(real, dtype=np.float64)
    bad = ~np.isfinite(m) | (m < 0)
    if np.any(bad):
        raise ValueError(f"multiplier must be finite and non-negative, got {m[bad].reshape(-1)[0]!r}")
    q, shift = np.frexp(m)
    # q * 2**31 is exact and below 2**31, so floor(|v| + 0.5) is C's std::round, exactly
    q_fixed = np.copysign(np.floor(np.abs(q) * 2.0**31 + 0.5), q)
    carry = np.abs(q_fixed) == 2.0**31
    q_fixed = np.where(carry, q_fixed / 2, q_fixed)
    shift = shift + carry
    flush = shift < -31
    q_fixed, shift = np.where(flush, 0, q_fixed), np.where(flush, 0, shift)
    if single_rounding:
        clamp = shift > 30
        q_fixed, shift = np.where(clamp, INT32_MAX, q_fixed), np.where(clamp, 30, shift)
    if np.any(q_fixed > INT32_MAX):
        raise ValueError("a multiplier does not fit the Q31 format")
    return q_fixed.astype(np.int32), shift.astype(np.int32)


def integer_array(name: str, value, lo: int, hi: int) -> np.ndarray:
    """``value`` as an integer array, checked to lie in ``[lo, hi]`` (skipped when its dtype
    cannot hold anything outside)."""
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    info = np.iinfo(a.dtype)
    if a.size and (info.min < lo or info.max > hi) and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{a.min()}, {a.max()}]")
    return a


def check_multiplier(multiplier, shift, lo_shift, hi_shift, nonnegative):
    m = integer_array("multiplier", multiplier, 0 if nonnegative else INT32_MIN, INT32_MAX)
    s = integer_array("shift", shift, lo_shift, hi_shift)
    return m, s


def check_requant_params(multiplier, zero_point, qmin: int, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """The real multiplier (float64, finite, non-negative) and the output zero point (integers
    in ``[qmin, qmax]``) of a requantization, checked."""
    m = np.asarray(multiplier, dtype=np.float64)
    if m.size == 0 or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("multiplier must be finite and non-negative")
    return m, integer_array("zero_point", zero_point, qmin, qmax)


def check_quantized_multiplier(multiplier, shift, rounding: str) -> None:
    """Raise unless ``multiplier``/``shift`` are in the range ``multiply_by_quantized_multiplier``
    accepts for ``rounding`` (or ``multiply_by_quantized_multiplier_int64`` for ``"int64"``)."""
    if rounding == "int64":
        check_multiplier(multiplier, shift, -31, 7, nonnegative=True)
        return
    single = rounding == "single"
    check_multiplier(multiplier, shift, -31, 30 if single else 31, nonnegative=single)


def check_layer_multiplier(real, shift, rule: str) -> None:
    """Raise unless a layer's real multiplier stays where ``rule``'s C source defines a result.
    The double-rounding MultiplyByQuantizedMultiplier computes ``x * (1 << shift)`` in int32
    (``tensorflow/lite/kernels/internal/common.cc``): beyond a shift of 30 (a real multiplier
    of 2**30 or more) that shift itself is undefined; the int64 rule DCHECKs ``shift < 8``."""
    limit = 7 if rule == "int64" else 30
    s = np.asarray(shift).reshape(-1)
    if s.size and s.max() > limit:
        i = int(np.argmax(s))
        r = np.broadcast_to(np.asarray(real, np.float64).reshape(-1), s.shape)[i]
        raise ValueError(f"the real multiplier {r:.6g} (s_in * s_w / s_out) needs a left shift of {s[i]} "
                         f"bits; the {rule!r} MultiplyByQuantizedMultiplier defines at most {limit}")  # fmt: skip


def check_single_rounding_range(acc, multiplier, shift, real, axis=None) -> None:
    """Raise if single-rounding MultiplyByQuantizedMultiplier leaves int32 on ``acc``: TFLite
    DCHECKs that its result fits (``common.cc``), so the result is undefined (a release build
    wraps, flipping signs).  Only a positive shift can get there; the check reads each
    channel's smallest and largest accumulator (the rule is monotonic in ``x``)."""
    s = np.asarray(shift, np.int64).reshape(-1)
    a = np.asarray(acc)
    if not s.size or s.max() <= 0 or a.size == 0:
        return
    if s.size == 1:
        rows = a.reshape(-1, 1).astype(np.int64)
    else:
        rows = np.moveaxis(a, -1 if axis is None else axis, -1).reshape(-1, s.size).astype(np.int64)
    q = np.broadcast_to(np.asarray(multiplier, np.int64).reshape(-1), s.shape)
    total = 31 - s
    for x in (rows.min(axis=0), rows.max(axis=0)):
        r = (x * q + (np.int64(1) << (total - 1))) >> total
        bad = (r < INT32_MIN) | (r > INT32_MAX)
        if np.any(bad):
            i = int(np.argmax(bad))
            m = float(np.broadcast_to(np.asarray(real, np.float64).reshape(-1), s.shape)[i])
            raise ValueError(f"requantization overflows int32: accumulator {x[i]} times the real multiplier "
                             f"{m:.6g} is {x[i] * m:.6g}; single-rounding MultiplyByQuantizedMultiplier "
                             "leaves that undefined (a TFLITE_DCHECK)")  # fmt: skip
