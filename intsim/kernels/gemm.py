"""Integer matrix multiplication with zero points, bias and an accumulator model.

``acc[m, n] = bias[n] + sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n])``, accumulated as the
``Accumulator`` says (int32 wrapping by default: ONNX MatMulInteger, TFLite).

Three implementations, selected by ``backend`` and the accumulator:

* ``"reference"``: Python ints, one obvious loop nest, the accumulator model applied term by
  term (``Accumulator.add``).  Normative.
* int32 wrapping (jit): the raw products ``sum a*b`` in a register-blocked kernel (4 rows x 2
  columns per pass over k, which LLVM turns into VNNI ``vpdpwssd`` on AVX-512), then the zero
  points by the identity ``sum (a-za)(b-zb) = sum ab - zb*sum_k a - za*sum_k b + K*za*zb``.
  Every step is exact modulo ``2**32``, so the result equals the wrapped exact sum.
* any other accumulator (jit): term by term in reduction order, as the reference does.

Parallel over rows of the output only: each output is computed by one thread, so results do
not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, helper, kernel
from intsim.kernels.accumulator import INT32, Accumulator, OverflowReport, worst_case_bound


@helper
def _wrap32(v):
    return np.int32(((v + 2147483648) & 0xFFFFFFFF) - 2147483648)


@kernel
def _gemm_int32_kernel(a, bt, za, zb, rowsum, colsum, bias, out):
    """out = wrap32(bias + sum_k (a - za)(bt.T - zb)); a (M, K), bt (N, K)."""
    m_total, k_total = a.shape
    n_total = bt.shape[0]
    n_pairs = n_total // 2
    for mb in prange((m_total + 3) // 4):
        m0 = mb * 4
        rows = min(4, m_total - m0)
        if rows == 4:
            for p in range(n_pairs):
                n = 2 * p
                s00 = np.int32(0)
                s01 = np.int32(0)
                s10 = np.int32(0)
                s11 = np.int32(0)
                s20 = np.int32(0)
                s21 = np.int32(0)
                s30 = np.int32(0)
                s31 = np.int32(0)
                for k in range(k_total):
                    b0 = np.int32(bt[n, k])
                    b1 = np.int32(bt[n + 1, k])
                    a0 = np.int32(a[m0, k])
                    a1 = np.int32(a[m0 + 1, k])
                    a2 = np.int32(a[m0 + 2, k])
                    a3 = np.int32(a[m0 + 3, k])
                    s00 = np.int32(s00 + a0 * b0)
                    s01 = np.int32(s01 + a0 * b1)
                    s10 = np.int32(s10 + a1 * b0)
                    s11 = np.int32(s11 + a1 * b1)
                    s20 = np.int32(s20 + a2 * b0)
                    s21 = np.int32(s21 + a2 * b1)
                    s30 = np.int32(s30 + a3 * b0)
                    s31 = np.int32(s31 + a3 * b1)
                c0 = bias[n] - za * colsum[n] + k_total * za * zb[n]
                c1 = bias[n + 1] - za * colsum[n + 1] + k_total * za * zb[n + 1]
                out[m0, n] = _wrap32(s00 + c0 - zb[n] * rowsum[m0])
                out[m0, n + 1] = _wrap32(s01 + c1 - zb[n + 1] * rowsum[m0])
                out[m0 + 1, n] = _wrap32(s10 + c0 - zb[n] * rowsum[m0 + 1])
                out[m0 + 1, n + 1] = _wrap32(s11 + c1 - zb[n + 1] * rowsum[m0 + 1])
                out[m0 + 2, n] = _wrap32(s20 + c0 - zb[n] * rowsum[m0 + 2])
                out[m0 + 2, n + 1] = _wrap32(s21 + c1 - zb[n + 1] * rowsum[m0 + 2])
                out[m0 + 3, n] = _wrap32(s30 + c0 - zb[n] * rowsum[m0 + 3])
                out[m0 + 3, n + 1] = _wrap32(s31 + c1 - zb[n + 1] * rowsum[m0 + 3])
            first_single = 2 * n_pairs
        else:
            first_single = 0
        # the edges: rows past the last full block of 4, and an odd last column
        for m in range(m0, m0 + rows):
            start = first_single if rows == 4 else 0
            for n in range(start, n_total):
                s = np.int32(0)
                for k in range(k_total):
                    s = np.int32(s + np.int32(a[m, k]) * np.int32(bt[n, k]))
                c = bias[n] - za * colsum[n] + k_total * za * zb[n] - zb[n] * rowsum[m]
                out[m, n] = _wrap32(s + c)


@kernel
def _gemm_model_kernel(a, bt, za, zb, bias, bits, saturate, out, flags):
    """Term-by-term accumulation in a ``bits``-wide accumulator (int64 arithmetic; bits <= 64).

    wrap: the exact sum is reduced modulo 2**bits once at the end (order-independent), and an
    output is flagged when the exact sum lies outside the range.  saturate: clamp after every
    term in increasing k, then after the bias; flagged when any clamp happened."""
    m_total, k_total = a.shape
    n_total = bt.shape[0]
    lo = -(np.int64(1) << (bits - 1)) if bits < 64 else np.int64(-9223372036854775807 - 1)
    hi = (np.int64(1) << (bits - 1)) - 1 if bits < 64 else np.int64(9223372036854775807)
    for m in prange(m_total):
        for n in range(n_total):
            acc = np.int64(0)
            hit = False
            for k in range(k_total):
                acc += (np.int64(a[m, k]) - za) * (np.int64(bt[n, k]) - zb[n])
                if saturate and bits < 64:
                    if acc > hi:
                        acc = hi
                        hit = True
                    elif acc < lo:
                        acc = lo
                        hit = True
            acc += bias[n]
            if bits < 64 and (acc > hi or acc < lo):
                hit = True
                if saturate:
                    acc = min(max(acc, lo), hi)
                else:
                    acc = ((acc - lo) & ((np.int64(1) << bits) - 1)) + lo
            out[m, n] = acc
            flags[m, n] = hit


def _reference(a, b, za, zb, bias, accumulator: Accumulator):
    m_total, k_total = a.shape
    n_total = b.shape[1]
    out = np.zeros((m_total, n_total), np.int64)
    mask = np.zeros((m_total, n_total), bool)
    wraps = accumulator.overflow == "wrap"
    for m in range(m_total):
        for n in range(n_total):
            acc, hit = 0, False
            for k in range(k_total):
                term = (int(a[m, k]) - za) * (int(b[k, n]) - int(zb[n]))
                if wraps:  # wrapping: exact sum, reduced once (the same as wrapping each step)
                    acc += term
                else:
                    acc, clamped = accumulator.add(acc, term)
                    hit |= clamped
            acc, over = accumulator.add(acc, int(bias[n])) if not wraps else (acc + int(bias[n]), False)
            if wraps and not accumulator.min <= acc <= accumulator.max:
                acc, over = accumulator.wrap(acc), True
            out[m, n] = acc
            mask[m, n] = hit or over
    return out, mask


def _as_int_matrix(name: str, x) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if a.dtype.itemsize > 2:
        raise ValueError(f"{name} must hold 8- or 16-bit integers, got {a.dtype}")
    return a


def accumulate_matmul(
    a, b, a_zero_point=0, b_zero_point=0, bias=None, *,
    accumulator: Accumulator = INT32, backend: str = "jit",
) -> tuple[np.ndarray, OverflowReport]:  # fmt: skip
    """``bias[n] + sum_k (a[m,k] - a_zero_point) * (b[k,n] - b_zero_point[n])`` for 2-D integer
    ``a`` (M, K) and ``b`` (K, N) of at most 16 bits.

    ``b_zero_point`` is a scalar or per column (length N); ``bias`` is None or length N.
    Returns the accumulators (int32 for accumulators of at most 32 bits, else int64) and the
    ``OverflowReport``.
    """
    check_backend(backend)
    a = _as_int_matrix("a", a)
    b = _as_int_matrix("b", b)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    m_total, k_total = a.shape
    n_total = b.shape[1]
    za = np.asarray(a_zero_point)
    if za.size != 1 or za.dtype.kind not in "iu":
        raise ValueError("a_zero_point must be one integer (per-tensor activations)")
    za = int(za.reshape(()))
    zb = np.asarray(b_zero_point)
    if zb.dtype.kind not in "iu" or zb.size not in (1, n_total):
        raise ValueError(f"b_zero_point must be an integer or {n_total} integers (one per column)")
    zb = np.broadcast_to(zb.reshape(-1).astype(np.int64), (n_total,)).copy()
    bias_v = np.zeros(n_total, np.int64) if bias is None else np.asarray(bias)
    if bias_v.dtype.kind not in "iu" or bias_v.size != n_total:
        raise ValueError(f"bias must hold {n_total} integers, got {np.shape(bias)}")
    bias_v = bias_v.reshape(-1).astype(np.int64)
    if np.any(bias_v < accumulator.min) or np.any(bias_v > accumulator.max):
        raise ValueError(f"bias does not fit the {accumulator.bits}-bit accumulator")
    out_dtype = np.int32 if accumulator.bits <= 32 else np.int64
    total = m_total * n_total

    if backend == "reference":
        acc, mask = _reference(a, b, za, zb, bias_v, accumulator)
        return acc.astype(out_dtype), OverflowReport(accumulator, total, int(mask.sum()), mask)

    bt = np.ascontiguousarray(b.T)
    ac = np.ascontiguousarray(a)
    if accumulator.is_native_int32:
        out = np.empty((m_total, n_total), np.int32)
        rowsum = ac.sum(axis=1, dtype=np.int64)
        colsum = b.sum(axis=0, dtype=np.int64)
        _gemm_int32_kernel.build(backend)(ac, bt, np.int64(za), zb, rowsum, colsum, bias_v, out)
        max_a = max(abs(int(a.min(initial=0)) - za), abs(int(a.max(initial=0)) - za))
        b_lo, b_hi = int(b.min(initial=0)), int(b.max(initial=0))
        max_b = int(max(np.abs(b_lo - zb).max(initial=0), np.abs(b_hi - zb).max(initial=0)))
        if worst_case_bound(max_a, max_b, k_total) + int(np.abs(bias_v).max(initial=0)) <= accumulator.max:
            return out, OverflowReport(accumulator, total, 0, None, checked=False)
        exact = np.empty((m_total, n_total), np.int64)
        flags = np.empty((m_total, n_total), np.bool_)
        _gemm_model_kernel.build(backend)(ac, bt, np.int64(za), zb, bias_v, 32, False, exact, flags)
        return out, OverflowReport(accumulator, total, int(flags.sum()), flags)

    out = np.empty((m_total, n_total), np.int64)
    flags = np.empty((m_total, n_total), np.bool_)
    _gemm_model_kernel.build(backend)(
        ac, bt, np.int64(za), zb, bias_v, accumulator.bits, accumulator.overflow == "saturate", out, flags
    )
    return out.astype(out_dtype), OverflowReport(accumulator, total, int(flags.sum()), flags)
