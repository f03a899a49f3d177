"""Affine quantization with ONNX QuantizeLinear / DequantizeLinear semantics.

``quantize``: ``q = saturate(round(x / scale) + zero_point)``, where the division is true
division in the precision of ``np.result_type(x, scale)`` (float32 for float32 inputs and
scales, as the ONNX reference and onnxruntime compute it), ``round`` is half to even unless
``rounding=`` says otherwise (TFLite's quantizer rounds half away: ``rounding="nearest_away"``),
and ``saturate`` clamps to the format's range (``narrow_range=True`` drops the most negative
value of a signed format, as symmetric int8 weights use).  For float formats (float8, fp6, fp4)
the quotient (plus the zero point's value) is rounded once to the format with
``intsim.formats.encode``, following the ONNX ``saturate`` attribute.

``dequantize``: ``(q - zero_point) * scale``; the difference is exact (integers), converted to
the scale's precision once, multiplied there once.  This is onnxruntime's rule; the ONNX
reference converts ``q`` to float32 before subtracting, which differs only for int32 inputs
beyond ``2**24``.

Granularity, as in ONNX: ``scale`` a scalar (per tensor); 1-D of length ``x.shape[axis]`` with
``axis=`` (per axis / per channel); or, with ``block_size=B``, the shape of ``x`` except
``ceil(x.shape[axis] / B)`` along ``axis`` (blocked, opset 21; the last block may be short).
"""

from __future__ import annotations

import numpy as np

from intsim import formats
from intsim.formats.spec import FloatFormat, IntFormat


def resolve_format(dtype) -> FloatFormat | IntFormat:
    try:
        return formats.get(dtype)
    except ValueError as e:
        raise ValueError(f"dtype: {e}") from None


def check_scale(scale, name: str = "scale") -> np.ndarray:
    """``scale`` as a float array, every value finite and positive, or ``ValueError``."""
    s = np.asarray(scale)
    if s.dtype.kind not in "f":
        if s.dtype.kind in "iu":
            s = s.astype(np.float32)
        else:
            raise ValueError(f"{name} must be a float array, got dtype {s.dtype}")
    if s.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(s) | (s <= 0)
    if np.any(bad):
        raise ValueError(
            f"{name} must be finite and positive; got {s.reshape(-1)[np.flatnonzero(bad)[0]]!r}"
        )
    return s


def int_range(fmt: IntFormat, narrow_range: bool) -> tuple[int, int]:
    lo = fmt.min + 1 if (narrow_range and fmt.signed) else fmt.min
    return lo, fmt.max


def check_zero_point(zero_point, fmt, narrow_range: bool = False) -> np.ndarray:
    """Zero point(s) as int64 (integer formats) or float64 values (float formats)."""
    z = np.asarray(zero_point)
    if isinstance(fmt, IntFormat):
        if z.dtype.kind not in "iu":
            raise ValueError(f"zero_point must hold integers for {fmt.name}, got dtype {z.dtype}")
        lo, hi = int_range(fmt, narrow_range)
        if z.size and (z.min() < lo or z.max() > hi):
            raise ValueError(
                f"zero_point must lie in {fmt.name}'s range [{lo}, {hi}], "
                f"got values in [{z.min()}, {z.max()}]"
            )
        return z.astype(np.int64)
    if z.dtype.kind not in "iuf" or not np.all(np.isfinite(z)):
        raise ValueError(f"zero_point for {fmt.name} must be finite numbers")
    return z.astype(np.float64)


def expand(param: np.ndarray, shape: tuple, axis, block_size, name: str) -> np.ndarray:
    """``param`` shaped to broadcast against an array of ``shape`` (ONNX granularity rules)."""
    if param.size == 1 and block_size is None:
        return param.reshape(())
    ndim = len(shape)
    if axis is None:
        raise ValueError(
            f"{name} has {param.size} values: pass axis= for per-axis or blocked quantization"
        )
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for an input of {ndim} dimensions")
    axis %= ndim
    if block_size is None:
        if param.ndim != 1 or param.size != shape[axis]:
            raise ValueError(
                f"per-axis {name} must be 1-D with x.shape[{axis}] = {shape[axis]} values, "
                f"got shape {param.shape}"
            )
        dims = [1] * ndim
        dims[axis] = param.size
        return param.reshape(dims)
    if not isinstance(block_size, int | np.integer) or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    blocks = -(-shape[axis] // block_size)
    want = tuple(blocks if d == axis else n for d, n in enumerate(shape))
    if param.shape != want:
        raise ValueError(
            f"blocked {name} must have shape {want} for x of shape {tuple(shape)}, "
            f"axis={axis} and block_size={block_size}; got {param.shape}"
        )
    return np.repeat(param, block_size, axis=axis).take(range(shape[axis]), axis=axis)


def expand_zero_point(z: np.ndarray, shape: tuple, axis, block_size) -> np.ndarray:
    """A single zero point applies everywhere; otherwise it follows the scale's granularity."""
    return z.reshape(()) if z.size == 1 else expand(z, shape, axis, block_size, "zero_point")


def _real_input(x) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return a
    if a.dtype.kind in "iu":
        return a.astype(np.float64)
    raise ValueError(f"x must be a real array, got dtype {a.dtype}")


def quantize(
    x,
    scale,
    zero_point=0,
    *,
    dtype="int8",
    axis: int | None = None,
    block_size: int | None = None,
    rounding: str = "nearest_even",
    saturate: bool = True,
    narrow_range: bool = False,
    seed=None,
    backend: str = "jit",
) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(round(x / scale) + zero_point)``.

    Returns integer values in the smallest numpy dtype holding ``dtype`` (int8 for int4 and
    int2, uint8 for uint4 and uint2, ...), or unsigned codes for float formats (uint8 for
    float8/fp6/fp4; decode them with ``intsim.formats.decode``).  ``saturate=False`` wraps
    integers modulo ``2**bits`` and gives float formats their non-saturating overflow code.
    ``seed`` feeds ``rounding="stochastic"``.  NaN inputs raise (integers have no NaN).
    """
    fmt = resolve_format(dtype)
    xa = _real_input(x)
    s = check_scale(scale)
    z = check_zero_point(zero_point, fmt, narrow_range)
    s_full = expand(s, xa.shape, axis, block_size, "scale")
    z_full = expand_zero_point(z, xa.shape, axis, block_size)
    precision = np.result_type(xa.dtype, s.dtype)
    quotient = xa.astype(precision) / s_full.astype(precision)
    if isinstance(fmt, FloatFormat):
        if np.any(z_full != 0):
            quotient = quotient + z_full.astype(precision)
        return formats.encode(
            quotient, fmt, saturate=saturate, rounding=rounding, seed=seed, backend=backend
        )
    # round to an integer, saturating at int32 (beyond every target's range), then add zp
    rounded = formats.encode(
        quotient, "int32", rounding=rounding, saturate=True, seed=seed, backend=backend
    )
    q = rounded.view(np.int32).astype(np.int64) + z_full
    lo, hi = int_range(fmt, narrow_range)
    if saturate:
        q = np.clip(q, lo, hi)
    else:
        q = (q - fmt.min) % (1 << fmt.bits) + fmt.min
    return q.astype(fmt.numpy_dtype)


def dequantize(
    q,
    scale,
    zero_point=0,
    *,
    axis: int | None = None,
    block_size: int | None = None,
    dtype=np.float32,
    fmt=None,
) -> np.ndarray:
    """ONNX DequantizeLinear: ``(q - zero_point) * scale``.

    ``q`` holds integer values, or codes of the float format named by ``fmt=`` (float8,
    fp6, fp4; ml_dtypes arrays are accepted too).  The result is computed in the scale's
    precision and returned as ``dtype``.
    """
    s = check_scale(scale)
    qa = np.asarray(q)
    if fmt is not None:
        fmt = resolve_format(fmt)
    if fmt is not None and isinstance(fmt, FloatFormat):
        values = formats.decode(qa, fmt, dtype=np.float64)
    elif qa.dtype.kind in "iu":
        if fmt is not None and qa.size and (qa.min() < fmt.min or qa.max() > fmt.max):
            raise ValueError(f"q holds values outside {fmt.name}'s range [{fmt.min}, {fmt.max}]")
        values = qa.astype(np.int64)
    elif qa.dtype.kind == "V":  # an ml_dtypes float array: widen exactly
        values = qa.astype(np.float64)
    else:
        raise ValueError(f"q must be an integer array (or codes with fmt=), got dtype {qa.dtype}")
    z = np.asarray(zero_point)
    if z.dtype.kind not in "iuf":
        raise ValueError(f"zero_point must be numeric, got dtype {z.dtype}")
    if fmt is None and qa.dtype.kind in "iu" and qa.dtype.itemsize <= 4:
        fmt = resolve_format(qa.dtype.name)  # the zero point lies in q's type, as ONNX requires
    if fmt is not None and isinstance(fmt, IntFormat):
        z = check_zero_point(z, fmt)
    s_full = expand(s, qa.shape, axis, block_size, "scale")
    z_full = expand_zero_point(z, qa.shape, axis, block_size)
    precision = s.dtype
    diff = values - z_full  # exact: int64 - int64, or float64 values of <= 16-bit formats
    return (diff.astype(precision) * s_full.astype(precision)).astype(dtype)
