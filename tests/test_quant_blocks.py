"""MX block formats (OCP MX v1.0 scale rules), NVFP4 and VS-Quant, against transliterations."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intsim import formats as F
from intsim import quant as Q

ELEMENT = {"mxfp8_e4m3": ("float8_e4m3fn", 8, 448.0), "mxfp8_e5m2": ("float8_e5m2", 15, 57344.0),
           "mxfp6_e3m2": ("float6_e3m2fn", 4, 28.0), "mxfp6_e2m3": ("float6_e2m3fn", 2, 7.5),
           "mxfp4": ("float4_e2m1fn", 2, 6.0)}  # fmt: skip


def exact_floor_log2(v: float) -> int:
    f = Fraction(v)
    e = f.numerator.bit_length() - f.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > f else e


def exact_ceil_log2(v: Fraction) -> int:
    e = exact_floor_log2(v)
    return e if Fraction(2) ** e == Fraction(v) else e + 1


def ocp_block(values, fmt, rule):
    """Transliteration of the OCP MX v1.0 quantization of one block (section 6.3)."""
    element, emax, max_elem = ELEMENT[fmt]
    amax = max(abs(v) for v in values)
    if amax == 0:
        e = -127
    elif rule == "floor":
        e = exact_floor_log2(amax) - emax
    elif rule == "ceil":
        e = exact_ceil_log2(Fraction(amax)) - emax
    else:  # rceil
        e = exact_ceil_log2(Fraction(amax) / Fraction(max_elem))
    e = max(-127, min(127, e))
    scaled = np.array([math.ldexp(v, -e) for v in values])
    return e + 127, F.encode(scaled, element, saturate=True)


@pytest.mark.parametrize("rule", ["floor", "ceil", "rceil"])
@pytest.mark.parametrize("fmt", list(ELEMENT))
@given(data=st.data())
def test_mx_matches_ocp_transliteration(fmt, rule, data):
    vals = data.draw(st.lists(st.one_of(
        st.floats(-1e4, 1e4, width=32), st.sampled_from([0.0, 7.9999995, 8.0, 960.0, 957.0, -448.0, 1e-30])),
        min_size=32, max_size=32))  # fmt: skip
    x = np.array(vals, np.float32)
    scales, elements = Q.mx_quantize(x, fmt, scale_rounding=rule)
    want_scale, want_elements = ocp_block([float(v) for v in x], fmt, rule)
    assert scales.tolist() == [want_scale]
    np.testing.assert_array_equal(elements, want_elements)


def test_ocp_example_block_max_960():
    x = np.zeros(32, np.float32)
    x[0], x[1] = 960.0, 957.0
    scales, elements = Q.mx_quantize(x, "mxfp8_e4m3")
    assert scales.tolist() == [128]  # 2**1
    values = Q.mx_dequantize(scales, elements, "mxfp8_e4m3")
    assert values[0] == 896.0 and values[1] == 896.0  # clipped to 448 * 2 by design
    rceil, _ = Q.mx_quantize(x, "mxfp8_e4m3", scale_rounding="rceil")
    assert rceil.tolist() == [129]  # ceil(log2(960 / 448)) = 2: no clipping


def test_exponent_read_from_bits_not_log2():
    x = np.zeros(32, np.float32)
    x[0] = np.float32(7.9999995)
    assert np.log2(np.float32(7.9999995)) == np.float32(3.0)  # the float32 log2 trap
    scales, _ = Q.mx_quantize(x, "mxfp4")
    assert scales.tolist() == [127 + 2 - 2]  # floor(log2) is 2, emax 2


def test_even_rounds_amax_to_the_element_width():
    x = np.zeros(32, np.float32)
    x[0] = 7.9  # rounds to 8.0 at E2M1's 1 mantissa bit: floor(log2(8)) - 2 = 1
    assert Q.mx_quantize(x, "mxfp4", scale_rounding="even")[0].tolist() == [128]
    assert Q.mx_quantize(x, "mxfp4", scale_rounding="floor")[0].tolist() == [127]


def test_mxint8_and_special_blocks():
    x = np.zeros((2, 32), np.float32)
    x[0, :3] = [1.0, -0.5, 1.99]
    x[1, 0] = np.nan
    scales, el = Q.mx_quantize(x, "mxint8")
    assert scales.tolist() == [[127], [255]]
    assert el[0, :3].tolist() == [64, -32, 127]
    y = Q.mx_dequantize(scales, el, "mxint8")
    assert y[0, :3].tolist() == [1.0, -0.5, 127 / 64] and np.all(np.isnan(y[1]))
    zeros, _ = Q.mx_quantize(np.zeros(32, np.float32), "mxfp8_e4m3")
    assert zeros.tolist() == [0]


def test_mx_axis_and_short_last_block():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    scales, el = Q.mx_quantize(x, "mxfp6_e2m3", axis=0)
    assert scales.shape == (2, 3) and el.shape == (40, 3)
    y = Q.mx_dequantize(scales, el, "mxfp6_e2m3", axis=0)
    for col in range(3):
        s1, e1 = Q.mx_quantize(x[:, col], "mxfp6_e2m3")
        np.testing.assert_array_equal(y[:, col], Q.mx_dequantize(s1, e1, "mxfp6_e2m3"))


def test_mx_bad_input():
    with pytest.raises(ValueError, match="MX format"):
        Q.mx_quantize(np.zeros(32), "mxfp3")
    with pytest.raises(ValueError, match="scale_rounding"):
        Q.mx_quantize(np.zeros(32), scale_rounding="round")
    with pytest.raises(ValueError, match="block_size"):
        Q.mx_quantize(np.zeros(32), block_size=0)


def test_nvfp4():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    g, bs, el = Q.nvfp4_quantize(x)
    assert g == np.float32(np.abs(x).max()) / np.float32(2688.0)
    assert bs.shape == (4, 4) and el.shape == (4, 64)
    # transliteration of one block
    f32 = np.float32
    block = x[1, 16:32]
    s_code = F.encode(np.array([f32(np.abs(block).max()) / f32(6) / g], f32), "float8_e4m3fn", saturate=True)
    assert bs[1, 1] == s_code[0]
    s = F.decode(s_code, "float8_e4m3fn")[0]
    want = F.encode((block / (s * g)).astype(f32), "float4_e2m1fn", saturate=True)
    np.testing.assert_array_equal(el[1, 16:32], want)
    y = Q.nvfp4_dequantize(g, bs, el)
    assert np.all(np.abs(y - x) <= 0.5 * np.repeat(F.decode(bs, "float8_e4m3fn"), 16, axis=1) * g * 2 + 1e-7)
    with pytest.raises(ValueError, match="finite"):
        Q.nvfp4_quantize(np.array([np.inf], np.float32))


def test_vsquant_two_level_scales():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 64)) * np.linspace(0.1, 2, 8)[:, None]
    q, k, gamma = Q.vsquant_quantize(w, dtype="int4", vector_size=16, scale_bits=4)
    assert q.shape == w.shape and k.shape == (8, 4) and gamma.shape == (8,)
    assert q.min() >= -7 and q.max() <= 7 and k.min() >= 1 and k.max() <= 15
    # transliteration for one vector
    c, v = 5, 2
    vec = w[c, 16 * v : 16 * (v + 1)]
    s_v = np.abs(w[c].reshape(4, 16)).max(axis=1) / 7
    g = np.float32(s_v.max() / 15)
    assert gamma[c] == g
    kk = np.clip(np.rint(s_v[v] / np.float64(g)), 1, 15)
    assert k[c, v] == kk
    np.testing.assert_array_equal(q[c, 16 * v : 16 * (v + 1)], np.clip(np.rint(vec / (np.float64(g) * kk)), -7, 7))
    y = Q.vsquant_dequantize(q, k, gamma, vector_size=16)
    per_tensor = Q.dequantize(Q.quantize(w, np.abs(w).max() / 7, dtype="int4"), np.abs(w).max() / 7)
    assert np.mean((y - w) ** 2) < np.mean((per_tensor - w) ** 2)
    with pytest.raises(ValueError, match="signed integer"):
        Q.vsquant_quantize(w, dtype="uint4")
