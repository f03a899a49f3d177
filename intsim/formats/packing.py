"""Packing of 4-bit and 2-bit codes into bytes, in the order ONNX and TFLite share.

4-bit: element ``2i`` in the low nibble of byte ``i``, element ``2i+1`` in the high nibble; an odd
count leaves the last high nibble zero.  2-bit: four per byte, element ``4i`` in the lowest two
bits.  Codes are the unsigned codes of ``intsim.formats.encode`` (two's complement for signed
formats), so packing never sees a sign.
"""

from __future__ import annotations

import numpy as np

PACKABLE_BITS = (2, 4)


def _check_bits(bits: int) -> int:
    if bits not in PACKABLE_BITS:
        raise ValueError(f"bits must be one of {PACKABLE_BITS}, got {bits!r}")
    return 8 // bits


def pack(codes, bits: int) -> np.ndarray:
    """Pack codes (any shape, flattened in C order) of ``bits`` bits into a uint8 array."""
    per_byte = _check_bits(bits)
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got {c.dtype}")
    flat = c.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= (1 << bits)):
        bad = int(np.flatnonzero((flat < 0) | (flat >= (1 << bits)))[0])
        raise ValueError(
            f"code {flat[bad]} at flat index {bad} does not fit in {bits} bits; "
            f"encode signed values to their unsigned codes first"
        )
    padded = np.zeros(-(-flat.size // per_byte) * per_byte, np.uint8)
    padded[: flat.size] = flat
    lanes = padded.reshape(-1, per_byte)
    out = np.zeros(lanes.shape[0], np.uint8)
    for lane in range(per_byte):
        out |= lanes[:, lane] << np.uint8(lane * bits)
    return out


def unpack(data, bits: int, count: int) -> np.ndarray:
    """The first ``count`` codes of ``bits`` bits packed in ``data`` (uint8), as a uint8 array."""
    per_byte = _check_bits(bits)
    d = np.asarray(data)
    if d.dtype != np.uint8:
        raise ValueError(f"packed data must be uint8, got {d.dtype}")
    d = d.reshape(-1)
    if count < 0 or count > d.size * per_byte:
        raise ValueError(
            f"count={count} does not fit: {d.size} byte(s) hold at most {d.size * per_byte} "
            f"{bits}-bit codes"
        )
    mask = np.uint8((1 << bits) - 1)
    lanes = [(d >> np.uint8(lane * bits)) & mask for lane in range(per_byte)]
    return np.stack(lanes, axis=1).reshape(-1)[:count].copy()


def unpack_values(data, fmt: str, count: int) -> np.ndarray:
    """The first ``count`` values of the 4- or 2-bit integer format ``fmt`` (``"int4"``,
    ``"uint4"``, ``"int2"``, ``"uint2"``) packed in ``data``: signed formats sign-extended into
    int8, unsigned ones as uint8, ready for the integer kernels."""
    widths = {"int4": (4, True), "uint4": (4, False), "int2": (2, True), "uint2": (2, False)}
    if fmt not in widths:
        raise ValueError(f"fmt must be one of {tuple(widths)}, got {fmt!r}")
    bits, signed = widths[fmt]
    codes = unpack(data, bits, count)
    if not signed:
        return codes
    shift = np.uint8(8 - bits)
    return ((codes << shift).view(np.int8) >> np.int8(8 - bits)).astype(np.int8)
