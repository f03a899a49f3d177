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
"""

from __future__ import annotations

import numpy as np

from intsim import fixedpoint as fxp
from intsim.fixedpoint.primitives import INT32_MIN, wrap32
from intsim.rounding import round_half_away

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


def _to_int32(v: np.ndarray) -> np.ndarray:
    """x86's float to int32 conversions (``cvtps2dq``, ``cvttsd2si``): NaN and values outside
    int32 give INT32_MIN; ``v`` holds values already rounded to integers."""
    ok = np.isfinite(v) & (v >= -(2.0**31)) & (v < 2.0**31)
    return np.where(ok, np.where(ok, v, 0).astype(np.int64), INT32_MIN)


def affine_quantize(x, scale, zero_point, dtype) -> np.ndarray:
    """``optimized_ops::AffineQuantize`` of float32 ``x`` (per tensor) to ``dtype``."""
    x = np.asarray(x, f32)
    flat = x.reshape(-1)
    v = _vector_part(flat.size)
    with np.errstate(over="ignore", invalid="ignore"):
        inverse = f32(1.0 / f64(f32(scale)))
        vector = np.rint((flat[:v] * inverse).astype(f32).astype(f64))  # ties to even
        tail = round_half_away(flat[v:].astype(f64) / f64(f32(scale)))
    q = _to_int32(np.concatenate([vector, tail]))
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
