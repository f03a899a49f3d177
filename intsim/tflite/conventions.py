"""TFLite's conventions for the layers ``intsim.ops`` and the TFLite frontend share: the fused
activation's clamp (``CalculateActivationRangeQuantized``, LiteRT
``tflite/kernels/kernel_util.cc``), the activation types and zero points, and the int16x8 bias
type.  Imports nothing of the frontend (``intsim.tflite`` loads its modules on first use)."""

from __future__ import annotations

import numpy as np

from intsim import formats
from intsim.rounding import mode_id

ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")


def activation_range(activation: str, scale, zero_point: int, qmin: int, qmax: int,
                     rounding: str = "nearest_away") -> tuple[int, int]:  # fmt: skip
    """TFLite ``CalculateActivationRangeQuantized``: ``q(f) = zero_point + round(f / scale)``
    (float32 division, half away from zero) clipped to the output type."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    mode_id(rounding)
    s = np.float32(scale)

    def q(f):
        code = formats.encode(np.array([np.float32(f) / s], np.float32), "int32", rounding=rounding)
        return zero_point + int(code.view(np.int32)[0])

    if activation == "none":
        return qmin, qmax
    if activation == "relu":
        return max(qmin, q(0.0)), qmax
    if activation == "relu6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    return max(qmin, q(-1.0)), min(qmax, q(1.0))


def check_activations(x, input_zero_point, output_zero_point, output_dtype):
    """``(x, int16x8, output dtype)``: int8/uint8 activations, or symmetric int16 (int16x8)."""
    x = np.asarray(x)
    if x.dtype not in (np.int8, np.int16, np.uint8):
        raise ValueError(f"TFLite activations are int8, uint8 or int16, got {x.dtype}")
    int16x8 = x.dtype == np.int16
    if int16x8 and (input_zero_point or output_zero_point):
        raise ValueError("int16x8 kernels have no zero points (symmetric int16 activations)")
    out_dtype = np.dtype(output_dtype if output_dtype is not None else x.dtype)
    return x, int16x8, out_dtype


def check_bias(bias, int16x8):
    """The bias, int32 for int8 kernels and int64 for int16x8 ones."""
    if bias is None:
        return None
    b = np.asarray(bias)
    want = np.int64 if int16x8 else np.int32
    if b.dtype != want:
        raise ValueError(f"bias must be {np.dtype(want)} for {'int16x8' if int16x8 else 'int8'} kernels, got {b.dtype}")
    return b
