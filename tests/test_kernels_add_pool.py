"""The fused TFLite ADD/SUB and average-pool kernels: reference == jit serial == jit parallel on
edge-heavy hypothesis cases, the ADD reference against a scalar Python-int transliteration of
``reference_integer_ops::Add``, and every backend through the TFLite frontend against LiteRT."""

import numpy as np
import pytest
from conftest import ALL_BACKENDS, JIT_BACKENDS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fixedpoint import MultiplyByQuantizedMultiplier_double, MultiplyByQuantizedMultiplier_single
from test_tflite_ops import CASES, _inputs, reference

import intsim.tflite as itf
from intsim import fixedpoint as fxp
from intsim.tflite.add import quantized_add
from intsim.kernels.pool import average_pool

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def _edge_ints(dtype, shape):
    info = np.iinfo(dtype)
    return st.lists(st.sampled_from([info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max])
                    | st.integers(info.min, info.max), min_size=int(np.prod(shape)),
                    max_size=int(np.prod(shape))).map(lambda v: np.array(v, dtype).reshape(shape))  # fmt: skip


@st.composite
def add_cases(draw):
    int16 = draw(st.booleans())
    dtype = np.int16 if int16 else np.int8
    shape = draw(st.sampled_from([(1,), (3, 5), (2, 3, 4)]))
    x1, x2 = draw(_edge_ints(dtype, shape)), draw(_edge_ints(dtype, shape))
    zps = (0, 0, 0) if int16 else tuple(draw(st.sampled_from([-128, -1, 0, 5, 127])) for _ in range(3))
    rounding = draw(st.sampled_from(["double", "single"]))
    reals = [draw(st.sampled_from([0.5, 0.25, 0.3333, 0.49999, 1e-3])) for _ in range(2)]
    reals.append(draw(st.sampled_from([1.0, 0.5, 2.0**-10, 3.7e-4, 0.1])))
    qs = [fxp.quantize_multiplier(m, single_rounding=rounding == "single") for m in reals]
    act = draw(st.sampled_from([(-128, 127), (0, 127), (-5, 6)])) if not int16 else (-32768, 32767)
    return dict(x1=x1, x2=x2, zero_points=zps[:2], left_shift=15 if int16 else 20,
                multipliers=[q for q, _ in qs], shifts=[e for _, e in qs], output_zero_point=zps[2],
                clamp=act, subtract=draw(st.booleans()), rounding=rounding)  # fmt: skip


def add_py(x1, x2, zero_points, left_shift, multipliers, shifts, output_zero_point, clamp, subtract, rounding):
    """``reference_integer_ops::Add`` element by element in Python ints."""
    mbqm = MultiplyByQuantizedMultiplier_single if rounding == "single" else MultiplyByQuantizedMultiplier_double

    def wrap(v):
        return (v + 2**31) % 2**32 - 2**31

    out = []
    for a, b in zip(x1.reshape(-1).tolist(), x2.reshape(-1).tolist(), strict=True):
        sa = mbqm(wrap((a - zero_points[0]) * 2**left_shift), multipliers[0], shifts[0])
        sb = mbqm(wrap((b - zero_points[1]) * 2**left_shift), multipliers[1], shifts[1])
        raw = wrap(sa - sb if subtract else sa + sb)
        out.append(min(max(mbqm(raw, multipliers[2], shifts[2]) + output_zero_point, clamp[0]), clamp[1]))
    return np.array(out, np.int64).reshape(x1.shape)


@SETTINGS
@given(add_cases())
def test_quantized_add_backends_and_transliteration(case):
    want = add_py(**case)
    for backend in ALL_BACKENDS:
        np.testing.assert_array_equal(quantized_add(**case, backend=backend), want, err_msg=backend)


@st.composite
def pool_cases(draw):
    dtype = draw(st.sampled_from([np.int8, np.int16]))
    n, h, w, c = draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad_t, pad_l = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    oh, ow = (h + 2 * pad_t - kh) // sh + 1, (w + 2 * pad_l - kw) // sw + 1
    if oh < 1 or ow < 1:
        oh, ow, pad_t, pad_l = 1, 1, 0, 0
    x = draw(_edge_ints(dtype, (n, h, w, c)))
    info = np.iinfo(dtype)
    clamp = draw(st.sampled_from([(info.min, info.max), (0, info.max), (-3, 4)]))
    return x, dict(filter_hw=(kh, kw), stride_hw=(sh, sw), pad_tl=(pad_t, pad_l), out_hw=(oh, ow), clamp=clamp)


@SETTINGS
@given(pool_cases())
def test_average_pool_backends_agree(case):
    x, kw = case
    want = average_pool(x, **kw, backend="reference")
    for backend in JIT_BACKENDS:
        np.testing.assert_array_equal(average_pool(x, **kw, backend=backend), want, err_msg=backend)


def test_average_pool_rounds_half_away_from_zero():
    # windows of 2 taps: (1 + 2)/2 = 1.5 -> 2, (-1 - 2)/2 = -1.5 -> -2, (-1 + 0)/2 = -0.5 -> -1
    x = np.array([1, 2, -1, -2, -1, 0], np.int8).reshape(1, 1, 6, 1)
    kw = dict(filter_hw=(1, 2), stride_hw=(1, 2), pad_tl=(0, 0), out_hw=(1, 3), clamp=(-128, 127))
    for backend in ALL_BACKENDS:
        assert average_pool(x, **kw, backend=backend).reshape(-1).tolist() == [2, -2, -1]


def test_average_pool_window_outside_the_image_is_an_error():
    x = np.zeros((1, 2, 2, 1), np.int8)
    kw = dict(filter_hw=(1, 1), stride_hw=(3, 3), pad_tl=(1, 1), out_hw=(1, 1), clamp=(-128, 127))
    for backend in ALL_BACKENDS:
        with pytest.raises(ValueError, match="wholly outside"):
            average_pool(x, **kw, backend=backend)


def test_quantized_add_rejects_bad_input():
    x = np.zeros(4, np.int8)
    kw = dict(zero_points=(0, 0), left_shift=20, multipliers=(1 << 30,) * 3, shifts=(0, 0, 0),
              output_zero_point=0, clamp=(-128, 127))  # fmt: skip
    with pytest.raises(ValueError, match="same-shape"):
        quantized_add(x, np.zeros(5, np.int8), **kw)
    with pytest.raises(ValueError):
        quantized_add(x, x, **(kw | dict(multipliers=(1 << 30, 1 << 30, -(1 << 30)))), rounding="single")


@pytest.mark.parametrize("case", ["add_int8", "add_int8_broadcast_relu", "add_int16", "sub_int8", "sub_int16",
                                  "avg_pool_int8_same_relu", "avg_pool_int8_valid", "avg_pool_int16"])  # fmt: skip
def test_frontend_backends_match_litert(case):
    assert case in CASES
    rng = np.random.default_rng(sum(map(ord, case)))
    data = CASES[case](rng)
    model = itf.load(data)
    for _ in range(4):
        xs = _inputs(model, rng)
        want = reference(data, xs)
        for backend in ALL_BACKENDS:
            got = itf.run(model, xs, profile="tflite-reference", backend=backend)
            np.testing.assert_array_equal(got[0], want[0], err_msg=backend)
