"""LiteRT's optimized builtin kernels where their arithmetic is their own (the ``litert-builtin``
profile, ``Profile.kernels="optimized"``; ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

Read from google-ai-edge/LiteRT ``tflite/kernels/internal/optimized/`` and measured against
ai-edge-litert 2.3 on x86-64.  x86 builds define ``USE_NEON`` (SSE4.1 and the NEON_2_SSE shim,
``optimized/neon_check.h``), so the NEON loops run there: each takes elements (or channels) a
block at a time and leaves the remainder to a scalar loop written as the reference kernel is.
Which path an element takes depends on its position, and so does its rounding:

``dequantize``        ``optimized_ops.h`` ``Dequantize`` (int8, uint8, int16; per tensor): the
                      first ``8 * (n // 8)`` elements ``float32(x) * float32(scale) +
                      float32(-zp * double(scale))`` in float32 (a multiply, then an add: no FMA
                      on x86), the rest ``float32(double(scale) * (x - zp))`` as BUILTIN_REF
``affine_quantize``   ``optimized_ops.h`` ``AffineQuantize`` (float32 to int8, uint8, int16; per
                      tensor): the first ``8 * (n // 8)`` elements ``x * float32(1 / double(scale))``
                      in float32, rounded half to even (``RoundToNearest``: ``_mm_cvtps_epi32``,
                      whose NaN and overflow give INT32_MIN), the rest ``round(double(x) /
                      double(scale))`` half away from zero (INT32_MIN likewise); then ``+ zp``
                      (int32, wrapping) and the clamp
``mean_hw``           ``optimized/integer_ops/mean.h`` ``Mean`` (int8, 4-D, ``keep_dims``, axes
                      {1, 2}; ``reduce.cc`` sends every other MEAN to the reference kernel): the
                      raw int8 sum over H and W, the multiplier ``s_in / (float(H * W) * s_out)``
                      and the bias ``zp_out - trunc(zp_in * s_in / s_out +- 0.5)`` in float32,
                      then rule ``"double-up16"`` (VQRDMULH + VRSHL in the channels of whole
                      blocks of 16, MultiplyByQuantizedMultiplier in the rest), ``+ bias``,
                      clamped.  One thread (the Python ``Interpreter``'s default): with more, the
                      channels split into ranges of their own blocks
``add_int8``          ``optimized/integer_ops/add.h`` (int8 ADD; SUB stays with the reference
                      kernel): the reference parameters, three paths by position (below)
``mul_int8``          ``optimized/integer_ops/mul.h``: the reference rounding, its SIMD lanes
                      narrowing through int16 (blocks of 16 by position)
``requantize_8bit``   ``optimized_ops::Requantize`` (QUANTIZE between int8 and uint8): the
                      first ``16 * (n // 16)`` elements by rule ``"double-up"``, the rest
                      ``"double"``
``leaky_relu_int16``  ``optimized_integer_ops::QuantizeLeakyRelu``: a negative alpha's signed
                      multiplier where the reference kernel negates the magnitude's result
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from intsim import fixedpoint as fxp
from intsim._jit import check_backend, helper, kernel
from intsim.fixedpoint.primitives import rdbpot, rounding_divide_by_pot_scalar, wrap32, wrap_int32
from intsim.rounding import round_half_away, x86_int32

f32, f64 = np.float32, np.float64
BLOCK = 8  # elements per iteration of the NEON loops of Dequantize and AffineQuantize


def _vector_part(n: int) -> int:
    return n // BLOCK * BLOCK


def dequantize(x, scale, zero_point) -> np.ndarray:
    """``optimized_ops::Dequantize`` of integer ``x`` (per tensor): float32."""
    x = np.asarray(x)
    flat = x.reshape(-1).astype(np.int64)
    v = _vector_part(flat.size)
    out = (f64(scale) * (flat - zero_point)).astype(f32)  # the scalar loop's rule, for the tail
    zero_times_scale = f32(f64(-int(zero_point)) * f64(f32(scale)))
    with np.errstate(over="ignore"):
        out[:v] = flat[:v].astype(f32) * f32(scale) + zero_times_scale
    return out.reshape(x.shape)


def affine_quantize(x, scale, zero_point, dtype) -> np.ndarray:
    """``optimized_ops::AffineQuantize`` of float32 ``x`` (per tensor) to ``dtype``."""
    x = np.asarray(x, f32)
    flat = x.reshape(-1)
    v = _vector_part(flat.size)
    with np.errstate(over="ignore", invalid="ignore"):
        inverse = f32(1.0 / f64(f32(scale)))
        vector = np.rint((flat[:v] * inverse).astype(f32).astype(f64))  # ties to even
        tail = round_half_away(flat[v:].astype(f64) / f64(f32(scale)))
    q = x86_int32(np.concatenate([vector, tail]))
    info = np.iinfo(dtype)
    return np.clip(wrap32(q + int(zero_point)), info.min, info.max).astype(dtype).reshape(x.shape)


def takes_mean(x_shape, axes, keep_dims: bool, dtype) -> bool:
    """Whether ``reduce.cc`` runs MEAN with ``optimized_integer_ops::Mean``."""
    return np.dtype(dtype) == np.int8 and len(x_shape) == 4 and keep_dims and sorted(set(axes)) == [1, 2]


def mean_hw(x, s_in, zp_in: int, s_out, zp_out: int, backend: str = "jit") -> np.ndarray:
    """``optimized_integer_ops::Mean`` of int8 NHWC ``x`` over H and W: int8 (N, 1, 1, C)."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    s_in, s_out = f32(s_in), f32(s_out)
    with np.errstate(over="ignore", invalid="ignore"):
        temp = f32(f32(zp_in) * s_in) / s_out
        temp = temp + f32(0.5) if temp > 0 else temp - f32(0.5)
        real = s_in / (f32(h * w) * s_out)
    bias = int(zp_out) - int(np.trunc(f64(temp)))
    acc = wrap32(x.astype(np.int64).sum(axis=(1, 2), keepdims=True)).astype(np.int32)
    rule = fxp.get_rule("double-up16")
    q, shift = rule.params(np.full(c, f64(real)))
    bias = np.full(c, wrap32(bias))  # the zero point of the rule: may lie outside int8
    return fxp.apply(rule, acc, q, shift, bias, -128, 127, axis=-1, backend=backend).astype(np.int8)


# ---- ADD (int8) ------------------------------------------------------------------------------------
# add.cc EvalAddQuantized -> optimized_integer_ops::Add / BroadcastAddDispatch (optimized/integer_ops/
# add.h), with the reference kernel's parameters (left shift 20; (q1, e1), (q2, e2), (qo, eo)).  Each
# output element takes one of three paths by its position:
#   REFERENCE  the scalar loops, BroadcastAdd6DSlow and SUB (sub.cc runs reference_ops::Sub for int8):
#              t_k = RDBPOT(SRDHM(v_k << 20, q_k), -e_k)
#   ROW        AddElementwiseInt8's SIMD loop, 16 elements at a time: t_k = SRDHM(vshl(v_k, 20 + e_k), q_k)
#              (the shift first, a floor shift where 20 + e_k < 0)
#   SCALAR     AddScalarBroadcast's SIMD loop, 8 at a time: t_k = SRDHM(v_k << 20, q_k) >> -e_k (floor)
# then o = RDBPOT(SRDHM(t1 + t2, qo), -eo); the SIMD paths narrow o to int16 (vmovn_s32: wraps), add the
# zero point in int16 (vaddq_s16: wraps) and saturate to int8 (vqmovn_s16) before the activation clamp.
REFERENCE, ROW, SCALAR = 0, 1, 2
ROW_BLOCK, SCALAR_BLOCK = 16, 8


def five_fold(shape0, shape1) -> tuple[str, tuple[int, ...]]:
    """``reference_ops::ProcessBroadcastShapes`` (``reference/process_broadcast_shapes.h``): the
    category (``"none"``, ``"first"``, ``"second"`` or ``"generic"``) and the five-fold shape."""
    n = max(len(shape0), len(shape1))
    a0 = (1,) * (n - len(shape0)) + tuple(shape0)
    a1 = (1,) * (n - len(shape1)) + tuple(shape1)
    if a0 == a1:
        return "none", ()
    category = "generic"
    for i in range(n - 1, -1, -1):
        if a0[i] == a1[i]:
            continue
        category = "first" if a0[i] == 1 else "second" if a1[i] == 1 else "generic"
        break
    if category == "generic":
        return category, ()
    a, b = (a0, a1) if category == "first" else (a1, a0)
    y, i = [1, 1, 1, 1, 1], n - 1
    for slot, test in ((4, "equal"), (3, "a1"), (2, "equal"), (1, "b1"), (0, "equal")):
        while i >= 0 and (a[i] == b[i] if test == "equal" else (a if test == "a1" else b)[i] == 1):
            y[slot] *= b[i] if slot in (4, 3, 0) else a[i]
            i -= 1
    return ("generic", ()) if i >= 0 else (category, tuple(y))


@functools.lru_cache(maxsize=256)
def binary_paths(shape0, shape1, out_shape, row_block: int = ROW_BLOCK, scalar_block: int = SCALAR_BLOCK) -> np.ndarray:
    """The path (``REFERENCE``, ``ROW`` or ``SCALAR``) of every output element of an int8 ADD
    (or, with blocks of 16 and 16, MUL): ``BinaryBroadcastFiveFold``'s rows and runs, each SIMD
    loop's whole blocks (kept per shapes; read-only)."""
    size = int(np.prod(out_shape, dtype=np.int64))
    category, y = five_fold(shape0, shape1)
    if category == "generic":
        return np.full(out_shape, REFERENCE, np.int8)
    if category == "none":
        return np.where(np.arange(size) < size // row_block * row_block, ROW, REFERENCE).astype(np.int8).reshape(out_shape)
    if y[4] > 1:
        pos, block, path = np.arange(size) % y[4], y[4] // row_block * row_block, ROW
    else:
        pos, block, path = np.arange(size) % y[3], y[3] // scalar_block * scalar_block, SCALAR
    paths = np.where(pos < block, path, REFERENCE).astype(np.int8).reshape(out_shape)
    paths.flags.writeable = False
    return paths


def _srdhm(a, q: int):
    """SRDHM by a non-negative multiplier below 2**31 (never saturates): ``floor((a*q + 2**30) / 2**31)``."""
    return (a * q + (1 << 30)) >> 31


def add_int8(x1, x2, shape0, shape1, zero_points, multipliers, shifts, output_zero_point: int, clamp,
             backend: str = "jit") -> np.ndarray:  # fmt: skip
    """LiteRT's optimized int8 ADD of ``x1`` and ``x2`` (broadcast to the output shape; ``shape0``
    and ``shape1`` the input tensors' shapes): int8.  ``backend="reference"`` is numpy, the jit
    backends one compiled loop; the same rule."""
    check_backend(backend)
    paths = binary_paths(tuple(shape0), tuple(shape1), tuple(x1.shape))
    (q1, q2, qo), (e1, e2, eo) = (int(q) for q in multipliers), (int(e) for e in shifts)
    z1, z2, zo, (lo, hi) = int(zero_points[0]), int(zero_points[1]), int(output_zero_point), clamp
    if backend != "reference":
        out = np.empty(x1.shape, np.int8)
        flat = [np.ascontiguousarray(a).reshape(-1) for a in (x1, x2, paths)]
        _add_int8_kernel.build(backend, out.size)(*flat, z1, z2, q1, e1, q2, e2, qo, eo, zo, int(lo), int(hi),
                                                  out.reshape(-1))  # fmt: skip
        return out
    terms = []
    for x, z, q, e in ((x1, z1, q1, e1), (x2, z2, q2, e2)):
        v = np.asarray(x, np.int64) - z  # 9 bits: shifted by 20 it stays inside int32
        first = 20 + e
        row = _srdhm(v << first if first >= 0 else v >> min(-first, 31), q)
        scaled = _srdhm(v << 20, q)
        terms.append(np.select([paths == ROW, paths == SCALAR], [row, scaled >> -e], rdbpot(scaled, -e)))
    o = rdbpot(_srdhm(wrap32(terms[0] + terms[1]), qo), -eo)
    wrap16 = lambda v: ((v + 32768) & 0xFFFF) - 32768  # noqa: E731
    simd = np.clip(wrap16(wrap16(o) + zo), -128, 127)
    y = np.where(paths == REFERENCE, o + zo, simd)
    return np.clip(y, lo, hi).astype(np.int8)


@helper
def _scaled_input(v, path, q, e):
    if path == ROW:
        first = 20 + e
        shifted = v << first if first >= 0 else v >> min(-first, 31)
        return (shifted * q + (1 << 30)) >> 31
    scaled = ((v << 20) * q + (1 << 30)) >> 31
    return scaled >> -e if path == SCALAR else rounding_divide_by_pot_scalar(scaled, -e)


@kernel
def _add_int8_kernel(x1, x2, paths, z1, z2, q1, e1, q2, e2, qo, eo, zo, lo, hi, out):
    for i in prange(out.size):
        path = paths[i]
        t = _scaled_input(np.int64(x1[i]) - z1, path, q1, e1) + _scaled_input(np.int64(x2[i]) - z2, path, q2, e2)
        o = rounding_divide_by_pot_scalar((wrap_int32(t) * qo + (1 << 30)) >> 31, -eo)
        if path == REFERENCE:
            y = o + zo
        else:  # vmovn_s32, vaddq_s16, vqmovn_s16
            y = min(max(((((o + 32768) & 0xFFFF) - 32768 + zo + 32768) & 0xFFFF) - 32768, -128), 127)
        out[i] = min(max(y, lo), hi)


# ---- QUANTIZE between 8-bit types, int16 LEAKY_RELU ----------------------------------------------------


def requantize_8bit(x, s_in, zp_in: int, s_out, zp_out: int, dtype) -> np.ndarray:
    """``optimized_ops::Requantize`` (``optimized_ops.h``; int8 and uint8 to each other): the
    multiplier ``double(s_in) / double(s_out)`` quantized as the reference kernel's, the first
    ``16 * (n // 16)`` elements by ``MultiplyByQuantizedMultiplier4Rows`` (VQRDMULH, VRSHL: rule
    ``"double-up"``), the rest by MultiplyByQuantizedMultiplier; ``+ zp_out``, saturated."""
    x = np.asarray(x)
    q, shift = fxp.quantize_multiplier(float(f64(f32(s_in)) / f64(f32(s_out))))
    v = x.reshape(-1).astype(np.int64) - int(zp_in)
    up = np.arange(v.size) < v.size // 16 * 16
    scaled = np.where(up, fxp.get_rule("double-up").scale_reference(v, q, shift),
                      fxp.get_rule("double").scale_reference(v, q, shift))  # fmt: skip
    info = np.iinfo(dtype)
    return np.clip(scaled + int(zp_out), info.min, info.max).astype(dtype).reshape(x.shape)


def signed_quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` of a negative multiplier (``quantization_util.cc``): the
    frexp mantissa rounded half away from zero to Q31, negative; -2**31 is kept (the
    renormalization tests for +2**31 only)."""
    if real >= 0:
        return fxp.quantize_multiplier(real)
    fraction, shift = np.frexp(f64(real))
    q = int(round_half_away(fraction * 2.0**31))
    return (0, 0) if shift < -31 else (q, int(shift))


def leaky_relu_int16(x, s_in, s_out, alpha) -> np.ndarray:
    """``optimized_integer_ops::QuantizeLeakyRelu`` (int16; its AVX2 loop is not built into the
    x86-64 wheel: measured): MultiplyByQuantizedMultiplier by the identity multiplier where
    ``x >= 0``, by the *signed* alpha multiplier (``s_in * alpha / s_out`` in double) elsewhere,
    where the reference kernel scales by its magnitude and negates; zero points are 0."""
    x = np.asarray(x)
    v = x.astype(np.int64)
    s_in, s_out = f64(f32(s_in)), f64(f32(s_out))
    q_id, e_id = fxp.quantize_multiplier(float(s_in / s_out))
    q_a, e_a = signed_quantize_multiplier(float(s_in * f64(f32(alpha)) / s_out))
    double = fxp.get_rule("double").scale_reference
    y = np.where(v >= 0, double(v, q_id, e_id), double(v, q_a, e_a))
    return np.clip(y, -32768, 32767).astype(np.int16)


def mul_int8(product_scaled, zp_out: int, clamp, shape0, shape1) -> np.ndarray:
    """``optimized_integer_ops::Mul`` / ``BroadcastMulDispatch`` (``integer_ops/mul.h``) from the
    reference kernel's ``MBQM((x1 - z1) * (x2 - z2))`` (the same rounding in every lane): the
    SIMD lanes of MulElementwise and MulSimpleBroadcast (blocks of 16) narrow it to int16 with
    saturation (vqmovn_s32), add the zero point in int16 (vaddq_s16: wraps) and saturate to
    int8; the scalar tails add and clamp in int32."""
    p = np.asarray(product_scaled, np.int64)
    paths = binary_paths(tuple(shape0), tuple(shape1), tuple(p.shape), 16, 16)
    simd = np.clip(((np.clip(p, -32768, 32767) + int(zp_out) + 32768) & 0xFFFF) - 32768, -128, 127)
    return np.clip(np.where(paths == REFERENCE, p + int(zp_out), simd), *clamp).astype(np.int8)


def reduce_sum(total, n: int, s_in, zp_in: int, s_out, zp_out: int, dtype) -> np.ndarray:
    """LiteRT's optimized SUM (``optimized/reduce.h`` ``QuantizedMeanOrSum``, compute_sum):
    ``round(float32(S) * scale + bias) + zp_out`` in float32, ``scale = s_in / s_out`` and
    ``bias = -zp_in * scale * n``, rounded half away from zero, clamped; ``total`` the int32
    sums ``S``."""
    scale = f32(f32(s_in) / f32(s_out))
    bias = f32(f32(f32(-zp_in) * scale) * f32(n))
    with np.errstate(over="ignore", invalid="ignore"):
        v = round_half_away(f32(np.asarray(total).astype(f32) * scale) + bias)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    return np.clip(x86_int32(v).astype(np.int64) + zp_out, lo, hi).astype(dtype)
