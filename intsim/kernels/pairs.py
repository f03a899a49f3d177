"""int16 pair saturation of uint8 x int8 dot products: x86 ``vpmaddubsw``.

onnxruntime's MLAS multiplies uint8 activations by int8 weights with ``vpmaddubsw`` on x86 CPUs
without VNNI (``onnxruntime/core/mlas/lib/qgemm_kernel_avx2.cpp``, ``MlasGemmU8S8KernelAvx2``;
the AVX512BW kernel does the same).  The instruction multiplies the raw bytes (zero points are
corrected afterwards from row and column sums) and adds adjacent products in pairs with signed
saturation to int16: ``sat16(a[k]*b[k] + a[k+1]*b[k+1])`` for even ``k`` of the packed
reduction, zero-padded at the end.  ``vpmaddwd`` then widens the pairs to int32 exactly.  The
reduction order is the GEMM's ``k``, for a convolution the im2col row (filter row, filter
column, input channel) of each group; MLAS's depthwise kernel (groups = input channels =
output channels) widens before multiplying and does not saturate.

A pair saturates only when ``|a0*b0 + a1*b1| > 32767``, e.g. ``255 * 127 * 2 = 64770``, so the
effect is a *loss*: ``loss = sum over pairs of (p - sat16(p))``, and the accumulator is the exact
int32 one minus ``loss``, modulo ``2**32``.  Checked against onnxruntime 1.32 on an AVX2 CPU
(MatMulInteger, QLinearMatMul, QGemm, QLinearConv with groups; ``tests/test_kernels_pairs.py``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel

I16_MIN, I16_MAX = -32768, 32767


def applies(a_dtype, b_dtype) -> bool:
    """Whether ``vpmaddubsw`` pairs arise: uint8 left operand, int8 right operand."""
    return np.dtype(a_dtype) == np.uint8 and np.dtype(b_dtype) == np.int8


@kernel
def _loss_kernel(a, b, out):
    """``out[m, n] = sum over even k of (p - sat16(p))``, ``p = a[m,k]*b[k,n] + a[m,k+1]*b[k+1,n]``,
    ``b`` (K, N): the inner loop runs over ``n``, branch-free, and vectorizes."""
    m_total, k_total = a.shape
    n_total = b.shape[1]
    for m in prange(m_total):
        row = out[m]
        row[:] = 0
        for k in range(0, k_total - 1, 2):
            a0, a1 = np.int32(a[m, k]), np.int32(a[m, k + 1])
            for n in range(n_total):
                p = a0 * np.int32(b[k, n]) + a1 * np.int32(b[k + 1, n])  # |p| <= 65280
                row[n] += max(p - 32767, 0) + min(p + 32768, 0)
        # an odd last product alone fits int16: 255 * -128 = -32640


def loss_reference(a, bt) -> np.ndarray:
    """``_loss_kernel`` on Python ints: ``a`` (M, K) uint8, ``bt`` (N, K) int8."""
    m_total, k_total = a.shape
    out = np.zeros((m_total, bt.shape[0]), np.int64)
    for m in range(m_total):
        for n in range(bt.shape[0]):
            loss = 0
            for k in range(0, k_total - 1, 2):
                p = int(a[m, k]) * int(bt[n, k]) + int(a[m, k + 1]) * int(bt[n, k + 1])
                loss += p - min(max(p, I16_MIN), I16_MAX)
            out[m, n] = loss
    return out


def saturate_pairs(acc: np.ndarray, a: np.ndarray, bt: np.ndarray, backend: str = "jit") -> np.ndarray:
    """The int32 accumulators ``acc`` (M, N) of ``a`` (M, K) uint8 times ``bt.T`` (``bt`` (N, K)
    int8) as ``vpmaddubsw`` leaves them: ``acc - loss`` wrapped to int32.  Skips the pass when
    no pair can reach int16's limits."""
    check_backend(backend)
    if a.size == 0 or bt.size == 0 or 2 * int(a.max()) * int(np.abs(bt.astype(np.int16)).max()) <= I16_MAX:
        return acc
    if backend == "reference":
        loss = loss_reference(a, bt)
    else:
        loss = np.empty(acc.shape, np.int64)
        _loss_kernel.build(backend, acc.size * a.shape[1])(np.ascontiguousarray(a), np.ascontiguousarray(bt.T), loss)
    if not loss.any():
        return acc
    return (((acc.astype(np.int64) - loss + 2**31) & 0xFFFFFFFF) - 2**31).astype(acc.dtype)
