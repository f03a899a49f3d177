"""int8 SOFTMAX (intsim.tflite.softmax): the jitted passes, serial and parallel, equal the numpy
reference beside them (softmax_int8, backend="reference") exactly, and LiteRT on a model with more rows
than the reciprocal cache serves."""

from __future__ import annotations

import numpy as np
from _tflite_util import T, random_int, reference, single_op
from hypothesis import given, settings
from hypothesis import strategies as st

import intsim.tflite as itf
from intsim.tflite.softmax import softmax_int8


@st.composite
def rows(draw):
    shape = (draw(st.sampled_from([1, 2, 63, 64, 65, 80])), draw(st.sampled_from([1, 2, 10, 255, 300])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["random", "equal", "extremes", "narrow"]))
    if kind == "random":
        x = rng.integers(-128, 128, shape)
    elif kind == "equal":
        x = np.full(shape, draw(st.sampled_from([-128, 0, 127])))
    elif kind == "extremes":
        x = rng.choice([-128, 127], shape)
    else:
        x = rng.integers(-3, 4, shape)
    return x.astype(np.int8)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(rows(), st.sampled_from([1.0, 0.5, 2.0]), st.sampled_from([0.1, 1 / 16, 0.3, 0.0123, 1.0]),
       st.sampled_from(["double", "single"]))  # fmt: skip
def test_softmax_int8_backends_agree(x, beta, input_scale, rounding):
    want = softmax_int8(x, beta, input_scale, rounding, backend="reference")
    for backend in ("jit", "jit-serial"):
        got = softmax_int8(x, beta, input_scale, rounding, backend=backend)
        assert got.dtype == np.int8 and got.shape == x.shape
        np.testing.assert_array_equal(got, want)


def test_many_rows_match_litert():
    x = T("x", (70, 10), "INT8", scale=0.2, zero_point=3)
    y = T("y", (70, 10), "INT8", scale=1 / 256, zero_point=-128)
    data = single_op("SOFTMAX", [x], [y], dict(beta=1.0))
    model = itf.load(data)
    rng = np.random.default_rng(3)
    for _ in range(5):
        xs = [random_int(rng, (70, 10), np.int8)]
        (want,) = reference(data, xs)
        for backend in ("jit", "reference"):
            np.testing.assert_array_equal(itf.run(model, xs, backend=backend)[0], want)
