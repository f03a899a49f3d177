"""Per-vector two-level scaling (VS-Quant, Dai et al., MLSys 2021).

Each vector of ``vector_size`` elements along the reduction ``axis`` gets its own scale, and those
scales are themselves quantized to ``scale_bits``-bit unsigned integers against one float scale
per channel (``channel_axis``):

1. per-vector float scale ``s_v = amax_v / qmax`` (symmetric, narrow signed grid of ``dtype``)
2. per-channel float scale ``gamma = max_v(s_v) / (2**scale_bits - 1)``
3. integer vector scale ``k_v = clip(round_half_even(s_v / gamma), 1, 2**scale_bits - 1)``
4. elements ``q = clip(round_half_even(x / (gamma * k_v)), -qmax, qmax)``

``x ~ gamma * k_v * q``.  All arithmetic is float64; ``gamma`` is returned as float32 as it
would be stored, and steps 3 and 4 use that stored float32 value.
"""

from __future__ import annotations

import numpy as np

from intsim.formats.spec import IntFormat
from intsim.quant.affine import resolve_format
from intsim.quant.mx import _blocks, _unblock


def vsquant_quantize(
    x, *, dtype="int4", vector_size: int = 16, scale_bits: int = 4, axis: int = -1,
    channel_axis: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Returns ``(q, k, gamma)``: element values (int8 array), integer vector scales (uint16,
    ``x``'s shape with ``ceil(n / vector_size)`` along ``axis``) and per-channel float32
    ``gamma`` (length ``x.shape[channel_axis]``)."""
    fmt = resolve_format(dtype)
    if not isinstance(fmt, IntFormat) or not fmt.signed:
        raise ValueError(f"VS-Quant elements must be a signed integer format, got {fmt.name}")
    if not 1 <= scale_bits <= 16:
        raise ValueError(f"scale_bits must be in [1, 16], got {scale_bits}")
    xa = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(xa)):
        raise ValueError("x must be finite")
    if xa.ndim < 2:
        raise ValueError("VS-Quant needs a channel axis and a reduction axis")
    if axis % xa.ndim == channel_axis % xa.ndim:
        raise ValueError("axis (reduction) and channel_axis must differ")
    qmax = fmt.max
    kmax = 2**scale_bits - 1
    axes = (channel_axis, axis)
    moved = np.moveaxis(xa, axes, (0, -1))  # (channels, ..., n): a channel's rows are contiguous
    blocks, undo = _blocks(moved, -1, vector_size)  # (rows, vectors, vector_size)
    channels = moved.shape[0]
    rows_per_channel = blocks.shape[0] // channels
    s_v = np.abs(blocks).max(axis=-1) / qmax
    gamma = (s_v.reshape(channels, -1).max(axis=1) / kmax).astype(np.float32)
    g = np.repeat(np.where(gamma > 0, gamma.astype(np.float64), 1.0), rows_per_channel)[:, None]
    k = np.clip(np.rint(s_v / g), 1, kmax)
    q = np.clip(np.rint(blocks / (g * k)[..., None]), -qmax, qmax)
    q_full = np.moveaxis(_unblock(q, undo), (0, -1), axes).astype(np.int8)
    k_full = np.moveaxis(k.reshape(moved.shape[:-1] + (k.shape[1],)), (0, -1), axes)
    return q_full, k_full.astype(np.uint16), gamma


def vsquant_dequantize(q, k, gamma, *, vector_size: int = 16, axis: int = -1, channel_axis: int = 0):
    """``gamma[channel] * k[vector] * q`` as float32."""
    qa = np.asarray(q, dtype=np.float64)
    ka = np.asarray(k, dtype=np.float64)
    k_full = np.repeat(ka, vector_size, axis=axis).take(range(qa.shape[axis]), axis=axis)
    dims = [1] * qa.ndim
    dims[channel_axis] = qa.shape[channel_axis]
    g = np.asarray(gamma, dtype=np.float64).reshape(dims)
    return (qa * k_full * g).astype(np.float32)
