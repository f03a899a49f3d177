"""Microscaling block formats (OCP MX v1.0) and NVIDIA NVFP4.

MX: each block of ``block_size`` (32) elements along ``axis`` shares one E8M0 scale ``2**e``;
elements are ``x / 2**e`` rounded to the element format and clamped to its largest normal
(saturating), so a block maximum just below a power of two can clip by design.

Scale exponent ``e`` from the block's ``amax`` (read from the bits, never ``log2`` in float),
with ``emax`` the exponent of the element format's largest binade:

``floor``  OCP / microxcaling: ``floor(log2(amax)) - emax``
``rceil``  NVIDIA hardware, TransformerEngine, cuBLAS: ``ceil(log2(amax / max_element))``
``ceil``   ``ceil(log2(amax)) - emax``
``even``   torchao's EVEN: ``amax`` rounded (half up) to the element's mantissa width first,
           then ``floor(log2(.)) - emax``

``e`` is clamped to [-127, 127]; an all-zero block gets ``e = -127``; a block holding NaN or inf
gets the NaN scale code 0xFF (and element codes 0).  MXINT8 elements are int8 values ``k / 64``
with ``k`` in [-127, 127].

NVFP4: blocks of 16 E2M1 elements with an E4M3 block scale and one float32 tensor scale
``g = amax(x) / (448 * 6)``; block scale ``s = e4m3(amax_block / 6 / g)`` (nearest even,
saturating), elements ``e2m1(x / (s * g))``; all scale arithmetic in float32 (as
TransformerEngine's reference quantizer).  Dequantized: ``element * s * g``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim import formats

SCALE_ROUNDINGS = ("floor", "rceil", "ceil", "even")
E8M0_NAN = 0xFF


@dataclass(frozen=True)
class MXFormat:
    name: str
    element: str  # an intsim.formats name
    emax: int  # exponent of the element format's largest binade
    max_element: float
    mantissa_bits: int


MX_FORMATS = {
    f.name: f
    for f in (
        MXFormat("mxfp8_e4m3", "float8_e4m3fn", 8, 448.0, 3),
        MXFormat("mxfp8_e5m2", "float8_e5m2", 15, 57344.0, 2),
        MXFormat("mxfp6_e3m2", "float6_e3m2fn", 4, 28.0, 2),
        MXFormat("mxfp6_e2m3", "float6_e2m3fn", 2, 7.5, 3),
        MXFormat("mxfp4", "float4_e2m1fn", 2, 6.0, 1),
        MXFormat("mxint8", "int8", 0, 127 / 64, 6),
    )
}


def _mx_format(name) -> MXFormat:
    try:
        return MX_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown MX format {name!r}; known: {', '.join(MX_FORMATS)}") from None


def _blocks(x: np.ndarray, axis: int, block_size: int) -> tuple[np.ndarray, tuple]:
    """``x`` moved to (rows, blocks, block_size), zero-padded; and what is needed to undo it."""
    if not isinstance(block_size, int | np.integer) or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for an input of {x.ndim} dimensions")
    moved = np.moveaxis(x, axis, -1)
    length = moved.shape[-1]
    nblocks = -(-length // block_size)
    flat = moved.reshape(-1, length)
    padded = np.zeros((flat.shape[0], nblocks * block_size), flat.dtype)
    padded[:, :length] = flat
    return padded.reshape(flat.shape[0], nblocks, block_size), (moved.shape, axis, length)


def _unblock(b: np.ndarray, undo: tuple) -> np.ndarray:
    moved_shape, axis, length = undo
    flat = b.reshape(b.shape[0], -1)[:, :length]
    return np.moveaxis(flat.reshape(moved_shape), -1, axis)


def _scale_shape(undo: tuple, nblocks: int) -> tuple:
    moved_shape, axis, _ = undo
    return moved_shape[:-1] + (nblocks,), axis


def floor_log2(a: np.ndarray) -> np.ndarray:
    """Exact ``floor(log2(a))`` for positive finite ``a`` (from the exponent bits)."""
    return np.frexp(a)[1].astype(np.int64) - 1


def scale_exponent(amax: np.ndarray, fmt: MXFormat, scale_rounding: str) -> np.ndarray:
    """The shared exponent of each block (int64; -127 for zero blocks), before NaN handling."""
    if scale_rounding not in SCALE_ROUNDINGS:
        raise ValueError(f"scale_rounding must be one of {SCALE_ROUNDINGS}, got {scale_rounding!r}")
    a = np.where(amax > 0, amax, 1.0).astype(np.float64)
    mant, exp = np.frexp(a)  # a = mant * 2**exp, mant in [0.5, 1)
    fl = exp.astype(np.int64) - 1
    if scale_rounding == "floor":
        e = fl - fmt.emax
    elif scale_rounding == "ceil":
        e = fl + (mant != 0.5) - fmt.emax
    elif scale_rounding == "even":
        steps = 2.0 ** (fmt.mantissa_bits + 1)
        rounded_up = np.floor(mant * steps + 0.5) >= steps  # half up at the element's width
        e = fl + rounded_up - fmt.emax
    else:  # rceil: smallest e with amax <= max_element * 2**e (comparisons exact in float64)
        e = fl - floor_log2(np.float64(fmt.max_element))
        e = np.where(np.ldexp(fmt.max_element, (e - 1).astype(np.int32)) >= a, e - 1, e)
        e = np.where(np.ldexp(fmt.max_element, e.astype(np.int32)) < a, e + 1, e)
    e = np.clip(e, -127, 127)
    return np.where(amax > 0, e, -127)


def mx_quantize(
    x,
    fmt: str = "mxfp8_e4m3",
    *,
    axis: int = -1,
    block_size: int = 32,
    scale_rounding: str = "floor",
    rounding: str = "nearest_even",
) -> tuple[np.ndarray, np.ndarray]:
    """Quantize ``x`` to an MX format.

    Returns ``(scales, elements)``: E8M0 scale codes (uint8) of ``x``'s shape with
    ``ceil(n / block_size)`` along ``axis``, and element codes of ``x``'s shape (uint8 codes of
    the element format; int8 values for ``mxint8``).
    """
    spec = _mx_format(fmt)
    xa = np.asarray(x, dtype=np.float64) if np.asarray(x).dtype != np.float32 else np.asarray(x)
    blocks, undo = _blocks(xa, axis, block_size)
    bad = ~np.isfinite(blocks).all(axis=-1)
    amax = np.where(bad, 0.0, np.abs(np.where(np.isfinite(blocks), blocks, 0)).max(axis=-1))
    e = scale_exponent(amax, spec, scale_rounding)
    scaled = np.ldexp(blocks.astype(np.float64), -e[..., None].astype(np.int32))
    scaled = np.where(bad[..., None], 0.0, scaled)
    if spec.element == "int8":
        q = formats.encode(scaled * 64, "int8", rounding=rounding, saturate=True).view(np.int8)
        elements = np.maximum(q, -127).astype(np.int8)
    else:
        elements = formats.encode(scaled, spec.element, saturate=True, rounding=rounding)
    scales = np.where(bad, E8M0_NAN, e + 127).astype(np.uint8)
    scale_shape, scale_axis = _scale_shape(undo, blocks.shape[1])
    return (
        np.moveaxis(scales.reshape(scale_shape), -1, scale_axis),
        _unblock(elements, undo),
    )


def mx_dequantize(
    scales, elements, fmt: str = "mxfp8_e4m3", *, axis: int = -1, block_size: int = 32, dtype=np.float32
) -> np.ndarray:
    """Values of an MX tensor: ``element * 2**e`` (NaN where the block scale is NaN)."""
    spec = _mx_format(fmt)
    el = np.asarray(elements)
    if spec.element == "int8":
        values = el.astype(np.float64) / 64
    else:
        values = formats.decode(el, spec.element, dtype=np.float64)
    blocks, undo = _blocks(values, axis, block_size)
    s = np.moveaxis(np.asarray(scales), axis, -1).reshape(blocks.shape[0], -1)
    if s.shape[1] != blocks.shape[1]:
        raise ValueError(
            f"scales hold {s.shape[1]} blocks along axis {axis}, elements need {blocks.shape[1]}"
        )
    exponent = s.astype(np.int64) - 127
    out = np.ldexp(blocks, np.where(s == E8M0_NAN, 0, exponent)[..., None].astype(np.int32))
    out = np.where((s == E8M0_NAN)[..., None], np.nan, out)
    return _unblock(out, undo).astype(dtype)


def nvfp4_quantize(
    x, *, axis: int = -1, block_size: int = 16, tensor_scale=None, rounding: str = "nearest_even"
) -> tuple[np.float32, np.ndarray, np.ndarray]:
    """NVFP4: ``(tensor_scale, block_scale_codes (E4M3, uint8), element_codes (E2M1, uint8))``."""
    xa = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(xa)):
        raise ValueError("NVFP4 input must be finite")
    f32 = np.float32
    if tensor_scale is None:
        amax_t = np.abs(xa).max() if xa.size else f32(0)
        tensor_scale = f32(amax_t) / f32(448.0 * 6.0) if amax_t > 0 else f32(1.0)
    g = f32(tensor_scale)
    if not (np.isfinite(g) and g > 0):
        raise ValueError(f"tensor_scale must be finite and positive, got {tensor_scale!r}")
    blocks, undo = _blocks(xa, axis, block_size)
    amax = np.abs(blocks).max(axis=-1).astype(f32)
    s_codes = formats.encode(amax / f32(6.0) / g, "float8_e4m3fn", saturate=True)
    s = formats.decode(s_codes, "float8_e4m3fn")
    denom = (s * g)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(denom > 0, blocks / np.where(denom > 0, denom, f32(1)), f32(0)).astype(f32)
    elements = formats.encode(scaled, "float4_e2m1fn", saturate=True, rounding=rounding)
    scale_shape, scale_axis = _scale_shape(undo, blocks.shape[1])
    return g, np.moveaxis(s_codes.reshape(scale_shape), -1, scale_axis), _unblock(elements, undo)


def nvfp4_dequantize(tensor_scale, block_scales, elements, *, axis: int = -1, block_size: int = 16):
    """Values of an NVFP4 tensor: ``e2m1 * e4m3_block_scale * tensor_scale`` (float32)."""
    values = formats.decode(np.asarray(elements), "float4_e2m1fn")
    blocks, undo = _blocks(values, axis, block_size)
    s = formats.decode(np.moveaxis(np.asarray(block_scales), axis, -1), "float8_e4m3fn")
    s = s.reshape(blocks.shape[0], -1)
    return _unblock(blocks * (s * np.float32(tensor_scale))[..., None], undo).astype(np.float32)
