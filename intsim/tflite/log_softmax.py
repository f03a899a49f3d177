"""int8 LOG_SOFTMAX: the reference kernel (LiteRT BUILTIN_REF and TFLite Micro) and LiteRT's
optimized one.  The output is fixed by both runtimes at scale 16/256 and zero point 127.

* ``log_softmax_reference``: ``reference_integer_ops::LogSoftmax``
  (``internal/reference/integer_ops/log_softmax.h``) with ``PreprocessLogSoftmaxScalingExp``
  (``quantization_util.cc``): the differences to the row's maximum scaled into Q5.26, gemmlowp
  ``exp_on_negative_values`` summed in Q12.19, ``log_x_for_x_greater_than_or_equal_to_1`` back
  to Q5.26, then ``RoundingDivideByPOT(diff - log_sum, 22) + 127``; differences at or below the
  adjusted cutoff give -128.
LiteRT's optimized kernel (a float table) is ``float_softmax.log_softmax_optimized``.
"""

from __future__ import annotations

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
