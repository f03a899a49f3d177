"""The vectorized gemmlowp fixed-point math against scalar Python-int transliterations of
google/gemmlowp fixedpoint/fixedpoint.h, and TFLite Micro's fixed-point int8 LOGISTIC/TANH (no
TFLM interpreter exists in Python, so the transliteration is the peer)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _tflite_util import T, single_op
from hypothesis import given
from hypothesis import strategies as st

import intsim.tflite as itf
from intsim.fixedpoint import gemmlowp as g

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def wrap(v):
    return (v + 2**31) % 2**32 - 2**31


def c_div(a, b):  # C division truncates toward zero
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm(a, b):
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    return c_div(ab + (2**30 if ab >= 0 else 1 - 2**30), 2**31)


def rdbpot(x, e):
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def srmpot(x, e):
    if e > 0:
        t = (1 << (31 - e)) - 1
        return I32_MAX if x > t else I32_MIN if x < -t else x << e
    return rdbpot(x, -e) if e < 0 else x


def exp_quarter(a):
    x = wrap(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = srmpot(wrap(srdhm(wrap(srmpot(x4, -2) + x3), 715827883) + x2), -1)
    return wrap(1895147668 + srdhm(1895147668, wrap(x + poly)))


def exp_neg(a, ib):
    fb = 31 - ib
    quarter = 1 << (fb - 2)
    a_mod = wrap((a & (quarter - 1)) - quarter)
    r = exp_quarter(srmpot(a_mod, ib))
    rem = wrap(a_mod - a)
    for k, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if ib > k and rem & (1 << (fb + k)):
            r = srdhm(r, m)
    if ib > 5 and a < -(1 << (36 - ib)):
        r = 0
    return I32_MAX if a == 0 else r


def newton(a):
    s = a + I32_MAX
    half = c_div(s + (1 if s >= 0 else -1), 2)
    x = wrap(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        x = wrap(x + srmpot(srdhm(x, wrap((1 << 29) - srdhm(half, x))), 2))
    return x


def one_over_one_plus_x(a):
    return srmpot(newton(a), 1)


def logistic(a, ib):
    if a == 0:
        return 1 << 30
    pos = one_over_one_plus_x(exp_neg(wrap(-abs(a)) if a != I32_MIN else I32_MIN, ib))
    return pos if a > 0 else wrap(I32_MAX - pos)


def tanh(a, ib):
    if a == 0:
        return 0
    n = a if a < 0 else wrap(-a)
    t = srmpot(wrap(newton(exp_neg(n, ib + 1)) - (1 << 29)), 2)
    return wrap(-t) if a < 0 else t


int32s = st.one_of(
    st.integers(I32_MIN, I32_MAX),
    st.sampled_from([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX, 2**30, -(2**30), 1 << 28, -(1 << 28)]),
    st.integers(-40, 40).map(lambda k: (1 << abs(k) % 31) * (1 if k >= 0 else -1)),
)
negatives = st.one_of(st.integers(I32_MIN, 0), st.sampled_from([I32_MIN, -1, 0, -(1 << 26), -(1 << 27)]))


@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=50))
def test_srdhm_and_rdbpot(pairs):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert g.srdhm(a, b).tolist() == [srdhm(x, y) for x, y in pairs]
    e = np.abs(b) % 32
    assert g.rdbpot(a, e).tolist() == [rdbpot(x, int(k)) for x, k in zip(a.tolist(), e.tolist(), strict=True)]


@pytest.mark.parametrize("ib", [0, 4, 5, 6, 12])
@given(xs=st.lists(negatives, min_size=1, max_size=50))
def test_exp_on_negative_values(ib, xs):
    assert g.exp_on_negative_values(np.array(xs), ib).tolist() == [exp_neg(x, ib) for x in xs]


@given(st.lists(st.integers(0, I32_MAX), min_size=1, max_size=50))
def test_one_over_one_plus_x(xs):
    got = g.one_over_one_plus_x_for_x_in_0_1(np.array(xs))
    assert got.tolist() == [one_over_one_plus_x(x) for x in xs]
    np.testing.assert_allclose(got / 2.0**31, 1 / (1 + np.array(xs) / 2.0**31), atol=1e-8)


@pytest.mark.parametrize("ib", [3, 4])
@given(xs=st.lists(int32s, min_size=1, max_size=50))
def test_logistic_and_tanh(ib, xs):
    v = np.array(xs)
    assert g.logistic(v, ib).tolist() == [logistic(x, ib) for x in xs]
    assert g.tanh(v, ib).tolist() == [tanh(x, ib) for x in xs]
    real = v / 2.0 ** (31 - ib)
    np.testing.assert_allclose(g.logistic(v, ib) / 2.0**31, 1 / (1 + np.exp(-real)), atol=1e-6)
    np.testing.assert_allclose(g.tanh(v, ib) / 2.0**31, np.tanh(real), atol=1e-6)


def tflm_activation_int8(x, input_scale, input_zp, name):
    """tflite-micro logistic_common.cc / tanh.cc prepare + reference_integer_ops::Logistic/Tanh
    (int8), one value at a time in Python ints."""
    m, left_shift = math.frexp(float(np.float32(input_scale)) * 2.0**27)
    q = int(math.floor(abs(m) * 2**31 + 0.5))
    radius = math.floor(15 * 2.0**27 / 2.0**left_shift)
    v = int(x) - input_zp
    if v <= -radius:
        return -128
    if v >= radius:
        return 127
    q4 = srdhm(wrap(v * (1 << left_shift)), q)  # MBQM double rounding with a left shift
    if name == "LOGISTIC":
        return max(-128, min(127, rdbpot(logistic(q4, 4), 23) - 128))
    return max(-128, min(127, rdbpot(tanh(q4, 4), 24)))


@pytest.mark.parametrize("name", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("scale,zp", [(0.05, -10), (0.1, 0), (0.02, 60), (0.125, -128)])
def test_tflm_fixed_point_activations(name, scale, zp):
    out_q = (1 / 256, -128) if name == "LOGISTIC" else (1 / 128, 0)
    x = T("x", (256,), "INT8", scale=scale, zero_point=zp)
    model = single_op(name, [x], [T("y", (256,), "INT8", scale=out_q[0], zero_point=out_q[1])])
    values = np.arange(-128, 128, dtype=np.int8)
    (tflm,) = itf.run(model, values, profile="tflm")
    assert tflm.tolist() == [tflm_activation_int8(v, scale, zp, name) for v in values]
    (lut,) = itf.run(model, values, profile="tflite-reference")
    assert np.abs(tflm.astype(int) - lut).max() <= 1  # two roundings of the same function
