"""Single-operator models drawn by hypothesis, against LiteRT in each of its three modes
(``litert`` = the default ``Interpreter()``, ``litert-builtin`` = the optimized kernels,
``tflite-reference`` = BUILTIN_REF): the layers with weights over their geometry and
quantization (power-of-two scales make the requantization's ties exact; int16x8 and bias without
quantization parameters keep a node out of XNNPACK), the operators without weights over their
quantization and element counts (the NEON loops' tails), and ADD/SUB/MUL over broadcast layouts.
Extreme zero points and every fused activation cover the clamps; each node's place (XNNPACK or
not) is checked against the default interpreter's partition, and a model an interpreter refuses
must be refused by intsim too."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import MODES, T, interpret, random_int, single_op
from ai_edge_litert.interpreter import Interpreter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import intsim.tflite as itf
from intsim.tflite import delegate
from intsim.tflite.model import ModelError


@st.composite
def weighted_layer(draw):
    op = draw(st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"]))
    int16 = op != "TRANSPOSE_CONV" and draw(st.booleans()) and draw(st.booleans())  # a quarter int16x8
    kind = "INT16" if int16 else "INT8"
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    pow2 = draw(st.booleans(), label="power-of-two scales")
    cin = draw(st.sampled_from([1, 3, 8]))
    mult = draw(st.sampled_from([1, 2, 4])) if op == "DEPTHWISE_CONV_2D" else 1
    cout = cin * mult if op == "DEPTHWISE_CONV_2D" else draw(st.sampled_from([4, 8, 12, 17]))
    per_channel = draw(st.booleans())
    n_w = cout if per_channel else 1
    s_x = 2.0**-4 if pow2 else float(rng.uniform(0.01, 0.1))
    s_w = 2.0 ** -rng.integers(1, 5, n_w) if pow2 else rng.uniform(0.002, 0.03, n_w)
    s_y = 2.0**-1 if pow2 else float(rng.uniform(0.02, 0.5))
    zp_x = 0 if int16 else draw(st.sampled_from([-128, -5, 0, 127]))
    zp_y = 0 if int16 else draw(st.sampled_from([-128, 0, 9, 127]))
    act = 0 if op == "TRANSPOSE_CONV" else draw(st.sampled_from([0, 1, 2, 3]))
    quantized_bias = draw(st.booleans(), label="quantized bias")
    small = pow2  # small weights with power-of-two scales: outputs inside the range, ties frequent
    w_lo, w_hi = (-8, 8) if small else (-127, 127)
    bias_type, n_b = ("INT64", np.int64) if int16 else ("INT32", np.int32)
    b_scale = dict(scale=np.float32(s_x) * np.asarray(s_w, np.float32), zero_point=[0] * n_w) if quantized_bias else {}
    bias = T("b", (cout,), bias_type, data=rng.integers(-3000, 3000, cout).astype(n_b), **b_scale)
    w_q = dict(scale=s_w, zero_point=[0] * n_w)
    if op == "FULLY_CONNECTED":
        batch = draw(st.sampled_from([1, 3]))
        w = T("w", (cout, 24), "INT8", data=rng.integers(w_lo, w_hi + 1, (cout, 24)).astype(np.int8), **w_q)
        x = T("x", (batch, 24), kind, scale=s_x, zero_point=zp_x)
        return single_op(op, [x, w, bias], [T("y", (batch, cout), kind, scale=s_y, zero_point=zp_y)],
                         {"fused_activation_function": act})  # fmt: skip
    k = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 2]))
    padding = draw(st.sampled_from([0, 1]))  # SAME, VALID
    dilation = draw(st.sampled_from([1, 2])) if op != "TRANSPOSE_CONV" and stride == 1 else 1
    hw = 7
    x = T("x", (1, hw, hw, cin), kind, scale=s_x, zero_point=zp_x)
    if op == "TRANSPOSE_CONV":
        out_hw = hw * stride if padding == 0 else (hw - 1) * stride + k
        shape = T("shape", (4,), "INT32", data=np.array([1, out_hw, out_hw, cout], np.int32))
        w = T("w", (cout, k, k, cin), "INT8", data=rng.integers(w_lo, w_hi + 1, (cout, k, k, cin)).astype(np.int8), **w_q)
        y = T("y", (1, out_hw, out_hw, cout), kind, scale=s_y, zero_point=zp_y)
        return single_op(op, [shape, w, x, bias], [y], {"padding": padding, "stride_h": stride, "stride_w": stride})
    span = (k - 1) * dilation + 1
    out_hw = -(-hw // stride) if padding == 0 else (hw - span) // stride + 1
    y = T("y", (1, out_hw, out_hw, cout), kind, scale=s_y, zero_point=zp_y)
    opts = {"padding": padding, "stride_h": stride, "stride_w": stride, "dilation_h_factor": dilation,
            "dilation_w_factor": dilation, "fused_activation_function": act}  # fmt: skip
    if op == "CONV_2D":
        w = T("w", (cout, k, k, cin), "INT8", data=rng.integers(w_lo, w_hi + 1, (cout, k, k, cin)).astype(np.int8), **w_q)
        return single_op(op, [x, w, bias], [y], opts)
    w = T("w", (1, k, k, cout), "INT8", data=rng.integers(w_lo, w_hi + 1, (1, k, k, cout)).astype(np.int8),
          quantized_dimension=3, **w_q)  # fmt: skip
    return single_op(op, [x, w, bias], [y], {**opts, "depth_multiplier": mult})


def _check_modes(data, m, xs):
    """intsim under each LiteRT mode's profile equals that mode (or both refuse the model), and
    the node sits where the default interpreter's partition puts it."""
    for profile in MODES:
        try:
            (want,) = interpret(data, xs, profile)
        except RuntimeError as e:  # the interpreter refuses the model: intsim must too, saying why
            with pytest.raises(ModelError):
                itf.run(m, xs, profile=profile)
            assert "failed to prepare" in str(e)
            continue
        np.testing.assert_array_equal(itf.run(m, xs, profile=profile)[0], want, err_msg=profile)
        if profile == "litert":  # and the node is where the interpreter put it
            ip = Interpreter(model_content=data)
            ip.allocate_tensors()
            delegated = "DELEGATE" in [o["op_name"] for o in ip._get_ops_details()]
            assert (delegate.builtin_reason(m, m.operators[0]) is None) == delegated


ZP8 = st.sampled_from([-128, -7, 0, 3, 127])
SCALE = st.one_of(st.sampled_from([2.0**-7, 2.0**-4, 0.02, 0.05, 0.1, 0.5]), st.floats(2.0**-8, 1.0, width=32))


@st.composite
def activation_op(draw):
    """A single operator without weights, int8 (int16 where LiteRT has it), its quantization and
    shape drawn: the element count decides the NEON loops' tails in the optimized kernels."""
    op = draw(st.sampled_from(["LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "SOFTMAX",
                               "QUANTIZE", "DEQUANTIZE", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D"]))  # fmt: skip
    int16 = op in ("RELU", "LEAKY_RELU", "SOFTMAX", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D") and \
        draw(st.integers(0, 3)) == 0  # the int16 operators intsim runs  # fmt: skip
    kind = "INT16" if int16 else "INT8"
    s_in, z_in = draw(SCALE), 0 if int16 else draw(ZP8)
    s_out, z_out = draw(SCALE), 0 if int16 else draw(ZP8)
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        c, k, stride, padding = draw(st.sampled_from([3, 8, 20])), draw(st.sampled_from([2, 3])), \
            draw(st.sampled_from([1, 2])), draw(st.sampled_from([0, 1]))  # fmt: skip
        out_hw = -(-9 // stride) if padding == 0 else (9 - k) // stride + 1
        x = T("x", (1, 9, 9, c), kind, scale=s_in, zero_point=z_in)
        y = T("y", (1, out_hw, out_hw, c), kind, scale=s_in, zero_point=z_in)  # pools keep the quantization
        return single_op(op, [x], [y], dict(padding=padding, stride_h=stride, stride_w=stride, filter_height=k,
                                            filter_width=k, fused_activation_function=draw(st.sampled_from([0, 1, 3]))))  # fmt: skip
    if op == "MEAN":
        shape = (2, 3, 4, draw(st.sampled_from([5, 16, 20])))
        axes = draw(st.sampled_from([(1, 2), (2, 1), (3,), (1,), (0, 3), (1, 2, 3)]))
        keep = draw(st.booleans())
        out = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep else \
            tuple(d for i, d in enumerate(shape) if i not in axes)  # fmt: skip
        ax = T("axes", (len(axes),), "INT32", data=np.array(axes, np.int32))
        return single_op(op, [T("x", shape, kind, scale=s_in, zero_point=z_in), ax],
                         [T("y", out, kind, scale=s_out, zero_point=z_out)], {"keep_dims": keep})  # fmt: skip
    n = draw(st.sampled_from([7, 8, 13, 29, 64]))
    shape = (3, n)
    if op == "SOFTMAX":
        s_out, z_out = (1 / 32768, 0) if int16 else (1 / 256, -128)
        return single_op(op, [T("x", shape, kind, scale=s_in, zero_point=z_in)],
                         [T("y", shape, kind, scale=s_out, zero_point=z_out)], {"beta": draw(st.sampled_from([1.0, 0.5]))})
    if op in ("LOGISTIC", "TANH"):  # the output quantization LiteRT's kernels require
        s_out, z_out = (1 / 256, -128) if op == "LOGISTIC" else (1 / 128, 0)
    if op == "QUANTIZE":  # int8 -> int8, or float32 -> int8
        src = draw(st.sampled_from(["FLOAT32", "INT8"]))
        x = T("x", shape, src) if src == "FLOAT32" else T("x", shape, "INT8", scale=s_in, zero_point=z_in)
        return single_op(op, [x], [T("y", shape, "INT8", scale=s_out, zero_point=z_out)])
    if op == "DEQUANTIZE":
        return single_op(op, [T("x", shape, kind, scale=s_in, zero_point=z_in)], [T("y", shape, "FLOAT32")])
    options = {"alpha": draw(st.sampled_from([0.1, 0.2, -0.3, 2.0]))} if op == "LEAKY_RELU" else None
    return single_op(op, [T("x", shape, kind, scale=s_in, zero_point=z_in)],
                     [T("y", shape, kind, scale=s_out, zero_point=z_out)], options)  # fmt: skip


@st.composite
def binary_op(draw):
    """ADD, SUB or MUL, int8 or int16, with broadcasting, fused activations and drawn scales."""
    op = draw(st.sampled_from(["ADD", "SUB", "MUL"]))
    int16 = draw(st.integers(0, 3)) == 0
    kind, zp = ("INT16", st.just(0)) if int16 else ("INT8", ZP8)
    shapes = draw(st.sampled_from([((3, 50), (3, 50)), ((1,), (3, 21)), ((3, 21), (1, 1)), ((2, 1, 50), (2, 5, 50)),
                                   ((2, 5, 15), (2, 1, 15)), ((3, 1, 5), (1, 7, 1))]))  # fmt: skip
    s1, s2, so = draw(SCALE), draw(SCALE), draw(SCALE)
    if op in ("ADD", "SUB"):  # LiteRT CHECKs the output multiplier below 1
        left = 15 if int16 else 20
        assume(2 * max(float(np.float32(s1)), float(np.float32(s2))) / (2**left * float(np.float32(so))) < 1)
    opts = {"fused_activation_function": draw(st.sampled_from([0, 1, 2, 3]))}
    if int16 and op != "MUL":
        opts["pot_scale_int16"] = False
    out = np.broadcast_shapes(*shapes)
    return single_op(op, [T("a", shapes[0], kind, scale=s1, zero_point=draw(zp)),
                          T("b", shapes[1], kind, scale=s2, zero_point=draw(zp))],
                     [T("y", out, kind, scale=so, zero_point=draw(zp))], opts)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(weighted_layer(), activation_op(), binary_op()), seed=st.integers(0, 2**16))
def test_operators_equal_litert_in_its_three_modes(data, seed):
    """Every drawn single-operator model: intsim under each mode's profile equals LiteRT in that
    mode.  Float inputs are near-ties of the output scale, with infinities."""
    m = itf.load(data)
    rng = np.random.default_rng(seed)
    xs = []
    for t in m.input_details():
        if t.dtype == np.float32:
            s = float(m.tensors[m.operators[0].outputs[0]].scale[0])
            x = ((rng.integers(-300, 300, t.shape) + 0.5) * s).astype(np.float32)
            x.reshape(-1)[:3] = [np.inf, -np.inf, 1e30]
            xs.append(x)
        else:
            xs.append(random_int(rng, t.shape, t.dtype))
    _check_modes(data, m, xs)


def test_concatenation_with_a_fused_activation():
    """LiteRT's kernels refuse it; the default interpreter's XNNPACK delegate takes the node and
    ignores the activation: intsim does each."""
    q = dict(scale=0.05, zero_point=-3)
    data = single_op("CONCATENATION", [T("a", (2, 3), "INT8", **q), T("b", (2, 4), "INT8", **q)],
                     [T("y", (2, 7), "INT8", **q)], {"axis": 1, "fused_activation_function": 1})  # fmt: skip
    m = itf.load(data)
    rng = np.random.default_rng(0)
    xs = [random_int(rng, (2, 3), np.int8), random_int(rng, (2, 4), np.int8)]
    _check_modes(data, m, xs)
    assert np.array_equal(itf.run(m, xs, profile="litert")[0], np.concatenate(xs, axis=1))
