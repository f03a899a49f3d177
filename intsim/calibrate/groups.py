"""Grouping for calibration: which elements share one clipping scalar, and the quantizer grid.

Groups: the whole tensor (``axis=None``), every index along ``axis`` (per channel), or blocks of
``block_size`` along ``axis`` (blocked, and per-vector VS-Quant when ``axis`` is the reduction
axis).  A short last block is padded with zeros: zeros quantize exactly, and every statistic
here either ignores them (OCTAV's counts) or divides by the true element count.

Grid (``QuantGrid``): symmetric calibration uses the narrow signed range ``+-(2**(B-1) - 1)``
with ``scale = s / (2**(B-1) - 1)`` for signed data and ``[0, 2**B - 1]`` with
``scale = s / (2**B - 1)`` for unsigned data, as TFLite weights, TensorRT and ai-edge-quantizer
do (``shared/reference/calibration.md``).  Any width from 2 to 16 bits is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from intsim import formats
from intsim.formats.spec import IntFormat


@dataclass(frozen=True)
class QuantGrid:
    bits: int
    signed: bool

    def __post_init__(self):
        if not 2 <= self.bits <= 16:
            raise ValueError(f"calibration takes 2 to 16 bits, got {self.bits}")

    @property
    def qmax(self) -> int:
        """Largest level: ``2**(B-1) - 1`` (signed, narrow) or ``2**B - 1`` (unsigned)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def qmin(self) -> int:
        return -self.qmax if self.signed else 0

    def constant(self, kind: str) -> float:
        """OCTAV's discretization constant ``c`` in ``J = c s^2 P(0<|X|<=s) + ...``:
        ``"exact"``: ``1 / (12 qmax^2)`` (the step is ``s / qmax``); ``"paper"``: ``4**-B / 3``
        signed, ``4**-B / 12`` unsigned (Sakr et al. 2022)."""
        if kind == "exact":
            return 1.0 / (12.0 * self.qmax**2)
        if kind == "paper":
            return 4.0**-self.bits / (3.0 if self.signed else 12.0)
        raise ValueError(f"grid must be 'exact' or 'paper', got {kind!r}")

    def scale(self, clip) -> np.ndarray:
        return np.asarray(clip, np.float64) / self.qmax


def grid_for(dtype, signed: bool | None = None) -> QuantGrid:
    """The grid of ``dtype``: a format name (``"int4"``), or ``"intB"``/``"uintB"`` for any B."""
    match = re.fullmatch(r"(u?)int(\d+)", str(dtype))
    if match:
        bits, is_signed = int(match.group(2)), not match.group(1)
    else:
        fmt = formats.get(dtype)
        if not isinstance(fmt, IntFormat):
            raise ValueError(f"calibration targets integer grids; {fmt.name} is not one")
        bits, is_signed = fmt.bits, fmt.signed
    return QuantGrid(bits, is_signed if signed is None else bool(signed))


@dataclass
class Groups:
    """``data`` (G, n) float32 or float64 with zero padding, ``counts`` (G,) true element counts, and how to
    put per-group results back into the shape a ``QuantParams`` scale takes."""

    data: np.ndarray
    counts: np.ndarray
    param_shape: tuple
    axis: int | None
    block_size: int | None


def make_groups(x, axis: int | None = None, block_size: int | None = None) -> Groups:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"calibration data must be real numbers, got dtype {a.dtype}")
    # float32 data stays float32 (exact, half the memory traffic); everything else is widened
    a = a.astype(np.float32 if a.dtype in (np.float32, np.float16) else np.float64, copy=False)
    if a.size == 0:
        raise ValueError("calibration data is empty")
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a.reshape(-1)))[0])
        raise ValueError(f"calibration data holds NaN or inf (first at flat index {bad})")
    if axis is None:
        if block_size is not None:
            raise ValueError("block_size needs axis=")
        return Groups(a.reshape(1, -1), np.array([a.size]), (), None, None)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis={axis} is out of range for data of {a.ndim} dimensions")
    axis %= a.ndim
    if block_size is None:
        moved = np.moveaxis(a, axis, 0)
        return Groups(moved.reshape(moved.shape[0], -1), np.full(moved.shape[0], moved[0].size),
                      (a.shape[axis],), axis, None)  # fmt: skip
    if not isinstance(block_size, int | np.integer) or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    moved = np.moveaxis(a, axis, -1)
    length = moved.shape[-1]
    nblocks = -(-length // block_size)
    padded = np.zeros(moved.shape[:-1] + (nblocks * block_size,), a.dtype)
    padded[..., :length] = moved
    data = padded.reshape(-1, block_size)
    counts = np.full((data.shape[0] // nblocks, nblocks), block_size)
    counts[:, -1] = length - (nblocks - 1) * block_size
    scale_shape = list(a.shape)
    scale_shape[axis] = nblocks
    return Groups(data, counts.reshape(-1), tuple(scale_shape), axis, block_size)


def to_param_shape(values: np.ndarray, groups: Groups) -> np.ndarray:
    """Per-group values in the shape of the matching ``QuantParams`` scale."""
    if groups.axis is None:
        return values.reshape(())
    if groups.block_size is None:
        return values.reshape(groups.param_shape)
    shape = list(groups.param_shape)
    nblocks = shape[groups.axis]
    moved = values.reshape(tuple(np.delete(shape, groups.axis)) + (nblocks,))
    return np.moveaxis(moved, -1, groups.axis)
