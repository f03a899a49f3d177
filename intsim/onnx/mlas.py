"""The float32 arithmetic of onnxruntime's MLAS kernels on x86-64, operation by operation.

onnxruntime's quantized contrib ops compute in float32 with SSE/AVX instructions; their integer
results depend on every rounding step, so each helper here reproduces one instruction or one
kernel exactly:

- ``cvtps2dq``: float32 -> int32, round half even, out of range -> INT32_MIN;
- ``fma32``: the fused multiply-add ``vfmadd*ps`` (one rounding of the exact ``a * b + c``);
- ``logistic``: ``MlasLogisticKernelFma3`` (mlas/lib/x86_64/LogisticKernelFma3.S), the kernel
  ``MlasComputeLogistic`` dispatches to on AVX2/FMA3 machines (mlas/lib/platform.cpp).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
F64 = np.float64


def cvtps2dq(v: np.ndarray) -> np.ndarray:
    """x86 ``cvtps2dq``: round half even; NaN and values outside int32 become INT32_MIN."""
    r = np.rint(np.asarray(v).astype(F64))
    bad = ~(np.abs(r) < 2.0**31)
    return np.where(bad, -(2**31), np.nan_to_num(r)).astype(np.int64)


def cvtps2dq_saturate(v, dtype) -> np.ndarray:
    """``cvtps2dq`` then the saturating packs (``packs_epi32``, ``packs/packus_epi16``) to the
    8-bit ``dtype``: the last steps of MLAS's QLinearAdd and QLinearMul kernels."""
    info = np.iinfo(dtype)
    return np.clip(cvtps2dq(np.asarray(v, F32)), int(info.min), int(info.max)).astype(dtype)


def fma32(a, b, c) -> np.ndarray:
    """``a * b + c`` on float32 operands, rounded once to float32 (round half even).

    The product of two float32 values is exact in float64; the float64 sum ``s`` and its exact
    error ``e`` (Knuth's TwoSum) give ``a * b + c = s + e`` exactly.  Rounding ``s`` to float32
    is then correct except when ``s`` lies exactly halfway between two float32 values and
    ``e != 0``: the true value is on ``e``'s side of the midpoint, so that neighbour is taken.
    """
    a, b, c = (np.asarray(t, F32) for t in (a, b, c))
    p = a.astype(F64) * b.astype(F64)
    cc = c.astype(F64)
    s = p + cc
    t = s - p
    e = (p - (s - t)) + (cc - t)
    r = s.astype(F32)
    toward = np.where(s > r.astype(F64), F32(np.inf), F32(-np.inf)).astype(F32)
    other = np.nextafter(r, toward)
    midpoint = (r.astype(F64) + other.astype(F64)) * 0.5 == s
    fix = midpoint & (e != 0) & np.isfinite(s) & ((e > 0) == (other > r))
    return np.where(fix, other, r).astype(F32)


# MlasLogisticConstants (mlas/lib/logistic.cpp), the Eigen rational approximation.
LOWER, UPPER = F32(-18.0), F32(18.0)
ALPHA = [F32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                          8.51377133304701e-03, 2.48287947061529e-01)]  # fmt: skip  # 9, 7, 5, 3, 1
BETA = [F32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                         1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01)]  # fmt: skip  # 10 .. 0


def logistic(x) -> np.ndarray:
    """``MlasLogisticKernelFma3``: clamp to [-18, 18] (``vmaxps``/``vminps``), ``x2 = x * x``,
    ``p`` and ``q`` by Horner steps of fused multiply-adds, ``p = x * p``,
    ``max(p / q + 0.5, 0)``.  Unlike the portable C kernel there is no upper clamp at 1."""
    x = np.asarray(x, F32)
    v = np.minimum(UPPER, np.maximum(LOWER, x))  # NaN passes, as vmaxps/vminps(const, x) do
    x2 = v * v
    p = fma32(x2, ALPHA[0], ALPHA[1])
    for coef in ALPHA[2:]:
        p = fma32(x2, p, coef)
    q = fma32(x2, BETA[0], BETA[1])
    for coef in BETA[2:]:
        q = fma32(x2, q, coef)
    y = (v * p) / q + F32(0.5)
    return np.maximum(F32(0.0), y)
