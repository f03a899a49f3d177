"""``calibrate``: one entry point from data to ``QuantParams``, and streaming observers.

Every method yields symmetric parameters on the calibration grid (``QuantGrid``): zero point 0,
``scale = clip / qmax`` (narrow signed range for signed formats, ``[0, 2**B - 1]`` for unsigned
ones).  A clip of 0 (an all-zero group) becomes scale 1.0, as onnxruntime substitutes for
degenerate ranges, so no scale is ever 0 or NaN.
"""

from __future__ import annotations

import numpy as np

from intsim.calibrate.groups import grid_for
from intsim.calibrate.methods import (
    clip_aciq,
    clip_entropy,
    clip_max,
    clip_mse,
    clip_percentile,
    entropy_threshold,
)
from intsim.calibrate.octav import octav
from intsim.quant.params import QuantParams

METHODS = ("octav", "max", "percentile", "mse", "entropy", "aciq")


def clip_for(x, method: str = "octav", *, dtype="int8", signed=None, axis=None, block_size=None, **options):
    """Clipping scalar(s) of ``method`` (see ``METHODS``); ``options`` go to the method."""
    common = dict(axis=axis, block_size=block_size)
    if method == "octav":
        return octav(x, dtype=dtype, signed=signed, **common, **options)[0]
    if method == "max":
        return clip_max(x, **common)
    if method == "percentile":
        return clip_percentile(x, options.pop("percentile", 99.99), **common)
    if method == "mse":
        return clip_mse(x, dtype=dtype, signed=signed, **common, **options)
    if method == "entropy":
        return clip_entropy(x, dtype=dtype, signed=signed, **common, **options)
    if method == "aciq":
        return clip_aciq(x, dtype=dtype, signed=signed, **common, **options)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def params_from_clip(clip, dtype="int8", *, signed=None, axis=None, block_size=None, storage=None) -> QuantParams:
    """Symmetric ``QuantParams`` on the calibration grid for clipping scalar(s) ``clip``.

    ``storage`` names the integer type the levels are stored in (default: the grid's own, or the
    smallest named type holding a custom width).  A grid stored in a type of the other
    signedness is offset by the zero point: a signed grid in unsigned storage centres on
    ``2**(S-1)`` (``[1, 255]`` for int8 levels in uint8), an unsigned grid in signed storage
    starts at ``-2**(S-1)`` (``[-128, 127]`` for uint8 levels in int8, TFLite's zero point -128
    after a ReLU).  A narrower grid keeps its levels; only the zero point moves.
    """
    grid = grid_for(dtype, signed)
    name = f"{'int' if grid.signed else 'uint'}{grid.bits}"
    name = name if name in _NAMED else _closest(grid)
    zero = 0
    if storage is not None:
        store = grid_for(storage)
        if store.bits < grid.bits:
            raise ValueError(f"storage {storage} has fewer bits than the {grid.bits}-bit grid")
        if store.signed != grid.signed:
            zero = (1 << (store.bits - 1)) * (-1 if store.signed else 1)
        name = f"{'int' if store.signed else 'uint'}{store.bits}"
        if name not in _NAMED:
            raise ValueError(f"storage must be a named integer type ({', '.join(sorted(_NAMED))}), got {storage!r}")
    c = np.asarray(clip, np.float64)
    scale = np.where(c > 0, c / grid.qmax, 1.0).astype(np.float32)
    return QuantParams(
        scale, np.full(scale.shape, zero, np.int64), name,
        axis=axis if scale.ndim else None, block_size=block_size,
        narrow_range=grid.signed and name.startswith("int"), symmetric=zero == 0,
    )  # fmt: skip


_NAMED = {"int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16"}


def _closest(grid) -> str:
    """The smallest named integer format holding a custom-width grid's levels."""
    for bits in (2, 4, 8, 16):
        if grid.bits <= bits:
            return f"{'int' if grid.signed else 'uint'}{bits}"
    raise AssertionError


def calibrate(x, method: str = "octav", *, dtype="int8", signed=None, axis=None, block_size=None,
              storage=None, **options) -> QuantParams:  # fmt: skip
    """Calibrate ``x`` with ``method`` on the grid of ``dtype`` (``signed`` overrides its
    signedness) and return ``QuantParams`` in ``storage`` (see ``params_from_clip``)."""
    clip = clip_for(x, method, dtype=dtype, signed=signed, axis=axis, block_size=block_size, **options)
    return params_from_clip(clip, dtype, signed=signed, axis=axis, block_size=block_size, storage=storage)


# ---- streaming observers (bounded memory over many batches) ---------------------------------------


class HistogramObserver:
    """Accumulates an exact int64 histogram of |x| over batches (per tensor).

    Bins keep the width set by the first batch (``max|x| / bins``); a later batch with a larger
    maximum extends the histogram with more bins of the same width (pytorch-quantization's
    rule), so memory grows with the range, not with the number of batches.  Counts are int64,
    never float32 (which stops counting at 2**24 per bin).
    """

    def __init__(self, bins: int = 2048):
        self.bins = bins
        self.top = self.width = 0.0  # the first nonzero batch's max |x| and bin width
        self.hist = np.zeros(0, np.int64)
        self.count = 0

    def update(self, batch) -> None:
        a = np.abs(np.asarray(batch, np.float64)).reshape(-1)
        if not np.all(np.isfinite(a)):
            raise ValueError("batch holds NaN or inf")
        if a.size == 0:
            return
        top = float(a.max())
        if self.width == 0.0:
            if top == 0.0:
                self.hist = np.zeros(max(self.hist.size, 1), np.int64)
                self.hist[0] += a.size
                self.count += a.size
                return
            self.top, self.width = top, top / self.bins
            self.hist = np.pad(self.hist, (0, self.bins - self.hist.size))
        needed = max(self.hist.size, int(np.ceil(top / self.top * self.bins)))
        if needed > self.hist.size:
            self.hist = np.pad(self.hist, (0, needed - self.hist.size))
        # the index of ``abs_histogram`` (``clip_entropy``), so that one batch gives its histogram
        idx = np.minimum((a / self.top * self.bins).astype(np.int64), self.hist.size - 1)
        self.hist += np.bincount(idx, minlength=self.hist.size)
        self.count += a.size

    def percentile(self, percentile: float = 99.99) -> float:
        """The upper edge of the bin where the cumulative count reaches ``percentile``."""
        cum = np.cumsum(self.hist)
        k = int(np.searchsorted(cum, percentile / 100 * self.count))
        return (k + 1) * self.width

    def entropy(self, dtype="int8", signed=None) -> float:
        grid = grid_for(dtype, signed)
        levels = 1 << (grid.bits - 1 + int(not grid.signed))
        return entropy_threshold(self.hist, self.width, levels) if self.width else 0.0


class OctavObserver:
    """Streaming OCTAV: the paper's average of per-batch optimal clipping scalars."""

    def __init__(self, dtype="int8", *, signed=None, axis=None, **options):
        self.dtype, self.signed, self.axis, self.options = dtype, signed, axis, options
        self.total = None
        self.batches = 0

    def update(self, batch) -> None:
        clip = octav(batch, dtype=self.dtype, signed=self.signed, axis=self.axis, **self.options)[0]
        self.total = clip.astype(np.float64) if self.total is None else self.total + clip
        self.batches += 1

    @property
    def clip(self) -> np.ndarray:
        if not self.batches:
            raise ValueError("no batch observed yet")
        return self.total / self.batches

    def params(self) -> QuantParams:
        return params_from_clip(self.clip, self.dtype, signed=self.signed, axis=self.axis)

