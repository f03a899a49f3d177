"""Encode real numbers to format codes and decode codes back: numba kernels and the public API.

Every input value is rounded once, directly from its own bits (float32 or float64), to the
target format: there is no intermediate float32 step, so float64 inputs are correctly rounded
(ml_dtypes' array casts from float64 pass through float32 and can round twice).

Float targets (``FloatFormat``), for a finite non-zero input of magnitude ``v``:

1. ``E = floor(log2 v)``, ``E' = max(E, emin)``; the quantum at ``v`` is ``2**(E' - man_bits)``.
2. ``q = round(v / quantum)`` with the chosen rounding; the magnitude code is
   ``((E' - emin) << man_bits) + q`` (minus ``2**man_bits`` in formats without subnormals),
   so a carry out of the mantissa lands on the next binade by itself.
3. Above the largest finite code: ``saturate=True`` gives +-max finite (the ONNX Cast
   ``saturate=1`` table); otherwise the overflow code: +-inf where the format has it, NaN for
   ``fn``/``fnuz`` formats (ml_dtypes and ONNX ``saturate=0``), and +-max for formats with
   neither (fp6/fp4, as ml_dtypes).  Rounding toward zero never overflows to inf (IEEE 754
   section 7.4), nor do ``up`` for negative and ``down`` for positive values.
4. +-inf inputs: ``saturate=True`` gives +-max finite (ONNX table); otherwise the overflow code.
5. NaN inputs give the format's canonical NaN, keeping the sign where the format can.  Into a
   format without NaN (fp6, fp4, integers), ``nan="raise"`` (default) raises ``ValueError``
   and ``nan="zero"`` gives +0.  (ml_dtypes returns a zero of flipped sign there.)
6. Zeros keep their sign where the format has -0; ``fnuz`` formats map -0, and negative values
   that round to zero, to +0.  E8M0 has no zero: 0 gives NaN, or the smallest value (2**-127)
   with ``saturate=True`` (ONNX); negative inputs give NaN; values below 2**-127 give 2**-127.

Integer targets (``IntFormat``): ``q = round(x)`` with the chosen rounding, then ``saturate=True``
(the default for integers) clamps to the format's range; ``saturate=False`` wraps modulo
``2**bits`` (two's complement), the way C casts and ml_dtypes behave for in-range int64 values.
``+-inf`` saturates to the range ends and raises when wrapping; NaN follows ``nan=`` as above.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from intsim import rounding as rnd
from intsim._jit import check_backend, helper, kernel
from intsim.formats import reference
from intsim.formats.spec import FloatFormat, IntFormat, code_dtype, get
from intsim.rounding import DOWN, STOCHASTIC, TOWARD_ZERO, UP, round_magnitude

# (unsigned view dtype, mantissa bits, exponent bits, bias) of each accepted input type
_SOURCES = {
    np.dtype(np.float32): (np.uint32, 23, 8, 127),
    np.dtype(np.float64): (np.uint64, 52, 11, 1023),
}
NAN_POLICIES = ("raise", "zero")
_NOT_REPRESENTABLE = -1  # NaN into a format without NaN
_INF_NOT_WRAPPABLE = -2  # +-inf into an integer format with wrapping


@helper
def _split(b, src_man, src_exp_bits, src_bias):
    """(negative, exponent field, significand, exponent of its lsb, floor(log2|x|)) of raw bits."""
    negative = (b >> np.uint64(src_man + src_exp_bits)) != np.uint64(0)
    e_field = np.int64((b >> np.uint64(src_man)) & np.uint64((1 << src_exp_bits) - 1))
    sig = np.int64(b & np.uint64((1 << src_man) - 1))
    if e_field == 0:  # zero or subnormal source
        lsb_exp = 1 - src_bias - src_man
        top = -1
        t = sig
        while t != 0:
            t >>= 1
            top += 1
        log2 = lsb_exp + top
    else:
        sig |= np.int64(1) << src_man
        lsb_exp = e_field - src_bias - src_man
        log2 = e_field - src_bias
    return negative, e_field, sig, lsb_exp, log2


@helper
def _encode_float_one(
    b, src_man, src_exp_bits, src_bias, man, emin, offset, max_mag, sign_bit,
    ovf_pos, ovf_neg, nan_pos, nan_neg, zero_pos, zero_neg, has_zero, saturate, mode, rbits,
):  # fmt: skip
    negative, e_field, sig, lsb_exp, log2 = _split(b, src_man, src_exp_bits, src_bias)
    if e_field == (1 << src_exp_bits) - 1:
        if sig != (np.int64(1) << src_man):
            return nan_neg if negative else nan_pos
        if negative and sign_bit == 0:
            return nan_pos
        if saturate:
            return max_mag | (sign_bit if negative else 0)
        return ovf_neg if negative else ovf_pos
    if negative and sign_bit == 0:
        return nan_pos
    if sig == 0:
        return zero_neg if negative else zero_pos
    e_target = max(log2, emin)
    k = lsb_exp - (e_target - man)  # |x| / quantum = sig * 2**k
    base = ((e_target - emin) << man) - offset
    if k >= 0:
        q = sig << k
    else:
        q = round_magnitude(sig, -k, mode, negative, base, rbits)
    mag = max(base + q, 0)  # below the smallest value of a format with no zero: that value
    if mag > max_mag:
        toward_zero = mode == TOWARD_ZERO or (mode == UP and negative) or (
            mode == DOWN and not negative
        )
        if saturate or toward_zero:
            return max_mag | (sign_bit if negative else 0)
        return ovf_neg if negative else ovf_pos
    if mag == 0 and has_zero:
        return zero_neg if negative else zero_pos
    return mag | (sign_bit if negative else 0)


@kernel
def _encode_float_kernel(
    src, src_man, src_exp_bits, src_bias, man, emin, offset, max_mag, sign_bit,
    ovf_pos, ovf_neg, nan_pos, nan_neg, zero_pos, zero_neg, has_zero, saturate, mode, rbits, out,
):  # fmt: skip
    bad = 0
    for i in prange(src.size):
        r = rbits[i] if mode == STOCHASTIC else np.uint64(0)
        code = _encode_float_one(
            np.uint64(src[i]), src_man, src_exp_bits, src_bias, man, emin, offset, max_mag,
            sign_bit, ovf_pos, ovf_neg, nan_pos, nan_neg, zero_pos, zero_neg, has_zero,
            saturate, mode, r,
        )  # fmt: skip
        if code < 0:
            bad += 1
            code = 0
        out[i] = code
    return bad


@kernel
def _encode_f32_nearest_even_kernel(
    x, bits, man, emin, max_mag, sign_bit, ovf_pos, ovf_neg, nan_pos, nan_neg, zero_pos, zero_neg,
    has_zero, saturate, out,
):  # fmt: skip
    """``_encode_float_kernel`` specialised to float32 input and ``nearest_even``.

    Straight-line code (selects, fixed shifts) that LLVM vectorizes.  Two roundings:

    * target normals: add ``2**(s-1) - 1`` plus the lsb that stays (ties to even) to the
      float32 bits and shift right by ``s = 23 - man``; a carry moves into the exponent
      field by itself; then subtract the exponent re-bias;
    * target subnormals: ``|x| * 2**(man - emin)`` (two exact float32 power-of-two scalings,
      each within float32's range) is below ``2**man``; adding ``2**23`` makes the float32
      adder round it to an integer, ties to even.

    Valid when the target's smallest normal is a float32 normal (``emin >= -126``),
    ``man <= 23``, and the exponent re-bias is even (see ``nearest_even_f32_valid``).  ``bits`` is
    the uint32 view of ``x``, taken by the caller.
    """
    s = 23 - man
    round_bias = ((np.int64(1) << s) >> 1) - 1 if s > 0 else np.int64(0)
    tie_mask = np.int64(1) if s > 0 else np.int64(0)  # no discarded bits: nothing to round
    rebias = (np.int64(127 + emin) << man) - ((np.int64(1) << man) if has_zero else 0)
    min_normal_bits = np.int64(127 + emin) << 23
    scale_1 = np.float32(2.0 ** ((man - emin) // 2))
    scale_2 = np.float32(2.0 ** (man - emin - (man - emin) // 2))
    magic = np.float32(2.0**23)
    bad = 0
    for i in prange(bits.size):
        b = np.int64(bits[i])
        negative = (b >> 31) != 0
        a = b & 0x7FFFFFFF
        normal = ((a + round_bias + ((a >> s) & tie_mask)) >> s) - rebias
        scaled = np.float32(abs(x[i]) * scale_1 * scale_2 + magic)
        subnormal = np.int64(scaled.view(np.int32)) - 0x4B000000  # the bits of 2.0**23
        mag = normal if a >= min_normal_bits else subnormal
        sign = sign_bit if negative else 0
        too_big = (max_mag | sign) if saturate else (ovf_neg if negative else ovf_pos)
        code = too_big if mag > max_mag else (mag | sign)
        code = (zero_neg if negative else zero_pos) if ((mag == 0) & has_zero) else code
        code = too_big if a >= 0x7F800000 else code
        code = (nan_neg if negative else nan_pos) if a > 0x7F800000 else code
        code = nan_pos if (negative & (sign_bit == 0)) else code
        bad += np.int64(code < 0)
        out[i] = max(code, 0)
    return bad


@kernel
def _encode_truncated_f32_kernel(bits, shift, max_mag, sign_bit, ovf_pos, ovf_neg, nan_pos, nan_neg, saturate, out):
    """Nearest-even encode from float32 into a truncated float32 (bfloat16): the code is the
    float32 bits rounded at bit ``shift`` (``2**(shift-1) - 1`` plus the kept lsb, then shift),
    subnormals and the carry into infinity included; NaN becomes the canonical NaN."""
    round_bias = ((np.int64(1) << shift) >> 1) - 1
    for i in prange(bits.size):
        b = np.int64(bits[i])
        negative = (b >> 31) != 0
        a = b & 0x7FFFFFFF
        mag = (a + round_bias + ((a >> shift) & 1)) >> shift
        sign = sign_bit if negative else 0
        too_big = (max_mag | sign) if saturate else (ovf_neg if negative else ovf_pos)
        code = too_big if mag > max_mag else (mag | sign)
        code = too_big if a == 0x7F800000 else code
        code = (nan_neg if negative else nan_pos) if a > 0x7F800000 else code
        out[i] = code


@helper
def _encode_int_one(b, src_man, src_exp_bits, src_bias, bits, lo, hi, saturate, mode, rbits, nan):
    negative, e_field, sig, lsb_exp, log2 = _split(b, src_man, src_exp_bits, src_bias)
    mask = (np.int64(1) << bits) - 1
    if e_field == (1 << src_exp_bits) - 1:
        if sig != (np.int64(1) << src_man):
            return nan
        if not saturate:
            return _INF_NOT_WRAPPABLE
        return (lo if negative else hi) & mask
    if sig == 0:
        return 0
    if log2 >= 62:  # |x| >= 2**62 is an integer with lsb_exp >= 10
        if saturate:
            return (lo if negative else hi) & mask
        low = ((sig & ((np.int64(1) << (bits - lsb_exp)) - 1)) << lsb_exp) if lsb_exp < bits else 0
        return (-low if negative else low) & mask
    if lsb_exp >= 0:
        q = sig << lsb_exp
    else:
        q = round_magnitude(sig, -lsb_exp, mode, negative, 0, rbits)
    value = -q if negative else q
    if saturate:
        value = min(max(value, lo), hi)
    return value & mask


@kernel
def _encode_int_kernel(
    src, src_man, src_exp_bits, src_bias, bits, lo, hi, saturate, mode, rbits, nan, out
):
    bad = 0
    for i in prange(src.size):
        r = rbits[i] if mode == STOCHASTIC else np.uint64(0)
        code = _encode_int_one(
            np.uint64(src[i]), src_man, src_exp_bits, src_bias, bits, lo, hi, saturate, mode, r, nan
        )
        if code < 0:
            bad += 1
            code = 0
        out[i] = code
    return bad


@kernel
def _decode_table_kernel(codes, table, bits, out):
    bad = 0
    for i in prange(codes.size):
        c = np.int64(codes[i])
        if (c >> bits) != 0:
            bad += 1
            out[i] = np.nan
        else:
            out[i] = table[c]
    return bad


@kernel
def _decode_truncated_f32_kernel(codes, bits, shift, out_bits):
    """Formats that are float32 with its low ``shift`` mantissa bits dropped (bfloat16): the
    float32 bits are the code shifted left, NaN payloads included.  ``out_bits`` is the uint32
    view of the float32 output (taken by the caller: numba's parallel lowering mishandles
    ``.view`` inside a kernel)."""
    bad = 0
    for i in prange(codes.size):
        c = np.int64(codes[i])
        ok = (c >> bits) == 0
        bad += np.int64(not ok)
        out_bits[i] = (c << shift) if ok else np.int64(0x7FC00000)
    return bad


@kernel
def _decode_wide_float_kernel(codes, bits, man, exp_bits, bias, specials, subnormals, out):
    """Formats over 16 bits.  ``specials``: 0 ieee, 1 fn, 2 fnuz, 3 none."""
    bad = 0
    mag_bits = man + exp_bits
    all_ones = (np.int64(1) << mag_bits) - 1
    e_max = (np.int64(1) << exp_bits) - 1
    for i in prange(codes.size):
        c = np.int64(codes[i])
        if (c >> bits) != 0:
            bad += 1
            out[i] = np.nan
            continue
        mag = c & all_ones
        negative = (c >> mag_bits) != 0
        e_field = mag >> man
        m = mag & ((np.int64(1) << man) - 1)
        if (specials == 0 and e_field == e_max and m != 0) or (specials == 1 and mag == all_ones):
            out[i] = np.nan
            continue
        if specials == 2 and negative and mag == 0:
            out[i] = np.nan
            continue
        if specials == 0 and e_field == e_max:
            v = np.inf
        elif e_field == 0 and subnormals:
            v = np.ldexp(np.float64(m), 1 - bias - man)
        else:
            v = np.ldexp(np.float64(m + (np.int64(1) << man)), e_field - bias - man)
        out[i] = -v if negative else v
    return bad


@kernel
def _decode_wide_int_kernel(codes, bits, signed, out):
    bad = 0
    for i in prange(codes.size):
        c = np.int64(codes[i])
        if (c >> bits) != 0:
            bad += 1
            out[i] = 0
            continue
        if signed and (c >> (bits - 1)) != 0:
            c -= np.int64(1) << bits
        out[i] = c
    return bad


# ---- public API ---------------------------------------------------------------------------------


def _as_real_array(x) -> np.ndarray:
    """float32/float64 array holding exactly the values of ``x``."""
    a = np.asarray(x)
    if a.dtype in _SOURCES:
        return a
    if a.dtype.kind in "biu":
        f = a.astype(np.float64)
        if a.size and np.any(f.astype(a.dtype, casting="unsafe") != a):
            raise ValueError("integer input holds values that float64 cannot represent exactly")
        return f
    if a.dtype == np.float16 or a.dtype.kind == "V":  # float16 and ml_dtypes floats widen exactly
        try:
            return a.astype(np.float32)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"encode takes float32 or float64 input (or exactly convertible), got {a.dtype}")


class FloatParams(NamedTuple):
    """What the float encode kernels need to know of a format, as integer codes."""

    man: int
    emin: int
    offset: int  # 2**man for formats without subnormals (E8M0), else 0
    max_mag: int
    sign_bit: int
    ovf_pos: int
    ovf_neg: int
    nan_pos: int  # _NOT_REPRESENTABLE where the format has no NaN (and NaN must raise)
    nan_neg: int
    zero_pos: int
    zero_neg: int
    has_zero: bool

    def for_nearest_even_f32(self) -> tuple:
        """The arguments of ``_encode_f32_nearest_even_kernel`` (formats with subnormals)."""
        return (self.man, self.emin, self.max_mag, self.sign_bit, self.ovf_pos, self.ovf_neg,
                self.nan_pos, self.nan_neg, self.zero_pos, self.zero_neg, self.has_zero)  # fmt: skip

    def for_truncated_f32(self) -> tuple:
        """The arguments of ``_encode_truncated_f32_kernel``."""
        return (23 - self.man, self.max_mag, self.sign_bit, self.ovf_pos, self.ovf_neg,
                self.nan_pos, self.nan_neg)  # fmt: skip


def float_params(fmt: FloatFormat, saturate: bool, nan: str = "raise") -> FloatParams:
    """The codes ``_encode_float_one`` produces for ``fmt``'s special cases."""
    sign = fmt.sign_bit
    max_mag = fmt.max_mag_code
    nan_pos, nan_neg = fmt.nan_code(False), fmt.nan_code(True)
    if fmt.specials == "ieee":
        ovf_pos, ovf_neg = fmt.inf_mag_code, fmt.inf_mag_code | sign
    elif fmt.specials == "none":
        ovf_pos, ovf_neg = max_mag, max_mag | sign
    else:
        ovf_pos, ovf_neg = nan_pos, nan_neg
    if nan_pos is None:  # no NaN code: raise, or +0 with nan="zero"
        nan_pos = nan_neg = 0 if nan == "zero" else _NOT_REPRESENTABLE
    if fmt.has_zero:
        zero_pos, zero_neg = 0, (sign if fmt.has_negative_zero else 0)
    else:  # E8M0: ONNX maps 0 to the smallest value when saturating, to NaN otherwise
        zero_pos = zero_neg = 0 if saturate else nan_pos
    offset = 0 if fmt.subnormals else 1 << fmt.man_bits
    return FloatParams(
        fmt.man_bits, fmt.emin, offset, max_mag, sign, ovf_pos, ovf_neg, nan_pos, nan_neg,
        zero_pos, zero_neg, fmt.has_zero,
    )  # fmt: skip


def nearest_even_f32_valid(fmt: FloatFormat) -> bool:
    """Whether ``_encode_f32_nearest_even_kernel`` computes ``fmt`` exactly."""
    rebias = ((127 + fmt.emin) << fmt.man_bits) - (1 << fmt.man_bits)
    return fmt.subnormals and fmt.man_bits <= 23 and fmt.emin >= -126 and rebias % 2 == 0


def is_truncated_float32(fmt) -> bool:
    """Whether ``fmt`` is float32 with low mantissa bits dropped (bfloat16, float32 itself)."""
    return (
        isinstance(fmt, FloatFormat) and fmt.exp_bits == 8 and fmt.bias == 127
        and fmt.specials == "ieee" and fmt.signed and fmt.subnormals
    )  # fmt: skip


def float_kernel(fmt: FloatFormat, dtype: np.dtype, mode: int) -> str:
    """Which encode kernel runs: ``"truncated_f32"`` (bit rounding, bfloat16),
    ``"nearest_even_f32"`` (straight-line float32 kernel) or ``"general"``."""
    if dtype != np.float32 or mode != rnd.NEAREST_EVEN:
        return "general"
    if is_truncated_float32(fmt) and fmt.man_bits < 23:
        return "truncated_f32"
    return "nearest_even_f32" if nearest_even_f32_valid(fmt) else "general"


def _raise_bad_input(flat: np.ndarray, fmt, nan: str):
    nan_at = np.flatnonzero(np.isnan(flat))
    if nan_at.size:
        raise ValueError(
            f"input holds NaN (first at flat index {nan_at[0]}) and {fmt.name} has no NaN code; "
            f"pass nan='zero' to map NaN to +0"
        )
    inf_at = np.flatnonzero(np.isinf(flat))
    raise ValueError(
        f"input holds +-inf (first at flat index {inf_at[0]}), which cannot wrap into "
        f"{fmt.name}; use saturate=True to clamp it"
    )


def encode(
    x,
    fmt,
    *,
    saturate: bool | None = None,
    rounding: str = "nearest_even",
    seed=None,
    nan: str = "raise",
    backend: str = "jit",
) -> np.ndarray:
    """Round each value of ``x`` once to ``fmt`` and return its codes.

    Parameters
    ----------
    x : array_like of float32 or float64 (integers and narrower floats are widened exactly).
    fmt : format name (``"float8_e4m3fn"``, ``"int4"``, ...) or a format object.
    saturate : float formats default to ``False`` (ml_dtypes' non-saturating rule); ``True``
        follows the ONNX Cast/QuantizeLinear ``saturate=1`` table.  Integer formats default to
        ``True`` (clamp); ``False`` wraps modulo ``2**bits``.
    rounding : one of ``intsim.rounding.MODES``; see the module docstring for each.
    seed : seed or ``numpy.random.Generator`` for ``rounding="stochastic"`` (reproducible).
    nan : ``"raise"`` or ``"zero"``: what NaN becomes in a format without a NaN code.
    backend : ``"jit"``, ``"jit-serial"`` or ``"reference"`` (exact rational arithmetic).

    Returns
    -------
    Unsigned codes of ``x``'s shape: uint8 for formats of at most 8 bits, else uint16 or uint32.
    """
    fmt = get(fmt)
    check_backend(backend)
    if nan not in NAN_POLICIES:
        raise ValueError(f"nan must be one of {NAN_POLICIES}, got {nan!r}")
    mode = rnd.mode_id(rounding)
    if saturate is None:
        saturate = isinstance(fmt, IntFormat)
    a = _as_real_array(x)
    flat = np.ascontiguousarray(a).reshape(-1)
    if mode == rnd.STOCHASTIC:
        rbits = rnd.random_bits(flat.size, seed)
    else:
        rbits = np.zeros(0, np.uint64)  # read only by stochastic rounding
    out = np.empty(flat.size, code_dtype(fmt.bits))

    if backend == "reference":
        for i, v in enumerate(flat.tolist()):
            r = int(rbits[i]) if mode == rnd.STOCHASTIC else 0
            out[i] = reference.encode_scalar(
                v, fmt, saturate=saturate, rounding=rounding, rbits=r, nan=nan
            )
        return out.reshape(a.shape)

    view_dtype, src_man, src_exp_bits, src_bias = _SOURCES[flat.dtype]
    src = flat.view(view_dtype)
    if isinstance(fmt, FloatFormat):
        params = float_params(fmt, saturate, nan)
        choice = float_kernel(fmt, flat.dtype, mode)
        if choice == "truncated_f32":  # an IEEE format: every input has a code
            _encode_truncated_f32_kernel.build(backend)(src, *params.for_truncated_f32(), saturate, out)
            bad = 0
        elif choice == "nearest_even_f32":
            bad = _encode_f32_nearest_even_kernel.build(backend)(
                flat, src, *params.for_nearest_even_f32(), saturate, out
            )
        else:
            bad = _encode_float_kernel.build(backend)(
                src, src_man, src_exp_bits, src_bias, *params, saturate, mode, rbits, out
            )
    else:
        nan_code = 0 if nan == "zero" else _NOT_REPRESENTABLE
        bad = _encode_int_kernel.build(backend)(
            src, src_man, src_exp_bits, src_bias, fmt.bits, fmt.min, fmt.max, saturate, mode,
            rbits, nan_code, out,
        )  # fmt: skip
    if bad:
        _raise_bad_input(flat, fmt, nan)
    return out.reshape(a.shape)


def decode(codes, fmt, *, dtype=np.float32, backend: str = "jit") -> np.ndarray:
    """Values of ``codes`` in ``fmt`` as ``dtype`` (float32 or float64).

    Decoding to float32 is exact for every named format (all their values are float32 numbers).
    Codes must be non-negative integers below ``2**fmt.bits``: a stray bit above the format's
    width raises ``ValueError`` instead of being read as a sign (ml_dtypes' sub-byte trap).
    """
    fmt = get(fmt)
    check_backend(backend)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"decode produces float32 or float64, got dtype={dtype}")
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got {c.dtype}")
    flat = np.ascontiguousarray(c).reshape(-1)
    out = np.empty(flat.size, dtype)
    if backend == "reference":
        for i, code in enumerate(flat.tolist()):
            out[i] = fmt.value(code)  # raises on stray bits
        return out.reshape(c.shape)
    if is_truncated_float32(fmt) and dtype == np.float32:
        shift = 23 - fmt.man_bits
        bad = _decode_truncated_f32_kernel.build(backend)(flat, fmt.bits, shift, out.view(np.uint32))
    elif fmt.bits <= 16:
        bad = _decode_table_kernel.build(backend)(flat, fmt.table(dtype), fmt.bits, out)
    elif isinstance(fmt, FloatFormat):
        specials = ("ieee", "fn", "fnuz", "none").index(fmt.specials)
        bad = _decode_wide_float_kernel.build(backend)(
            flat, fmt.bits, fmt.man_bits, fmt.exp_bits, fmt.bias, specials, fmt.subnormals, out
        )
    else:
        bad = _decode_wide_int_kernel.build(backend)(flat, fmt.bits, fmt.signed, out)
    if bad:
        first = int(np.flatnonzero((flat.astype(np.int64) >> fmt.bits) != 0)[0])
        raise ValueError(
            f"{bad} code(s) do not fit in {fmt.name}'s {fmt.bits} bits "
            f"(first at flat index {first}: {flat[first]}); mask or unpack them first"
        )
    return out.reshape(c.shape)
