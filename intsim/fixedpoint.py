"""Requantization arithmetic: fixed-point multipliers (TFLite, TFLM, gemmlowp, CMSIS-NN) and the
float rules of onnxruntime, XNNPACK, the ONNX reference and LiteRT's reference FullyConnected.

Integer rules, transliterated from tensorflow/tflite-micro
``tensorflow/lite/kernels/internal/{quantization_util.cc,common.cc}`` and google/gemmlowp
``fixedpoint/fixedpoint.h`` (see ``shared/reference/numerics.md`` section 1):

``quantize_multiplier``     QuantizeMultiplier: ``frexp``, ``round`` half away to Q31, the
                            ``2**31`` renormalisation, flush below ``2**-32`` (shift < -31), and
                            with ``single_rounding=True`` the clamp of shifts above 30
``srdhm``                   SaturatingRoundingDoublingHighMul (ARM VQRDMULH)
``rounding_divide_by_pot``  RoundingDivideByPOT (ties away from zero)
``multiply_by_quantized_multiplier``        MultiplyByQuantizedMultiplier on int32 accumulators,
                            ``rounding="double"`` (default TFLite/TFLM/CMSIS-NN) or ``"single"``
                            (TFLITE_SINGLE_ROUNDING, CMSIS_NN_USE_SINGLE_ROUNDING)
``multiply_by_quantized_multiplier_int64``  the int64-accumulator variant of the int16x8
                            kernels, with its 16-bit reduced multiplier

Integer overflow the C sources leave undefined is modelled as two's-complement wrapping:
``x * (1 << left_shift)`` in the double-rounding rule and the final ``static_cast<int32_t>``.

Float rules (``requantize_float``), for an int32 accumulator ``acc`` and real multiplier ``M``:

``"float32"``       onnxruntime MLAS ``MlasRequantizeOutput`` and XNNPACK:
                    ``v = float32(acc) * float32(M)`` clamped to ``[qmin - zp, qmax - zp]``,
                    rounded half to even, ``+ zp``
``"float64-onnx"``  the ONNX reference QLinearMatMul/QLinearConv:
                    ``rint(float64(acc) * float64(float32(M)) + zp)``, clipped (the zero point
                    is added before rounding, so ties go to even *after* the offset)
``"float64-away"``  LiteRT BUILTIN_REF FullyConnected (LiteRT commit 9213607, 2025,
                    ``tflite/kernels/internal/reference/integer_ops/fully_connected.h``):
                    ``static_cast<int32_t>(round(double(acc) * M)) + zp``, clamped (``M`` a
                    float64).  A product outside int32 converts as x86-64's ``cvttsd2si``
                    does, to ``INT32_MIN`` (C++ leaves it undefined; ai-edge-litert's x86-64
                    wheels compute this), and ``+ zp`` wraps in int32 before the clamp

Every public function takes numpy arrays (broadcast against each other) and a ``backend``:
``"jit"``, ``"jit-serial"`` or ``"reference"`` (the Python-int scalar rules below).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from intsim._jit import Kernel, check_backend, helper, kernel
from intsim.rounding import round_half_away

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
ROUNDINGS = ("double", "single")
FLOAT_RULES = ("float32", "float64-onnx", "float64-away")


# ---- QuantizeMultiplier ---------------------------------------------------------------------------


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


# ---- Python-int references (the rules as written in the C sources) --------------------------------


def wrap32(v):
    """Two's-complement wrap to int32 of Python ints or int64 arrays (C's int32 overflow on every
    target modelled here)."""
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def srdhm_reference(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on Python ints."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    num = ab + nudge
    quotient = abs(num) // 2**31  # C integer division truncates toward zero
    return -quotient if num < 0 else quotient


def rounding_divide_by_pot_reference(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT on Python ints (``0 <= exponent <= 31``)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm_reference(x: int, multiplier: int, shift: int, rounding: str = "double") -> int:
    """MultiplyByQuantizedMultiplier(int32 x) on Python ints, double or single rounding."""
    if rounding == "double":
        left = shift if shift > 0 else 0
        right = -shift if shift < 0 else 0
        return rounding_divide_by_pot_reference(srdhm_reference(wrap32(x * (1 << left)), multiplier), right)
    total = 31 - shift
    return wrap32((x * multiplier + (1 << (total - 1))) >> total)


def mbqm_int64_reference(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int64 x): the 16-bit reduced multiplier rule."""
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    return wrap32((x * reduced + (1 << (total - 1))) >> total)


def requantize_float_reference(acc: int, multiplier: float, zero_point: int, qmin: int, qmax: int, rule: str) -> int:
    """The float rules on one accumulator, with numpy scalars for IEEE float32 arithmetic."""
    if rule == "float32":
        v = np.float32(acc) * np.float32(multiplier)
        v = min(max(v, np.float32(qmin - zero_point)), np.float32(qmax - zero_point))
        return int(np.rint(v)) + zero_point
    if rule == "float64-onnx":
        v = float(acc) * float(np.float32(multiplier)) + zero_point
        return int(min(max(np.rint(v), qmin), qmax))
    if rule == "float64-away":
        r = float(round_half_away(float(acc) * float(multiplier)))
        v = int(r) if -(2.0**31) <= r < 2.0**31 else INT32_MIN  # x86-64 cvttsd2si out of range
        return min(max(wrap32(v + zero_point), qmin), qmax)
    raise ValueError(f"rule must be one of {FLOAT_RULES}, got {rule!r}")


# ---- numba scalar rules --------------------------------------------------------------------------


@helper
def wrap_int32(v):
    """``wrap32`` inside numba kernels (int64-held values)."""
    return ((v + 2147483648) & 0xFFFFFFFF) - 2147483648


@helper
def srdhm_scalar(a, b):
    """SaturatingRoundingDoublingHighMul on int64-held int32 values, without branches (random
    signs would mispredict them): the nudge and C's truncating division by 2**31 are masks of the
    sign; the one overflowing case, a == b == INT32_MIN, gives 2**31 and saturates by the min."""
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
def mbqm_double_scalar(x, multiplier, shift):
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot_scalar(srdhm_scalar(wrap_int32(x << left), multiplier), right)


@helper
def mbqm_single_scalar(x, multiplier, shift):
    total = 31 - shift
    return wrap_int32((x * multiplier + (np.int64(1) << (total - 1))) >> total)


@helper
def mbqm_int64_scalar(x, multiplier, shift):
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else np.int64(0x7FFF)
    total = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total - 1))) >> total)


@helper
def requantize_float_scalar(acc, multiplier, zero_point, qmin, qmax, rule):
    """``rule``: 0 float32, 1 float64-onnx, 2 float64-away (see the module docstring)."""
    if rule == 0:
        v = np.float32(acc) * np.float32(multiplier)
        v = min(max(v, np.float32(qmin - zero_point)), np.float32(qmax - zero_point))
        return np.int64(np.rint(v)) + zero_point
    if rule == 1:
        v = np.rint(np.float64(acc) * np.float64(np.float32(multiplier)) + np.float64(zero_point))
        return min(max(np.int64(v), qmin), qmax)
    v = np.float64(acc) * multiplier
    r = np.trunc(v)
    if abs(v - r) >= 0.5:
        r += 1.0 if v > 0 else -1.0
    i = np.int64(r) if -2147483648.0 <= r < 2147483648.0 else np.int64(-2147483648)  # cvttsd2si
    return min(max(wrap_int32(i + zero_point), qmin), qmax)


# ---- elementwise kernels over (outer, channel, inner) views --------------------------------------
# ``acc`` is viewed as (outer, C, inner) and per-channel parameters have length C.  The parallel
# loop runs over whichever of outer and C is longer; every output is independent.


def _channel_kernel(rule):
    """A kernel applying the jitted scalar ``rule(x, p1[c], p2[c])`` over an (outer, C, inner) view."""

    def apply_rule(acc, p1, p2, out):
        outer, channels, inner = acc.shape
        if inner == 1:  # channels last (NHWC, (M, N)): the channel loop is innermost and vectorizes
            for o in prange(outer):
                for c in range(channels):
                    out[o, c, 0] = rule(np.int64(acc[o, c, 0]), np.int64(p1[c]), np.int64(p2[c]))
        elif outer >= channels:
            for o in prange(outer):
                for c in range(channels):
                    a, b = np.int64(p1[c]), np.int64(p2[c])
                    for i in range(inner):
                        out[o, c, i] = rule(np.int64(acc[o, c, i]), a, b)
        else:
            for c in prange(channels):
                a, b = np.int64(p1[c]), np.int64(p2[c])
                for o in range(outer):
                    for i in range(inner):
                        out[o, c, i] = rule(np.int64(acc[o, c, i]), a, b)

    apply_rule.__name__ = f"apply_{rule.__name__}"
    return Kernel(apply_rule, cache=False)  # a closure: see intsim._jit


@helper
def _srdhm_rule(x, b, _):
    return srdhm_scalar(x, b)


@helper
def _rdbpot_rule(x, exponent, _):
    return rounding_divide_by_pot_scalar(x, exponent)


_SRDHM_KERNEL = _channel_kernel(_srdhm_rule)
_RDBPOT_KERNEL = _channel_kernel(_rdbpot_rule)
_MBQM_KERNELS = {
    "double": _channel_kernel(mbqm_double_scalar),
    "single": _channel_kernel(mbqm_single_scalar),
    "int64": _channel_kernel(mbqm_int64_scalar),
}


@kernel
def _float_requant_kernel(acc, multiplier, zero_point, qmin, qmax, rule, out):
    outer, channels, inner = acc.shape
    if inner == 1:  # channels last (NHWC, (M, N)): the channel loop is innermost and vectorizes
        for o in prange(outer):
            for c in range(channels):
                out[o, c, 0] = requantize_float_scalar(
                    np.int64(acc[o, c, 0]), multiplier[c], np.int64(zero_point[c]), qmin, qmax, rule
                )
    elif outer >= channels:
        for o in prange(outer):
            for c in range(channels):
                m, zp = multiplier[c], np.int64(zero_point[c])
                for i in range(inner):
                    out[o, c, i] = requantize_float_scalar(np.int64(acc[o, c, i]), m, zp, qmin, qmax, rule)
    else:
        for c in prange(channels):
            m, zp = multiplier[c], np.int64(zero_point[c])
            for o in range(outer):
                for i in range(inner):
                    out[o, c, i] = requantize_float_scalar(np.int64(acc[o, c, i]), m, zp, qmin, qmax, rule)


def float_requant_kernel(backend: str, work: int | None = None):
    """The jit build of the float-rule requantization kernel, ``kernel(acc (outer, C, inner),
    multiplier[C], zero_point[C], qmin, qmax, FLOAT_RULES.index(rule), out)``, for callers that
    checked their arguments once (``profiles.Requantizer``)."""
    return _float_requant_kernel.build(backend, work)


def mbqm_kernel(rounding: str, backend: str, work: int | None = None):
    """The jit build of ``MultiplyByQuantizedMultiplier`` (``rounding`` "double" or "single", or
    "int64" for the int64-accumulator rule of int16x8), ``kernel(acc (outer, C, inner),
    multiplier[C], shift[C], out)``."""
    if rounding not in _MBQM_KERNELS:
        raise ValueError(f"rounding must be one of {tuple(_MBQM_KERNELS)}, got {rounding!r}")
    return _MBQM_KERNELS[rounding].build(backend, work)


def check_requant_params(multiplier, zero_point, qmin: int, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """The real multiplier (float64, finite, non-negative) and the output zero point (integers
    in ``[qmin, qmax]``) of a requantization, checked."""
    m = np.asarray(multiplier, dtype=np.float64)
    if m.size == 0 or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("multiplier must be finite and non-negative")
    return m, _integer_array("zero_point", zero_point, qmin, qmax)


def check_quantized_multiplier(multiplier, shift, rounding: str) -> None:
    """Raise unless ``multiplier``/``shift`` are in the range ``multiply_by_quantized_multiplier``
    accepts for ``rounding`` (or ``multiply_by_quantized_multiplier_int64`` for ``"int64"``)."""
    if rounding == "int64":
        _check_multiplier(multiplier, shift, -31, 7, nonnegative=True)
        return
    single = rounding == "single"
    _check_multiplier(multiplier, shift, -31, 30 if single else 31, nonnegative=single)


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


# ---- argument handling ----------------------------------------------------------------------------


def _integer_array(name: str, value, lo: int, hi: int) -> np.ndarray:
    """``value`` as an integer array, checked to lie in ``[lo, hi]`` (skipped when its dtype
    cannot hold anything outside)."""
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    info = np.iinfo(a.dtype)
    if a.size and (info.min < lo or info.max > hi) and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got values in [{a.min()}, {a.max()}]")
    return a


def _channel_view(acc: np.ndarray, params: list[np.ndarray], axis):
    """(outer, C, inner) view of ``acc`` and each parameter as a length-C vector."""
    sizes = {p.size for p in params if p.size > 1}
    if not sizes:  # per tensor: every element is its own row, so the rows run in parallel
        return acc.reshape(-1, 1, 1), [p.reshape(-1)[:1] for p in params], acc.shape
    if len(sizes) > 1:
        raise ValueError(f"per-channel parameters disagree in length: {sorted(sizes)}")
    (c,) = sizes
    if acc.ndim == 0:
        raise ValueError("per-channel parameters need an accumulator array with a channel axis")
    axis = (-1 if axis is None else axis) % acc.ndim
    if acc.shape[axis] != c:
        raise ValueError(
            f"per-channel parameters have {c} entries but acc.shape[{axis}] is {acc.shape[axis]}"
        )
    for p in params:
        if p.ndim > 1 and p.size > 1:
            raise ValueError("per-channel parameters must be 1-D; pass axis= for the channel axis")
    outer = int(np.prod(acc.shape[:axis]))
    view = np.ascontiguousarray(acc).reshape(outer, c, -1)
    return view, [np.broadcast_to(p.reshape(-1), (c,)) for p in params], acc.shape


def _run_fixed_point(kernel_, acc, p1, p2, axis, backend: str, acc_bits: int, reference_fn):
    check_backend(backend)
    lo, hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    a = _integer_array("acc", acc, lo, hi)
    view, (v1, v2), shape = _channel_view(a, [np.asarray(p1), np.asarray(p2)], axis)
    v1 = np.ascontiguousarray(v1, dtype=np.int64)
    v2 = np.ascontiguousarray(v2, dtype=np.int64)
    out = np.empty(view.shape, np.int32)
    if backend == "reference":
        for o, c, i in np.ndindex(*view.shape):
            out[o, c, i] = reference_fn(int(view[o, c, i]), int(v1[c]), int(v2[c]))
    else:
        kernel_.build(backend, view.size)(view, v1, v2, out)
    return out.reshape(shape)


def _check_multiplier(multiplier, shift, lo_shift, hi_shift, nonnegative):
    m = _integer_array("multiplier", multiplier, 0 if nonnegative else INT32_MIN, INT32_MAX)
    s = _integer_array("shift", shift, lo_shift, hi_shift)
    return m, s


def saturating_rounding_doubling_high_mul(a, b, *, axis=None, backend: str = "jit") -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)`` elementwise on int32 values
    (``b`` scalar or per channel along ``axis``): ``floor((a*b + 2**30) / 2**31)`` with ties
    toward +infinity and ``(INT32_MIN, INT32_MIN) -> INT32_MAX``."""
    bb = _integer_array("b", b, INT32_MIN, INT32_MAX)
    return _run_fixed_point(
        _SRDHM_KERNEL, a, bb, np.zeros(1, np.int64), axis, backend, 32,
        lambda x, p, _: srdhm_reference(x, p),
    )  # fmt: skip


def rounding_divide_by_pot(x, exponent, *, axis=None, backend: str = "jit") -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT(x, exponent)``: ``x / 2**exponent`` rounded to nearest,
    ties away from zero, for int32 ``x`` and ``0 <= exponent <= 31``."""
    e = _integer_array("exponent", exponent, 0, 31)
    return _run_fixed_point(
        _RDBPOT_KERNEL, x, e, np.zeros(1, np.int64), axis, backend, 32,
        lambda v, p, _: rounding_divide_by_pot_reference(v, p),
    )  # fmt: skip


def multiply_by_quantized_multiplier(
    acc, multiplier, shift, *, rounding: str = "double", axis=None, backend: str = "jit"
) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` on int32 accumulators.

    ``multiplier``/``shift`` come from ``quantize_multiplier``: scalars, or 1-D per-channel
    arrays along ``axis`` (default: the last axis).  ``rounding="double"`` is the default
    TFLite/TFLM/CMSIS-NN rule ``RDBPOT(SRDHM(acc * 2**max(shift, 0), multiplier), max(-shift, 0))``;
    ``"single"`` is ``(acc * multiplier + 2**(30 - shift)) >> (31 - shift)`` (multiplier >= 0).
    Returns int32.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    single = rounding == "single"
    m, s = _check_multiplier(multiplier, shift, -31, 30 if single else 31, nonnegative=single)
    return _run_fixed_point(
        _MBQM_KERNELS[rounding], acc, m, s, axis, backend, 32,
        lambda x, q, e: mbqm_reference(x, q, e, rounding),
    )  # fmt: skip


def multiply_by_quantized_multiplier_int64(
    acc, multiplier, shift, *, axis=None, backend: str = "jit"
) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier(int64_t x, ...)`` of the int16x8 kernels:
    ``reduced = round(multiplier / 2**16)`` (``0x7FFF`` from ``0x7FFF0000`` up), then
    ``(acc * reduced + 2**(14 - shift)) >> (15 - shift)``.  ``acc`` must lie in
    ``[-2**47, 2**47)``, ``multiplier >= 0`` and ``-31 <= shift < 8``.  Returns int32."""
    m, s = _check_multiplier(multiplier, shift, -31, 7, nonnegative=True)
    return _run_fixed_point(_MBQM_KERNELS["int64"], acc, m, s, axis, backend, 48, mbqm_int64_reference)


def requantize_float(
    acc, multiplier, zero_point=0, *, qmin: int, qmax: int, rule: str,
    axis=None, backend: str = "jit",
) -> np.ndarray:  # fmt: skip
    """Requantize int32 accumulators with a float rule (``"float32"``, ``"float64-onnx"``,
    ``"float64-away"``; see the module docstring).  ``multiplier`` is the real multiplier
    ``s_in * s_w / s_out`` (float32 for the first two rules, float64 for the last), per tensor
    or per channel along ``axis``; ``zero_point`` likewise.  Returns int32 in ``[qmin, qmax]``."""
    check_backend(backend)
    if rule not in FLOAT_RULES:
        raise ValueError(f"rule must be one of {FLOAT_RULES}, got {rule!r}")
    m, zp = check_requant_params(multiplier, zero_point, qmin, qmax)
    a = _integer_array("acc", acc, INT32_MIN, INT32_MAX)
    view, (mv, zv), shape = _channel_view(a, [m, zp], axis)
    mv = np.ascontiguousarray(mv, dtype=np.float64)
    zv = np.ascontiguousarray(zv, dtype=np.int64)
    out = np.empty(view.shape, np.int32)
    if backend == "reference":
        for o, c, i in np.ndindex(*view.shape):
            out[o, c, i] = requantize_float_reference(
                int(view[o, c, i]), float(mv[c]), int(zv[c]), qmin, qmax, rule
            )
    else:
        _float_requant_kernel.build(backend, view.size)(
            view, mv, zv, qmin, qmax, FLOAT_RULES.index(rule), out
        )
    return out.reshape(shape)
