"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR on NHWC tensors, as the reference kernels compute
them (``internal/reference/resize_nearest_neighbor.h``, ``resize_bilinear.h``; TFLite Micro's
copies are the same) and where LiteRT's optimized kernels or XNNPACK differ, as those do; the
output size from the constant ``size`` input.

Input and output share one quantization (both kernels copy or interpolate raw integers, which
would change the real values under another; such models are refused)."""

from __future__ import annotations

import numpy as np

from intsim.rounding import round_half_away
from intsim.tflite import xnnpack
from intsim.tflite.context import kernel
from intsim.tflite.kernels_shape import _same_quantization
from intsim.tflite.model import ModelError

f32 = np.float32


def _sizes(ctx, op):
    x, out = ctx.input(op, 0), ctx.out_tensor(op)
    _same_quantization(op, [ctx.in_tensor(op, 0)], out)
    size = np.asarray(ctx.input(op, 1)).reshape(-1)
    if x.ndim != 4 or size.size != 2 or np.any(size <= 0):
        raise ModelError(f"{op.describe()}: needs a 4-D input and two positive sizes, got {x.shape} and {size.tolist()}")
    o = op.options
    return x, int(size[0]), int(size[1]), bool(o.get("align_corners", False)), bool(o.get("half_pixel_centers", False))


def nearest_indices(n_in: int, n_out: int, align_corners: bool, half_pixel: bool, fixed_point: bool = False):
    """``GetNearestNeighbor`` for every output position: the scale and the position in float32,
    ``std::round`` (half away from zero, exactly: ``rounding.round_half_away``) with
    ``align_corners``, else ``floor``, capped to the input.  ``fixed_point``: LiteRT's optimized
    8-bit kernel without either flag (``optimized_ops::ResizeNearestNeighbor``),
    ``min((o * ((n_in << 16) / n_out + 1)) >> 16, n_in - 1)``."""
    if fixed_point:
        return np.minimum((np.arange(n_out, dtype=np.int64) * ((n_in << 16) // n_out + 1)) >> 16, n_in - 1)
    scale = f32(n_in - 1) / f32(n_out - 1) if align_corners and n_out > 1 else f32(n_in) / f32(n_out)
    pos = (np.arange(n_out, dtype=f32) + f32(0.5 if half_pixel else 0.0)) * scale
    idx = round_half_away(pos) if align_corners else np.floor(pos)
    idx = np.minimum(idx.astype(np.int64), n_in - 1)
    return np.maximum(idx, 0) if half_pixel else idx


@kernel("RESIZE_NEAREST_NEIGHBOR")
def resize_nearest_neighbor(ctx, op):
    """``reference_ops::ResizeNearestNeighbor``: each output pixel copies the input pixel at
    ``nearest_indices`` along H and W; LiteRT's optimized kernels (its two other modes) index
    8-bit tensors in 16-bit fixed point when neither flag is set."""
    x, h, w, align, half = _sizes(ctx, op)
    fixed = ctx.profile.kernels in ("optimized", "xnnpack") and x.dtype.itemsize == 1 and not (align or half)
    rows, cols = (nearest_indices(n, m, align, half, fixed) for n, m in ((x.shape[1], h), (x.shape[2], w)))
    return [np.ascontiguousarray(x[:, rows][:, :, cols])]


def _interpolation(n_in: int, n_out: int, align_corners: bool, half_pixel: bool):
    """``ComputeInterpolationValuesInteger`` for every output position: the position in
    1/1024 units and the two input indices, from a scale rounded to the nearest 1/1024."""
    scale = ((1 << 10) * n_in + n_out // 2) // n_out
    if align_corners and n_out > 1:
        scale = ((1 << 10) * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1)
    v = np.arange(n_out, dtype=np.int64)
    pos = v * scale + scale // 2 - (1 << 9) if half_pixel else v * scale
    lower = np.maximum(np.fix(pos / (1 << 10)).astype(np.int64), 0)  # C division truncates
    upper = np.minimum(np.fix((pos + (1 << 10) - 1) / (1 << 10)).astype(np.int64), n_in - 1)
    return pos, lower, upper


@kernel("RESIZE_BILINEAR")
def resize_bilinear(ctx, op):
    """``reference_ops::ResizeBilinearInteger`` (int8 in both runtimes, int16 in LiteRT; LiteRT's
    optimized int8 kernel calls it too): the four neighbours weighted in 1/1024 steps, an int64
    sum in 2**-20 units, rounded half away from zero (``TFLITE_SINGLE_ROUNDING`` builds: half
    up).  Without align_corners and half_pixel_centers, a large upsampling can put the lower
    index past the input (the kernel then reads the next row or past the buffer): refused.
    LiteRT's XNNPACK delegate interpolates in its own way (``xnnpack.xnnpack_resize_bilinear``)."""
    x, h, w, align, half = _sizes(ctx, op)
    if align and half:
        raise ModelError(f"{op.describe()}: align_corners and half_pixel_centers together (both runtimes refuse)")
    if x.dtype not in (np.int8, np.int16):
        raise ModelError(f"{op.describe()}: integer RESIZE_BILINEAR takes int8 or int16, got {x.dtype}")
    if x.dtype == np.int16:
        ctx.refuse(op, tflm="int16 RESIZE_BILINEAR (micro/kernels/resize_bilinear.cc: float32 and int8 only)")
    if ctx.profile.kernels == "xnnpack" and x.dtype == np.int8:
        return [xnnpack.xnnpack_resize_bilinear(x, h, w, align, half)]
    y_pos, y0, y1 = _interpolation(x.shape[1], h, align, half)
    x_pos, x0, x1 = _interpolation(x.shape[2], w, align, half)
    if y0.max(initial=0) > x.shape[1] - 1 or x0.max(initial=0) > x.shape[2] - 1:
        raise ModelError(f"{op.describe()}: resizing {x.shape[1]}x{x.shape[2]} to {h}x{w}, the reference kernel's "
                         "lower index passes the input (it reads outside the row); refused")  # fmt: skip
    wy = (y_pos - (1 << 10) * y0)[None, :, None, None]
    wx = (x_pos - (1 << 10) * x0)[None, None, :, None]
    v = x.astype(np.int64)
    total = (v[:, y0][:, :, x0] * ((1 << 10) - wy) * ((1 << 10) - wx) + v[:, y1][:, :, x0] * wy * ((1 << 10) - wx)
             + v[:, y0][:, :, x1] * ((1 << 10) - wy) * wx + v[:, y1][:, :, x1] * wy * wx)  # fmt: skip
    if ctx.rounding(op) == "single":
        out = (total + (1 << 19)) >> 20
    else:
        r = total + np.where(total > 0, 1 << 19, -(1 << 19))
        out = np.sign(r) * (np.abs(r) >> 20)  # C division truncates
    return [out.astype(x.dtype)]
