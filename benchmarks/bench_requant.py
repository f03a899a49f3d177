"""Requantizing 10**7 int32 accumulators with per-channel multipliers: intsim against a numpy
vectorized version of the same rule, measured in the same run.

Run: ``python benchmarks/run.py requant``.
"""

from __future__ import annotations

import numba
import numpy as np

from benchmarks._timing import best_time, table
from intsim import fixedpoint as fxp

N_CHANNELS = 256


def numpy_mbqm_double(acc, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding) in numpy int64 arithmetic."""
    x = acc.astype(np.int64)
    m = multiplier.astype(np.int64)
    left = np.maximum(shift, 0).astype(np.int64)
    right = np.maximum(-shift, 0).astype(np.int64)
    x = ((x << left) + 2**31) % 2**32 - 2**31
    ab = x * m
    num = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = (num >> 31) + ((num < 0) & ((num & 0x7FFFFFFF) != 0))  # C division truncates
    high = np.where((x == -(2**31)) & (m == -(2**31)), 2**31 - 1, high)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return ((high >> right) + ((high & mask) > threshold)).astype(np.int32)


def numpy_float32_rule(acc, multiplier, zero_point, qmin, qmax):
    v = acc.astype(np.float32) * multiplier.astype(np.float32)
    v = np.clip(v, np.float32(qmin - zero_point), np.float32(qmax - zero_point))
    return (np.rint(v).astype(np.int32) + zero_point).astype(np.int32)


def run(n: int = 10**7) -> str:
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**24), 2**24, (n // N_CHANNELS, N_CHANNELS)).astype(np.int32)
    real = rng.uniform(1e-5, 0.02, N_CHANNELS)
    m, s = fxp.quantize_multiplier(real)
    rows = []

    want = numpy_mbqm_double(acc, m, s)
    assert np.array_equal(fxp.multiply_by_quantized_multiplier(acc, m, s), want), "MBQM disagrees"
    t_np = best_time(lambda: numpy_mbqm_double(acc, m, s), repeat=3)
    t_jit = best_time(lambda: fxp.multiply_by_quantized_multiplier(acc, m, s))
    t_ser = best_time(lambda: fxp.multiply_by_quantized_multiplier(acc, m, s, backend="jit-serial"))
    rows.append(["MBQM double, per channel", *(f"{acc.size / t / 1e6:.0f}" for t in (t_jit, t_ser, t_np)), f"{t_np / t_jit:.1f}"])

    m32 = real.astype(np.float32)
    want = numpy_float32_rule(acc, m32, 3, -128, 127)
    got = fxp.requantize_float(acc, m32, 3, qmin=-128, qmax=127, rule="float32")
    assert np.array_equal(got, want), "float32 rule disagrees"
    t_np = best_time(lambda: numpy_float32_rule(acc, m32, 3, -128, 127), repeat=3)
    t_jit = best_time(lambda: fxp.requantize_float(acc, m32, 3, qmin=-128, qmax=127, rule="float32"))
    t_ser = best_time(lambda: fxp.requantize_float(acc, m32, 3, qmin=-128, qmax=127, rule="float32", backend="jit-serial"))
    rows.append(["float32 rule (onnxruntime), per channel", *(f"{acc.size / t / 1e6:.0f}" for t in (t_jit, t_ser, t_np)), f"{t_np / t_jit:.1f}"])
    head = f"requantization: {acc.size:.1e} int32 accumulators, {N_CHANNELS} channels, {numba.get_num_threads()} threads"
    return head + "\n" + table(
        ["rule", "intsim Melem/s", "intsim serial Melem/s", "numpy Melem/s", "ratio vs numpy"], rows
    )


if __name__ == "__main__":
    print(run())
