"""LiteRT's optimized int8 SOFTMAX (int16 output) and LOG_SOFTMAX: float32 tables of ``expf``
(``optimized_ops.h``: ``PopulateSoftmaxLookupTable``, ``Softmax<In, Out>``, ``LogSoftmax``).

The table's entry ``255 - d`` holds ``expf(-s * beta * d)``; each row's entries are summed in
float32 in order.  The table and LOG_SOFTMAX's log are glibc's ``expf``/``logf`` (through ctypes):
numpy's float32 ``exp``/``log`` differ from them in the last bit on some arguments, which moves
outputs.

* ``softmax_int16_optimized``: ``round(e * 1 / (sum * s_out)) - 32768`` (half away from zero),
  clamped (``QuantizeSoftmaxOutput<int16_t>``).
* ``log_softmax_optimized``: ``rint(s/s_out * x - (s * max + logf(sum)) / s_out) + 127`` (ties to
  even), clamped; the output at scale 16/256, zero point 127.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from intsim.rounding import round_half_away
from intsim.tflite.log_softmax import OUTPUT_SCALE, OUTPUT_ZERO_POINT

f32 = np.float32


@functools.cache
def _libm():
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "logf"):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return lib


@functools.lru_cache(maxsize=256)
def _exp_table(input_scale: float, beta: float = 1.0) -> np.ndarray:
    """``PopulateSoftmaxLookupTable``: entry ``255 - d`` holds ``expf(-s * beta * d)``."""
    s = f32(input_scale)
    step = f32(-s * f32(beta))
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



def softmax_int16_optimized(x, input_scale, beta: float) -> np.ndarray:
    """LiteRT's optimized int8 -> int16 SOFTMAX over the last axis (module docstring)."""
    v = np.asarray(x, np.int64)
    e = _exp_table(float(input_scale), float(f32(beta)))[255 - v.max(axis=-1, keepdims=True) + v]
    sums = np.cumsum(e, axis=-1, dtype=f32)[..., -1:]  # in order
    inv = f32(1) / f32(sums * f32(1 / 65536))
    y = round_half_away(f32(e * inv)).astype(np.int64) - 32768
    return np.clip(y, -32768, 32767).astype(np.int16)
