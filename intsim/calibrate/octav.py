"""OCTAV: optimal clipping scalars by the Newton-Raphson recursion of Sakr et al. (ICML 2022).

For every group of elements sharing one scale, iterate

    s_{n+1} = sum(|x| ; |x| > s_n) / (c * count(0 < |x| <= s_n) + count(|x| > s_n))

with ``c`` the discretization constant of the quantizer grid (``QuantGrid.constant``): derived
from the real integer grid (``grid="exact"``, default) or the paper's ``4**-B / 3``
(``grid="paper"``).  Zeros are left out of the discretization count (they quantize exactly).

Each iteration is one numba pass over all groups at once.  Sums are taken in fixed chunks and
combined in a fixed order, so results do not depend on the thread count.

Degenerate groups, handled and reported in ``OctavResult.status`` (never a NaN scalar):

``"all_zero"``     every element is 0: the clip is 0 (``calibrate`` turns it into scale 1.0)
``"constant"``     every non-zero |x| is equal: the recursion would oscillate between the value
                   and 0; the clip is that value (exact)
``"max_better"``   the empirical MSE at ``max|x|`` beats the fixed point's (outliers, where the
                   model cannot see the second minimum): the clip is ``max|x|``
``"not_converged"`` ``max_iter`` reached before the relative change fell below ``tol``
``"converged"``    the fixed point
When no element exceeds the current iterate the update is 0; the next iterate is then the
update from 0 (the mean of the non-zero |x|), which is what the recursion would do next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from intsim._jit import check_backend, helper, kernel
from intsim.calibrate.groups import QuantGrid, grid_for, make_groups, to_param_shape

CHUNK = 4096  # elements per partial sum: fixes the summation order
STATUSES = ("converged", "not_converged", "all_zero", "constant", "max_better")


@helper
def _chunk(t, chunks, chunk, n):
    """Task ``t`` of a (group, chunk) grid: its group and the element range it sums."""
    g = t // chunks
    c = t - g * chunks
    return g, c, c * chunk, min((c + 1) * chunk, n)


@kernel
def _octav_partials(x, s, chunk, total, big, small):
    """Partial sums per (group, chunk): sum of |x| above s, counts above and 0 < |x| <= s."""
    chunks = total.shape[1]
    for t in prange(x.shape[0] * chunks):
        g, c, lo, hi = _chunk(t, chunks, chunk, x.shape[1])
        sg = s[g]
        acc = 0.0
        nb = 0
        ns = 0
        for i in range(lo, hi):  # branch-free: it vectorizes
            a = abs(np.float64(x[g, i]))
            above = a > sg
            acc += a if above else 0.0
            nb += above
            ns += (a > 0.0) & (not above)
        total[g, c] = acc
        big[g, c] = nb
        small[g, c] = ns


@kernel
def _mse_partials(x, scale, qmin, qmax, chunk, out):
    """Partial sums of squared quantization error on the integer grid, per (group, chunk)."""
    chunks = out.shape[1]
    for t in prange(x.shape[0] * chunks):
        g, c, lo, hi = _chunk(t, chunks, chunk, x.shape[1])
        sc = scale[g]
        acc = 0.0
        if sc > 0.0:
            for i in range(lo, hi):
                v = np.float64(x[g, i])
                d = v - min(max(np.rint(v / sc), qmin), qmax) * sc
                acc += d * d
        else:
            for i in range(lo, hi):
                v = np.float64(x[g, i])
                acc += v * v
        out[g, c] = acc


@kernel
def _group_stats(x, nonzero, total, top, nz_min):
    """Per group: count of non-zero elements, sum of |x|, max |x|, min non-zero |x|."""
    for g in prange(x.shape[0]):
        count = 0
        acc = 0.0
        hi = 0.0
        lo = np.inf
        for i in range(x.shape[1]):
            a = abs(np.float64(x[g, i]))
            if a > 0.0:
                count += 1
                acc += a
                hi = max(hi, a)
                lo = min(lo, a)
        nonzero[g] = count
        total[g] = acc
        top[g] = hi
        nz_min[g] = lo


@kernel
def _modelled_partials(x, s, c, chunk, out):
    chunks = out.shape[1]
    for t in prange(x.shape[0] * chunks):
        g, k, lo, hi = _chunk(t, chunks, chunk, x.shape[1])
        sg = s[g]
        acc = 0.0
        for i in range(lo, hi):
            a = abs(np.float64(x[g, i]))
            if a > sg:
                acc += (a - sg) * (a - sg)
            elif a > 0.0:
                acc += c * sg * sg
        out[g, k] = acc


def _chunks(n: int) -> int:
    return max(1, -(-n // CHUNK))


def octav_step(x: np.ndarray, s: np.ndarray, c: float, backend: str = "jit"):
    """One OCTAV update for every group of ``x`` (G, n): (new s, sum above, count above,
    count small)."""
    groups, n = x.shape
    k = _chunks(n)
    total = np.empty((groups, k))
    big = np.empty((groups, k), np.int64)
    small = np.empty((groups, k), np.int64)
    if backend == "reference":
        for g in range(groups):
            for j in range(k):
                part = np.abs(x[g, j * CHUNK : (j + 1) * CHUNK].astype(np.float64))
                above = part > s[g]
                acc = 0.0
                for v in part[above]:
                    acc += v
                total[g, j] = acc
                big[g, j] = int(above.sum())
                small[g, j] = int(((part > 0) & ~above).sum())
    else:
        _octav_partials.build(backend)(x, s, CHUNK, total, big, small)
    total_s, big_s, small_s = total.sum(axis=1), big.sum(axis=1), small.sum(axis=1)
    denom = c * small_s + big_s
    with np.errstate(invalid="ignore", divide="ignore"):
        new = np.where(denom > 0, total_s / np.where(denom > 0, denom, 1), 0.0)
    return new, total_s, big_s, small_s


def empirical_mse(x: np.ndarray, clip: np.ndarray, grid: QuantGrid, counts: np.ndarray, backend: str = "jit") -> np.ndarray:
    """Mean squared error of quantizing each group to ``grid`` with clipping scalar ``clip``
    (round half to even, clamp), divided by the true element counts."""
    groups, n = x.shape
    k = _chunks(n)
    out = np.empty((groups, k))
    scale = np.asarray(clip, np.float64) / grid.qmax
    if backend == "reference":
        for g in range(groups):
            if scale[g] > 0:
                xg = x[g].astype(np.float64)
                q = np.clip(np.rint(xg / scale[g]), grid.qmin, grid.qmax)
                err = xg - q * scale[g]
            else:
                err = x[g].astype(np.float64)
            for j in range(k):
                acc = 0.0
                for v in err[j * CHUNK : (j + 1) * CHUNK]:
                    acc += v * v
                out[g, j] = acc
    else:
        _mse_partials.build(backend)(x, scale, float(grid.qmin), float(grid.qmax), CHUNK, out)
    return out.sum(axis=1) / counts


def modelled_mse(x: np.ndarray, s: np.ndarray, c: float, counts: np.ndarray, backend: str = "jit") -> np.ndarray:
    """The additive-noise model ``J(s) = (c s^2 count(0<|x|<=s) + sum((|x|-s)^2; |x|>s)) / n``."""
    out = np.empty((x.shape[0], _chunks(x.shape[1])))
    if backend == "reference":  # the same terms, summed in the same chunked order
        for g in range(x.shape[0]):
            for j in range(out.shape[1]):
                acc = 0.0
                for v in np.abs(x[g, j * CHUNK : (j + 1) * CHUNK].astype(np.float64)):
                    if v > s[g]:
                        acc += (v - s[g]) * (v - s[g])
                    elif v > 0.0:
                        acc += c * s[g] * s[g]
                out[g, j] = acc
        return out.sum(axis=1) / counts
    _modelled_partials.build(backend)(x, np.asarray(s, np.float64), c, CHUNK, out)
    return out.sum(axis=1) / counts


def _golden_refine(data, s, emp, grid, counts, frozen, backend, evaluations: int = 8):
    """Golden-section search of the empirical MSE on [0.9 s, 1.1 s], per group, keeping the
    best value seen (``s`` itself included).  Groups in ``frozen`` keep their value."""
    ratio = (np.sqrt(5) - 1) / 2
    lo, hi = 0.9 * s, 1.1 * s
    best_s, best_e = s.copy(), emp.copy()

    def measure(trial):
        nonlocal best_s, best_e
        e = empirical_mse(data, np.where(frozen, s, trial), grid, counts, backend)
        better = (e < best_e) & ~frozen
        best_s, best_e = np.where(better, trial, best_s), np.where(better, e, best_e)
        return e

    m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    e1, e2 = measure(m1), measure(m2)
    for _ in range(evaluations - 2):
        left = e1 < e2  # the minimum lies in [lo, m2]
        lo, hi = np.where(left, lo, m1), np.where(left, m2, hi)
        new = np.where(left, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
        e_new = measure(new)
        m1, m2 = np.where(left, new, m2), np.where(left, m1, new)
        e1, e2 = np.where(left, e_new, e2), np.where(left, e1, e_new)
    return best_s, best_e


@dataclass
class OctavResult:
    """Per-group outcome of ``octav`` (arrays in the shape of the matching scale)."""

    clip: np.ndarray
    fixed_point: np.ndarray
    iterations: int
    converged: np.ndarray
    status: np.ndarray
    modelled_mse: np.ndarray
    empirical_mse: np.ndarray
    max_mse: np.ndarray
    grid: QuantGrid


def octav(
    x,
    *,
    dtype="int4",
    axis: int | None = None,
    block_size: int | None = None,
    signed: bool | None = None,
    grid: str = "exact",
    max_iter: int = 50,
    tol: float = 1e-6,
    init="mean_nonzero",
    refine: bool = True,
    backend: str = "jit",
) -> tuple[np.ndarray, OctavResult]:
    """OCTAV clipping scalars for ``x``, one per group (see the module docstring).

    ``dtype``: the quantized format (``"int4"``, ``"uint8"``, or ``"intB"``/``"uintB"`` for any
    width 2..16); ``signed`` overrides its signedness (use the unsigned grid for ReLU outputs).
    ``init``: ``"mean_nonzero"`` (the paper's start), ``"zero"``, ``"max"``, or starting values
    (a scalar or one per group).  ``refine=True`` (default) adds a golden-section search of the
    measured MSE on [0.9, 1.1] x the fixed point (8 passes, keeping the best value seen, the
    fixed point included), which closes the gap between the noise model's optimum and the
    empirical one (calibration.md: up to 1% on uniform data at 3 bits).  The unrefined value is
    ``OctavResult.fixed_point``.  Returns ``(clip, OctavResult)``.
    """
    check_backend(backend)
    q = grid_for(dtype, signed)
    c = q.constant(grid)
    groups = make_groups(x, axis, block_size)
    data = groups.data
    g = data.shape[0]
    nonzero = np.empty(g, np.int64)
    total, s_max, nz_min = np.empty(g), np.empty(g), np.empty(g)
    _group_stats.build("jit-serial" if backend == "reference" else backend)(data, nonzero, total, s_max, nz_min)
    mean_nonzero = np.where(nonzero > 0, total / np.maximum(nonzero, 1), 0.0)
    if isinstance(init, str):
        starts = {"mean_nonzero": mean_nonzero, "zero": np.zeros(g), "max": s_max}
        if init not in starts:
            raise ValueError(f"init must be one of {tuple(starts)} or starting values, got {init!r}")
        s = starts[init].copy()
    else:
        s = np.broadcast_to(np.asarray(init, np.float64).reshape(-1), (g,)).copy()
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError("init values must be finite and non-negative")

    converged = nonzero == 0
    iterations = 0
    for iterations in range(1, max_iter + 1):
        new, _, big, _ = octav_step(data, s, c, backend)
        new = np.where((big == 0) & (nonzero > 0) & (s > 0), mean_nonzero, new)  # restart from 0
        change = np.abs(new - s)
        done = change <= tol * np.maximum(new, np.finfo(float).tiny)
        s = np.where(converged, s, new)
        converged |= done
        if converged.all():
            break

    status = np.where(converged, "converged", "not_converged").astype(object)
    constant = (nonzero > 0) & (nz_min == s_max)
    s = np.where(constant, s_max, s)
    status[constant] = "constant"
    all_zero = nonzero == 0
    s = np.where(all_zero, 0.0, s)
    status[all_zero] = "all_zero"

    fixed_point = s.copy()
    emp = empirical_mse(data, s, q, groups.counts, backend)
    if refine:
        s, emp = _golden_refine(data, s, emp, q, groups.counts, all_zero | constant, backend)
    at_max = empirical_mse(data, s_max, q, groups.counts, backend)
    use_max = (at_max < emp) & ~all_zero & ~constant
    s = np.where(use_max, s_max, s)
    emp = np.where(use_max, at_max, emp)
    status[use_max] = "max_better"

    result = OctavResult(
        clip=to_param_shape(s, groups),
        fixed_point=to_param_shape(fixed_point, groups),
        iterations=iterations,
        converged=to_param_shape(converged | all_zero | constant, groups),
        status=to_param_shape(status, groups),
        modelled_mse=to_param_shape(modelled_mse(data, s, c, groups.counts, backend), groups),
        empirical_mse=to_param_shape(emp, groups),
        max_mse=to_param_shape(at_max, groups),
        grid=q,
    )
    return result.clip, result
