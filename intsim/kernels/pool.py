"""Integer average pooling as TFLite's ``reference_integer_ops::AveragePool`` computes it.

For every output position: the sum of the taps that lie inside the image (padding taps are left
out, not counted as zeros), divided by their count rounded half away from zero with integer
division (``acc > 0 ? (acc + n/2) / n : (acc - n/2) / n`` in C, truncating), then clamped to the
fused activation range.  NHWC.  ``backend="reference"`` is the loop nest in Python ints.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel


def _round_div(acc: int, n: int) -> int:
    """C's ``(acc > 0 ? acc + n/2 : acc - n/2) / n`` with truncating division."""
    num = acc + n // 2 if acc > 0 else acc - n // 2
    q = abs(num) // n
    return q if num >= 0 else -q


@kernel
def _average_pool_kernel(x, kh, kw, sh, sw, pad_t, pad_l, lo, hi, out):
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    empty = 0
    for t in prange(n * oh):
        b = t // oh
        oy = t - b * oh
        for ox in range(ow):
            y0, x0 = oy * sh - pad_t, ox * sw - pad_l
            ya, yb = max(y0, 0), min(y0 + kh, h)
            xa, xb = max(x0, 0), min(x0 + kw, w)
            count = max(yb - ya, 0) * max(xb - xa, 0)
            if count == 0:
                empty += 1
                continue
            for ch in range(c):
                acc = 0
                for iy in range(ya, yb):
                    for ix in range(xa, xb):
                        acc += np.int64(x[b, iy, ix, ch])
                num = acc + count // 2 if acc > 0 else acc - count // 2
                q = abs(num) // count
                q = q if num >= 0 else -q
                out[b, oy, ox, ch] = min(max(q, lo), hi)
    return empty


def average_pool(x, *, filter_hw, stride_hw, pad_tl, out_hw, clamp, backend: str = "jit") -> np.ndarray:
    """Average pool of NHWC integer ``x`` (module docstring); returns int64 (N, OH, OW, C).
    ``pad_tl``: the (top, left) padding; a window wholly outside the image is an error."""
    check_backend(backend)
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype.kind not in "iu":
        raise ValueError(f"average_pool takes a 4-D integer NHWC array, got {x.dtype} {x.shape}")
    (kh, kw), (sh, sw), (pad_t, pad_l), (oh, ow) = filter_hw, stride_hw, pad_tl, out_hw
    lo, hi = (int(v) for v in clamp)
    n, h, w, c = x.shape
    out = np.empty((n, oh, ow, c), np.int64)
    if backend == "reference":
        empty = 0
        for b in range(n):
            for oy in range(oh):
                for ox in range(ow):
                    taps = [(iy, ix) for iy in range(oy * sh - pad_t, oy * sh - pad_t + kh)
                            for ix in range(ox * sw - pad_l, ox * sw - pad_l + kw) if 0 <= iy < h and 0 <= ix < w]  # fmt: skip
                    if not taps:
                        empty += 1
                        continue
                    for ch in range(c):
                        acc = sum(int(x[b, iy, ix, ch]) for iy, ix in taps)
                        out[b, oy, ox, ch] = min(max(_round_div(acc, len(taps)), lo), hi)
    else:
        empty = _average_pool_kernel.build(backend, out.size * kh * kw)(np.ascontiguousarray(x), kh, kw, sh, sw, pad_t, pad_l, lo, hi, out)
    if empty:
        raise ValueError("a pooling window lies wholly outside the input")
    return out
