"""Format parameters against the table in shared/reference/formats.md and ml_dtypes.finfo."""

import math

import ml_dtypes
import numpy as np
import pytest

from intsim import formats as F

# name: (max finite, max code, min normal, min subnormal) from formats.md
TABLE = {
    "float16": (65504.0, 0x7BFF, 2**-14, 2**-24),
    "bfloat16": (3.3895313892515355e38, 0x7F7F, 2**-126, 2**-133),
    "float8_e4m3fn": (448.0, 0x7E, 2**-6, 2**-9),
    "float8_e5m2": (57344.0, 0x7B, 2**-14, 2**-16),
    "float8_e4m3": (240.0, 0x77, 2**-6, 2**-9),
    "float8_e3m4": (15.5, 0x6F, 2**-2, 2**-6),
    "float8_e4m3fnuz": (240.0, 0x7F, 2**-7, 2**-10),
    "float8_e5m2fnuz": (57344.0, 0x7F, 2**-15, 2**-17),
    "float8_e4m3b11fnuz": (30.0, 0x7F, 2**-10, 2**-13),
    "float8_e8m0fnu": (2.0**127, 0xFE, 2**-127, None),
    "float6_e2m3fn": (7.5, 0x1F, 1.0, 0.125),
    "float6_e3m2fn": (28.0, 0x1F, 0.25, 0.0625),
    "float4_e2m1fn": (6.0, 0x7, 1.0, 0.5),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_parameters_match_reference_table(name):
    fmt = F.get(name)
    max_finite, max_code, min_normal, min_sub = TABLE[name]
    assert fmt.max == max_finite
    assert fmt.max_mag_code == max_code
    assert fmt.value(max_code) == max_finite
    assert fmt.min_normal == min_normal
    assert fmt.min_subnormal == min_sub


@pytest.mark.parametrize("name", list(TABLE) + ["float32"])
def test_parameters_match_ml_dtypes_finfo(name):
    fmt = F.get(name)
    info = ml_dtypes.finfo(getattr(ml_dtypes, name, None) or np.dtype(name))
    assert fmt.max == float(info.max)
    assert fmt.min_normal == float(info.smallest_normal)
    assert fmt.bits == info.bits
    assert fmt.man_bits == info.nmant
    assert fmt.exp_bits == info.nexp


@pytest.mark.parametrize(
    "name, lo, hi",
    [("int2", -2, 1), ("uint2", 0, 3), ("int4", -8, 7), ("uint4", 0, 15), ("int8", -128, 127),
     ("uint8", 0, 255), ("int16", -32768, 32767), ("uint16", 0, 65535),
     ("int32", -(2**31), 2**31 - 1)],
)  # fmt: skip
def test_integer_ranges(name, lo, hi):
    fmt = F.get(name)
    assert (fmt.min, fmt.max) == (lo, hi)
    assert fmt.value(fmt.code(lo)) == lo and fmt.value(fmt.code(hi)) == hi


def test_special_codes():
    e4m3fn, e5m2, fnuz = F.get("float8_e4m3fn"), F.get("float8_e5m2"), F.get("float8_e4m3fnuz")
    assert math.isnan(e4m3fn.value(0x7F)) and math.isnan(e4m3fn.value(0xFF))
    assert e4m3fn.value(0x80) == 0 and math.copysign(1, e4m3fn.value(0x80)) == -1
    assert e5m2.value(0x7C) == math.inf and e5m2.value(0xFC) == -math.inf
    assert [math.isnan(e5m2.value(c)) for c in (0x7D, 0x7E, 0x7F)] == [True] * 3
    assert math.isnan(fnuz.value(0x80)) and fnuz.nan_code(True) == 0x80
    assert not fnuz.has_negative_zero
    e8m0 = F.get("float8_e8m0fnu")
    assert e8m0.value(0) == 2.0**-127 and math.isnan(e8m0.value(0xFF)) and not e8m0.has_zero


def test_custom_minifloats():
    e3m2_finite = F.minifloat(3, 2, specials="none", name="e3m2_no_nan")
    assert e3m2_finite.max == 28.0 and not e3m2_finite.has_nan
    five_bit = F.minifloat(2, 2, specials="none")
    assert five_bit.bits == 5 and five_bit.max == 7.0 and five_bit.min_subnormal == 0.25
    codes = F.encode(np.array([0.3, -6.9, 100.0]), five_bit)
    assert F.decode(codes, five_bit).tolist() == [0.25, -7.0, 7.0]
    F.register(e3m2_finite)
    assert F.get("e3m2_no_nan") is e3m2_finite


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(exp_bits=0, man_bits=3), "exp_bits"), (dict(exp_bits=3, man_bits=0), "IEEE"),
     (dict(exp_bits=3, man_bits=2, specials="odd"), "specials"),
     (dict(exp_bits=3, man_bits=2, signed=False, specials="none"), "unsigned")],
)  # fmt: skip
def test_bad_format_definitions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.minifloat(**kwargs)


def test_unknown_name_lists_known_formats():
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        F.get("float7")
