"""LiteRT's default interpreter (``Interpreter()``: the XNNPACK delegate where it takes the node)
against the ``litert`` profile (every operator case, the delegate's partition, every layer of
four models) and the ``xnnpack`` profile, on single-op int8 models whose only operator XNNPACK runs:
CONV_2D (3x3 and 1x1), DEPTHWISE_CONV_2D and FULLY_CONNECTED, per-channel filters, every fused
activation, ADD/SUB/MUL and int8 QUANTIZE (hypothesis: scales, extreme zero points, broadcasting); and in every
layer of an example CNN; under every backend.  The same models under BUILTIN_REF are the control: the two
interpreters must really disagree somewhere, or this test would prove nothing."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import MODELS, T, assert_every_layer, interpret, model_bytes, random_int, reference, single_op
from ai_edge_litert.interpreter import Interpreter
from conftest import ALL_BACKENDS
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_tflite_ops import CASES, NOT_MODELLED, _inputs, _not_modelled, _refused, REFUSED

import intsim.tflite as itf
from intsim.tflite import delegate, xnnpack
from intsim.tflite.builder import example_cnn


def default_interpreter(model: bytes, x: np.ndarray) -> np.ndarray:
    ip = Interpreter(model_content=model)  # the default op resolver: XNNPACK delegate applied
    ip.allocate_tensors()
    ip.set_tensor(ip.get_input_details()[0]["index"], x)
    ip.invoke()
    return ip.get_tensor(ip.get_output_details()[0]["index"]).copy()


def _case(rng, op: str, kernel: int, activation: int):
    c = 16
    s_x, s_y = np.float32(0.05), np.float32(rng.choice([0.37, 0.125, 0.9]))
    s_w = rng.uniform(0.002, 0.02, c).astype(np.float32)
    s_w[0] = 2.0**-7  # a power of two: exact ties in that channel
    zp_x, zp_y = int(rng.choice([-128, -3, 0, 127])), int(rng.choice([-128, 5, 127]))
    b = rng.integers(-3000, 3000, c).astype(np.int32)
    bias = T("b", (c,), "INT32", data=b, scale=s_x * s_w, zero_point=[0] * c)
    if op == "FULLY_CONNECTED":
        x = random_int(rng, (6, 48), np.int8)
        w = rng.integers(-127, 128, (c, 48)).astype(np.int8)
        inputs = [T("x", x.shape, "INT8", scale=s_x, zero_point=zp_x),
                  T("w", w.shape, "INT8", data=w, scale=s_w, zero_point=[0] * c), bias]  # fmt: skip
        return single_op(op, inputs, [T("y", (6, c), "INT8", scale=s_y, zero_point=zp_y)],
                         {"fused_activation_function": activation}), x  # fmt: skip
    x = random_int(rng, (1, 24, 24, c), np.int8)
    if op == "CONV_2D":
        w, dim = rng.integers(-127, 128, (c, kernel, kernel, c)).astype(np.int8), 0
        opts = {"padding": 0, "stride_h": 1, "stride_w": 1}
    else:
        w, dim = rng.integers(-127, 128, (1, kernel, kernel, c)).astype(np.int8), 3
        opts = {"padding": 0, "stride_h": 1, "stride_w": 1, "depth_multiplier": 1}
    inputs = [T("x", x.shape, "INT8", scale=s_x, zero_point=zp_x),
              T("w", w.shape, "INT8", data=w, scale=s_w, zero_point=[0] * c, quantized_dimension=dim), bias]  # fmt: skip
    out = T("y", (1, 24, 24, c), "INT8", scale=s_y, zero_point=zp_y)
    return single_op(op, inputs, [out], {**opts, "fused_activation_function": activation}), x


@pytest.mark.parametrize("op, kernel", [("CONV_2D", 3), ("CONV_2D", 1), ("DEPTHWISE_CONV_2D", 3),
                                        ("FULLY_CONNECTED", 0)])  # fmt: skip
def test_xnnpack_profile_equals_the_default_interpreter(op, kernel):
    rng = np.random.default_rng(kernel + len(op))
    departs = 0
    for activation in (0, 1, 3):  # NONE, RELU, RELU6
        model, x = _case(rng, op, kernel, activation)
        want = default_interpreter(model, x)
        m = itf.load(model)
        for backend in ALL_BACKENDS:
            np.testing.assert_array_equal(itf.run(m, x, profile="xnnpack", backend=backend)[0], want,
                                          err_msg=f"{op} activation {activation} {backend}")  # fmt: skip
        departs += int(np.count_nonzero(reference(model, [x])[0] != want))
    if op != "FULLY_CONNECTED":  # LiteRT's reference FC rounds in float64 once: it may agree throughout
        assert departs, "BUILTIN_REF agrees everywhere: the cases do not tell the two interpreters apart"


def test_xnnpack_profile_equals_the_default_interpreter_in_every_layer_of_a_cnn():
    """``builder.example_cnn`` (conv, depthwise, 1x1 convs, residual ADD, average pool, FC,
    softmax) with every layer's output a graph output, read from the interpreter as users run it
    (no ``experimental_preserve_all_tensors``)."""
    data = example_cnn(seed=7, every_output=True)
    m = itf.load(data)
    rng = np.random.default_rng(2)
    departs = 0
    for _ in range(2):
        xs = m.random_inputs(rng)
        ip = Interpreter(model_content=data)
        ip.allocate_tensors()
        ip.set_tensor(ip.get_input_details()[0]["index"], xs[0])
        ip.invoke()
        want = {d["index"]: ip.get_tensor(d["index"]) for d in ip.get_output_details()}
        for backend in ALL_BACKENDS:
            for y, k in zip(itf.run(m, xs, reset_state=True, profile="xnnpack", backend=backend), m.outputs, strict=True):
                np.testing.assert_array_equal(y, want[k], err_msg=f"{m.tensors[k].name} {backend}")
        ref = reference(data, xs)
        departs += sum(int(np.count_nonzero(r != want[k])) for r, k in zip(ref, m.outputs, strict=True))
    assert departs, "BUILTIN_REF agrees everywhere: the model does not tell the two interpreters apart"


SCALE = st.one_of(st.sampled_from([2.0**-7, 0.02, 0.05, 0.1, 1.0]), st.floats(0.00390625, 0.5, width=32))


@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(["ADD", "SUB", "MUL"]), scales=st.tuples(SCALE, SCALE, SCALE),
       zps=st.tuples(*[st.sampled_from([-128, -1, 0, 5, 127])] * 3), act=st.sampled_from([0, 1, 3]),
       broadcast=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_xnnpack_profile_equals_the_default_interpreter_on_int8_add_sub_mul(op, scales, zps, act, broadcast, seed):
    (s1, s2, so), (z1, z2, zo) = scales, zps
    ratios = (np.float32(s1) / np.float32(so), np.float32(s2) / np.float32(so))
    assume(op == "MUL" or all(2.0**-10 <= r < 2.0**8 for r in ratios))  # ADD outside: the next test
    rng = np.random.default_rng(seed)
    shape2 = (1, 1, 7) if broadcast else (2, 3, 7)
    model = single_op(op, [T("a", (2, 3, 7), "INT8", scale=s1, zero_point=z1),
                           T("b", shape2, "INT8", scale=s2, zero_point=z2)],
                      [T("y", (2, 3, 7), "INT8", scale=so, zero_point=zo)], {"fused_activation_function": act})  # fmt: skip
    xs = [random_int(rng, (2, 3, 7), np.int8), random_int(rng, shape2, np.int8)]
    ip = Interpreter(model_content=model)
    ip.allocate_tensors()
    for d, x in zip(ip.get_input_details(), xs, strict=True):
        ip.set_tensor(d["index"], x)
    ip.invoke()
    want = ip.get_tensor(ip.get_output_details()[0]["index"])
    m = itf.load(model)
    for backend in ALL_BACKENDS:
        np.testing.assert_array_equal(itf.run(m, xs, reset_state=True, profile="xnnpack", backend=backend)[0], want, err_msg=backend)


def test_xnnpack_add_departs_from_the_reference_kernels():
    """The control: on a case with many ties, LiteRT's reference ADD and XNNPACK's differ."""
    model = single_op("ADD", [T("a", (4, 64), "INT8", scale=0.02, zero_point=3), T("b", (4, 64), "INT8", scale=0.05,
                                                                                 zero_point=-7)],
                      [T("y", (4, 64), "INT8", scale=0.04, zero_point=1)])  # fmt: skip
    rng = np.random.default_rng(0)
    xs = [random_int(rng, (4, 64), np.int8), random_int(rng, (4, 64), np.int8)]
    got = itf.run(itf.load(model), xs, profile="xnnpack")[0]
    assert np.count_nonzero(got != reference(model, xs)[0]) > 0
    assert np.count_nonzero(got != itf.run(itf.load(model), xs, profile="tflite-reference")[0]) > 0


def test_an_add_xnnpack_does_not_take_stays_with_litert_kernels():
    """Scale ratios outside XNNPACK's [2**-10, 2**8): LiteRT's delegate leaves the ADD (the peer
    shows no DELEGATE node), and the profile computes it as LiteRT's kernels do."""
    model = single_op("ADD", [T("a", (4, 64), "INT8", scale=2.0**-12, zero_point=3),
                              T("b", (4, 64), "INT8", scale=0.05, zero_point=-7)],
                      [T("y", (4, 64), "INT8", scale=1.0, zero_point=1)])  # fmt: skip
    ip = Interpreter(model_content=model)
    ip.allocate_tensors()
    assert "DELEGATE" not in [o["op_name"] for o in ip._get_ops_details()]
    rng = np.random.default_rng(1)
    xs = [random_int(rng, (4, 64), np.int8), random_int(rng, (4, 64), np.int8)]
    m = itf.load(model)
    np.testing.assert_array_equal(itf.run(m, xs, reset_state=True, profile="xnnpack")[0], reference(model, xs)[0])



@settings(max_examples=30, deadline=None)
@given(scales=st.tuples(SCALE, SCALE), zps=st.tuples(*[st.sampled_from([-128, -6, 0, 4, 127])] * 2),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_xnnpack_profile_equals_the_default_interpreter_on_int8_requantize(scales, zps, seed):
    """QUANTIZE int8 -> int8, where the delegate takes it (ratio in [2**-8, 2**7]) and where it
    does not (then LiteRT's kernel: the profile follows it there too)."""
    (s_in, s_out), (z_in, z_out) = scales, zps
    model = single_op("QUANTIZE", [T("x", (4, 64), "INT8", scale=s_in, zero_point=z_in)],
                      [T("y", (4, 64), "INT8", scale=s_out, zero_point=z_out)])  # fmt: skip
    x = random_int(np.random.default_rng(seed), (4, 64), np.int8)
    want = default_interpreter(model, x)
    m = itf.load(model)
    for backend in ALL_BACKENDS:
        np.testing.assert_array_equal(itf.run(m, x, profile="xnnpack", backend=backend)[0], want, err_msg=backend)


def test_xnnpack_requantize_departs_from_the_reference_kernels():
    """The control: LiteRT's reference QUANTIZE rounds by MultiplyByQuantizedMultiplier."""
    model = single_op("QUANTIZE", [T("x", (4, 64), "INT8", scale=0.037, zero_point=-6)],
                      [T("y", (4, 64), "INT8", scale=0.05, zero_point=4)])  # fmt: skip
    x = random_int(np.random.default_rng(0), (4, 64), np.int8)
    got = itf.run(itf.load(model), x, profile="xnnpack")[0]
    assert np.array_equal(got, default_interpreter(model, x)) and np.count_nonzero(got != reference(model, [x])[0]) > 0


# ---- the litert profile: XNNPACK where the delegate takes the node, LiteRT's optimized kernels elsewhere


def _delegated(data: bytes) -> bool:
    ip = Interpreter(model_content=data)
    ip.allocate_tensors()
    return "DELEGATE" in [o["op_name"] for o in ip._get_ops_details()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_litert_profile_equals_the_default_interpreter(case):
    """Every operator case: the partition as the interpreter makes it, and the outputs."""
    rng = np.random.default_rng(sum(map(ord, case)) + 3)
    data = CASES[case](rng)
    m = itf.load(data)
    (op,) = m.operators
    if "tflite-reference" in REFUSED.get(case, ()):  # refused by LiteRT's kernels in every mode
        return _refused(data, m, _inputs(m, rng), "litert", case)
    why = delegate.builtin_reason(m, op)
    assert (why is None) == _delegated(data), f"{op.describe()}: intsim says {why or 'delegated'}"
    if "litert" in NOT_MODELLED.get(case, ()):
        interpret(data, _inputs(m, rng), "litert")  # LiteRT runs it
        return _not_modelled(m, _inputs(m, rng), "litert")
    for draw in range(3):
        xs = _inputs(m, rng)
        want = interpret(data, xs, "litert")
        for backend in ALL_BACKENDS if draw == 0 else ("jit",):
            for g, w in zip(itf.run(m, xs, reset_state=True, profile="litert", backend=backend), want, strict=True):
                np.testing.assert_array_equal(g, w, err_msg=backend)


@pytest.mark.parametrize("name", MODELS)
def test_litert_profile_equals_the_default_interpreter_in_every_layer(name, models_dir):
    assert_every_layer(model_bytes(name, models_dir), "litert", seed=12)


@settings(max_examples=30, deadline=None)
@given(s_in=SCALE, s_out=SCALE, alpha=st.sampled_from([0.1, 0.2, -0.3, 0.5, 1e-3, 3.0, -200.0]),
       zps=st.tuples(*[st.sampled_from([-128, -1, 0, 5, 127])] * 2), seed=st.integers(0, 2**16))  # fmt: skip
def test_litert_leaky_relu_inside_and_outside_the_delegate(s_in, s_out, alpha, zps, seed):
    """XNNPACK's Q8 leaky ReLU where the delegate takes the node, LiteRT's kernel where it does not."""
    model = single_op("LEAKY_RELU", [T("x", (4, 64), "INT8", scale=s_in, zero_point=zps[0])],
                      [T("y", (4, 64), "INT8", scale=s_out, zero_point=zps[1])], {"alpha": alpha})  # fmt: skip
    x = np.arange(-128, 128, dtype=np.int8).reshape(4, 64)  # every input value
    want = default_interpreter(model, x)
    m = itf.load(model)
    assert (delegate.builtin_reason(m, m.operators[0]) is None) == _delegated(model)
    for backend in ALL_BACKENDS:
        np.testing.assert_array_equal(itf.run(m, x, profile="litert", backend=backend)[0], want, err_msg=backend)


@settings(max_examples=30, deadline=None)
@given(axes=st.sampled_from([(1, 2), (3,), (0,), (1,), (2, 3), (1, 2, 3), (-1, -2), (1, 1)]), keep=st.booleans(),
       scales=st.tuples(SCALE, SCALE), zps=st.tuples(*[st.sampled_from([-128, -3, 0, 9, 127])] * 2),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_litert_mean_is_xnnpacks(axes, keep, scales, zps, seed):
    """Every int8 MEAN goes to XNNPACK: float32 scale and zero point, ties to even."""
    shape = (2, 4, 6, 5)
    red = sorted({a % 4 for a in axes})
    out = tuple(1 if i in red else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in red)  # fmt: skip
    model = single_op("MEAN", [T("x", shape, "INT8", scale=scales[0], zero_point=zps[0]),
                               T("axes", (len(axes),), "INT32", data=np.array(axes, np.int32))],
                      [T("y", out, "INT8", scale=scales[1], zero_point=zps[1])], {"keep_dims": keep})  # fmt: skip
    x = random_int(np.random.default_rng(seed), shape, np.int8)
    m = itf.load(model)
    np.testing.assert_array_equal(itf.run(m, x, profile="litert")[0], default_interpreter(model, x))


@settings(max_examples=25, deadline=None)
@given(scale=SCALE, zp=st.sampled_from([-128, -6, 0, 4, 127]), n=st.sampled_from([1, 7, 64, 77]),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_litert_quantize_from_float_is_xnnpacks(scale, zp, n, seed):
    """x * float32(1 / scale), ties to even, saturated; NaN and infinities included."""
    rng = np.random.default_rng(seed)
    x = ((rng.integers(-200, 200, n) + 0.5) * np.float32(scale)).astype(np.float32)  # near-ties
    x[rng.integers(0, n, min(n, 3))] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -0.0], min(n, 3))
    model = single_op("QUANTIZE", [T("x", (n,), "FLOAT32")], [T("y", (n,), "INT8", scale=scale, zero_point=zp)])
    np.testing.assert_array_equal(itf.run(itf.load(model), x, profile="litert")[0], default_interpreter(model, x))


def test_xnnpack_mean_refuses_runs_its_sum_kernel_wraps():
    x = np.zeros((1, 2, 9000), np.int8)
    with pytest.raises(ValueError, match="wraps its 16-bit partial sums"):
        xnnpack.xnnpack_mean(x, (2,), False, 0.1, 0, 0.1, 0)
    assert xnnpack.xnnpack_mean(x, (1,), False, 0.1, 0, 0.1, 0).shape == (1, 9000)  # not the last axis: exact
