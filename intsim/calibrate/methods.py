"""The calibration methods OCTAV is compared with, per group like ``octav``.

``clip_max``         ``max |x|``
``clip_percentile``  the ``p``-th percentile of ``|x|``, exact (numpy's linear interpolation
                     between order statistics of the true elements; no histogram)
``clip_mse``         brute force: the empirical MSE on ``candidates`` clipping values
                     ``k / candidates * max|x|`` (k = 1..candidates), the ground truth OCTAV
                     approximates
``clip_entropy``     TensorRT's KL-divergence calibration (pytorch-quantization
                     ``calib/histogram.py``): 2048-bin histogram of |x| on [0, max|x|], bin 0
                     set to bin 1's count, for every threshold bin i in [128, 2048]: P = the first
                     i bins with the clipped mass added to the last, Q = those bins merged into
                     128 levels (256 unsigned) and spread evenly over each level's non-empty bins;
                     the i minimizing KL(P || Q), the largest among ties; threshold = i * width
``clip_aciq``        the analytical optimum of Banner et al. (NeurIPS 2019) for a Gaussian
                     (sigma) or Laplace (b) fit, minimizing their noise model numerically
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel
from intsim.calibrate.groups import grid_for, make_groups, to_param_shape
from intsim.calibrate.mse import empirical_mse

ENTROPY_BINS = 2048


def clip_max(x, *, axis=None, block_size=None) -> np.ndarray:
    g = make_groups(x, axis, block_size)
    return to_param_shape(np.abs(g.data).max(axis=1), g)


def clip_percentile(x, percentile: float = 99.99, *, axis=None, block_size=None) -> np.ndarray:
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    g = make_groups(x, axis, block_size)
    absx = np.abs(g.data)
    out = np.empty(absx.shape[0])
    for i, (row, n) in enumerate(zip(absx, g.counts, strict=True)):
        out[i] = np.percentile(row[:n], percentile)  # only the true elements, never padding
    return to_param_shape(out, g)


def clip_mse(x, *, dtype="int8", signed=None, axis=None, block_size=None, candidates: int = 1000,
             backend: str = "jit") -> np.ndarray:  # fmt: skip
    """Brute-force MSE sweep over ``k / candidates * max|x|``; returns the best candidate.
    Every candidate is measured with ``empirical_mse``, the exact arithmetic ``octav`` reports,
    16 candidates per pass over the data."""
    check_backend(backend)
    q = grid_for(dtype, signed)
    g = make_groups(x, axis, block_size)
    smax = np.abs(g.data).max(axis=1)
    cand = smax[:, None] * (np.arange(1, candidates + 1) / candidates)[None, :]
    mse = np.concatenate([empirical_mse(g.data, cand[:, j : j + 16], q, g.counts, backend)
                          for j in range(0, candidates, 16)], axis=1)  # fmt: skip
    best = cand[np.arange(cand.shape[0]), np.argmin(mse, axis=1)]
    return to_param_shape(np.where(smax > 0, best, 0.0), g)


# ---- entropy (TensorRT KL) ------------------------------------------------------------------------


def abs_histogram(values: np.ndarray, bins: int, top: float) -> np.ndarray:
    """Exact int64 counts of |values| in ``bins`` equal bins on [0, top] (the last bin closed)."""
    a = np.abs(values)
    if top <= 0:
        counts = np.zeros(bins, np.int64)
        counts[0] = a.size
        return counts
    idx = np.minimum((a / top * bins).astype(np.int64), bins - 1)
    return np.bincount(idx, minlength=bins).astype(np.int64)


@kernel
def _kl_kernel(hist, levels, start, divergences):
    """KL(P || Q) for every threshold bin i in [start, len(hist)] (see the module docstring)."""
    nbins = hist.size
    total_hist = 0.0
    for v in hist:
        total_hist += v
    for i in prange(start, nbins + 1):
        clipped = 0.0
        for j in range(i, nbins):
            clipped += hist[j]
        # Q: merge the first i bins into `levels` levels, spread over each level's non-empty bins
        level_sum = np.zeros(levels)
        level_nonempty = np.zeros(levels)
        for j in range(i):
            lvl = min(int(j * levels / i), levels - 1)  # np.digitize(j, linspace(0, i, levels+1)) - 1
            if hist[j] != 0:
                level_sum[lvl] += hist[j]
                level_nonempty[lvl] += 1.0
        q_total = 0.0
        for j in range(i):
            lvl = min(int(j * levels / i), levels - 1)
            if hist[j] != 0:
                q_total += level_sum[lvl] / level_nonempty[lvl]
        p_total = 0.0
        for j in range(i):
            p_total += hist[j]
        p_total += clipped
        kl = 0.0
        for j in range(i):
            p = hist[j] + (clipped if j == i - 1 else 0.0)
            if p == 0.0:
                continue
            lvl = min(int(j * levels / i), levels - 1)
            qv = level_sum[lvl] / level_nonempty[lvl] if hist[j] != 0 else 0.0
            if qv == 0.0:
                kl = np.inf
                break
            kl += (p / p_total) * np.log((p / p_total) / (qv / q_total))
        divergences[i - start] = kl


def entropy_threshold(hist: np.ndarray, width: float, levels: int = 128, start: int = 128) -> float:
    """The KL-optimal threshold of an |x| histogram whose bins are ``width`` wide; thresholds
    start at bin 128 whatever the bit width, as in TensorRT / pytorch-quantization."""
    h = hist.astype(np.float64).copy()
    if h.size < 2:
        return width * h.size
    h[0] = h[1]
    start = min(start, h.size)
    divergences = np.empty(h.size - start + 1)
    _kl_kernel.parallel(h, levels, start, divergences)
    last_argmin = divergences.size - 1 - int(np.argmin(divergences[::-1]))
    return (last_argmin + start) * width


def clip_entropy(x, *, dtype="int8", signed=None, axis=None, block_size=None,
                 bins: int = ENTROPY_BINS) -> np.ndarray:  # fmt: skip
    """TensorRT's entropy calibration per group (128 levels signed, 256 unsigned)."""
    q = grid_for(dtype, signed)
    levels = 1 << (q.bits - 1 + int(not q.signed))
    g = make_groups(x, axis, block_size)
    out = np.empty(g.data.shape[0])
    for i, (row, n) in enumerate(zip(g.data, g.counts, strict=True)):
        top = float(np.abs(row[:n]).max())
        hist = abs_histogram(row[:n], bins, top)
        out[i] = entropy_threshold(hist, top / bins, levels) if top > 0 else 0.0
    return to_param_shape(out, g)


# ---- ACIQ ---------------------------------------------------------------------------------------


def aciq_mse(alpha: float, bits: int, dist: str, spread: float = 1.0) -> float:
    """Banner et al.'s noise model: clipping error of the fitted density plus ``alpha^2 / (3 4^M)``."""
    a = alpha / spread
    if dist == "laplace":
        clip = 2.0 * math.exp(-a)
    elif dist == "gaussian":
        phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        tail = 0.5 * math.erfc(a / math.sqrt(2))
        clip = 2.0 * ((1 + a * a) * tail - a * phi)
    else:
        raise ValueError(f"dist must be 'gaussian' or 'laplace', got {dist!r}")
    return spread**2 * (clip + a * a / (3.0 * 4.0**bits))


def aciq_alpha(bits: int, dist: str, spread: float = 1.0) -> float:
    """The minimizer of ``aciq_mse`` (golden-section search; the model is unimodal)."""
    lo, hi = 0.0, 40.0 * spread
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if aciq_mse(m1, bits, dist, spread) < aciq_mse(m2, bits, dist, spread):
            hi = m2
        else:
            lo = m1
    return (lo + hi) / 2


def clip_aciq(x, *, dtype="int8", signed=None, axis=None, block_size=None, dist: str = "gaussian") -> np.ndarray:
    """ACIQ's analytical clip from a Gaussian (sigma = RMS) or Laplace (b = mean |x|) fit."""
    q = grid_for(dtype, signed)
    g = make_groups(x, axis, block_size)
    absx = np.abs(g.data)
    spread = np.sqrt((absx**2).sum(axis=1) / g.counts) if dist == "gaussian" else absx.sum(axis=1) / g.counts
    out = np.array([aciq_alpha(q.bits, dist, float(sp)) if sp > 0 else 0.0 for sp in spread])
    return to_param_shape(out, g)

