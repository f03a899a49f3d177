"""The layers with weights (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV), drawn by
hypothesis over their geometry and quantization, against LiteRT in each of its three modes:
``litert`` = the default ``Interpreter()``, ``litert-builtin`` = the optimized kernels,
``tflite-reference`` = BUILTIN_REF.  Power-of-two scales make the requantization's ties exact,
extreme zero points and every fused activation cover the clamps, int16x8 and bias without
quantization parameters keep a node out of XNNPACK; the node's place (XNNPACK or not) is checked
against the default interpreter's partition, and a model an interpreter refuses must be refused
by intsim too."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import MODES, T, interpret, random_int, single_op
from ai_edge_litert.interpreter import Interpreter
from hypothesis import given, settings
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


@settings(max_examples=60, deadline=None)
@given(data=weighted_layer(), seed=st.integers(0, 2**16))
def test_weighted_layers_equal_litert_in_its_three_modes(data, seed):
    m = itf.load(data)
    rng = np.random.default_rng(seed)
    xs = [random_int(rng, t.shape, t.dtype) for t in m.input_details()]
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
