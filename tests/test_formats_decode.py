"""Decode: every code of every format of at most 16 bits against ml_dtypes, every backend."""

import math

import ml_dtypes
import numpy as np
import pytest
from _formats_util import SMALL_FLOATS, SMALL_INTS, ml_type
from conftest import ALL_BACKENDS

from intsim import formats as F


def all_codes(fmt):
    return np.arange(1 << fmt.bits, dtype=np.uint16 if fmt.bits > 8 else np.uint8)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_exhaustive_decode_matches_ml_dtypes(name, backend):
    fmt = F.get(name)
    codes = all_codes(fmt)
    if backend == "reference" and fmt.bits > 8:
        codes = codes[::7]  # the pure-Python decoder is slow; the jit paths see every code
    expected = codes.view(ml_type(name)) if fmt.bits in (8, 16) else None
    if expected is None:  # fp6/fp4: one element per byte, upper bits zero
        expected = codes.astype(np.uint8).view(ml_type(name))
    for dtype in (np.float32, np.float64):
        got = F.decode(codes, fmt, dtype=dtype, backend=backend)
        with np.errstate(invalid="ignore"):  # ml_dtypes warns when it widens NaN codes
            want = expected.astype(dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(got[ok], want[ok])
        np.testing.assert_array_equal(np.signbit(got[ok]), np.signbit(want[ok]))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", SMALL_INTS)
def test_exhaustive_integer_decode(name, backend):
    fmt = F.get(name)
    codes = all_codes(fmt)
    got = F.decode(codes, fmt, dtype=np.float64, backend=backend)
    if fmt.bits < 8:  # ml_dtypes sub-byte ints read the low bits of a byte
        want = codes.astype(np.uint8).view(ml_type(name)).astype(np.float64)
    else:
        want = codes.view(np.dtype(name)).astype(np.float64)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_wide_formats_decode(backend):
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=4096, dtype=np.uint64).astype(np.uint32)
    bits[:6] = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x00000001, 0x7F7FFFFF]
    got = F.decode(bits, "float32", dtype=np.float64, backend=backend)
    with np.errstate(invalid="ignore"):  # signalling NaNs warn when numpy widens them
        want = bits.view(np.float32).astype(np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(want)], want[~np.isnan(want)])
    got32 = F.decode(bits, "int32", dtype=np.float64, backend=backend)
    np.testing.assert_array_equal(got32, bits.view(np.int32).astype(np.float64))


def test_wide_custom_float_decode():
    e5m12 = F.minifloat(5, 12, specials="fn")  # 18 bits: the generic wide decoder
    codes = np.array([0, 1, 1 << 12, (1 << 17) - 1, (1 << 17) - 2, (1 << 18) - 1], np.uint32)
    got = F.decode(codes, e5m12, dtype=np.float64)
    ref = [e5m12.value(int(c)) for c in codes]
    assert [math.isnan(g) for g in got] == [math.isnan(r) for r in ref]
    assert [g for g in got if not math.isnan(g)] == [r for r in ref if not math.isnan(r)]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", ["float4_e2m1fn", "float6_e2m3fn", "int4", "float8_e4m3fn"])
def test_stray_bits_raise(name, backend):
    fmt = F.get(name)
    codes = np.array([1, 1 << fmt.bits], np.uint16)
    with pytest.raises(ValueError, match="bits"):
        F.decode(codes, fmt, backend=backend)


def test_stray_bit_is_the_ml_dtypes_sign_trap():
    # 0x17 read by ml_dtypes as float4_e2m1fn is -6.0; intsim refuses it.
    assert float(np.array([0x17], np.uint8).view(ml_dtypes.float4_e2m1fn)[0]) == -6.0
    with pytest.raises(ValueError, match="first at flat index 0"):
        F.decode(np.array([0x17], np.uint8), "float4_e2m1fn")


def test_decode_rejects_bad_arguments():
    with pytest.raises(ValueError, match="integer array"):
        F.decode(np.array([1.0]), "float8_e4m3fn")
    with pytest.raises(ValueError, match="float32 or float64"):
        F.decode(np.array([1], np.uint8), "float8_e4m3fn", dtype=np.float16)
    with pytest.raises(ValueError, match="negative|bits"):
        F.decode(np.array([-1]), "int8")
    with pytest.raises(ValueError, match="backend"):
        F.decode(np.array([1], np.uint8), "int8", backend="gpu")


def test_decode_keeps_shape():
    codes = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert F.decode(codes, "float8_e4m3fn").shape == (2, 3, 4)
