"""Quantization error of clipping scalars, per group: empirical (the real integer grid) and
modelled (OCTAV's additive-noise model), for many candidate scalars in one pass.

Every kernel here sums in a fixed order that does not depend on the thread count: each group is
cut into ``CHUNK``-element chunks; a chunk's terms go into a buffer (an element-wise loop the
compiler vectorizes) and are summed by ``sum_lanes`` in 32 interleaved lanes, combined
pairwise; the per-chunk partials are then summed by numpy.  The ``"reference"`` backend computes
the same terms with numpy and sums them in the same order in plain Python.

Rounding is half to even.  Inside the kernels ``round_small`` does it as
``(q + 1.5 * 2**52) - 1.5 * 2**52``: for ``|q| <= 2**51`` the sum lies in ``[2**52, 2**53)``
where float64 spacing is 1, so the addition itself rounds ``q`` to an integer, ties to even,
exactly as ``np.rint`` (the clamp to ``[qmin, qmax]``, ``|q| <= 65535``, comes first:
rounding and clamping to integer bounds commute).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, helper, kernel
from intsim.calibrate.groups import QuantGrid

CHUNK = 2048  # elements per partial sum: fixes the summation order
LANES = 32
MAGIC = 6755399441055744.0  # 1.5 * 2**52


def chunks(n: int) -> int:
    return max(1, -(-n // CHUNK))


BLOCK = 16  # chunks per parallel task (one buffer per task)


@helper
def chunk_range(t, nchunks, n):
    """Task ``t`` of a (group, chunk) grid: its group, chunk and element range."""
    g = t // nchunks
    c = t - g * nchunks
    return g, c, c * CHUNK, min((c + 1) * CHUNK, n)


@helper
def block_range(t, nblocks, nchunks):
    """Task ``t`` of a (group, block of ``BLOCK`` chunks) grid: its group and chunk range."""
    g = t // nblocks
    first = (t - g * nblocks) * BLOCK
    return g, first, min(first + BLOCK, nchunks)


@helper
def chunk_row(x, g, c, buf):
    """Chunk ``c`` of group ``g``; zeroes ``buf`` past a short last chunk's end (no stale terms
    from the previous chunk enter its sum)."""
    lo, hi = c * CHUNK, min((c + 1) * CHUNK, x.shape[1])
    buf[hi - lo :] = 0.0
    return x[g, lo:hi]


@helper
def sum_lanes(buf):
    """Sum of ``buf`` (float64, length a multiple of 32, destroyed): 32 lanes, lane j taking
    elements j, j+32, j+64, ... in order (vector adds), then the lanes pairwise."""
    for i in range(LANES, buf.size, LANES):
        for j in range(LANES):
            buf[j] += buf[i + j]
    width = LANES
    while width > 1:
        width //= 2
        for j in range(width):
            buf[j] = buf[2 * j] + buf[2 * j + 1]
    return buf[0]


@helper
def clamp_round(q, qmin, qmax):
    """``rint(clip(q, qmin, qmax))`` for integer bounds within 2**51 (module docstring)."""
    q = qmin if q < qmin else q
    q = qmax if q > qmax else q
    return (q + MAGIC) - MAGIC


def sum_lanes_reference(terms: np.ndarray) -> float:
    """``sum_lanes`` in plain Python on a chunk's terms (zero-padded to ``CHUNK``)."""
    buf = np.zeros(CHUNK)
    buf[: terms.size] = terms
    lanes = []
    for j in range(LANES):
        acc = 0.0
        for v in buf[j::LANES]:
            acc += float(v)
        lanes.append(acc)
    while len(lanes) > 1:
        lanes = [lanes[2 * j] + lanes[2 * j + 1] for j in range(len(lanes) // 2)]
    return lanes[0]


@kernel
def _sq_error_partials(x, scale, qmin, qmax, out):
    """out[g, k, c]: squared error of chunk c of group g quantized with ``scale[g, k]``:
    ``v - clamp(rint(v / scale), qmin, qmax) * scale`` in float64.  A zero scale quantizes
    everything to 0."""
    nchunks = out.shape[2]
    nblocks = (nchunks + BLOCK - 1) // BLOCK
    for t in prange(x.shape[0] * nblocks):
        g, first, last = block_range(t, nblocks, nchunks)
        buf = np.zeros(CHUNK)
        for c in range(first, last):
            row = chunk_row(x, g, c, buf)
            for k in range(scale.shape[1]):
                sc = scale[g, k]
                if sc <= 0.0:
                    for i in range(row.size):
                        v = np.float64(row[i])
                        buf[i] = v * v
                else:
                    for i in range(row.size):
                        v = np.float64(row[i])
                        d = v - clamp_round(v / sc, qmin, qmax) * sc
                        buf[i] = d * d
                out[g, k, c] = sum_lanes(buf)


@kernel
def _search_partials(x, scale, inv, qmin, qmax, magic, out):
    """``_sq_error_partials`` for comparing candidates: in the data's own precision (float32
    data: float32 arithmetic, twice the vector width), multiplying by ``inv = 1 / scale``;
    ``scale``, ``inv``, ``qmin``, ``qmax`` and ``magic`` (1.5 * 2**mantissa bits) are of the
    data's dtype.  Scales must be positive."""
    nchunks = out.shape[2]
    nblocks = (nchunks + BLOCK - 1) // BLOCK
    for t in prange(x.shape[0] * nblocks):
        g, first, last = block_range(t, nblocks, nchunks)
        buf = np.zeros(CHUNK)
        for c in range(first, last):
            row = chunk_row(x, g, c, buf)
            for k in range(scale.shape[1]):
                sc = scale[g, k]
                r = inv[g, k]
                for i in range(row.size):
                    q = row[i] * r
                    q = qmin if q < qmin else q
                    q = qmax if q > qmax else q
                    d = row[i] - ((q + magic) - magic) * sc
                    buf[i] = np.float64(d * d)
                out[g, k, c] = sum_lanes(buf)


@kernel
def _modelled_partials(x, s, c, out):
    """out[g, k, j]: OCTAV's model terms of chunk j for clip ``s[g, k]``:
    ``(|v| - s)^2`` above s, ``c s^2`` for ``0 < |v| <= s``."""
    nchunks = out.shape[2]
    nblocks = (nchunks + BLOCK - 1) // BLOCK
    for t in prange(x.shape[0] * nblocks):
        g, first, last = block_range(t, nblocks, nchunks)
        buf = np.zeros(CHUNK)
        for j in range(first, last):
            row = chunk_row(x, g, j, buf)
            for k in range(s.shape[1]):
                sg = s[g, k]
                noise = c * sg * sg
                for i in range(row.size):
                    a = abs(np.float64(row[i]))
                    d = a - sg
                    buf[i] = d * d if a > sg else (noise if a > 0.0 else 0.0)
                out[g, k, j] = sum_lanes(buf)


def _per_candidate(clips, groups: int) -> np.ndarray:
    c = np.asarray(clips, np.float64)
    return np.ascontiguousarray(c.reshape(groups, -1) if c.ndim == 2 else c.reshape(groups, 1))


def _reference(x: np.ndarray, values: np.ndarray, term, extra=None) -> np.ndarray:
    out = np.empty(values.shape + (chunks(x.shape[1]),))
    for g in range(x.shape[0]):
        for k in range(values.shape[1]):
            for j in range(out.shape[2]):
                part = x[g, j * CHUNK : (j + 1) * CHUNK].astype(np.float64)
                args = () if extra is None else (extra[g, k],)
                out[g, k, j] = sum_lanes_reference(term(part, values[g, k], *args))
    return out


def empirical_mse(x: np.ndarray, clip, grid: QuantGrid, counts: np.ndarray, backend: str = "jit",
                  exact: bool = True) -> np.ndarray:  # fmt: skip
    """Mean squared error of quantizing each group of ``x`` (G, n) to ``grid`` with clipping
    scalar ``clip``: one per group (G,) -> (G,), or several per group (G, K) -> (G, K), all in
    one pass.  ``v / scale`` rounded half to even, clamped, in float64; divided by the true
    element counts.  ``exact=False`` (positive clips only) is the faster search arithmetic of
    ``_search_partials``, for ranking candidates: it differs from the exact value by float32
    rounding of each term, far below the differences it ranks."""
    check_backend(backend)
    clips = _per_candidate(clip, x.shape[0])
    scale = clips / grid.qmax
    if not exact:
        if not np.all(scale > 0):
            raise ValueError("the search arithmetic takes positive clipping scalars only")
        dt = x.dtype.type
        scale = scale.astype(x.dtype)
        inv = (1 / scale).astype(x.dtype)
    if backend == "reference":

        def term(v, sc, r=None):
            if exact and sc <= 0:
                return v * v
            if exact:
                d = v - np.rint(np.clip(v / sc, grid.qmin, grid.qmax)) * sc
                return d * d
            v = v.astype(x.dtype)
            d = v - np.rint(np.clip(v * r, dt(grid.qmin), dt(grid.qmax))) * sc
            return (d * d).astype(np.float64)

        out = _reference(x, scale, term, None if exact else inv)
    elif exact:
        out = np.empty(scale.shape + (chunks(x.shape[1]),))
        _sq_error_partials.build(backend)(x, scale, float(grid.qmin), float(grid.qmax), out)
    else:
        out = np.empty(scale.shape + (chunks(x.shape[1]),))
        magic = dt(1.5 * 2.0 ** np.finfo(x.dtype).nmant)
        _search_partials.build(backend)(x, scale, inv, dt(grid.qmin), dt(grid.qmax), magic, out)
    mse = out.sum(axis=2) / np.asarray(counts).reshape(-1, 1)
    return mse if np.ndim(clip) == 2 else mse[:, 0]


def modelled_mse(x: np.ndarray, s, c: float, counts: np.ndarray, backend: str = "jit") -> np.ndarray:
    """The additive-noise model ``J(s) = (c s^2 count(0<|x|<=s) + sum((|x|-s)^2; |x|>s)) / n``,
    per group; ``s`` shaped (G,) or (G, K) as in ``empirical_mse``."""
    check_backend(backend)
    values = _per_candidate(s, x.shape[0])
    if backend == "reference":

        def term(v, sg):
            a = np.abs(v)
            return np.where(a > sg, (a - sg) ** 2, np.where(a > 0, c * sg * sg, 0.0))

        out = _reference(x, values, term)
    else:
        out = np.empty(values.shape + (chunks(x.shape[1]),))
        _modelled_partials.build(backend)(x, values, float(c), out)
    mse = out.sum(axis=2) / np.asarray(counts).reshape(-1, 1)
    return mse if np.ndim(s) == 2 else mse[:, 0]
