"""int8 LOG_SOFTMAX: the reference kernel (LiteRT BUILTIN_REF and TFLite Micro) and LiteRT's
optimized one.  The output is fixed by both runtimes at scale 16/256 and zero point 127.

* ``log_softmax_reference``: ``reference_integer_ops::LogSoftmax``
  (``internal/reference/integer_ops/log_softmax.h``) with ``PreprocessLogSoftmaxScalingExp``
  (``quantization_util.cc``): the differences to the row's maximum scaled into Q5.26, gemmlowp
  ``exp_on_negative_values`` summed in Q12.19, ``log_x_for_x_greater_than_or_equal_to_1`` back
  to Q5.26, then ``RoundingDivideByPOT(diff - log_sum, 22) + 127``; differences at or below the
  adjusted cutoff give -128.
* ``log_softmax_optimized``: ``optimized_ops::LogSoftmax`` for int8 (``optimized_ops.h``,
  ``PopulateSoftmaxLookupTable``): a 256-entry float32 table of ``expf``, each row summed in
  float32 in order, ``logf`` of the sum, ``rint(s/s_out * x - (s * max + log_sum) / s_out) + 127``
  (ties to even).  The table and the log are glibc's ``expf``/``logf`` (through ctypes): numpy's
  float32 ``exp``/``log`` differ from them in the last bit on some arguments, which moves outputs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from intsim import fixedpoint as fxp
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite.softmax import input_radius

f32 = np.float32
OUTPUT_SCALE, OUTPUT_ZERO_POINT = 16 / 256, 127


@functools.lru_cache(maxsize=256)
def reference_params(input_scale: float) -> tuple[int, int, int, int, int]:
    """``PreprocessLogSoftmaxScalingExp(1.0, input_scale, 5)``: the Q5.26 input multiplier and
    shift, the reverse multiplier and shift, ``diff_min``.  Scales of 2**-26 and below abort both
    runtimes (``QuantizeMultiplierGreaterThanOne``'s check): ``ValueError``."""
    real = min(float(f32(input_scale)) * float(1 << 26), float((1 << 31) - 1))
    if real <= 1.0:
        raise ValueError(f"input scale {input_scale} <= 2**-26: both runtimes abort (QuantizeMultiplierGreaterThanOne)")
    q, shift = fxp.quantize_multiplier(real)
    reverse_q, reverse_shift = fxp.quantize_multiplier((1 << (31 - shift)) / float(q))
    return q, shift, reverse_q, reverse_shift, -input_radius(5, shift)


def log_softmax_reference(x, input_scale, backend: str = "jit") -> np.ndarray:
    """The reference kernel over the last axis (int8 in, int8 out)."""
    q, shift, reverse_q, reverse_shift, diff_min = reference_params(float(input_scale))
    v = np.asarray(x, np.int64)
    diff = v - v.max(axis=-1, keepdims=True)
    mbqm = lambda a, m, e: fxp.multiply_by_quantized_multiplier(a, m, e, backend=backend).astype(np.int64)  # noqa: E731
    diff_q5 = mbqm(np.maximum(diff, diff_min), q, shift)
    exps = np.where(diff >= diff_min, g.rescale(g.exp_on_negative_values(diff_q5, 5), 0, 12), 0)
    log_sum = g.log_x_ge_1(g.wrap32(exps.sum(axis=-1, keepdims=True)), 5, 12)
    cutoff = np.maximum(diff_min - 1, mbqm(g.wrap32(log_sum + fxp.INT32_MIN), reverse_q, reverse_shift))
    out = np.clip(g.rdbpot(g.wrap32(diff_q5 - log_sum), 22) + OUTPUT_ZERO_POINT, -128, 127)
    return np.where(diff > cutoff, out, -128).astype(np.int8)


@functools.cache
def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "logf"):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


@functools.lru_cache(maxsize=256)
def _exp_table(input_scale: float) -> np.ndarray:
    """``PopulateSoftmaxLookupTable`` (beta 1): entry ``255 - d`` holds ``expf(-s * d)``."""
    s = f32(input_scale)
    step = f32(-s * f32(1.0))
    table = np.array([_libm().expf(float(f32(step * f32(255 - i)))) for i in range(256)], f32)
    table.flags.writeable = False
    return table


def log_softmax_optimized(x, input_scale) -> np.ndarray:
    """LiteRT's optimized int8 LOG_SOFTMAX over the last axis (module docstring)."""
    s = f32(input_scale)
    v = np.asarray(x, np.int64)
    top = v.max(axis=-1, keepdims=True)
    sums = np.cumsum(_exp_table(float(input_scale))[255 - top + v], axis=-1, dtype=f32)[..., -1:]  # in order
    logf = _libm().logf
    log_sum = np.array([logf(float(t)) for t in sums.reshape(-1)], f32).reshape(sums.shape)
    pre = f32(f32(f32(s * top.astype(f32)) + log_sum) / f32(OUTPUT_SCALE))
    scaled = f32(f32(s / f32(OUTPUT_SCALE)) * v.astype(f32)) - pre
    return np.clip(np.rint(scaled).astype(np.int64) + OUTPUT_ZERO_POINT, -128, 127).astype(np.int8)

