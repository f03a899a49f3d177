"""Helpers shared by the format tests: ml_dtypes types and edge-value generators."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from intsim import formats as F

SMALL_FLOATS = [
    "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
    "float8_e4m3", "float8_e3m4", "float8_e4m3b11fnuz", "float8_e8m0fnu", "float6_e2m3fn",
    "float6_e3m2fn", "float4_e2m1fn",
]  # fmt: skip
SMALL_INTS = ["int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16"]


def ml_type(name: str):
    return getattr(ml_dtypes, name, None) or np.dtype(name).type


def ml_codes(x: np.ndarray, name: str) -> np.ndarray:
    """ml_dtypes' codes for ``x`` (its astype), as unsigned integers, upper bits masked."""
    fmt = F.get(name)
    with np.errstate(all="ignore"):
        y = np.asarray(x).astype(ml_type(name))
    raw = y.view(np.uint8 if y.dtype.itemsize == 1 else np.uint16)
    return raw & ((1 << fmt.bits) - 1)


def finite_values(name: str) -> np.ndarray:
    """Every distinct finite value of a <= 16-bit format, sorted, float64."""
    table = F.get(name).table(np.float64)
    v = table[np.isfinite(table)]
    return np.unique(v)


def edge_values(name: str) -> np.ndarray:
    """Every code value, every midpoint between neighbours, both +-1 float32 ulp, the overflow
    boundaries, zeros, infinities and NaN, all as float32 (every one exactly representable)."""
    fmt = F.get(name)
    v = finite_values(name)
    mids = (v[:-1] + v[1:]) / 2
    top = fmt.max + (fmt.max - v[-2]) / 2  # the overflow midpoint
    beyond = np.array([top, 2 * fmt.max, fmt.max * 1.5])
    beyond = beyond[beyond <= np.finfo(np.float32).max]
    base = np.concatenate([v, mids, beyond]).astype(np.float32)
    assert np.all(base[: v.size + mids.size] == np.concatenate([v, mids])), "midpoint not float32"
    inf = np.float32(np.inf)
    near = np.concatenate([np.nextafter(base, inf), np.nextafter(base, -inf)])
    signed = np.concatenate([base, near])
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.float32(3.4028235e38), 1e-45], np.float32)
    out = np.concatenate([signed, -signed, specials]).astype(np.float32)
    return out[np.isfinite(out) | np.isinf(out)]


def random_float32(count: int, seed: int) -> np.ndarray:
    """``count`` uniformly random float32 bit patterns (every class: NaN, inf, subnormal)."""
    bits = np.random.default_rng(seed).integers(0, 2**32, size=count, dtype=np.uint64)
    return bits.astype(np.uint32).view(np.float32)
