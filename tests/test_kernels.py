"""Kernels: reference == jit serial == jit parallel on hypothesis-generated edge-heavy cases;
the accumulator model; the float-reference error bound."""

import numpy as np
import pytest
from conftest import ALL_BACKENDS
from hypothesis import given
from hypothesis import strategies as st

from intsim import ops
from intsim import profiles as P
from intsim.kernels import Accumulator, accumulate_matmul
from intsim.kernels.conv import accumulate_conv2d

ACCUMULATORS = [Accumulator(32, "wrap"), Accumulator(16, "wrap"), Accumulator(16, "saturate"),
                Accumulator(20, "saturate"), Accumulator(24, "wrap"), Accumulator(64, "wrap")]  # fmt: skip
DTYPES = [np.int8, np.uint8]


@st.composite
def int_array(draw, dtype, shape):
    info = np.iinfo(dtype)
    style = draw(st.sampled_from(["random", "min", "max", "edges"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if style == "min":
        return np.full(shape, info.min, dtype)
    if style == "max":
        return np.full(shape, info.max, dtype)
    if style == "edges":
        return rng.choice([info.min, info.max, 0, 1, -1 if info.min < 0 else 2], shape).astype(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def zero_point(dtype):
    info = np.iinfo(dtype)
    return st.one_of(st.sampled_from([info.min, info.max, 0]), st.integers(info.min, info.max))


def all_agree(fn, **kwargs):
    results = [fn(backend=b, **kwargs) for b in ALL_BACKENDS]
    for acc, rep in results[1:]:
        np.testing.assert_array_equal(acc, results[0][0])
        assert rep.count == results[0][1].count
        if rep.count:
            np.testing.assert_array_equal(rep.mask, results[0][1].mask)
    return results[0]


@given(data=st.data())
def test_matmul_backends_agree(data):
    at, bt = data.draw(st.sampled_from(DTYPES)), data.draw(st.sampled_from(DTYPES))
    m, k, n = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 40)), data.draw(st.integers(1, 7))
    a = data.draw(int_array(at, (m, k)))
    b = data.draw(int_array(bt, (k, n)))
    za = data.draw(zero_point(at))
    zb = np.array(data.draw(st.lists(zero_point(bt), min_size=n, max_size=n)), np.int64)
    if data.draw(st.booleans()):
        zb = zb[:1]
    acc = data.draw(st.sampled_from(ACCUMULATORS))
    lo, hi = max(-(2**15), acc.min), min(2**15, acc.max)  # a bias must fit the accumulator
    bias = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), np.int64)
    all_agree(accumulate_matmul, a=a, b=b, a_zero_point=za, b_zero_point=zb, bias=bias, accumulator=acc)


@given(data=st.data())
def test_conv_backends_agree(data):
    xt = data.draw(st.sampled_from(DTYPES))
    groups = data.draw(st.sampled_from([1, 2, 3]))
    cg, og = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    h = data.draw(st.integers((kh - 1) * dil[0] + 1, 7))
    w_ = data.draw(st.integers((kw - 1) * dil[1] + 1, 7))
    x = data.draw(int_array(xt, (data.draw(st.integers(1, 2)), h, w_, groups * cg)))
    w = data.draw(int_array(np.int8, (groups * og, kh, kw, cg)))
    padding = data.draw(st.one_of(st.sampled_from(["SAME", "VALID", "SAME_LOWER"]),
                                  st.tuples(*[st.integers(0, 2)] * 4)))  # fmt: skip
    all_agree(
        accumulate_conv2d, x=x, w=w, x_zero_point=data.draw(zero_point(xt)),
        w_zero_point=data.draw(zero_point(np.int8)), strides=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))),
        dilations=dil, padding=padding, groups=groups, accumulator=data.draw(st.sampled_from(ACCUMULATORS)),
    )  # fmt: skip


def test_16_bit_accumulator_wraps_or_saturates_and_reports():
    a = np.full((2, 64), 127, np.int8)
    b = np.full((64, 3), 127, np.int8)
    b[:, 2] = 1  # column 2 stays in range: 64 * 127 = 8128
    exact = 64 * 127 * 127  # 1032256: far beyond int16
    wrapped, rep = accumulate_matmul(a, b, accumulator=Accumulator(16, "wrap"))
    assert wrapped[0, 0] == (exact + 2**15) % 2**16 - 2**15 and wrapped[0, 2] == 8128
    assert rep.count == 4 and rep.positions.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    saturated, rep = accumulate_matmul(a, b, accumulator=Accumulator(16, "saturate"))
    assert saturated[0, 0] == 2**15 - 1 and saturated[0, 2] == 8128 and rep.count == 4
    assert "4 of 6 outputs saturated in a 16-bit accumulator" == str(rep)
    exact32, rep = accumulate_matmul(a, b)
    assert exact32[0, 0] == exact and rep.count == 0 and not rep.checked  # a static bound proved it


def test_saturation_order_is_the_reduction_order():
    # +30000 then +30000 then -30000: saturating in order k gives 32767 - 30000 = 2767
    a = np.array([[1, 1, -1]], np.int8)
    b = np.array([[30000], [30000], [30000]], np.int16)
    acc, rep = accumulate_matmul(a.astype(np.int16), b, accumulator=Accumulator(16, "saturate"), backend="reference")
    assert acc.tolist() == [[2767]] and rep.count == 1
    for backend in ("jit", "jit-serial"):
        assert accumulate_matmul(a.astype(np.int16), b, accumulator=Accumulator(16, "saturate"), backend=backend)[0].tolist() == [[2767]]


def test_int32_overflow_wraps_like_onnx_and_is_reported():
    a = np.full((1, 70000), 255, np.uint8)
    b = np.full((70000, 1), 255, np.uint8)
    acc, rep = accumulate_matmul(a, b)
    assert acc[0, 0] == (70000 * 255 * 255 + 2**31) % 2**32 - 2**31 and rep.count == 1 and rep.checked


@pytest.mark.parametrize("profile", ["tflite-reference", "tflm", "tflm-single-rounding", "onnxruntime-cpu",
                                     "onnx-reference", "xnnpack"])  # fmt: skip
def test_dequantized_output_within_error_bound_of_float64(profile):
    """|(y - zp_y) - acc * M| <= 1 + |acc| * M * 2**-22 wherever y is not clamped: 1/2 from the
    final rounding, up to 1/2 more from a first rounding (SRDHM, float32 conversion), and the
    relative error of the multiplier (Q31, or float32 twice) on the exact value acc * M."""
    rng = np.random.default_rng(8)
    a = rng.integers(-128, 128, (300, 96)).astype(np.int8)
    w = rng.integers(-127, 128, (96, 24)).astype(np.int8)
    s_a, s_y = np.float32(0.013), np.float32(0.21)
    s_w = rng.uniform(0.002, 0.03, 24).astype(np.float32)
    y = ops.qlinear_matmul(a, s_a, np.int8(-3), w, s_w, np.zeros(24, np.int8), s_y, np.int8(5), profile=profile)
    acc = (a.astype(np.int64) + 3) @ w.astype(np.int64)
    exact = acc * (np.float64(s_a) * s_w.astype(np.float64) / np.float64(s_y))
    err = np.abs((y.astype(np.float64) - 5) - exact)
    inside = (y > -128) & (y < 127)
    assert inside.mean() > 0.5
    assert np.all(err[inside] <= 1 + np.abs(exact[inside]) * 2**-22)
    # and the result is this profile's own: its FC rule applied to the exact accumulators
    want = P.get(profile).requantize(acc, s_a, s_w, s_y, 5, qmin=-128, qmax=127, op="fc", axis=-1)
    np.testing.assert_array_equal(y, want)
