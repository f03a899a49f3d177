"""The accumulator model: width, wrap or saturate, reduction order, and the overflow report.

Deployed targets (ONNX, TFLite, TFLM) accumulate in int32 and wrap on overflow (two's
complement, as the hardware adds); int16x8 kernels accumulate in int64.  Custom hardware may
use narrower accumulators (16, 20, 24 bits) that wrap or saturate.

Wrapping is order-independent: the result is the exact sum reduced modulo ``2**bits``.
Saturation is not associative, so the model fixes the order: terms are added one at a time in
increasing reduction index, clamping after every addition.  For a matrix product that is
``k = 0 .. K-1``; for a convolution it is filter row, then filter column, then input channel
(TFLite's loop order).  Bias is added after the reduction (then wrapped or clamped once more).

``int16_pairs=True`` models x86's ``vpmaddubsw``, which onnxruntime's MLAS uses for uint8 x
int8 products on CPUs without VNNI (``onnxruntime/core/mlas/lib/qgemm_kernel_avx2.cpp``,
``MlasGemmU8S8KernelAvx2``; the AVX512BW kernel likewise): the raw products (before zero
points) are summed in adjacent pairs ``a[k]*b[k] + a[k+1]*b[k+1]`` (k even in the reduction
order) that saturate to int16 before the int32 sum (``intsim.kernels.pairs``).  It applies to
uint8 x int8 operands only; others accumulate as without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OVERFLOW_MODES = ("wrap", "saturate")


@dataclass(frozen=True)
class Accumulator:
    """``bits``-wide accumulator that ``overflow``s by wrapping or saturating."""

    bits: int = 32
    overflow: str = "wrap"
    int16_pairs: bool = False  # uint8 x int8 products summed in saturating int16 pairs first

    def __post_init__(self):
        if not 8 <= self.bits <= 64:
            raise ValueError(f"accumulator bits must be in [8, 64], got {self.bits}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"accumulator overflow must be one of {OVERFLOW_MODES}, got {self.overflow!r}")
        if self.int16_pairs and (self.bits, self.overflow) != (32, "wrap"):
            raise ValueError("int16_pairs models x86's vpmaddubsw into an int32 wrapping accumulator; "
                             f"it does not combine with a {self.bits}-bit {self.overflow} one")  # fmt: skip

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def wraps_int32(self) -> bool:
        """int32 wrapping (with or without int16 pairs): the int32 GEMM computes it."""
        return self.bits == 32 and self.overflow == "wrap"

    @property
    def is_native_int32(self) -> bool:
        """Plain int32 wrapping: the fast path (exact via the zero-point identity modulo 2**32)."""
        return self.wraps_int32 and not self.int16_pairs

    def wrap(self, v: int) -> int:
        span = 1 << self.bits
        return (v - self.min) % span + self.min

    def add(self, acc: int, term: int) -> tuple[int, bool]:
        """One reference accumulation step: (new value, whether it overflowed)."""
        v = acc + term
        if self.min <= v <= self.max:
            return v, False
        return (min(max(v, self.min), self.max) if self.overflow == "saturate" else self.wrap(v)), True

    def reduce(self, terms, bias: int = 0) -> tuple[int, bool]:
        """The reference reduction of Python-int ``terms`` (in order), then ``bias``: (value,
        flagged).  Wrap: the exact sum reduced once (the same as wrapping every step), flagged
        when it left the range.  Saturate: clamped after every addition, flagged when any
        clamp happened."""
        if self.overflow == "wrap":
            total = sum(terms) + bias
            return (total, False) if self.min <= total <= self.max else (self.wrap(total), True)
        acc, hit = 0, False
        for term in terms:
            acc, clamped = self.add(acc, term)
            hit |= clamped
        acc, clamped = self.add(acc, bias)
        return acc, hit or clamped


INT32 = Accumulator(32, "wrap")
INT64 = Accumulator(64, "wrap")


@dataclass
class OverflowReport:
    """Which outputs overflowed the accumulator (wrapped) or were clamped (saturated).

    ``count`` outputs out of ``total``; ``mask`` is True at each such output (shape of the
    accumulator array); ``checked`` is False when a static bound proved no overflow possible and
    nothing was computed twice.
    """

    accumulator: Accumulator
    total: int
    count: int = 0
    mask: np.ndarray | None = field(default=None, repr=False)
    checked: bool = True

    @property
    def positions(self) -> np.ndarray:
        """Indices of the affected outputs, one row each (``np.argwhere`` of ``mask``)."""
        if self.mask is None:
            return np.zeros((0, 0), np.int64)
        return np.argwhere(self.mask)

    def __str__(self) -> str:
        acc = self.accumulator
        what = "saturated" if acc.overflow == "saturate" else "wrapped"
        return f"{self.count} of {self.total} outputs {what} in a {acc.bits}-bit accumulator"


def worst_case_bound(max_abs_a: int, max_abs_b: int, k: int) -> int:
    """Largest |sum| a reduction of ``k`` products can reach (no overflow when below the range)."""
    return int(max_abs_a) * int(max_abs_b) * int(k)
