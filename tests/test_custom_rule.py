"""A hardware rule of one's own: one class and one registry entry, then any profile names it and
both frontends apply it.  The rule (a 16-bit multiplier, an arithmetic right shift, round half
up) is checked against a Python-int transliteration written with fractions, on its own and
inside a TFLite CONV_2D / FULLY_CONNECTED and an ONNX QLinearConv, under every backend."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from _onnx_ops import one_node
from _tflite_util import T, single_op
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import intsim.onnx as ion
import intsim.tflite as itf
from intsim import fixedpoint, ops, profiles
from intsim.tflite.model import ModelError

BACKENDS = ("reference", "jit", "jit-serial")


def shift_round_half_up(x, q, shift):
    return (x * q + (1 << (shift - 1))) >> shift


class Mul16(fixedpoint.IntegerRule):
    """real ~= q / 2**shift with a 16-bit q in [2**15, 2**16) and 1 <= shift <= 46."""

    name = "test-mul16"
    source = "tests/test_custom_rule.py"

    def params(self, real):
        m, e = np.frexp(real)
        q = np.floor(m * 2**16 + 0.5).astype(np.int64)
        carry = q == 2**16
        q, shift = np.where(carry, q // 2, q), 16 - (e + carry)
        if np.any((shift < 1) | (shift > 46)):
            raise ValueError("test-mul16: the multiplier needs a shift outside [1, 46]")
        return q, shift.astype(np.int64)

    scale_reference = staticmethod(shift_round_half_up)
    scale_scalar = fixedpoint.jit_scalar(shift_round_half_up)


fixedpoint.register(Mul16())
NPU = profiles.custom("tflm", "test-npu", rules={c: ("test-mul16", "float32") for c in ("conv", "depthwise", "fc")})


def npu_requantize(acc: int, real: float, zp: int, qmin: int, qmax: int) -> int:
    """The rule in Python ints: q = round-half-up(m * 2**16) for real = m * 2**e, m in [0.5, 1);
    output = floor(acc * q / 2**(16 - e) + 1/2) + zp, clamped."""
    m, e = math.frexp(real)
    q = math.floor(Fraction(m) * 2**16 + Fraction(1, 2))
    if q == 2**16:
        q, e = 2**15, e + 1
    v = math.floor(Fraction(acc * q, 2 ** (16 - e)) + Fraction(1, 2))
    return min(max(v + zp, qmin), qmax)


def float32_multiplier(s_in, s_w, s_out) -> float:
    f32 = np.float32
    return float(f32(f32(f32(s_in) * f32(s_w)) / f32(s_out)))


ACC = st.one_of(st.sampled_from([-(2**31), 2**31 - 1, 0, 1, -1, 2**15, -(2**15)]),
                st.integers(-(2**31), 2**31 - 1))  # fmt: skip
REAL = st.one_of(
    st.integers(-30, 14).map(lambda k: 2.0**k),  # powers of two: q = 2**15 exactly
    st.integers(2**15, 2**16 - 1).flatmap(lambda q: st.integers(1, 40).map(lambda s: (q + 0.5) / 2**s)),  # ties
    st.floats(2.0**-30, 2.0**14, allow_nan=False, allow_infinity=False),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(acc=st.lists(ACC, min_size=1, max_size=12), real=st.lists(REAL, min_size=1, max_size=3),
       zp=st.integers(-128, 127))  # fmt: skip
def test_rule_equals_its_transliteration_on_every_backend(acc, real, zp):
    a = np.array(acc, np.int32)
    if len(real) > 1:  # per channel along the last axis
        a = np.repeat(a[:, None], len(real), axis=1)
    want = np.array([[npu_requantize(int(x), r, zp, -128, 127) for r in real] for x in acc]).reshape(a.shape)
    for backend in BACKENDS:
        got = fixedpoint.requantize(a, np.array(real), zp, "test-mul16", qmin=-128, qmax=127, axis=-1, backend=backend)
        np.testing.assert_array_equal(got, want, err_msg=backend)


def test_rule_checks_its_parameters_and_the_registry_names_it():
    with pytest.raises(ValueError, match="test-mul16: the multiplier needs a shift outside"):
        fixedpoint.requantize(np.zeros(3, np.int32), 2.0**20, 0, "test-mul16", qmin=-128, qmax=127)
    with pytest.raises(ValueError, match="unknown requantization rule 'mul17'.*intsim.fixedpoint.register"):
        profiles.custom("tflm", "bad", rules={"conv": ("mul17", "float32")})
    with pytest.raises(ValueError, match="a Rule instance with a name"):
        fixedpoint.register(fixedpoint.IntegerRule())
    with pytest.raises(ValueError, match="rule 'half-done' must define params and its numba scalar"):
        fixedpoint.register(type("HalfDone", (fixedpoint.IntegerRule,), {"name": "half-done"})())


def _conv_case(rng):
    x = rng.integers(-128, 128, (2, 10, 11, 3)).astype(np.int8)
    x[0, 0, 0, :] = [-128, 127, 0]
    w = rng.integers(-12, 13, (4, 3, 3, 3)).astype(np.int8)
    b = rng.integers(-3000, 3000, 4).astype(np.int32)
    s_w = np.array([2**-6, 2**-7, 2**-5, 0.0071], np.float32)  # powers of two: exact ties, where
    return x, w, b, s_w  # round half up and MultiplyByQuantizedMultiplier (half away) differ


def _tflite_conv_want(x, w, b, zp_x, s_in, s_w, s_out, zp_y):
    """VALID, stride 1: Python-int accumulators, then the transliteration per output channel."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    xs = x.astype(np.int64) - zp_x
    out = np.empty((n, h - kh + 1, wd - kw + 1, o), np.int64)
    for idx in np.ndindex(*out.shape):
        i, y, xx, c = idx
        acc = int((xs[i, y : y + kh, xx : xx + kw, :] * w[c].astype(np.int64)).sum()) + int(b[c])
        out[idx] = npu_requantize(acc, float32_multiplier(s_in, s_w[c], s_out), zp_y, -128, 127)
    return out


def test_tflite_conv_and_fully_connected_apply_the_custom_rule():
    rng = np.random.default_rng(3)
    x, w, b, s_w = _conv_case(rng)
    s_in, zp_x, s_out, zp_y = 0.5, -3, 0.25, 4
    model = single_op("CONV_2D", [
        T("x", x.shape, "INT8", scale=s_in, zero_point=zp_x),
        T("w", w.shape, "INT8", data=w, scale=s_w, zero_point=[0] * 4),
        T("b", b.shape, "INT32", data=b, scale=s_in * s_w, zero_point=[0] * 4),
    ], [T("y", (2, 8, 9, 4), "INT8", scale=s_out, zero_point=zp_y)], {"padding": 1, "stride_h": 1, "stride_w": 1})
    want = _tflite_conv_want(x, w, b, zp_x, s_in, s_w, s_out, zp_y)
    m = itf.load(model)
    for backend in BACKENDS:
        np.testing.assert_array_equal(itf.run(m, x, profile=NPU, backend=backend)[0], want, err_msg=backend)
    assert not np.array_equal(itf.run(m, x, profile="tflm")[0], want)  # the rule is really another

    xf = rng.integers(-128, 128, (2, 9)).astype(np.int8)
    wf = rng.integers(-127, 128, (5, 9)).astype(np.int8)
    fc = itf.load(single_op("FULLY_CONNECTED", [
        T("x", xf.shape, "INT8", scale=0.02, zero_point=1), T("w", wf.shape, "INT8", data=wf, scale=0.004, zero_point=0),
        None,
    ], [T("y", (2, 5), "INT8", scale=0.03, zero_point=-2)]))  # fmt: skip
    acc = (xf.astype(np.int64) - 1) @ wf.T.astype(np.int64)
    real = float32_multiplier(0.02, 0.004, 0.03)
    want_fc = np.vectorize(lambda a: npu_requantize(int(a), real, -2, -128, 127))(acc)
    for backend in BACKENDS:  # a program applies built-in rules only: these run op by op
        np.testing.assert_array_equal(itf.run(fc, xf, profile=NPU, backend=backend)[0], want_fc, err_msg=backend)


def _qlinear_conv_model(inputs, out_shape):
    """A QLinearConv model with every input but ``x`` constant and a typed output."""
    model, feeds = one_node("QLinearConv", inputs, np.uint8, initializers=tuple(k for k in inputs if k != "x"))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.UINT8, list(out_shape)))
    return model, feeds


def test_onnx_qlinear_conv_applies_the_custom_rule():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (1, 3, 6, 5)).astype(np.uint8)
    w = rng.integers(-127, 128, (4, 3, 2, 2)).astype(np.int8)
    b = rng.integers(-3000, 3000, 4).astype(np.int32)
    s_w = np.array([0.01, 0.003, 0.02, 0.0071], np.float32)
    inputs = {"x": x, "x_scale": np.float32(0.05), "x_zero_point": np.uint8(130), "w": w, "w_scale": s_w,
              "w_zero_point": np.zeros(4, np.int8), "y_scale": np.float32(0.09), "y_zero_point": np.uint8(125), "B": b}
    model, feeds = _qlinear_conv_model(inputs, (1, 4, 5, 4))
    acc = np.zeros((1, 4, 5, 4), np.int64)
    for c, i, j in np.ndindex(4, 5, 4):
        acc[0, c, i, j] = int(((x[0, :, i : i + 2, j : j + 2].astype(np.int64) - 130) * w[c]).sum()) + int(b[c])
    want = np.empty(acc.shape, np.int64)
    for idx in np.ndindex(*acc.shape):
        want[idx] = npu_requantize(int(acc[idx]), float32_multiplier(0.05, s_w[idx[1]], 0.09), 125, 0, 255)
    for backend in BACKENDS:
        got = ion.run(model, feeds, profile=NPU, backend=backend)["y"]
        np.testing.assert_array_equal(got, want, err_msg=backend)


def test_an_operator_without_a_rule_of_its_kind_names_itself_and_the_profile():
    odd = profiles.custom("tflm", "odd-npu", rules={"add": ("test-mul16", "float64")})
    x = np.arange(-4, 4, dtype=np.int8).reshape(1, 8)
    model = single_op("ADD", [T("a", (1, 8), "INT8", scale=0.1, zero_point=0),
                              T("b", (1, 8), "INT8", scale=0.1, zero_point=0)],
                      [T("y", (1, 8), "INT8", scale=0.2, zero_point=0)])  # fmt: skip
    with pytest.raises(ModelError, match=r"operator 0 \(ADD\).*profile 'odd-npu' gives 'test-mul16' for operator class 'add'"):
        itf.run(model, [x, x], profile=odd)
    partial = profiles.Profile("partial", "a test", {"conv": ("double", "float64")})
    with pytest.raises(ValueError, match="profile 'partial' has no rule for operator class 'fc'"):
        ops.fully_connected(x, np.ones((2, 8), np.int8), input_scale=0.1, filter_scale=0.1, output_scale=0.1,
                            profile=partial)  # fmt: skip


def test_two_custom_profiles_with_one_name_keep_their_own_layers_in_both_frontends():
    rng = np.random.default_rng(5)
    x, w, b, s_w = _conv_case(rng)
    data = single_op("CONV_2D", [
        T("x", x.shape, "INT8", scale=0.05, zero_point=-3),
        T("w", w.shape, "INT8", data=w, scale=s_w, zero_point=[0] * 4),
        T("b", b.shape, "INT32", data=b, scale=0.05 * s_w, zero_point=[0] * 4),
    ], [T("y", (2, 8, 9, 4), "INT8", scale=0.09, zero_point=4)], {"padding": 1, "stride_h": 1, "stride_w": 1})
    tfl = itf.load(data)
    a, c = profiles.custom("tflm", "same"), profiles.custom("tflm", "same", rules={"conv": ("test-mul16", "float32")})
    fresh = {p: itf.run(itf.load(data), x, profile=p)[0] for p in (a, c)}
    assert not np.array_equal(fresh[a], fresh[c])
    for p in (a, c, a):  # one loaded model, its prepared layers cached per Profile object
        np.testing.assert_array_equal(itf.run(tfl, x, profile=p)[0], fresh[p])

    xo = rng.integers(0, 256, (1, 3, 6, 5)).astype(np.uint8)
    wo = rng.integers(-127, 128, (4, 3, 2, 2)).astype(np.int8)
    inputs = {"x": xo, "x_scale": np.float32(0.05), "x_zero_point": np.uint8(130), "w": wo, "w_scale": s_w,
              "w_zero_point": np.zeros(4, np.int8), "y_scale": np.float32(0.09), "y_zero_point": np.uint8(125)}
    model, feeds = _qlinear_conv_model(inputs, (1, 4, 5, 4))
    d = profiles.custom("onnxruntime-cpu", "same")
    e = profiles.custom("onnxruntime-cpu", "same", accumulator_bits=14, accumulator_overflow="saturate")
    graph = ion.load(model)
    direct = {p: ops.qlinear_conv(xo, *[inputs[k] for k in list(inputs)[1:]], profile=p) for p in (d, e)}
    assert not np.array_equal(direct[d], direct[e])
    for p in (d, e, d):
        np.testing.assert_array_equal(ion.run(graph, feeds, profile=p)["y"], direct[p])
