"""Integer 2-D convolution (NHWC input, OHWI filters) with groups, strides, dilation, padding.

``acc[b, y, x, o] = bias[o] + sum_{ky, kx, i} (in[b, y*sy - pt + ky*dy, x*sx - pl + kx*dx, g*Cg + i]
- in_zp) * (w[o, ky, kx, i] - w_zp[o])`` with ``g = o // (Cout / groups)``.  Taps outside the
image contribute nothing (they read the input zero point), as in TFLite (which skips them) and
ONNX (which pads with the zero point).  Depthwise convolution is the grouped case with
``groups = Cin`` and ``Cout = Cin * depth_multiplier``: output channel ``o`` reads input channel
``o // depth_multiplier``, TFLite's mapping.

The jit path lays the taps of each output pixel out as a row (``im2col``, column order filter
row, filter column, input channel: the accumulator model's reduction order) and multiplies by
the filters with ``intsim.kernels.gemm``.  Depthwise convolutions whose sums provably fit
int32 run a direct kernel vectorized over channels instead.  The reference is one loop nest in
Python ints.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel
from intsim.kernels.accumulator import INT32, Accumulator, OverflowReport
from intsim.kernels.gemm import PackedWeights, accumulate_matmul

PADDING_MODES = ("VALID", "SAME", "SAME_UPPER", "SAME_LOWER")


def output_size(size: int, k: int, stride: int, dilation: int, before: int, after: int) -> int:
    extent = (k - 1) * dilation + 1
    out = (size + before + after - extent) // stride + 1
    if out <= 0:
        raise ValueError(
            f"the filter (extent {extent}) does not fit an input of {size} with padding "
            f"({before}, {after})"
        )
    return out


def resolve_padding(padding, in_hw, kernel_hw, strides, dilations) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``"VALID"``, ``"SAME"`` (= ``"SAME_UPPER"``: TFLite and
    ONNX put the odd pixel at the end), ``"SAME_LOWER"``, or explicit (top, left, bottom, right)
    (ONNX ``pads`` order)."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES} or 4 integers, got {padding!r}")
        if mode == "VALID":
            return 0, 0, 0, 0
        pads = []
        for size, k, s, d in zip(in_hw, kernel_hw, strides, dilations, strict=True):
            out = math.ceil(size / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            before = total - total // 2 if mode == "SAME_LOWER" else total // 2
            pads.append((before, total - before))
        return pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    p = tuple(int(v) for v in padding)
    if len(p) != 4:
        raise ValueError(f"explicit padding takes 4 integers (top, left, bottom, right), got {padding!r}")
    if min(p) < 0:
        raise ValueError(f"padding must not be negative, got {p}")
    return p


@kernel
def _im2col_kernel(x, c0, cg, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, pad_value, flip, cols):
    """Patch rows (filter row, filter column, channel); every value xor ``flip`` (0x80 turns
    int8 bits viewed as uint8 into ``value + 128``, the re-bias the GEMM kernel prefers)."""
    batch, height, width, _ = x.shape
    for r in prange(batch * oh * ow):
        b = r // (oh * ow)
        rem = r - b * (oh * ow)
        oy = rem // ow
        ox = rem - oy * ow
        col = 0
        for ky in range(kh):
            iy = oy * sh - pt + ky * dh
            for kx in range(kw):
                ix = ox * sw - pl + kx * dw
                if 0 <= iy < height and 0 <= ix < width:
                    for c in range(cg):
                        cols[r, col + c] = x[b, iy, ix, c0 + c] ^ flip
                else:
                    for c in range(cg):
                        cols[r, col + c] = pad_value
                col += cg


@kernel
def _depthwise_int32_kernel(x, w, x_zp, w_zp, bias, sh, sw, dh, dw, pt, pl, multiplier, out):
    """Depthwise (groups = Cin) accumulation in int32, NHWC input, ``w`` (KH, KW, Cout) with
    output channel ``o`` reading input channel ``o // multiplier``.  Only called when a static
    bound shows no sum can leave int32, so int32 lanes are exact.  Parallel over output rows;
    the innermost loop runs over channels (contiguous in NHWC)."""
    batch, height, width, _ = x.shape
    _, oh, ow, cout = out.shape
    kh, kw, _ = w.shape
    wz = np.empty((kh, kw, cout), np.int32)  # the filter minus its zero points, once
    for ky in range(kh):
        for kx in range(kw):
            for o in range(cout):
                wz[ky, kx, o] = np.int32(w[ky, kx, o]) - np.int32(w_zp[o])
    xz = np.int32(x_zp)
    for r in prange(batch * oh):
        b = r // oh
        oy = r - b * oh
        acc = np.empty(cout, np.int32)
        for ox in range(ow):
            for o in range(cout):
                acc[o] = np.int32(bias[o])
            for ky in range(kh):
                iy = oy * sh - pt + ky * dh
                if iy < 0 or iy >= height:
                    continue
                for kx in range(kw):
                    ix = ox * sw - pl + kx * dw
                    if ix < 0 or ix >= width:
                        continue
                    if multiplier == 1:
                        for o in range(cout):
                            acc[o] = np.int32(acc[o] + (np.int32(x[b, iy, ix, o]) - xz) * wz[ky, kx, o])
                    else:  # output channel ci * multiplier + j reads input channel ci
                        for ci in range(cout // multiplier):
                            xv = np.int32(x[b, iy, ix, ci]) - xz
                            base = ci * multiplier
                            for j in range(multiplier):
                                acc[base + j] = np.int32(acc[base + j] + xv * wz[ky, kx, base + j])
            for o in range(cout):
                out[b, oy, ox, o] = acc[o]


def _reference(x, w, x_zp, w_zp, bias, strides, dilations, pads, groups, oh, ow, accumulator):
    batch, height, width, _ = x.shape
    cout, kh, kw, cg = w.shape
    per_group = cout // groups
    out = np.zeros((batch, oh, ow, cout), np.int64)
    mask = np.zeros(out.shape, bool)

    def taps(b, oy, ox, o):  # in reduction order; taps outside the image add nothing
        g = o // per_group
        for ky in range(kh):
            for kx in range(kw):
                iy = oy * strides[0] - pads[0] + ky * dilations[0]
                ix = ox * strides[1] - pads[1] + kx * dilations[1]
                if 0 <= iy < height and 0 <= ix < width:
                    for i in range(cg):
                        yield (int(x[b, iy, ix, g * cg + i]) - x_zp) * (int(w[o, ky, kx, i]) - int(w_zp[o]))

    for b, oy, ox, o in np.ndindex(*out.shape):
        out[b, oy, ox, o], mask[b, oy, ox, o] = accumulator.reduce(taps(b, oy, ox, o), int(bias[o]))
    return out, mask


def _cannot_overflow(x, w, x_zp, w_zp, bias, accumulator) -> bool:
    """Static bound: no sum of this convolution's taps can leave the accumulator's range."""
    taps = w.shape[1] * w.shape[2] * w.shape[3]
    max_x = max(abs(int(x.min(initial=0)) - x_zp), abs(int(x.max(initial=0)) - x_zp))
    max_w = int(np.abs(w.reshape(w.shape[0], -1).astype(np.int64) - w_zp[:, None]).max(initial=0))
    return max_x * max_w * taps + int(np.abs(bias).max(initial=0)) <= accumulator.max


def accumulate_conv2d(
    x, w, x_zero_point=0, w_zero_point=0, bias=None, *, strides=(1, 1), dilations=(1, 1),
    padding="VALID", groups: int = 1, accumulator: Accumulator = INT32, backend: str = "jit",
) -> tuple[np.ndarray, OverflowReport]:  # fmt: skip
    """Accumulators of a 2-D integer convolution: ``x`` NHWC, ``w`` OHWI (``I = Cin / groups``),
    ``w_zero_point`` scalar or per output channel, ``bias`` None or per output channel.
    Returns NHWC accumulators (int32, or int64 above 32 bits) and the ``OverflowReport``."""
    check_backend(backend)
    x = np.asarray(x)
    w = np.asarray(w)
    for name, arr in (("input", x), ("filter", w)):
        if arr.dtype.kind not in "iu" or arr.dtype.itemsize > 2:
            raise ValueError(f"{name} must hold 8- or 16-bit integers, got {arr.dtype}")
        if arr.ndim != 4:
            raise ValueError(f"{name} must be 4-D, got shape {arr.shape}")
    batch, height, width, cin = x.shape
    cout, kh, kw, cg = w.shape
    if not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if cin % groups or cout % groups:
        raise ValueError(f"groups={groups} must divide input channels {cin} and output channels {cout}")
    if cin // groups != cg:
        raise ValueError(
            f"filter has {cg} input channels but input channels / groups = {cin} / {groups} = {cin // groups}"
        )
    strides = tuple(int(s) for s in strides)
    dilations = tuple(int(d) for d in dilations)
    if len(strides) != 2 or min(strides) < 1 or len(dilations) != 2 or min(dilations) < 1:
        raise ValueError(f"strides and dilations must be two positive integers, got {strides}, {dilations}")
    pads = resolve_padding(padding, (height, width), (kh, kw), strides, dilations)
    oh = output_size(height, kh, strides[0], dilations[0], pads[0], pads[2])
    ow = output_size(width, kw, strides[1], dilations[1], pads[1], pads[3])
    x_zp = np.asarray(x_zero_point)
    if x_zp.size != 1 or x_zp.dtype.kind not in "iu":
        raise ValueError("x_zero_point must be one integer")
    x_zp = int(x_zp.reshape(()))
    if not np.iinfo(x.dtype).min <= x_zp <= np.iinfo(x.dtype).max:
        raise ValueError(f"x_zero_point {x_zp} does not fit the input's {x.dtype}")
    w_zp = np.asarray(w_zero_point)
    if w_zp.dtype.kind not in "iu" or w_zp.size not in (1, cout):
        raise ValueError(f"w_zero_point must be one integer or {cout} (one per output channel)")
    w_zp = np.broadcast_to(w_zp.reshape(-1).astype(np.int64), (cout,))
    bias_v = np.zeros(cout, np.int64) if bias is None else np.asarray(bias)
    if bias_v.dtype.kind not in "iu" or bias_v.size != cout:
        raise ValueError(f"bias must hold {cout} integers, got shape {np.shape(bias)}")
    bias_v = bias_v.reshape(-1).astype(np.int64)
    out_dtype = np.int32 if accumulator.bits <= 32 else np.int64

    if backend == "reference":
        acc, mask = _reference(x, w, x_zp, w_zp, bias_v, strides, dilations, pads, groups, oh, ow, accumulator)
        return acc.astype(out_dtype), OverflowReport(accumulator, acc.size, int(mask.sum()), mask)

    per_group = cout // groups
    depthwise = groups == cin and cg == 1 and accumulator.is_native_int32
    if depthwise and _cannot_overflow(x, w, x_zp, w_zp, bias_v, accumulator):
        out = np.empty((batch, oh, ow, cout), np.int32)
        _depthwise_int32_kernel.build(backend)(
            np.ascontiguousarray(x), np.ascontiguousarray(np.transpose(w[:, :, :, 0], (1, 2, 0))),
            np.int64(x_zp), np.ascontiguousarray(w_zp), bias_v, strides[0], strides[1],
            dilations[0], dilations[1], pads[0], pads[1], per_group, out,
        )  # fmt: skip
        return out, OverflowReport(accumulator, out.size, 0, None, checked=False)
    out = np.empty((batch * oh * ow, cout), out_dtype)
    masks = []
    count, checked = 0, False
    xc = np.ascontiguousarray(x)
    flip, patch_zp = xc.dtype.type(0), x_zp
    if xc.dtype == np.int8:  # exact: (a + 128) - (zp + 128) == a - zp
        xc, flip, patch_zp = xc.view(np.uint8), np.uint8(0x80), x_zp + 128
    cols = np.empty((batch * oh * ow, kh * kw * cg), xc.dtype)
    for g in range(groups):
        _im2col_kernel.build(backend)(
            xc, g * cg, cg, kh, kw, strides[0], strides[1], dilations[0], dilations[1],
            pads[0], pads[1], oh, ow, xc.dtype.type(patch_zp), flip, cols,
        )  # fmt: skip
        sl = slice(g * per_group, (g + 1) * per_group)
        w_g = PackedWeights.from_rows(np.ascontiguousarray(w[sl]).reshape(per_group, -1), backend)
        acc, rep = accumulate_matmul(
            cols, w_g, patch_zp, w_zp[sl], bias_v[sl], accumulator=accumulator, backend=backend
        )
        out[:, sl] = acc
        count += rep.count
        checked |= rep.checked
        masks.append(rep.mask if rep.mask is not None else np.zeros(acc.shape, bool))
    mask = np.concatenate(masks, axis=1).reshape(batch, oh, ow, cout) if count else None
    report = OverflowReport(accumulator, out.size, count, mask, checked=checked)
    return out.reshape(batch, oh, ow, cout), report
