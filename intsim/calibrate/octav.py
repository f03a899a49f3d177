"""OCTAV: optimal clipping scalars by the Newton-Raphson recursion of Sakr et al. (ICML 2022).

For every group of elements sharing one scale, iterate

    s_{n+1} = sum(|x| ; |x| > s_n) / (c * count(0 < |x| <= s_n) + count(|x| > s_n))

with ``c`` the discretization constant of the quantizer grid (``QuantGrid.constant``): derived
from the real integer grid (``grid="exact"``, default) or the paper's ``4**-B / 3``
(``grid="paper"``).  Zeros are left out of the discretization count (they quantize exactly).

Small groups: each iteration is one numba pass over all groups at once (``octav_step``).  Large
groups (float32: 32640 elements or more) bin |x| once and run the recursion exactly on the bins
and the few elements near ``s`` (``octav_bins``): about two passes in all.  Sums are taken in
fixed chunks and combined in a fixed order, so results do not depend on the thread count.

The fixed point then goes through ``refine`` (default): the measured MSE on the real grid
(``mse.empirical_mse`` in its search arithmetic, one pass per step) at ``s * (0.97, 1, 1.03)``;
while an end of that bracket beats its middle the bracket moves 0.03 s that way (at most 5
times); then the vertex of the parabola through the bracket, and one pass over 41 points within
+-0.03 s of the best so far (``DENSE_SCAN``: the measured MSE is jagged at high bit widths).
The best point seen is kept (the fixed point included); it and ``max|x|`` are then measured
exactly and the better kept.

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
An update that returns to the iterate before last is a 2-cycle (on a finite sample, one element
crossing ``s`` back and forth; seen at 2 bits, 8e-6 apart): the recursion stops there, at the
smaller of the two, as converged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel
from intsim.calibrate import octav_bins
from intsim.calibrate.groups import QuantGrid, grid_for, make_groups, to_param_shape
from intsim.calibrate.mse import CHUNK, chunk_range, chunks, empirical_mse, modelled_mse

STATUSES = ("converged", "not_converged", "all_zero", "constant", "max_better")


@kernel
def _octav_partials(x, s, total, big, small):
    """Partial sums per (group, chunk): sum of |x| above s, counts above and 0 < |x| <= s."""
    nchunks = total.shape[1]
    for t in prange(x.shape[0] * nchunks):
        g, c, lo, hi = chunk_range(t, nchunks, x.shape[1])
        sg = s[g]
        acc = 0.0
        nb = 0
        ns = 0
        for i in range(lo, hi):  # branch-free
            a = abs(np.float64(x[g, i]))
            above = a > sg
            acc += a if above else 0.0
            nb += above
            ns += (a > 0.0) & (not above)
        total[g, c] = acc
        big[g, c] = nb
        small[g, c] = ns


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


def _group_stats_reference(x, nonzero, total, top, nz_min) -> None:
    """``_group_stats`` in plain Python and numpy: the same sums, added one by one in order."""
    for g in range(x.shape[0]):
        a = np.abs(x[g].astype(np.float64))
        a = a[a > 0.0]
        acc = 0.0
        for v in a.tolist():
            acc += v
        nonzero[g], total[g] = a.size, acc
        top[g] = a.max() if a.size else 0.0
        nz_min[g] = a.min() if a.size else np.inf


def octav_step(x: np.ndarray, s: np.ndarray, c: float, backend: str = "jit"):
    """One OCTAV update for every group of ``x`` (G, n): (new s, sum above, count above,
    count small)."""
    groups, n = x.shape
    k = chunks(n)
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
        _octav_partials.build(backend, x.size)(x, s, total, big, small)
    total_s, big_s, small_s = total.sum(axis=1), big.sum(axis=1), small.sum(axis=1)
    denom = c * small_s + big_s
    with np.errstate(invalid="ignore", divide="ignore"):
        new = np.where(denom > 0, total_s / np.where(denom > 0, denom, 1), 0.0)
    return new, total_s, big_s, small_s


def _refine(data, s, grid: QuantGrid, counts, frozen, backend, step: float = 0.03, moves: int = 5):
    """The candidate search around the fixed point ``s`` (module docstring), per group; ``frozen``
    groups keep ``s``."""
    rows = np.arange(s.size)
    frozen = frozen | ~(s > 0)
    s_in = s
    s = np.where(frozen, 1.0, s)  # any positive value: the result is discarded
    h = step * s

    def measure(points):
        return empirical_mse(data, points, grid, counts, backend, exact=False)

    pts = s[:, None] + h[:, None] * np.array([-1.0, 0.0, 1.0])[None, :]
    f = measure(pts)
    for _ in range(moves):  # walk the bracket while one of its ends is better than its middle
        k = np.argmin(f, axis=1)
        moving = ((k == 2) | ((k == 0) & (pts[:, 0] > h))) & ~frozen  # never to s <= 0
        if not moving.any():
            break
        left = moving & (k == 0)
        new = np.where(moving, np.where(left, pts[:, 0] - h, pts[:, 2] + h), pts[:, 1])
        fn = measure(new[:, None])[:, 0]
        pts = np.where(left[:, None], np.stack([new, pts[:, 0], pts[:, 1]], 1),
                       np.where(moving[:, None], np.stack([pts[:, 1], pts[:, 2], new], 1), pts))  # fmt: skip
        f = np.where(left[:, None], np.stack([fn, f[:, 0], f[:, 1]], 1),
                     np.where(moving[:, None], np.stack([f[:, 1], f[:, 2], fn], 1), f))  # fmt: skip
    curvature = f[:, 0] - 2 * f[:, 1] + f[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = pts[:, 1] - 0.5 * h * (f[:, 2] - f[:, 0]) / curvature
    vertex = np.where((curvature > 0) & (vertex > pts[:, 0]) & (vertex < pts[:, 2]), vertex, pts[:, 1])
    pts = np.concatenate([pts, vertex[:, None]], axis=1)
    f = np.concatenate([f, measure(vertex[:, None])], axis=1)
    best = pts[rows, np.argmin(f, axis=1)]  # then one pass over DENSE_SCAN points around the best
    scan = best[:, None] + h[:, None] * np.linspace(-1.0, 1.0, DENSE_SCAN)[None, :]
    pts = np.concatenate([pts, scan], axis=1)
    f = np.concatenate([f, measure(scan)], axis=1)
    return np.where(frozen, s_in, pts[rows, np.argmin(f, axis=1)])


# The measured MSE of a finite sample is jagged at high bit widths (single elements cross grid
# points), and the parabola can miss a dip beside the fixed point: at 8 bits on 10**4 ReLU
# outputs it left OCTAV 2.7% above a 3001-point sweep.  One pass measures this many points
# across +-step of the best point found (the MSE kernel measures many candidates per pass).
DENSE_SCAN = 41


@dataclass
class OctavResult:
    """Per-group outcome of ``octav`` (arrays in the shape of the matching scale)."""

    clip: np.ndarray
    fixed_point: np.ndarray
    iterations: int  # exact recursion steps (the most any group took)
    converged: np.ndarray
    status: np.ndarray
    modelled_mse: np.ndarray
    empirical_mse: np.ndarray
    max_mse: np.ndarray
    grid: QuantGrid
    warm_start_iterations: int = 0  # large groups: steps on the histogram before the exact ones


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
    (a scalar or one per group); on large groups the binned warm start begins there, with the
    mean taken from the bin midpoints.  ``refine=True`` (default) adds the candidate search of
    the measured MSE around the fixed point (module docstring), which closes the gap between the
    noise model's optimum and the empirical one (calibration.md: up to 1% on uniform data at 3
    bits).  The unrefined value is ``OctavResult.fixed_point``.  ``grid="paper"`` keeps to the
    paper's noise model throughout: no search of the real grid's MSE (the fixed point already
    minimizes the model), and the model's J(s), not the measured MSE, decides whether ``max|x|``
    is better.  ``backend="reference"`` runs the full-pass recursion on every group (the
    definition the binned path is tested against) with every statistic in plain Python and
    numpy, no numba: the group sums, the recursion's partial sums and the MSE measurements.
    Returns ``(clip, OctavResult)``.
    """
    check_backend(backend)
    q = grid_for(dtype, signed)
    c = q.constant(grid)
    groups = make_groups(x, axis, block_size)
    data = groups.data
    g = data.shape[0]
    bins = None
    if backend != "reference" and octav_bins.worthwhile(data.shape[1], data.dtype):
        bins = octav_bins.BinnedGroups(data, backend)
        nonzero, s_max, nz_min, mean_nonzero = bins.nonzero, bins.s_max, bins.nz_min, bins.mean_estimate
    else:
        nonzero = np.empty(g, np.int64)
        total, s_max, nz_min = np.empty(g), np.empty(g), np.empty(g)
        stats = _group_stats_reference if backend == "reference" else _group_stats.build(backend, data.size)
        stats(data, nonzero, total, s_max, nz_min)
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

    warm_iterations = 0
    if bins is not None:
        s, steps, converged, warm_steps = bins.recursion(s, c, tol, max_iter)
        converged |= nonzero == 0
        iterations, warm_iterations = int(steps.max()), int(warm_steps.max())
    else:
        converged = nonzero == 0
        iterations = 0
        before = np.full(g, -1.0)  # the iterate before s
        for iterations in range(1, max_iter + 1):
            new, _, big, _ = octav_step(data, s, c, backend)
            new = np.where((big == 0) & (nonzero > 0) & (s > 0), mean_nonzero, new)  # restart from 0
            change = np.abs(new - s)
            cycle = new == before
            done = (change <= tol * np.maximum(new, np.finfo(float).tiny)) | cycle
            new = np.where(cycle, np.minimum(new, s), new)
            before = np.where(converged, before, s)
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
    frozen = all_zero | constant
    if refine and grid != "paper":
        s = _refine(data, s, q, groups.counts, frozen, backend)
    emp, at_max = empirical_mse(data, np.stack([s, s_max], axis=1), q, groups.counts, backend).T
    if grid == "paper":  # the paper's model throughout: its J(s) decides between s and max|x|
        use_max = (modelled_mse(data, s_max, c, groups.counts, backend)
                   < modelled_mse(data, s, c, groups.counts, backend)) & ~frozen  # fmt: skip
    else:
        use_max = (at_max < emp) & ~frozen
    s = np.where(use_max, s_max, s)
    emp = np.where(use_max, at_max, emp)
    status[use_max] = "max_better"

    result = OctavResult(
        clip=to_param_shape(s, groups),
        fixed_point=to_param_shape(fixed_point, groups),
        iterations=iterations,
        warm_start_iterations=warm_iterations,
        converged=to_param_shape(converged | all_zero | constant, groups),
        status=to_param_shape(status, groups),
        modelled_mse=to_param_shape(modelled_mse(data, s, c, groups.counts, backend), groups),
        empirical_mse=to_param_shape(emp, groups),
        max_mse=to_param_shape(at_max, groups),
        grid=q,
    )
    return result.clip, result
