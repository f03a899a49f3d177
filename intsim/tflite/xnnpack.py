"""XNNPACK's own int8 arithmetic, where LiteRT's default interpreter hands an operator to its
XNNPACK delegate and XNNPACK computes otherwise than LiteRT's kernels (profile ``xnnpack``,
``Profile.kernels="xnnpack"``).  Each rule says when the delegate takes the operator;
the others stay with LiteRT's kernels.  Checked against ai-edge-litert 2.3's default
``Interpreter()`` in ``tests/test_litert_default.py``.

* ADD / SUB (int8): ``xnnpack_add`` below.
* QUANTIZE int8 -> int8: XNNPACK's qs8-vcvt (``src/qs8-vcvt``): a Q8 multiplier
  ``lrintf(float32(s_in / s_out) * 256)`` and ``((zp_out << 8) + 128 + (x - zp_in) * m) >> 8``
  (arithmetic shift: round half up), saturated; the delegate takes it for ratios in
  [2**-8, 2**7] (measured).
* MUL (int8): the ``float32`` rule on the int32 product (``kernels_elementwise.mul``), for
  ``s1 * s2 / s_out`` in [2**-16, 2**8).
* LEAKY_RELU, MEAN and QUANTIZE from float32 (int8): ``xnnpack_leaky_relu``, ``xnnpack_mean``,
  ``xnnpack_quantize`` below.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel

f32 = np.float32

# ---- ADD / SUB ------------------------------------------------------------------------------------
# XNNPACK ``xnn_init_qs8_add_minmax_scalar_params`` (src/microparams-init.c) and the qs8-vadd
# micro-kernels (src/qs8-vadd/): the two input-to-output scale ratios in float32, the larger one's
# binary exponent fixing a shift that gives it 21 significant bits, each ratio scaled by 2**shift
# and rounded to an integer multiplier (lrintf: ties to even); then per element
#     acc = rounding + (x1 - z1) * m1 + (x2 - z2) * m2        (int32, exact)
#     y   = clamp(acc >> shift, lo - z_out, hi - z_out) + z_out
# with ``>>`` arithmetic (floor).  SUB is ADD with the second ratio negated.


def xnnpack_takes_add(s1, s2, s_out) -> bool:
    """Whether LiteRT's XNNPACK delegate takes an int8 ADD/SUB: both input/output scale ratios
    (float32) in [2**-10, 2**8), XNNPACK's range; it leaves others to LiteRT's kernels (measured:
    ai-edge-litert 2.3 keeps such an ADD out of its delegate partition)."""
    return all(2.0**-10 <= f32(f32(s) / f32(s_out)) < 2.0**8 for s in (s1, s2))


def xnnpack_add_params(s1, z1: int, s2, z2: int, s_out, subtract: bool = False) -> tuple[int, int, int, int]:
    """``(m1, m2, bias, shift)`` of XNNPACK's qs8 add: ``bias`` holds the rounding term and the
    zero points.  Ratios outside XNNPACK's range (``xnnpack_takes_add``) raise ``ValueError``."""
    if not xnnpack_takes_add(s1, s2, s_out):
        raise ValueError("XNNPACK's int8 ADD takes input/output scale ratios in [2**-10, 2**8)")
    a, b = f32(f32(s1) / f32(s_out)), f32(f32(s2) / f32(s_out))
    if subtract:
        b = -b
    top = max(abs(a), abs(b))
    shift = 20 - ((int(np.asarray(top).view(np.uint32)) >> 23) - 127)
    m1, m2 = (int(np.rint(f32(r * f32(2.0**shift)))) for r in (a, b))  # exact scaling, then ties to even
    return m1, m2, (1 << (shift - 1)) - m1 * int(z1) - m2 * int(z2), shift


@kernel
def _xnnpack_add_kernel(x1, x2, m1, m2, bias, shift, lo, hi, out):
    for i in prange(out.size):
        out[i] = min(max((bias + np.int64(x1[i]) * m1 + np.int64(x2[i]) * m2) >> shift, lo), hi)


def xnnpack_add(x1, x2, params, *, output_zero_point: int, clamp: tuple[int, int], backend: str = "jit"):
    """XNNPACK's int8 ADD/SUB (above) on two same-shape arrays with ``xnnpack_add_params``;
    int64 values in ``clamp``.  ``backend="reference"`` is the rule in numpy int64."""
    check_backend(backend)
    m1, m2, bias, shift = params
    lo, hi = (int(v) - int(output_zero_point) for v in clamp)
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"xnnpack_add takes same-shape inputs, got {x1.shape} and {x2.shape}")
    if backend == "reference":
        acc = bias + x1.astype(np.int64) * m1 + x2.astype(np.int64) * m2
        return np.clip(acc >> shift, lo, hi) + output_zero_point
    out = np.empty(x1.shape, np.int64)
    _xnnpack_add_kernel.build(backend, out.size)(np.ascontiguousarray(x1).reshape(-1), np.ascontiguousarray(x2).reshape(-1),
                                                 m1, m2, bias, shift, lo, hi, out.reshape(-1))  # fmt: skip
    return out + output_zero_point


# ---- QUANTIZE int8 -> int8 ------------------------------------------------------------------------


def xnnpack_takes_requantize(s_in, s_out) -> bool:
    """Whether the delegate takes an int8 -> int8 QUANTIZE: ratio ``s_in / s_out`` (float32) in
    [2**-8, 2**7] (measured on ai-edge-litert 2.3; XNNPACK's qs8-vcvt range)."""
    return 2.0**-8 <= f32(f32(s_in) / f32(s_out)) <= 2.0**7


def xnnpack_requantize(x, s_in, zp_in: int, s_out, zp_out: int, dtype=np.int8) -> np.ndarray:
    """XNNPACK's int8 -> int8 (uint8 -> uint8) QUANTIZE (module docstring), as int64 values in
    the range of ``dtype``; one numpy implementation for every backend (a few integer operations
    per element)."""
    if not xnnpack_takes_requantize(s_in, s_out):
        raise ValueError("XNNPACK's int8 QUANTIZE takes scale ratios in [2**-8, 2**7]")
    m = int(np.rint(f32(f32(f32(s_in) / f32(s_out)) * f32(256))))
    acc = (int(zp_out) << 8) + 128 + (np.asarray(x, np.int64) - int(zp_in)) * m
    info = np.iinfo(dtype)
    return np.clip(acc >> 8, info.min, info.max)


# ---- MUL, LEAKY_RELU, MEAN, QUANTIZE from float32 -------------------------------------------------
# Read from google/XNNPACK (src/microparams-init.c, src/qs8-vlrelu/, src/operators/reduce-nd.c,
# src/reference/unary-elementwise.cc, src/f32-qs8-vcvt/) and matched against the AVX2 kernels of
# ai-edge-litert 2.3 (xnn_qs8_vlrelu_ukernel__avx2_u32, xnn_qs8_rsum/rdsum avx2, the reference
# int32 -> qs8 convert, xnn_f32_qs8_vcvt_ukernel__avx2_u64).  f32 arithmetic is IEEE float32, no FMA.


def xnnpack_takes_mul(s1, s2, s_out) -> bool:
    """Whether the delegate takes an int8 MUL: ``float32(s1 * s2) / s_out`` (float32) in
    [2**-16, 2**8) (LiteRT ``xnnpack_delegate.cc`` VisitBinaryNode, measured at both ends)."""
    return 2.0**-16 <= f32(f32(f32(s1) * f32(s2)) / f32(s_out)) < 2.0**8


def xnnpack_takes_leaky_relu(s_in, s_out, alpha) -> bool:
    """Whether the delegate takes an int8 LEAKY_RELU: alpha normal, ``r = s_in / s_out`` in
    [2**-8, 128], ``alpha * r`` in [-127.99609375, 128] and at least 2**-8 in magnitude (float32,
    inclusive; ``xnnpack_delegate.cc`` VisitUnaryNode)."""
    alpha, r = f32(alpha), f32(f32(s_in) / f32(s_out))
    ar = f32(alpha * r)
    normal = bool(np.isfinite(alpha)) and abs(alpha) >= np.finfo(f32).tiny
    return normal and 2.0**-8 <= r <= 128 and -127.99609375 <= ar <= 128 and abs(ar) >= 2.0**-8


def xnnpack_leaky_relu(x, s_in, zp_in: int, s_out, zp_out: int, alpha) -> np.ndarray:
    """XNNPACK's qs8 leaky ReLU: Q8 multipliers ``lrintf(256 * s_in / s_out)`` and
    ``lrintf(256 * alpha * s_in / s_out)`` (``xnn_init_qs8_lrelu_scalar_params``), then
    ``floor(((x - zp_in) * m + 128) / 256) + zp_out`` (the kernel's ``mulhrs``: ties up),
    ``m`` the first where ``x > zp_in``; int8 saturation."""
    pos = f32(f32(s_in) / f32(s_out))
    pm, nm = int(np.rint(f32(256) * pos)), int(np.rint(f32(256) * f32(pos * f32(alpha))))
    v = np.asarray(x, np.int64) - int(zp_in)
    return np.clip(((v * np.where(v > 0, pm, nm) + 128) >> 8) + int(zp_out), -128, 127).astype(np.int8)


SUM_WRAP_RUN = 8256  # a contiguous run of at least this many int8 values wraps the AVX2 rsum kernel's int16 lanes


def xnnpack_mean(x, axes, keep_dims: bool, s_in, zp_in: int, s_out, zp_out: int, mean: bool = True) -> np.ndarray:
    """XNNPACK's qs8 mean and sum (``src/operators/reduce-nd.c``): the int32 sum ``S`` of the raw
    int8 values over ``axes``, then in float32 ``scale = float32(s_in / s_out) * float32(1 / n)``
    (a sum: ``float32(s_in / s_out)``),
    ``zp = zp_out - float32(n * zp_in) * scale`` and ``nearbyint(float32(S) * scale + zp)``
    (ties to even), clamped.  A reduced last axis whose contiguous run reaches ``SUM_WRAP_RUN``
    values wraps the AVX2 kernel's 16-bit partial sums: that case raises."""
    x = np.asarray(x)
    axes = tuple(sorted({int(a) % x.ndim for a in axes}))
    run = 1
    for a in range(x.ndim - 1, -1, -1):  # the innermost run of reduced axes, merged as XNNPACK does
        if a not in axes:
            break
        run *= x.shape[a]
    if run >= SUM_WRAP_RUN and x.ndim - 1 in axes:
        raise ValueError(f"a mean over {run} contiguous values: XNNPACK's AVX2 sum kernel wraps its 16-bit "
                         f"partial sums from {SUM_WRAP_RUN} on, which intsim does not model")  # fmt: skip
    n = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=keep_dims)
    scale = f32(f32(f32(s_in) / f32(s_out)) * f32(f32(1) / f32(n))) if mean else f32(f32(s_in) / f32(s_out))
    zp = f32(f32(zp_out) - f32(f32(f32(n) * f32(zp_in)) * scale))
    y = np.rint(f32(total.astype(f32) * scale) + zp)
    return np.clip(y, -128, 127).astype(np.int8)


def xnnpack_quantize(x, scale, zero_point: int, dtype=np.int8) -> np.ndarray:
    """XNNPACK's float32 -> int8 (uint8) convert (``xnn_f32_qs8_vcvt_ukernel__avx2_u64``,
    ``xnn_f32_qu8_vcvt_ukernel__avx2_u64``): ``t = float32(x * float32(1 / scale))``,
    ``min(t, 32767)`` (NaN gives 32767), ``cvtps2dq`` (ties to even; below -2**31 gives
    INT32_MIN), saturation to int16, ``+ zp`` saturated to int16, then to the 8-bit type."""
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.asarray(x, f32) * f32(f32(1) / f32(scale))
        t = np.where(np.isnan(t) | (t > 32767), f32(32767), t)
        r = np.where(t < -(2.0**31), -(2.0**31), np.rint(t)).astype(np.int64)
    r = np.clip(np.clip(r, -32768, 32767) + int(zero_point), -32768, 32767)
    info = np.iinfo(dtype)
    return np.clip(r, info.min, info.max).astype(dtype)


def xnnpack_elu_table(s_in, zp_in: int, s_out, zp_out: int) -> np.ndarray:
    """XNNPACK's int8 ELU (alpha 1, as LiteRT's delegate defines it): a 256-entry table its
    reference operator builds (``src/operators/unary-elementwise-nc.c``):
    ``x = (q - zp_in) * s_in``, ``y = x < 0 ? expm1(x) : x``, ``nearbyint(y / s_out + zp_out)``
    (ties to even) in float32, clamped; indexed by ``q + 128``."""
    q = np.arange(-128, 128)
    x = (q - int(zp_in)).astype(f32) * f32(s_in)
    with np.errstate(over="ignore"):  # expm1 of the positive side (discarded) may overflow
        y = np.where(x < 0, np.expm1(x), x).astype(f32)
        r = np.rint(y * f32(f32(1) / f32(s_out)) + f32(zp_out))
    return np.clip(r, -128, 127).astype(np.int64)


def xnnpack_resize_bilinear(x, out_h: int, out_w: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """XNNPACK's int8 bilinear resize (``src/indirection.c``, ``src/s8-ibilinear/`` SSE4.1):
    per axis ``scale = float32(in - a) / float32(out - a)`` (``a`` = 1 with align_corners and
    more than one output), the position ``o * scale`` capped at ``in - 1`` (TensorFlow legacy and
    align-corners modes) or ``o * scale + (0.5 scale - 0.5)`` clamped to ``[0, in - 1]``
    (half-pixel; float32, no fused multiply-add), the weight ``lrintf(frac * 2048)`` (Q11, ties
    to even); then ``(top << 11) + (right - left) * wx`` along W, the same along H, and
    ``(acc + 2**21) >> 22`` (ties up)."""
    _, in_h, in_w, _ = x.shape

    def axis(n_out, n_in):
        a = 1 if align_corners and n_out != 1 else 0
        scale = f32(f32(n_in - a) / f32(n_out - a))
        o = np.arange(n_out).astype(f32)
        if half_pixel and not align_corners:
            pos = np.minimum(np.maximum(f32(o * scale) + f32(f32(f32(0.5) * scale) - f32(0.5)), f32(0)), f32(n_in - 1))
        else:
            pos = np.minimum(f32(o * scale), f32(n_in - 1))
        lo = pos.astype(np.int64)
        weight = np.rint(f32(f32(pos - lo.astype(f32)) * f32(2048))).astype(np.int64)
        return lo, np.minimum(lo + 1, n_in - 1), weight

    top, bottom, wy = axis(out_h, in_h)
    left, right, wx = axis(out_w, in_w)
    v = np.asarray(x, np.int64)
    wx, wy = wx[None, None, :, None], wy[None, :, None, None]
    tl, tr, bl, br = v[:, top][:, :, left], v[:, top][:, :, right], v[:, bottom][:, :, left], v[:, bottom][:, :, right]
    vt, vb = (tl << 11) + (tr - tl) * wx, (bl << 11) + (br - bl) * wx
    return np.clip(((vt << 11) + (vb - vt) * wy + (1 << 21)) >> 22, -128, 127).astype(np.int8)
