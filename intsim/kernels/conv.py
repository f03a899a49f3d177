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

from dataclasses import dataclass, replace

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel
from intsim.kernels import pairs as _pairs
from intsim.kernels.accumulator import INT32, Accumulator, OverflowReport, worst_case_bound
from intsim.kernels.geometry import output_size, resolve_padding
from intsim.kernels.gemm import PackedWeights, accumulate_matmul, gemm_int32

@kernel
def _im2col_kernel(x, c0, cg, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, pad_value, cols):
    """Patch rows (filter row, filter column, channel), ``pad_value`` for taps outside the
    image.  Each tap is one slice copy of ``cg`` contiguous channels (NHWC), or ``cg`` element
    copies when there are fewer than 16."""
    batch, height, width, _ = x.shape
    for r in prange(batch * oh * ow):
        b = r // (oh * ow)
        rem = r - b * (oh * ow)
        oy = rem // ow
        ox = rem - oy * ow
        row = cols[r]
        col = 0
        for ky in range(kh):
            iy = oy * sh - pt + ky * dh
            for kx in range(kw):
                ix = ox * sw - pl + kx * dw
                if 0 <= iy < height and 0 <= ix < width:
                    if cg < 16:  # a few channels: element copies beat a slice's setup (6 ns a tap)
                        for c in range(cg):
                            row[col + c] = x[b, iy, ix, c0 + c]
                    else:
                        row[col : col + cg] = x[b, iy, ix, c0 : c0 + cg]
                else:
                    row[col : col + cg] = pad_value
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
    batch, height, width, cin = x.shape
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
    if _pairs_apply(x.dtype, cin, w, groups, accumulator):
        for g in range(groups):  # every tap, those in the padding too (they hold x_zp), raw
            rows = [[int(x[b, iy, ix, g * cg + i]) if 0 <= iy < height and 0 <= ix < width else x_zp
                     for ky in range(kh) for kx in range(kw)
                     for iy, ix in [(oy * strides[0] - pads[0] + ky * dilations[0],
                                     ox * strides[1] - pads[1] + kx * dilations[1])]
                     for i in range(cg)] for b, oy, ox in np.ndindex(batch, oh, ow)]  # fmt: skip
            sl = slice(g * per_group, (g + 1) * per_group)
            wt = w[sl].reshape(per_group, -1)
            acc = out[..., sl].reshape(-1, per_group)
            out[..., sl] = _pairs.saturate_pairs(acc, np.array(rows, np.uint8), wt, "reference").reshape(out[..., sl].shape)
    return out, mask


def _pairs_apply(x_dtype, cin: int, w, groups: int, accumulator: Accumulator) -> bool:
    """Whether ``accumulator``'s int16 pairs act on this convolution: uint8 input, int8 filters,
    and not MLAS's depthwise kernel (groups = input channels = output channels), which widens
    to 16 bits before multiplying (``intsim.kernels.pairs``)."""
    depthwise = groups == cin == w.shape[0] and w.shape[3] == 1
    return accumulator.int16_pairs and _pairs.applies(x_dtype, w.dtype) and not depthwise


def _cannot_overflow(x, w, x_zp, w_zp, bias, accumulator) -> bool:
    """Static bound: no sum of this convolution's taps can leave the accumulator's range."""
    taps = w.shape[1] * w.shape[2] * w.shape[3]
    max_x = max(abs(int(x.min(initial=0)) - x_zp), abs(int(x.max(initial=0)) - x_zp))
    max_w = int(np.abs(w.reshape(w.shape[0], -1).astype(np.int64) - w_zp[:, None]).max(initial=0))
    return max_x * max_w * taps + int(np.abs(bias).max(initial=0)) <= accumulator.max


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution but its input values, checked: filters ``w`` (OHWI),
    per-output-channel ``w_zp`` and ``bias`` (int64), strides, dilations, resolved ``pads``
    (top, left, bottom, right) and the output size ``oh`` x ``ow``."""

    w: np.ndarray
    w_zp: np.ndarray
    bias: np.ndarray
    strides: tuple
    dilations: tuple
    pads: tuple
    groups: int
    oh: int
    ow: int

    @classmethod
    def check(cls, x_shape, x_dtype, w, w_zero_point, bias, strides, dilations, padding, groups) -> ConvGeometry:
        w = np.asarray(w)
        for name, dtype, ndim in (("input", np.dtype(x_dtype), len(x_shape)), ("filter", w.dtype, w.ndim)):
            if dtype.kind not in "iu" or dtype.itemsize > 2:
                raise ValueError(f"{name} must hold 8- or 16-bit integers, got {dtype}")
            if ndim != 4:
                raise ValueError(f"{name} must be 4-D, got shape {x_shape if name == 'input' else w.shape}")
        _, height, width, cin = x_shape
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
        w_zp = np.asarray(w_zero_point)
        if w_zp.dtype.kind not in "iu" or w_zp.size not in (1, cout):
            raise ValueError(f"w_zero_point must be one integer or {cout} (one per output channel)")
        w_zp = np.ascontiguousarray(np.broadcast_to(w_zp.reshape(-1).astype(np.int64), (cout,)))
        bias_v = np.zeros(cout, np.int64) if bias is None else np.asarray(bias)
        if bias_v.dtype.kind not in "iu" or bias_v.size != cout:
            raise ValueError(f"bias must hold {cout} integers, got shape {np.shape(bias)}")
        return cls(w, w_zp, bias_v.reshape(-1).astype(np.int64), strides, dilations, pads, int(groups), oh, ow)


def check_input_zero_point(x_zero_point, dtype) -> int:
    x_zp = np.asarray(x_zero_point)
    if x_zp.size != 1 or x_zp.dtype.kind not in "iu":
        raise ValueError("x_zero_point must be one integer")
    x_zp = int(x_zp.reshape(()))
    if not np.iinfo(dtype).min <= x_zp <= np.iinfo(dtype).max:
        raise ValueError(f"x_zero_point {x_zp} does not fit the input's {np.dtype(dtype)}")
    return x_zp


def accumulate_conv2d(
    x, w, x_zero_point=0, w_zero_point=0, bias=None, *, strides=(1, 1), dilations=(1, 1),
    padding="VALID", groups: int = 1, accumulator: Accumulator = INT32, backend: str = "jit",
) -> tuple[np.ndarray, OverflowReport]:  # fmt: skip
    """Accumulators of a 2-D integer convolution: ``x`` NHWC, ``w`` OHWI (``I = Cin / groups``),
    ``w_zero_point`` scalar or per output channel, ``bias`` None or per output channel.
    Returns NHWC accumulators (int32, or int64 above 32 bits) and the ``OverflowReport``."""
    check_backend(backend)
    x = np.asarray(x)
    geo = ConvGeometry.check(x.shape, x.dtype, w, w_zero_point, bias, strides, dilations, padding, groups)
    return _accumulate(x, geo, x_zero_point, accumulator, backend)


def _accumulate(x, geo: ConvGeometry, x_zero_point, accumulator: Accumulator, backend: str, packed=None):
    """``accumulate_conv2d`` after its checks; ``packed``: the filters of each group, packed
    (``PreparedConv`` packs them once), or None to pack them here."""
    w, w_zp, bias_v, strides, dilations, pads, oh, ow = (
        geo.w, geo.w_zp, geo.bias, geo.strides, geo.dilations, geo.pads, geo.oh, geo.ow)  # fmt: skip
    groups = geo.groups
    batch, height, width, cin = x.shape
    cout, kh, kw, cg = w.shape
    x_zp = check_input_zero_point(x_zero_point, x.dtype)
    out_dtype = np.int32 if accumulator.bits <= 32 else np.int64

    if backend == "reference":
        acc, mask = _reference(x, w, x_zp, w_zp, bias_v, strides, dilations, pads, groups, oh, ow, accumulator)
        return acc.astype(out_dtype), OverflowReport(accumulator, acc.size, int(mask.sum()), mask)

    per_group = cout // groups
    # int8 input is re-biased to uint8 below: the GEMM must not see int16 pairs where none act
    acc_model = accumulator
    if accumulator.int16_pairs and not _pairs_apply(x.dtype, cin, w, groups, accumulator):
        acc_model = replace(accumulator, int16_pairs=False)
    depthwise = groups == cin and cg == 1 and acc_model.is_native_int32
    if depthwise and _cannot_overflow(x, w, x_zp, w_zp, bias_v, accumulator):
        out = _depthwise(x, _depthwise_filter(w), x_zp, geo, backend)
        return out, OverflowReport(accumulator, out.size, 0, None, checked=False)
    out = np.empty((batch * oh * ow, cout), out_dtype)
    masks = []
    count, checked = 0, False
    xc, patch_zp = _rebiased(x, x_zp)
    cols = np.empty((batch * oh * ow, kh * kw * cg), xc.dtype)
    for g in range(groups):
        _patches(xc, g, geo, patch_zp, cols, backend)
        sl = slice(g * per_group, (g + 1) * per_group)
        w_g = packed[g] if packed else PackedWeights.from_rows(np.ascontiguousarray(w[sl]).reshape(per_group, -1), backend)
        acc, rep = accumulate_matmul(
            cols, w_g, patch_zp, w_zp[sl], bias_v[sl], accumulator=acc_model, backend=backend
        )
        out[:, sl] = acc
        count += rep.count
        checked |= rep.checked
        masks.append(rep.mask if rep.mask is not None else np.zeros(acc.shape, bool))
    mask = np.concatenate(masks, axis=1).reshape(batch, oh, ow, cout) if count else None
    report = OverflowReport(accumulator, out.size, count, mask, checked=checked)
    return out.reshape(batch, oh, ow, cout), report


def _depthwise_filter(w: np.ndarray) -> np.ndarray:
    """OHWI depthwise filters (Cout, KH, KW, 1) as the depthwise kernel reads them: (KH, KW, Cout)."""
    return np.ascontiguousarray(np.transpose(w[:, :, :, 0], (1, 2, 0)))


def _depthwise(x, w_dw, x_zp: int, geo: ConvGeometry, backend: str) -> np.ndarray:
    out = np.empty((x.shape[0], geo.oh, geo.ow, w_dw.shape[2]), np.int32)
    _depthwise_int32_kernel.build(backend, out.size * w_dw.shape[0] * w_dw.shape[1])(
        np.ascontiguousarray(x), w_dw, np.int64(x_zp), geo.w_zp, geo.bias, geo.strides[0], geo.strides[1],
        geo.dilations[0], geo.dilations[1], geo.pads[0], geo.pads[1], w_dw.shape[2] // x.shape[3], out,
    )  # fmt: skip
    return out


def _rebiased(x, x_zp: int):
    """The input as im2col copies it: int8 turned into uint8 ``x + 128`` (xor 0x80), the
    GEMM kernels' left operand, with the zero point moved alike (exact: differences are
    unchanged).  One pass over the input, before im2col repeats each value KH*KW times."""
    if x.dtype == np.int8:
        return np.ascontiguousarray(x).view(np.uint8) ^ np.uint8(0x80), x_zp + 128
    return np.ascontiguousarray(x), x_zp


def _patches(xc, g: int, geo: ConvGeometry, patch_zp: int, cols, backend: str) -> None:
    """im2col of group ``g`` into ``cols`` (one row of taps per output pixel)."""
    _, kh, kw, cg = geo.w.shape
    _im2col_kernel.build(backend, cols.size)(
        xc, g * cg, cg, kh, kw, geo.strides[0], geo.strides[1], geo.dilations[0], geo.dilations[1],
        geo.pads[0], geo.pads[1], geo.oh, geo.ow, xc.dtype.type(patch_zp), cols,
    )  # fmt: skip


class PreparedConv:
    """A convolution with fixed filters, zero points and bias (a model's constant weights) on
    inputs of one shape and dtype.  Everything static is checked, packed and bounded once;
    ``prepared(x, x_zero_point)`` returns exactly ``accumulate_conv2d``'s accumulators.

    The fast path (im2col + ``gemm_int32`` per group, or the depthwise kernel) is taken when
    the accumulator is int32 wrapping, the input is 8-bit and a static bound over every possible
    input (``|x - x_zp| <= 255``) shows no sum can leave int32, so no per-call range check or
    overflow report is needed; anything else takes ``accumulate_conv2d``'s general path with the
    geometry checked and the filters packed here, once."""

    def __init__(self, w, w_zero_point=0, bias=None, *, input_shape, input_dtype, strides=(1, 1),
                 dilations=(1, 1), padding="VALID", groups: int = 1, accumulator: Accumulator = INT32,
                 backend: str = "jit"):  # fmt: skip
        check_backend(backend)
        self.input_shape, self.input_dtype = tuple(input_shape), np.dtype(input_dtype)
        geo = self.geo = ConvGeometry.check(input_shape, input_dtype, w, w_zero_point, bias, strides,
                                            dilations, padding, groups)  # fmt: skip
        self.accumulator, self.backend = accumulator, backend
        cout, kh, kw, cg = geo.w.shape
        max_w = int(np.abs(geo.w.reshape(cout, -1).astype(np.int64) - geo.w_zp[:, None]).max(initial=0))
        bound = worst_case_bound(255, max_w, kh * kw * cg) + int(np.abs(geo.bias).max(initial=0))
        self.pairs = _pairs_apply(self.input_dtype, self.input_shape[3], geo.w, groups, accumulator)
        self.fast = (backend != "reference" and accumulator.wraps_int32 and self.input_dtype.itemsize == 1
                     and bound <= INT32.max)  # fmt: skip
        self.depthwise = groups == self.input_shape[3] and cg == 1 and not self.pairs
        self.packed = None
        if self.fast and self.depthwise:
            self.w_dw = _depthwise_filter(geo.w)
        elif backend != "reference":
            per_group = cout // groups
            self.packed = [
                PackedWeights.from_rows(np.ascontiguousarray(geo.w[g * per_group : (g + 1) * per_group]).reshape(per_group, -1), backend)
                for g in range(groups)
            ]  # fmt: skip

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != self.input_shape or x.dtype != self.input_dtype:
            raise ValueError(f"prepared for {self.input_dtype} input of shape {self.input_shape}, got {x.dtype} {x.shape}")
        return x

    def accumulate(self, x, x_zero_point=0) -> tuple[np.ndarray, OverflowReport]:
        """The accumulators and their ``OverflowReport`` (on the fast path none can overflow:
        the static bound proved it)."""
        x = self._check(x)
        if not self.fast:
            return _accumulate(x, self.geo, x_zero_point, self.accumulator, self.backend, self.packed)
        acc = self(x, x_zero_point)
        return acc, OverflowReport(self.accumulator, acc.size, 0, None, checked=False)

    def __call__(self, x, x_zero_point=0) -> np.ndarray:
        x = self._check(x)
        geo = self.geo
        if not self.fast:
            return _accumulate(x, geo, x_zero_point, self.accumulator, self.backend, self.packed)[0]
        x_zp = check_input_zero_point(x_zero_point, x.dtype)
        if self.depthwise:
            return _depthwise(x, self.w_dw, x_zp, geo, self.backend)
        batch = x.shape[0]
        cout, kh, kw, cg = geo.w.shape
        xc, patch_zp = _rebiased(x, x_zp)
        cols = np.empty((batch * geo.oh * geo.ow, kh * kw * cg), xc.dtype)
        per_group = cout // geo.groups
        out = None if geo.groups == 1 else np.empty((batch * geo.oh * geo.ow, cout), np.int32)
        for g, packed in enumerate(self.packed):
            _patches(xc, g, geo, patch_zp, cols, self.backend)
            sl = slice(g * per_group, (g + 1) * per_group)
            acc = gemm_int32(cols, packed, patch_zp, geo.w_zp[sl], geo.bias[sl], self.backend)[0]
            if self.pairs:
                acc = _pairs.saturate_pairs(acc, cols, packed.bt, self.backend)
            if out is None:
                return acc.reshape(batch, geo.oh, geo.ow, cout)
            out[:, sl] = acc
        return out.reshape(batch, geo.oh, geo.ow, cout)
