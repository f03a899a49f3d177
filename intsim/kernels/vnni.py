"""The AVX-512 VNNI GEMM micro-kernel: ``vpdpbusd`` (uint8 x int8, four products summed into
each int32 lane) on 6 rows x 64 columns of the output per pass over k.

LLVM does not derive ``vpdpbusd`` from a numba loop (it widens bytes to 32 bits and issues
``vpdpwssd`` on 16 products per instruction, a quarter of this one's 64), so the micro-kernel
is written as LLVM IR (``_tile``, a numba intrinsic calling ``llvm.x86.avx512.vpdpbusd.512``)
and the rest (packing, edges, zero points, threads) stays numba.

Exact: ``vpdpbusd`` (not the saturating ``vpdpbusds``) adds ``a*b`` products of uint8 ``a``
and int8 ``b`` into int32 lanes with wrap-around, so each lane holds the exact partial sum
modulo 2**32, and so does the tile; the zero points follow by the identity of
``intsim.kernels.gemm``.  Used only where the host has AVX512-VNNI (``AVAILABLE``); elsewhere
the portable kernel runs.  Tests compare both with the Python-int reference.

Layout: the right operand is packed once into panels of 64 columns, ``panels[p, k4, j, q] =
b[4*k4 + q, 64*p + j]`` (zero past K and N), so one 64-byte load holds four consecutive k of
16 columns, as ``vpdpbusd`` wants them; rows of ``a`` are read in place, four bytes broadcast
per k4 (K is padded to a multiple of 4 by a copy of ``a`` when it is not one).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from intsim._jit import kernel
from intsim.fixedpoint import wrap_int32

MR = 6  # output rows per micro-tile
NV = 4  # 16-lane int32 vectors per row
NR = 16 * NV  # output columns per micro-tile (one panel)


def _host_has_vnni() -> bool:
    features = llvm.get_host_cpu_features()
    return bool(features.get("avx512vnni")) and bool(features.get("avx512bw"))


AVAILABLE = _host_has_vnni()


@intrinsic
def _tile(typingctx, a_addr, lda, b_addr, k4, c_addr):
    """c[MR, NR] (int32, contiguous) = sum over k4 of the dpbusd of rows ``a_addr + r*lda``
    (4 bytes at ``4*k4``) with the panel at ``b_addr`` (``NR*4`` bytes per k4)."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        a_addr, lda, b_addr, k4, c_addr = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v16 = ir.VectorType(i32, 16)
        dpbusd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(v16, [v16, v16, v16]), "llvm.x86.avx512.vpdpbusd.512"
        )
        zero = ir.Constant(v16, None)

        def const(v):
            return ir.Constant(i64, v)

        def load(addr, ty):
            value = builder.load(builder.inttoptr(addr, ty.as_pointer()))
            value.align = 1
            return value

        entry = builder.basic_block
        loop = builder.append_basic_block("vnni.loop")
        done = builder.append_basic_block("vnni.done")
        builder.cbranch(builder.icmp_signed(">", k4, const(0)), loop, done)

        builder.position_at_end(loop)
        k = builder.phi(i64)
        k.add_incoming(const(0), entry)
        accs = [builder.phi(v16) for _ in range(MR * NV)]
        for acc in accs:
            acc.add_incoming(zero, entry)
        b_row = builder.add(b_addr, builder.mul(k, const(4 * NR)))
        b = [load(builder.add(b_row, const(64 * j)), v16) for j in range(NV)]
        new = []
        for r in range(MR):
            a4 = load(builder.add(a_addr, builder.add(builder.mul(const(r), lda), builder.mul(k, const(4)))), i32)
            a4 = builder.insert_element(ir.Constant(v16, ir.Undefined), a4, ir.Constant(i32, 0))
            a4 = builder.shuffle_vector(a4, ir.Constant(v16, ir.Undefined), ir.Constant(v16, None))  # broadcast
            new += [builder.call(dpbusd, [accs[r * NV + j], a4, b[j]]) for j in range(NV)]
        k_next = builder.add(k, const(1))
        k.add_incoming(k_next, loop)
        for acc, value in zip(accs, new, strict=True):
            acc.add_incoming(value, loop)
        builder.cbranch(builder.icmp_signed("<", k_next, k4), loop, done)

        builder.position_at_end(done)
        results = [builder.phi(v16) for _ in new]  # zero when K4 == 0
        for i, (result, value) in enumerate(zip(results, new, strict=True)):
            result.add_incoming(zero, entry)
            result.add_incoming(value, loop)
            store = builder.store(result, builder.inttoptr(builder.add(c_addr, const(64 * i)), v16.as_pointer()))
            store.align = 1
        return context.get_dummy_value()

    return sig, codegen


@kernel
def _pack_panels_kernel(bt, panels):
    """panels[p, k4, j, q] = bt[64*p + j, 4*k4 + q], zero past N and K; one task per column."""
    n_total, k_total = bt.shape
    n_panels, k4_total = panels.shape[0], panels.shape[1]
    for t in prange(n_panels * NR):
        p = t // NR
        j = t - p * NR
        n = NR * p + j
        for k4 in range(k4_total):
            for q in range(4):
                k = 4 * k4 + q
                panels[p, k4, j, q] = bt[n, k] if (k < k_total and n < n_total) else 0


def pack_panels(bt: np.ndarray, backend: str = "jit") -> np.ndarray:
    """``bt`` (N, K) int8 -> panels (ceil(N/64), ceil(K/4), 64, 4), zero-padded."""
    n_total, k_total = bt.shape
    panels = np.empty((-(-n_total // NR), -(-k_total // 4), NR, 4), np.int8)
    _pack_panels_kernel.build(backend, bt.size)(bt, panels)
    return panels


@kernel
def _gemm_vnni_kernel(a, panels, n_total, col_term, zb, rowsum, blocks_per_task, out):
    """out[m, n] = wrap32(sum_k a[m, k] * b[k, n] + col_term[n] - zb[n] * rowsum[m]).

    ``a`` (M, 4*K4) uint8 contiguous; one task is one panel (64 columns) and a run of
    ``blocks_per_task`` 6-row blocks; each output belongs to one task."""
    m_total, k_pad = a.shape
    n_panels, k4 = panels.shape[0], panels.shape[1]
    m_blocks = (m_total + MR - 1) // MR
    row_tasks = (m_blocks + blocks_per_task - 1) // blocks_per_task
    for t in prange(row_tasks * n_panels):
        p = t % n_panels
        g = t // n_panels
        n0 = p * NR
        n_valid = min(NR, n_total - n0)
        tile = np.empty((MR, NR), np.int32)
        edge = np.zeros((MR, k_pad), np.uint8)  # the last, short row block, zero-padded
        for blk in range(g * blocks_per_task, min(m_blocks, (g + 1) * blocks_per_task)):
            m0 = blk * MR
            rows = min(MR, m_total - m0)
            if rows == MR:
                _tile(a[m0:].ctypes.data, k_pad, panels[p].ctypes.data, k4, tile.ctypes.data)
            else:
                edge[:rows] = a[m0:]
                _tile(edge.ctypes.data, k_pad, panels[p].ctypes.data, k4, tile.ctypes.data)
            for i in range(rows):
                for j in range(n_valid):
                    n = n0 + j
                    out[m0 + i, n] = wrap_int32(tile[i, j] + col_term[n] - zb[n] * rowsum[m0 + i])


def gemm(a: np.ndarray, panels: np.ndarray, n_total: int, col_term, zb, rowsum, threads: int, backend: str):
    """The VNNI GEMM on checked operands: ``a`` (M, K) uint8 contiguous, ``panels`` from
    ``pack_panels``.  Returns the int32 accumulators (M, N)."""
    m_total, k_total = a.shape
    k_pad = panels.shape[1] * 4
    if k_pad != k_total:
        padded = np.zeros((m_total, k_pad), np.uint8)
        padded[:, :k_total] = a
        a = padded
    m_blocks = -(-m_total // MR)
    blocks_per_task = max(1, min(16, m_blocks * panels.shape[0] // (8 * threads)))
    out = np.empty((m_total, n_total), np.int32)
    _gemm_vnni_kernel.build(backend, m_total * n_total * k_total)(a, panels, n_total, col_term, zb, rowsum, blocks_per_task, out)
    return out
