"""The operators TFLite Micro deployments use beyond the convolutional set (recurrent, audio and
small-transformer ones), drawn by hypothesis as single-operator models and checked against both
LiteRT's reference kernels (``tflite-reference``) and the TFLite Micro runtime (``tflm``), bit
for bit: quantization drawn at the edges (power-of-two scales whose products tie, extreme zero
points), shapes with broadcasting, and state over consecutive calls for SVDF and the LSTM; and
every single-op case of test_tflite_ops with its weights and inputs drawn anew under a drawn
backend.  A model one runtime refuses must be refused by the profile that models it."""

from __future__ import annotations

import numpy as np
from _tflite_util import T, interpret, micro, random_int, single_op
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tflite_ops import (
    CASES, NOT_MODELLED, REFUSED, UNSAFE_IN_LITERT, UNSAFE_IN_TFLM, _inputs, batch_matmul, lstm, svdf,
)  # fmt: skip

import intsim.tflite as itf
from intsim.tflite.model import ModelError

I8, I16 = "INT8", "INT16"
PROFILES = ("tflite-reference", "tflm")


def _scale(draw, rng, pow2, lo=0.005, hi=0.2):
    return 2.0 ** -int(rng.integers(2, 7)) if pow2 else float(rng.uniform(lo, hi))


@st.composite
def arithmetic(draw):
    """DIV (a constant divisor: none equal to its zero point), SQUARED_DIFFERENCE (an output
    multiplier below 1: LiteRT aborts otherwise), PRELU and the six comparisons."""
    op = draw(st.sampled_from(["DIV", "SQUARED_DIFFERENCE", "PRELU", "EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL",
                               "GREATER", "GREATER_EQUAL"]))  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    pow2 = draw(st.booleans(), label="power-of-two scales")
    zps = [draw(st.sampled_from([-128, -7, 0, 3, 127])) for _ in range(3)]
    s1, s2, so = (_scale(draw, rng, pow2) for _ in range(3))
    shape = (2, 3, 5)
    b_shape = draw(st.sampled_from([shape, (1, 1, 5), (1, 3, 1)]))
    a = T("a", shape, I8, scale=s1, zero_point=zps[0])
    if op == "DIV":
        d = rng.integers(-128, 128, b_shape)
        d[d == zps[1]] += 1 if zps[1] < 127 else -1
        b = T("b", b_shape, I8, data=d.astype(np.int8), scale=s2, zero_point=zps[1])
        y = T("y", shape, I8, scale=so, zero_point=zps[2])
        return single_op(op, [a, b], [y], dict(fused_activation_function=draw(st.sampled_from([0, 1, 3]))))
    if op == "PRELU":
        alpha = T("alpha", b_shape, I8, data=rng.integers(-128, 128, b_shape).astype(np.int8), scale=s2, zero_point=zps[1])
        return single_op(op, [a, alpha], [T("y", shape, I8, scale=so, zero_point=zps[2])])
    b = T("b", b_shape, I8, scale=s2, zero_point=zps[1])
    if op == "SQUARED_DIFFERENCE":
        so = max(so, (2 * max(s1, s2)) ** 2 / 2**14 * 1.01)  # the output multiplier below 1
        return single_op(op, [a, b], [T("y", shape, I8, scale=so, zero_point=zps[2])])
    return single_op(op, [a, b], [T("y", shape, "BOOL")])


@st.composite
def data_and_shape(draw):
    """RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR over sizes and flags, BATCH_MATMUL over
    layouts and zero points, QUANTIZE between integer types, int16 LOGISTIC / TANH scales,
    LOG_SOFTMAX over scales and row lengths."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    kind = draw(st.sampled_from(["resize", "batch_matmul", "requantize", "int16_activation", "log_softmax"]))
    if kind == "log_softmax":
        s_in = float(2.0 ** rng.uniform(-12, 4)) if draw(st.booleans()) else 2.0 ** int(rng.integers(-12, 4))
        depth = draw(st.sampled_from([1, 2, 16, 255, 1000]))
        x = T("x", (2, depth), I8, scale=s_in, zero_point=draw(st.sampled_from([-128, 0, 77])))
        return single_op("LOG_SOFTMAX", [x], [T("y", (2, depth), I8, scale=16 / 256, zero_point=127)])
    if kind == "resize":
        op = draw(st.sampled_from(["RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"]))
        align, half = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
        size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        q = dict(scale=0.05, zero_point=draw(st.sampled_from([-128, 0, 17])))
        x = T("x", (1, draw(st.integers(1, 5)), draw(st.integers(1, 5)), 2), I8, **q)
        return single_op(op, [x, T("s", (2,), "INT32", data=np.array(size, np.int32))], [T("y", (1, *size, 2), I8, **q)],
                         dict(align_corners=align, half_pixel_centers=half))  # fmt: skip
    if kind == "batch_matmul":
        return batch_matmul(rng, adj_x=draw(st.booleans()), adj_y=draw(st.booleans()),
                            rhs_zp=draw(st.sampled_from([0, -128, 5])), constant_rhs=draw(st.booleans()))  # fmt: skip
    if kind == "requantize":
        src, dst = draw(st.sampled_from([(I8, I8), (I8, I16), (I16, I8), (I16, "INT32"), ("INT32", I16), ("INT32", I8)]))
        zp = {I8: draw(st.sampled_from([-128, 0, 9])), I16: 0, "INT32": 0}
        s_in = {I8: 0.05, I16: 0.0007, "INT32": 3e-6}[src] * float(rng.uniform(0.5, 2))
        s_out = {I8: 0.05, I16: 0.0007, "INT32": 1e-5}[dst] * (2.0 ** int(rng.integers(-3, 3)))
        x = T("x", (4, 9), src, scale=s_in, zero_point=zp[src])
        return single_op("QUANTIZE", [x], [T("y", (4, 9), dst, scale=s_out, zero_point=zp[dst])])
    op = draw(st.sampled_from(["LOGISTIC", "TANH"]))
    s_in = draw(st.sampled_from([2.0**-12, 2.0**-11, 2.0**-10, 0.0003, 0.001, 0.004]))
    return single_op(op, [T("x", (3, 20), I16, scale=s_in, zero_point=0)], [T("y", (3, 20), I16, scale=2.0**-15, zero_point=0)])


@st.composite
def recurrent(draw):
    """SVDF (rank, memory, weights_time bits, int16 or int8 state) and the integer LSTM (units,
    steps, batch, time-major, cell clip, saturating gates, 8x8_16 or 16x8, layer normalization,
    projection, CIFG: each checked against the runtime that has it)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    if draw(st.booleans(), label="svdf"):
        return svdf(rng, state=draw(st.sampled_from([I16, I16, I8])), rank=draw(st.sampled_from([1, 2, 4])),
                    time_bits=draw(st.sampled_from([10, 16])))  # fmt: skip
    return lstm(rng, batch=draw(st.integers(1, 3)), steps=draw(st.integers(1, 6)), units=draw(st.sampled_from([2, 5, 8])),
                time_major=draw(st.booleans()), clip=draw(st.sampled_from([0.0, 3.0, 10.0])), saturate=draw(st.booleans()),
                **draw(st.sampled_from([{}, {"wide": True}, {"layer_norm": True}, {"projection": 3, "proj_clip": 0.3},
                                        {"cifg": True}, {"layer_norm": True, "projection": 2, "cifg": True}])))


def _check(data: bytes, seed: int, calls: int = 1) -> None:
    """``calls`` consecutive calls of each runtime against the profile that models it (state
    carried along); a runtime's refusal must be intsim's too."""
    model = itf.load(data)
    rng = np.random.default_rng(seed)
    inputs = [[random_int(rng, t.shape, t.dtype) for t in model.input_details()] for _ in range(calls)]
    for profile in PROFILES:
        if profile == "tflite-reference" and model.operators[0].op == "SVDF" and model.tensors[model.operators[0].inputs[4]].dtype == np.int8:
            continue  # LiteRT corrupts its heap on an int8 SVDF state (intsim refuses it: test_tflite_ops)
        model.reset_state()
        try:
            if profile == "tflm":
                ip = micro(data)
                feed, read = ip.set_input, (lambda: ip.get_output(0))
            else:
                ip = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
                ip.allocate_tensors()
                feed, read = (lambda x, k: ip.set_tensor(model.inputs[k], x)), (lambda: ip.get_tensor(model.outputs[0]))
            want = []
            for xs in inputs:
                for k, x in enumerate(xs):
                    feed(x, k)
                ip.invoke()
                want.append(np.array(read()))
        except (RuntimeError, ValueError):
            try:
                itf.run(model, inputs[0], profile=profile)
            except ModelError:
                continue
            raise AssertionError(f"{profile}'s runtime refuses {model.operators[0].describe()}, intsim runs it") from None
        for xs, w in zip(inputs, want, strict=True):
            (got,) = itf.run(model, xs, profile=profile)
            np.testing.assert_array_equal(got, w.reshape(got.shape), err_msg=profile)


@settings(max_examples=60, deadline=None)
@given(data=arithmetic(), seed=st.integers(0, 2**16))
def test_arithmetic_and_comparisons(data, seed):
    _check(data, seed)


@settings(max_examples=60, deadline=None)
@given(data=data_and_shape(), seed=st.integers(0, 2**16))
def test_resize_batch_matmul_quantize_activations(data, seed):
    _check(data, seed)


@settings(max_examples=30, deadline=None)
@given(data=recurrent(), seed=st.integers(0, 2**16))
def test_svdf_and_lstm_over_consecutive_calls(data, seed):
    _check(data, seed, calls=3)


@settings(max_examples=150, deadline=None)
@given(case=st.sampled_from(sorted(CASES)), seed=st.integers(0, 2**16),
       backend=st.sampled_from(["jit", "jit-serial", "reference"]))  # fmt: skip
def test_every_operator_case_on_drawn_weights_and_inputs(case, seed, backend):
    """Every single-op case of test_tflite_ops with its weights and inputs drawn anew (extremes
    in every tensor), under a drawn backend, against BUILTIN_REF and the TFLite Micro runtime;
    each refusal (or a runtime not given a case that crashes it) as test_tflite_ops lists it."""
    rng = np.random.default_rng(seed)
    data = CASES[case](rng)
    model = itf.load(data)
    xs = _inputs(model, rng)
    for profile in PROFILES:
        unsafe = UNSAFE_IN_TFLM if profile == "tflm" else UNSAFE_IN_LITERT
        refused = REFUSED.get(case, set()) & ({"tflm"} if profile == "tflm" else {"tflite-reference", "builtin-ref"})
        if refused or case in unsafe or profile in NOT_MODELLED.get(case, ()):
            try:
                itf.run(model, xs, profile=profile, backend=backend, reset_state=True)
            except ModelError:
                continue
            raise AssertionError(f"{case}: {profile} should refuse it")
        want = interpret(data, xs, profile)
        got = itf.run(model, xs, profile=profile, backend=backend, reset_state=True)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w.reshape(g.shape), err_msg=f"{case} {profile} {backend}")
