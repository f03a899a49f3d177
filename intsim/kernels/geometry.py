"""Convolution and pooling geometry, once for every frontend: output sizes, padding modes and
the windows of a pool.

``resolve_padding`` turns ``"VALID"``, ``"SAME"`` / ``"SAME_UPPER"`` (TFLite's SAME and ONNX's
SAME_UPPER: the odd pixel at the end), ``"SAME_LOWER"`` (at the beginning) or explicit pads into
(top, left, bottom, right); ``same_pads`` is the per-axis rule behind it (TFLite
``ComputePaddingHeightWidth``, ONNX ``auto_pad``); ``output_size`` the output extent of one axis.
``windows`` yields, for each kernel offset, the input values under it at every output position
of an N-D pool, with a fill value outside the input.
"""

from __future__ import annotations

import math

import numpy as np

PADDING_MODES = ("VALID", "SAME", "SAME_UPPER", "SAME_LOWER")


def output_size(size: int, k: int, stride: int, dilation: int, before: int, after: int) -> int:
    extent = (k - 1) * dilation + 1
    out = (size + before + after - extent) // stride + 1
    if out <= 0:
        raise ValueError(
            f"the filter (extent {extent}) does not fit an input of {size} with padding "
            f"({before}, {after})"
        )
    return out


def resolve_padding(padding, in_hw, kernel_hw, strides, dilations) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``"VALID"``, ``"SAME"`` (= ``"SAME_UPPER"``: TFLite and
    ONNX put the odd pixel at the end), ``"SAME_LOWER"``, or explicit (top, left, bottom, right)
    (ONNX ``pads`` order)."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES} or 4 integers, got {padding!r}")
        if mode == "VALID":
            return 0, 0, 0, 0
        (top, bottom), (left, right) = (same_pads(size, k, s, d, lower=mode == "SAME_LOWER")
                                        for size, k, s, d in zip(in_hw, kernel_hw, strides, dilations, strict=True))
        return top, left, bottom, right
    p = tuple(int(v) for v in padding)
    if len(p) != 4:
        raise ValueError(f"explicit padding takes 4 integers (top, left, bottom, right), got {padding!r}")
    if min(p) < 0:
        raise ValueError(f"padding must not be negative, got {p}")
    return p


def same_pads(size: int, k: int, stride: int, dilation: int = 1, lower: bool = False) -> tuple[int, int]:
    """(before, after) padding of one axis for SAME: output ``ceil(size / stride)``, the total
    padding split with the odd pixel after (``lower=False``) or before (``lower=True``)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    before = total - total // 2 if lower else total // 2
    return before, total - before


def windows(x, kernel, out, begin, strides, fill):
    """For each kernel offset (row-major), the input values under it at every output position
    (``x`` in N, C, spatial... layout), with ``fill`` outside the input, and whether it was
    inside."""
    n = len(kernel)
    spatial = x.shape[2:]
    pad_lo = [max(0, b) for b in begin]
    pad_hi = [max(0, (o - 1) * s + k - b - d) for o, s, k, b, d in zip(out, strides, kernel, begin, spatial, strict=True)]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(pad_lo, pad_hi, strict=True)), constant_values=fill)
    inside = np.pad(np.ones(spatial, bool), list(zip(pad_lo, pad_hi, strict=True)))
    for offset in np.ndindex(*kernel):
        sl = tuple(slice(pad_lo[i] - begin[i] + offset[i], pad_lo[i] - begin[i] + offset[i] + (out[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(n))  # fmt: skip
        yield xp[(slice(None), slice(None)) + sl], inside[sl]
