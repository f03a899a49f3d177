"""Integer matrix multiplication with zero points, bias and an accumulator model.

``acc[m, n] = bias[n] + sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n])``, accumulated as the
``Accumulator`` says (int32 wrapping by default: ONNX MatMulInteger, TFLite).

Three implementations, selected by ``backend`` and the accumulator:

* ``"reference"``: Python ints, one obvious loop nest, the accumulator model applied term by
  term (``Accumulator.add``).  Normative.
* int32 wrapping (jit): the raw products ``sum a*b``, then the zero points by the identity
  ``sum (a-za)(b-zb) = sum ab - zb*sum_k a - za*sum_k b + K*za*zb``.  int8 ``a`` is re-biased
  to uint8 by ``a ^ 0x80`` with its zero point + 128.  The raw products come from one of two
  micro-kernels (``use_microkernel``): ``"vnni"`` (``intsim.kernels.vnni``: ``vpdpbusd`` on
  6 x 64 tiles, 8-bit operands, where the CPU has AVX512-VNNI; uint8 weights stored as
  ``b - 128``) or ``"portable"`` (below: cache tiles of 4 rows x 3 columns per pass over k on
  ``b`` packed transposed, which LLVM vectorizes by widening bytes to int32 lanes; also the
  one for 16-bit operands).  Every step is exact modulo ``2**32``, so the result equals the
  wrapped exact sum.
* any other accumulator (jit): term by term in reduction order, as the reference does.

Parallel over rows of the output only: each output is computed by one thread, so results do
not depend on the thread count.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from numba import prange

from intsim._jit import check_backend, helper, kernel
from intsim.fixedpoint import wrap_int32
from intsim.kernels import pairs as _pairs
from intsim.kernels import vnni
from intsim.kernels.layout import swap_last_two
from intsim.kernels.accumulator import INT32, Accumulator, OverflowReport, worst_case_bound

MICROKERNELS = ("vnni", "portable")


def _default_microkernel() -> str:
    """``INTSIM_GEMM`` ("vnni" or "portable") if set, else "vnni" where the CPU has it."""
    asked = os.environ.get("INTSIM_GEMM", "")
    if asked not in ("", *MICROKERNELS):
        raise ValueError(f"INTSIM_GEMM must be one of {MICROKERNELS}, got {asked!r}")
    if asked == "vnni" and not vnni.AVAILABLE:
        raise RuntimeError("INTSIM_GEMM=vnni, but this CPU has no AVX512-VNNI")
    return asked or ("vnni" if vnni.AVAILABLE else "portable")


_microkernel = _default_microkernel()


@contextlib.contextmanager
def use_microkernel(name: str):
    """Run the int32 GEMM with ``name`` ("vnni" needs AVX512-VNNI; "portable" runs anywhere)
    inside the block, e.g. to compare the two.  The environment variable
    ``INTSIM_GEMM=portable`` makes the portable kernel the default."""
    global _microkernel
    if name not in MICROKERNELS:
        raise ValueError(f"microkernel must be one of {MICROKERNELS}, got {name!r}")
    if name == "vnni" and not vnni.AVAILABLE:
        raise RuntimeError("this CPU has no AVX512-VNNI")
    previous, _microkernel = _microkernel, name
    try:
        yield
    finally:
        _microkernel = previous


@helper
def _dot(a, bt, m, n, k_total):
    s = np.int32(0)
    for k in range(k_total):
        s = np.int32(s + np.int32(a[m, k]) * np.int32(bt[n, k]))
    return s


@kernel
def _gemm_int32_kernel(a, bt, za, zb, rowsum, colsum, bias, tile_m, tile_n, out):
    """out = wrap32(bias + sum_k (a - za)(bt.T - zb)); a (M, K), bt (N, K).

    The output is cut into tiles of ``tile_m`` rows by ``tile_n`` columns, one tile per parallel
    iteration: the tile's ``tile_n`` rows of ``bt`` stay in cache while 4-row blocks of ``a``
    pass over them, 4 rows x 3 columns of dot products per pass over k (12 accumulators)."""
    m_total, k_total = a.shape
    n_total = bt.shape[0]
    m_tiles = (m_total + tile_m - 1) // tile_m
    n_tiles = (n_total + tile_n - 1) // tile_n
    for t in prange(m_tiles * n_tiles):
        m_lo = (t // n_tiles) * tile_m
        n_lo = (t % n_tiles) * tile_n
        m_hi = min(m_lo + tile_m, m_total)
        n_hi = min(n_lo + tile_n, n_total)
        m_full = m_lo + (m_hi - m_lo) // 4 * 4
        n_full = n_lo + (n_hi - n_lo) // 3 * 3
        for m0 in range(m_lo, m_full, 4):
            for n in range(n_lo, n_full, 3):
                s00 = np.int32(0)
                s01 = np.int32(0)
                s02 = np.int32(0)
                s10 = np.int32(0)
                s11 = np.int32(0)
                s12 = np.int32(0)
                s20 = np.int32(0)
                s21 = np.int32(0)
                s22 = np.int32(0)
                s30 = np.int32(0)
                s31 = np.int32(0)
                s32 = np.int32(0)
                for k in range(k_total):
                    b0 = np.int32(bt[n, k])
                    b1 = np.int32(bt[n + 1, k])
                    b2 = np.int32(bt[n + 2, k])
                    a0 = np.int32(a[m0, k])
                    a1 = np.int32(a[m0 + 1, k])
                    a2 = np.int32(a[m0 + 2, k])
                    a3 = np.int32(a[m0 + 3, k])
                    s00 = np.int32(s00 + a0 * b0)
                    s01 = np.int32(s01 + a0 * b1)
                    s02 = np.int32(s02 + a0 * b2)
                    s10 = np.int32(s10 + a1 * b0)
                    s11 = np.int32(s11 + a1 * b1)
                    s12 = np.int32(s12 + a1 * b2)
                    s20 = np.int32(s20 + a2 * b0)
                    s21 = np.int32(s21 + a2 * b1)
                    s22 = np.int32(s22 + a2 * b2)
                    s30 = np.int32(s30 + a3 * b0)
                    s31 = np.int32(s31 + a3 * b1)
                    s32 = np.int32(s32 + a3 * b2)
                sums = ((s00, s01, s02), (s10, s11, s12), (s20, s21, s22), (s30, s31, s32))
                for i in range(4):
                    for j in range(3):
                        c = bias[n + j] - za * colsum[n + j] + k_total * za * zb[n + j]
                        out[m0 + i, n + j] = wrap_int32(sums[i][j] + c - zb[n + j] * rowsum[m0 + i])
        # the tile's edges: the last columns of the full row blocks (4 rows at a time), then
        # the leftover rows
        for m0 in range(m_lo, m_full, 4):
            for n in range(n_full, n_hi):
                s0 = np.int32(0)
                s1 = np.int32(0)
                s2 = np.int32(0)
                s3 = np.int32(0)
                for k in range(k_total):
                    b0 = np.int32(bt[n, k])
                    s0 = np.int32(s0 + np.int32(a[m0, k]) * b0)
                    s1 = np.int32(s1 + np.int32(a[m0 + 1, k]) * b0)
                    s2 = np.int32(s2 + np.int32(a[m0 + 2, k]) * b0)
                    s3 = np.int32(s3 + np.int32(a[m0 + 3, k]) * b0)
                sums4 = (s0, s1, s2, s3)
                for i in range(4):
                    c = bias[n] - za * colsum[n] + k_total * za * zb[n] - zb[n] * rowsum[m0 + i]
                    out[m0 + i, n] = wrap_int32(sums4[i] + c)
        for m in range(m_full, m_hi):
            for n in range(n_lo, n_hi):
                c = bias[n] - za * colsum[n] + k_total * za * zb[n] - zb[n] * rowsum[m]
                out[m, n] = wrap_int32(_dot(a, bt, m, n, k_total) + c)


def _tiles(m_total: int, n_total: int, k_total: int, threads: int) -> tuple[int, int]:
    """Tile sizes: a column block of bt of about 192 KiB (it stays in L2), rows in blocks of 4;
    enough tiles for every thread."""
    tile_n = max(3, min(-(-n_total // 3) * 3, (192 * 1024 // max(k_total, 1)) // 3 * 3))
    tile_m = max(4, min(256, (m_total + 3) // 4 * 4))
    while -(-m_total // tile_m) * -(-n_total // tile_n) < 8 * threads and tile_m > 4:
        tile_m = max(4, tile_m // 2 // 4 * 4)
    return tile_m, tile_n


@kernel
def _row_sums_kernel(x, sums):
    for r in prange(x.shape[0]):
        s = np.int64(0)
        for k in range(x.shape[1]):
            s += np.int64(x[r, k])
        sums[r] = s


@dataclass(frozen=True, eq=False)
class PackedWeights:
    """A right-hand operand ``b`` (K, N) laid out for the kernels: ``bt = b.T`` (N, K),
    contiguous, with ``colsum[n] = sum_k b[k, n]``.  Pack constant weights once
    (``pack_weights``), as runtimes pre-pack initializers; TFLite FULLY_CONNECTED and conv
    filters are already (N, K) and pack without a transpose (``PackedWeights.from_rows``)."""

    bt: np.ndarray
    colsum: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.bt.shape[1], self.bt.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.bt.dtype

    @classmethod
    def from_rows(cls, w, backend: str = "jit") -> PackedWeights:
        """Pack weights given as rows (N, K), e.g. TFLite FULLY_CONNECTED filters."""
        bt = np.ascontiguousarray(_as_int_matrix("weights", w))
        colsum = np.empty(bt.shape[0], np.int64)
        if backend == "reference":
            colsum[:] = bt.sum(axis=1, dtype=np.int64)
        else:
            _row_sums_kernel.build(backend, bt.size)(bt, colsum)
        return cls(bt, colsum)

    @cached_property
    def vnni_panels(self) -> tuple[np.ndarray, int] | None:
        """The VNNI kernel's panels (``vnni.pack_panels``) and the re-bias of the weights in
        them: uint8 weights are stored as ``b - 128`` (int8), which the kernel's zero points
        absorb.  None for 16-bit weights.  Built on first use, once."""
        if self.bt.dtype == np.int8:
            return vnni.pack_panels(self.bt), 0
        if self.bt.dtype == np.uint8:
            return vnni.pack_panels((self.bt ^ np.uint8(0x80)).view(np.int8)), 128
        return None


def pack_weights(b, backend: str = "jit") -> PackedWeights:
    """Pack ``b`` (K, N) for ``accumulate_matmul`` (transposed, with column sums)."""
    if isinstance(b, PackedWeights):
        return b
    b = _as_int_matrix("b", b)
    return PackedWeights.from_rows(swap_last_two(b, backend=backend), backend)


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
    for m in range(m_total):
        for n in range(n_total):
            terms = ((int(a[m, k]) - za) * (int(b[k, n]) - int(zb[n])) for k in range(k_total))
            out[m, n], mask[m, n] = accumulator.reduce(terms, int(bias[n]))
    return out, mask


def gemm_int32(ac: np.ndarray, packed: PackedWeights, za: int, zb: np.ndarray, bias: np.ndarray, backend: str):
    """The int32-wrapping jit GEMM on checked operands: ``ac`` (M, K) contiguous 8/16-bit,
    ``zb`` and ``bias`` int64 of length N.  Returns ``(out, a_kernel, za_kernel)``: the
    accumulators and the left operand as the kernel saw it (int8 re-biased to uint8)."""
    m_total, k_total = ac.shape
    n_total = packed.bt.shape[0]
    out = np.empty((m_total, n_total), np.int32)
    if ac.dtype == np.int8:  # exact: a - za == (a + 128) - (za + 128)
        ac = ac.view(np.uint8) ^ np.uint8(0x80)
        za += 128
    rowsum = np.empty(m_total, np.int64)
    _row_sums_kernel.build(backend, ac.size)(ac, rowsum)  # numpy's widening row sum is ~15x slower
    if _microkernel == "vnni" and ac.dtype == np.uint8 and packed.vnni_panels is not None:
        panels, shift = packed.vnni_panels  # b - zb == (b - shift) - (zb - shift)
        zb_k = zb - shift
        col_term = bias - za * (packed.colsum - shift * k_total) + k_total * za * zb_k
        threads = numba.get_num_threads() if backend == "jit" else 1
        out = vnni.gemm(ac, panels, n_total, col_term, zb_k, rowsum, threads, backend)
        return out, ac, za
    tile_m, tile_n = _tiles(m_total, n_total, k_total, numba.get_num_threads())
    _gemm_int32_kernel.build(backend, m_total * n_total * k_total)(
        ac, packed.bt, np.int64(za), zb, rowsum, packed.colsum, bias, tile_m, tile_n, out
    )
    return out, ac, za


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
    ``a`` (M, K) and ``b`` (K, N) of at most 16 bits (``b`` may be ``PackedWeights``).

    ``b_zero_point`` is a scalar or per column (length N); ``bias`` is None or length N.
    Returns the accumulators (int32 for accumulators of at most 32 bits, else int64) and the
    ``OverflowReport``.
    """
    check_backend(backend)
    a = _as_int_matrix("a", a)
    packed = b if isinstance(b, PackedWeights) else None
    if packed is None:
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

    pairs = accumulator.int16_pairs and _pairs.applies(a.dtype, b.dtype)
    if backend == "reference":
        bt = packed.bt if packed is not None else np.ascontiguousarray(b.T)
        acc, mask = _reference(a, bt.T, za, zb, bias_v, accumulator)
        if pairs:
            acc = _pairs.saturate_pairs(acc, a, bt, backend)
        return acc.astype(out_dtype), OverflowReport(accumulator, total, int(mask.sum()), mask)

    ac = np.ascontiguousarray(a)
    packed = packed or pack_weights(b, backend)
    bt = packed.bt
    if accumulator.wraps_int32:
        out, ac, za_kernel = gemm_int32(ac, packed, za, zb, bias_v, backend)
        if pairs:
            out = _pairs.saturate_pairs(out, a, bt, backend)
        max_a = max(abs(int(a.min(initial=0)) - za), abs(int(a.max(initial=0)) - za))
        b_lo, b_hi = int(bt.min(initial=0)), int(bt.max(initial=0))
        max_b = int(max(np.abs(b_lo - zb).max(initial=0), np.abs(b_hi - zb).max(initial=0)))
        if worst_case_bound(max_a, max_b, k_total) + int(np.abs(bias_v).max(initial=0)) <= accumulator.max:
            return out, OverflowReport(accumulator, total, 0, None, checked=False)
        exact = np.empty((m_total, n_total), np.int64)
        flags = np.empty((m_total, n_total), np.bool_)
        _gemm_model_kernel.build(backend, total * k_total)(ac, bt, np.int64(za_kernel), zb, bias_v, 32, False, exact, flags)
        return out, OverflowReport(accumulator, total, int(flags.sum()), flags)

    out = np.empty((m_total, n_total), np.int64)
    flags = np.empty((m_total, n_total), np.bool_)
    _gemm_model_kernel.build(backend, total * k_total)(
        ac, bt, np.int64(za), zb, bias_v, accumulator.bits, accumulator.overflow == "saturate", out, flags
    )
    return out.astype(out_dtype), OverflowReport(accumulator, total, int(flags.sum()), flags)


class PreparedGemm:
    """``accumulate_matmul`` against fixed weights given as rows (N, K) with their zero points
    and bias (a model's constant FULLY_CONNECTED / Gemm weights): packed and checked once;
    ``prepared(a, a_zero_point)`` returns exactly ``accumulate_matmul``'s accumulators.

    The fast path (``gemm_int32`` with no per-call checks and no overflow report) is taken when
    the accumulator is int32 wrapping, ``a`` is 8-bit and a static bound over every possible
    input (``|a - a_zp| <= 255``) shows no sum can leave int32; anything else calls
    ``accumulate_matmul``."""

    def __init__(self, w_rows, w_zero_point=0, bias=None, *, input_dtype, accumulator: Accumulator = INT32,
                 backend: str = "jit"):  # fmt: skip
        check_backend(backend)
        self.packed = PackedWeights.from_rows(w_rows, backend)
        n_total, k_total = self.packed.bt.shape
        zb = np.asarray(w_zero_point)
        if zb.dtype.kind not in "iu" or zb.size not in (1, n_total):
            raise ValueError(f"w_zero_point must be an integer or {n_total} integers (one per row)")
        self.zb = np.ascontiguousarray(np.broadcast_to(zb.reshape(-1).astype(np.int64), (n_total,)))
        b = np.zeros(n_total, np.int64) if bias is None else np.asarray(bias)
        if b.dtype.kind not in "iu" or b.size != n_total:
            raise ValueError(f"bias must hold {n_total} integers, got {np.shape(bias)}")
        self.bias = b.reshape(-1).astype(np.int64)
        self.input_dtype, self.accumulator, self.backend = np.dtype(input_dtype), accumulator, backend
        max_w = int(np.abs(self.packed.bt.astype(np.int64) - self.zb[:, None]).max(initial=0))
        bound = worst_case_bound(255, max_w, k_total) + int(np.abs(self.bias).max(initial=0))
        self.pairs = accumulator.int16_pairs and _pairs.applies(self.input_dtype, self.packed.dtype)
        self.fast = (backend != "reference" and accumulator.wraps_int32 and self.input_dtype.itemsize == 1
                     and bound <= INT32.max)  # fmt: skip

    def accumulate(self, a, a_zero_point=0) -> tuple[np.ndarray, OverflowReport]:
        """The accumulators and their ``OverflowReport`` (on the fast path none can overflow:
        the static bound proved it)."""
        if not self.fast:
            a = self._check(a)
            return accumulate_matmul(a, self.packed, a_zero_point, self.zb, self.bias,
                                     accumulator=self.accumulator, backend=self.backend)  # fmt: skip
        acc = self(a, a_zero_point)
        return acc, OverflowReport(self.accumulator, acc.size, 0, None, checked=False)

    def _check(self, a) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype != self.input_dtype or a.ndim != 2 or a.shape[1] != self.packed.bt.shape[1]:
            raise ValueError(f"prepared for {self.input_dtype} (M, {self.packed.bt.shape[1]}) input, got {a.dtype} {a.shape}")
        return a

    def __call__(self, a, a_zero_point=0) -> np.ndarray:
        a = self._check(a)
        if not self.fast:
            return accumulate_matmul(a, self.packed, a_zero_point, self.zb, self.bias,
                                     accumulator=self.accumulator, backend=self.backend)[0]  # fmt: skip
        za = np.asarray(a_zero_point)
        if za.size != 1 or za.dtype.kind not in "iu":
            raise ValueError("a_zero_point must be one integer (per-tensor activations)")
        a = np.ascontiguousarray(a)
        out = gemm_int32(a, self.packed, int(za.reshape(())), self.zb, self.bias, self.backend)[0]
        return _pairs.saturate_pairs(out, a, self.packed.bt, self.backend) if self.pairs else out
