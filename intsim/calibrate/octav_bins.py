"""OCTAV's recursion on large groups, exactly, in about two passes over the data.

Each OCTAV update needs ``sum(|x| ; |x| > s)`` and ``count(|x| > s)`` for the current ``s``.  A
full pass per update costs as much as the whole answer is worth on a 10**6-element tensor, so for
large groups:

1. ``_histogram``: one pass counts ``|x|`` per bin, binned by the top bits of its float encoding
   (sign dropped, exponent plus 4 mantissa bits: 16 bins per octave, monotone in the value, no
   range needed first), and finds per group the exact max, min non-zero |x| and number of zeros.
2. ``_warm_start``: the recursion runs on the histogram alone (bin sums taken from the bin
   midpoints, the bin holding ``s`` split by linear interpolation) from the requested start
   until it settles: microseconds, approximate.
3. ``_gather``: one pass copies the elements of the bins around where it settled and sums |x|
   exactly over every element above them.
4. ``_exact``: the recursion continues from there, exactly: the elements above the gathered bins
   come from step 3's count and sum, those in them one by one.  An iterate that leaves the
   gathered bins is evaluated by a full pass over its group (correct, just slower).

The result is the recursion's fixed point to the same tolerance as the full-pass iteration of
``octav.octav_step``; the two differ only in float64 summation order and where inside the
tolerance they stop.  Sums are taken per (group, part) with ``parts`` fixed by the group size,
never by the thread count.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from intsim._jit import helper, kernel

MANTISSA_BITS = 4  # bins per octave: 2**4
WINDOW = 2  # bins gathered on each side of the warm start's bin
PART = 1 << 18  # elements per histogram part (parts are summed in order), at most MAX_PARTS
MAX_PARTS = 16


@functools.cache
def layout(dtype: np.dtype) -> tuple[type, int, int, np.ndarray]:
    """(integer view type, sign-clearing mask, shift, bin lower edges) for float32 or float64
    data.  Bin ``(bits & mask) >> shift`` holds the |x| with ``edges[b] <= |x| < edges[b + 1]``;
    the last edge is +inf (finite data never reaches it).  Computed once per dtype (read-only)."""
    view, mant = (np.int32, 23) if dtype == np.float32 else (np.int64, 52)
    shift = mant - MANTISSA_BITS
    inf_bin = int(np.array(np.inf, dtype).view(view)) >> shift
    edges = (np.arange(inf_bin + 1, dtype=view) << shift).view(dtype).astype(np.float64)
    edges.flags.writeable = False
    return view, int(np.iinfo(view).max), shift, edges


def worthwhile(n: int, dtype: np.dtype) -> bool:
    """Histogram path when a group has at least 8 elements per bin (float32: 32640)."""
    return n >= 8 * (layout(dtype)[3].size - 1)


@helper
def _bin(code, mask, shift):
    """The bin of one float encoding (read as a signed integer): sign dropped, top bits kept."""
    return (np.int64(code) & mask) >> shift


@helper
def _update(tot, big, nonzero, c):
    """OCTAV's update from the sum and count of |x| above s: tot / (c * count(0<|x|<=s) + big)."""
    denom = c * (nonzero - big) + big
    return tot / denom if denom > 0.0 else 0.0


@kernel
def _histogram(bits, mask, shift, parts, count, zeros, top, low):
    """Per (group, part): bin counts into four interleaved copies (count[t] holds 4 x bins;
    consecutive elements in one bin would otherwise wait on each other's increment), then the
    zeros and the largest and smallest non-zero |x| as encodings (integer reductions)."""
    n = bits.shape[1]
    nb = count.shape[1] // 4
    for t in prange(bits.shape[0] * parts):
        g = t // parts
        p = t - g * parts
        row = bits[g, n * p // parts : n * (p + 1) // parts]
        cnt = count[t]
        i = 0
        while i + 4 <= row.size:
            cnt[_bin(row[i], mask, shift)] += 1
            cnt[nb + _bin(row[i + 1], mask, shift)] += 1
            cnt[2 * nb + _bin(row[i + 2], mask, shift)] += 1
            cnt[3 * nb + _bin(row[i + 3], mask, shift)] += 1
            i += 4
        for j in range(i, row.size):
            cnt[_bin(row[j], mask, shift)] += 1
        z = 0
        hi_code = 0
        lo_code = mask
        for j in range(row.size):
            code = np.int64(row[j]) & mask
            z += code == 0
            hi_code = max(hi_code, code)
            lo_code = min(lo_code, code if code != 0 else mask)
        zeros[t] = z
        top[t] = hi_code
        low[t] = lo_code


@kernel
def _warm_start(edges, count, total, cnt_above, sum_above, nonzero, mean_nz, s0, c, tol, max_iter,
                out, iterations):  # fmt: skip
    """The recursion on the histogram: inside the bin holding s, count and sum are taken as the
    fraction of the bin above s (linear interpolation)."""
    nb = count.shape[1]
    for g in prange(count.shape[0]):
        s = s0[g]
        it = 0
        for it in range(1, max_iter + 1):
            b = min(np.searchsorted(edges, s, side="right") - 1, nb - 1)
            frac = (edges[b + 1] - s) / (edges[b + 1] - edges[b]) if edges[b + 1] < np.inf else 0.0
            big = cnt_above[g, b + 1] + frac * count[g, b]
            tot = sum_above[g, b + 1] + frac * total[g, b]
            new = _update(tot, big, nonzero[g], c)
            if big < 0.5 and nonzero[g] > 0 and s > 0.0:
                new = mean_nz[g]
            done = abs(new - s) <= tol * max(new, 2.2250738585072014e-308)
            s = new
            if done:
                break
        out[g] = s
        iterations[g] = it


@kernel
def _gather(bits, x, mask, shift, parts, lo_bin, hi_bin, offsets, out, above):
    """Per part: copy |x| of the elements in bins [lo_bin[g], hi_bin[g]] to out[offsets[t]:],
    and sum |x| over the bins above them into above[t]."""
    n = bits.shape[1]
    for t in prange(bits.shape[0] * parts):
        g = t // parts
        p = t - g * parts
        k = offsets[t]
        acc = 0.0
        for i in range(n * p // parts, n * (p + 1) // parts):
            b = _bin(bits[g, i], mask, shift)
            if b > hi_bin[g]:
                acc += abs(np.float64(x[g, i]))
            elif b >= lo_bin[g]:
                out[k] = abs(np.float64(x[g, i]))
                k += 1
        above[t] = acc


@helper
def _above_full(x, g, s):
    """count and sum of |x| > s over the whole of group g: a full pass."""
    big = 0
    tot = 0.0
    for i in range(x.shape[1]):
        a = abs(np.float64(x[g, i]))
        if a > s:
            big += 1
            tot += a
    return big, tot


@kernel
def _exact(x, edges, lo_bin, hi_bin, window, start, cnt_window_above, sum_window_above, nonzero, s0,
           c, tol, max_iter, out, iterations, converged):  # fmt: skip
    """OCTAV's recursion from s0, each update exact (see the module docstring)."""
    for g in prange(x.shape[0]):
        s = s0[g]
        before = -1.0
        it = 0
        done = False
        for it in range(1, max_iter + 1):
            b = np.searchsorted(edges, s, side="right") - 1
            if lo_bin[g] <= b <= hi_bin[g]:
                big = cnt_window_above[g]
                tot = sum_window_above[g]
                for i in range(start[g], start[g + 1]):
                    if window[i] > s:
                        big += 1
                        tot += window[i]
            else:  # outside the gathered bins
                big, tot = _above_full(x, g, s)
            if big == 0 and nonzero[g] > 0 and s > 0.0:
                big, tot = _above_full(x, g, 0.0)  # nothing above s: the update from 0
            new = _update(tot, big, nonzero[g], c)
            cycle = new == before  # a 2-cycle (octav's module docstring): stop at the smaller
            done = abs(new - s) <= tol * max(new, 2.2250738585072014e-308) or cycle
            before = s
            s = min(new, s) if cycle else new
            if done:
                break
        out[g] = s
        iterations[g] = it
        converged[g] = done


def _suffix(a: np.ndarray) -> np.ndarray:
    """out[:, b] = sum of a[:, b:], with a trailing zero column."""
    out = np.zeros((a.shape[0], a.shape[1] + 1), a.dtype)
    out[:, :-1] = np.cumsum(a[:, ::-1], axis=1)[:, ::-1]
    return out


class BinnedGroups:
    """The histogram of step 1 for every group of ``data`` (G, n) float32/float64.  Exact: counts,
    ``nonzero``, ``s_max``, ``nz_min``.  Estimated from bin midpoints (warm start only):
    ``mean_estimate``, the mean non-zero |x|."""

    def __init__(self, data: np.ndarray, backend: str):
        self.data, self.backend = data, backend
        view, self.mask, self.shift, self.edges = layout(data.dtype)
        self.bits = data.view(view)
        groups, n = data.shape
        self.parts = max(1, min(n // PART, MAX_PARTS))
        nb = self.edges.size - 1
        t = groups * self.parts
        count = np.zeros((t, 4 * nb), np.int64)
        zeros, top, low = np.empty(t, np.int64), np.empty(t, np.int64), np.empty(t, np.int64)
        _histogram.build(backend)(self.bits, self.mask, self.shift, self.parts, count, zeros, top, low)
        self.part_count = count.reshape(groups, self.parts, 4, nb).sum(axis=2)
        self.count = self.part_count.sum(axis=1)
        self.cnt_above = _suffix(self.count)
        self.nonzero = n - zeros.reshape(groups, self.parts).sum(axis=1)
        codes = np.stack([top.reshape(groups, self.parts).max(axis=1), low.reshape(groups, self.parts).min(axis=1)])
        self.s_max, self.nz_min = codes.astype(view).view(data.dtype).astype(np.float64)
        self.nz_min = np.where(self.nonzero > 0, self.nz_min, np.inf)
        width = np.diff(self.edges)
        width[-1] = width[-2]
        self.estimate = self.count * (self.edges[:-1] + width / 2)  # bin sums from midpoints
        self.sum_estimate = _suffix(self.estimate)
        self.mean_estimate = self.sum_estimate[:, 0] / np.maximum(self.nonzero, 1)

    def recursion(self, s0, c, tol, max_iter):
        """Steps 2-4: (fixed point, exact iterations, converged, warm-start iterations)."""
        groups = self.data.shape[0]
        warm, warm_iters = np.empty(groups), np.empty(groups, np.int64)
        _warm_start.build(self.backend)(self.edges, self.count.astype(np.float64), self.estimate,
                                        self.cnt_above.astype(np.float64), self.sum_estimate,
                                        self.nonzero, self.mean_estimate, s0, c, tol, max_iter, warm, warm_iters)  # fmt: skip
        nb = self.edges.size - 1
        centre = np.minimum(np.searchsorted(self.edges, warm, side="right") - 1, nb - 1)
        lo_bin, hi_bin = np.maximum(centre - WINDOW, 0), np.minimum(centre + WINDOW, nb - 1)
        bins = np.arange(nb)[None, :]
        in_window = (bins >= lo_bin[:, None]) & (bins <= hi_bin[:, None])
        per_part = (self.part_count * in_window[:, None, :]).sum(axis=2).reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(per_part)])
        window, above = np.empty(int(offsets[-1])), np.empty(groups * self.parts)
        _gather.build(self.backend)(self.bits, self.data, self.mask, self.shift, self.parts, lo_bin, hi_bin,
                                    offsets[:-1].copy(), window, above)  # fmt: skip
        start = np.ascontiguousarray(offsets[:: self.parts])
        sum_window_above = above.reshape(groups, self.parts).sum(axis=1)
        cnt_window_above = self.cnt_above[np.arange(groups), hi_bin + 1]
        s, iters, conv = np.empty(groups), np.empty(groups, np.int64), np.empty(groups, np.bool_)
        _exact.build(self.backend)(self.data, self.edges, lo_bin, hi_bin, window, start, cnt_window_above,
                                   sum_window_above, self.nonzero, warm, c, tol, max_iter, s, iters, conv)  # fmt: skip
        return s, iters, conv, warm_iters
