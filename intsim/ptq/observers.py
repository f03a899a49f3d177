"""Streaming observers: one clipping scalar per tensor from many batches, in bounded memory.

Each observer sees the batches one at a time and keeps only a summary:

=============================  ==================================================================
``max``                        the running maximum of ``|x|``: exactly ``clip_max`` of all the data
``entropy``                    one int64 histogram of ``|x|`` (``HistogramObserver``), TensorRT's
                               rule; on one batch exactly ``clip_entropy``
``octav``, ``mse``,            the mean of the per-batch clipping scalars, the OCTAV paper's rule
``percentile``, ``aciq``       for streaming (Sakr et al. 2022, section 4); on one batch exactly
                               what ``calibrate`` returns
=============================  ==================================================================

So with the calibration data in one batch every tensor's parameters are exactly
``intsim.calibrate(tensor, method, ...)``; with more batches they follow the rule above.  The
grid's signedness is fixed before the batches arrive (``signed``); the model quantizers take it
from a first pass that records each tensor's minimum (``RangeObserver``).
"""

from __future__ import annotations

import numpy as np

from intsim.calibrate.api import METHODS, HistogramObserver, clip_for, params_from_clip

AVERAGED = ("octav", "mse", "percentile", "aciq")


def check_method(method: str, options: dict) -> None:
    """``method`` is one of ``METHODS`` and ``options`` are among the keywords it takes."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    allowed = {"octav": {"grid", "tol", "max_iter", "init", "refine", "backend"}, "max": set(),
               "percentile": {"percentile"}, "mse": {"candidates", "backend"},
               "entropy": {"bins"}, "aciq": {"dist"}}[method]  # fmt: skip
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(sorted(unknown))} "
                         f"(it takes: {', '.join(sorted(allowed)) or 'none'})")  # fmt: skip


class RangeObserver:
    """The running minimum and maximum of a tensor (the first pass: the grid's signedness)."""

    def __init__(self):
        self.min, self.max = np.inf, -np.inf

    def update(self, batch) -> None:
        a = np.asarray(batch)
        if a.size:
            if not np.all(np.isfinite(a)):
                raise ValueError("holds NaN or inf")
            self.min, self.max = min(self.min, float(a.min())), max(self.max, float(a.max()))

    @property
    def signed(self) -> bool:
        return self.min < 0


class ClipObserver:
    """One tensor's clipping scalar under ``method`` on the ``bits``-bit grid (see the module)."""

    def __init__(self, method: str, bits: int, signed: bool, **options):
        check_method(method, options)
        self.method, self.options = method, options
        self.dtype, self.signed = f"int{bits}", signed
        self.total, self.batches = 0.0, 0
        self.histogram = HistogramObserver(**options) if method == "entropy" else None  # bins=

    def update(self, batch) -> None:
        x = np.asarray(batch).reshape(-1)  # in its own precision: calibrate sees the same array
        if x.size == 0:
            return
        if self.method == "max":
            self.total = max(self.total, float(np.abs(x).max()))
        elif self.method == "entropy":
            self.histogram.update(x)
        else:
            self.total += float(clip_for(x, self.method, dtype=self.dtype, signed=self.signed, **self.options))
        self.batches += 1

    @property
    def clip(self) -> float:
        if not self.batches:
            raise ValueError("no batch observed")
        if self.method == "entropy":
            return self.histogram.entropy(self.dtype, self.signed)
        return self.total / self.batches if self.method in AVERAGED else self.total

    def params(self, storage: str):
        """``QuantParams`` of the clip on this grid, stored in ``storage``."""
        return params_from_clip(self.clip, self.dtype, signed=self.signed, storage=storage)


def observe(stream, method: str, bits: int, *, all_signed: bool = False, describe=str, progress=None,
            **options) -> tuple[dict, dict, int]:  # fmt: skip
    """Both passes over the calibration data: ``stream()`` yields, for each batch, the float
    tensors of the model by key; returns ``(ranges, clips, batches)`` by key.  The first pass
    fixes each grid's signedness (``all_signed``: every grid signed, as int16 TFLite needs),
    the second feeds the ``ClipObserver``s (``max`` needs no second pass).  ``describe(key)``
    names a tensor in errors; ``progress(stage, batches)`` is called after each batch."""
    ranges: dict = {}
    count = 0
    for count, values in enumerate(stream(), 1):
        for key, v in values.items():
            try:
                ranges.setdefault(key, RangeObserver()).update(v)
            except ValueError as e:
                raise ValueError(f"{describe(key)} of the float model {e} on the calibration data") from None
        if progress:
            progress("ranges", count)
    ranges = {k: r for k, r in ranges.items() if r.min <= r.max}
    clips = {k: ClipObserver(method, bits, r.signed or all_signed, **options) for k, r in ranges.items()}
    if method == "max":  # the first pass has it: max |x| = max(|min|, |max|)
        for k, r in ranges.items():
            clips[k].update(np.array([r.min, r.max]))
        return ranges, clips, count
    for i, values in enumerate(stream(), 1):
        for key, v in values.items():
            if key in clips:
                clips[key].update(v)
        if progress:
            progress(f"{method} observers", i)
    return ranges, clips, count
