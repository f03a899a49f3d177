"""Hypothesis over the quantizers: drawn float models, calibration data and settings.

Edge-heavy draws: zeroed output channels, power-of-two weights, calibration data that is
constant, all zero, negative only or a single sample, every method, grids from 2 to 8 bits.
For ONNX each written activation scale and zero point is ``intsim.calibrate``'s on the float
tensor (one batch) and intsim equals onnxruntime on inputs inside and beyond the calibrated
range; for TFLite every layer equals LiteRT's reference kernels and the TFLite Micro runtime.
"""

import logging

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from _tflite_util import assert_every_layer
from test_onnx_models import ORT, ort_session
from test_ptq_onnx import written_params

from intsim import calibrate as C
from intsim import ptq
from intsim.onnx import run
from intsim.ptq import tflite_model as T
from intsim.tflite.builder import OpSpec, TensorSpec, build

logging.getLogger().setLevel(logging.ERROR)
OPTIONS = {"mse": {"candidates": 64}, "percentile": {"percentile": 99.0}}


@st.composite
def weights(draw, shape):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    w = rng.normal(0, 1 / np.sqrt(shape[-1]), shape)
    if draw(st.booleans()):  # powers of two: ties of every grid
        w = np.sign(w) * 2.0 ** np.round(np.log2(np.abs(w) + 1e-9))
    zero = draw(st.lists(st.integers(0, shape[0] - 1), max_size=min(2, shape[0] - 1)))
    w[zero] = 0.0  # all-zero output channels (scale 1.0), never all of them
    return w.astype(np.float32)


@st.composite
def calibration(draw, features):
    n = draw(st.sampled_from([1, 2, 17]))
    kind = draw(st.sampled_from(["normal", "normal", "relu", "relu", "negative", "constant", "zero"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.normal(0, 2, (n, features))
    x = {"normal": x, "relu": np.abs(x), "negative": -np.abs(x) - 0.1, "constant": np.full_like(x, 0.75),
         "zero": np.zeros_like(x)}[kind]  # fmt: skip
    return x.astype(np.float32)


@st.composite
def mlp_case(draw):
    f, h, o = draw(st.integers(2, 12)), draw(st.integers(1, 8)), draw(st.integers(1, 5))
    trans_b = draw(st.booleans())
    w1 = draw(weights((h, f)))
    inits = [numpy_helper.from_array(w1 if trans_b else w1.T.copy(), "w1"),
             numpy_helper.from_array(np.float32(np.random.default_rng(h).normal(0, 0.3, h)), "b1"),
             numpy_helper.from_array(draw(weights((o, h))), "w2"), numpy_helper.from_array(np.zeros(o, np.float32), "b2")]  # fmt: skip
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=int(trans_b)),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]  # fmt: skip
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", f])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", o])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, draw(calibration(f))


@settings(max_examples=40)
@given(case=mlp_case(), method=st.sampled_from(C.METHODS), w=st.sampled_from(["int8", "int4", "int3", "int2"]),
       a=st.sampled_from(["uint8", "int8", "uint4", "int6", "uint2"]), per_channel=st.booleans())  # fmt: skip
def test_onnx_quantizer_on_drawn_models(case, method, w, a, per_channel):
    model, x = case
    options = OPTIONS.get(method, {})
    q = ptq.quantize(model, x, method=method, weights=w, activations=a, per_channel=per_channel, **options)
    acts, _ = written_params(q)
    from intsim.ptq.onnx_model import _session

    sess = _session(model, ["x", "h", "r", "y"])
    values = dict(zip(["h", "r", "y"], sess.run(["h", "r", "y"], {"x": x}), strict=True)) | {"x": x}
    bits, store = int(a.lstrip("uint")), "int8" if a.startswith("int") else "uint8"
    for name, (scale, zp, scale_name) in acts.items():
        assert scale_name == f"{name}_scale", name
        v = values[name]
        want = C.calibrate(v, method, dtype=f"int{bits}", signed=bool(v.min() < 0), storage=store, **options)
        assert scale == want.scale and zp == want.zero_point, (name, scale, want.scale, zp, want.zero_point)
    rng = np.random.default_rng(1)
    for k in (1.0, 1.5):
        feeds = {"x": (rng.normal(0, 2, (8, x.shape[1])) * k).astype(np.float32)}
        np.testing.assert_array_equal(run(q, feeds, profile=ORT)["y"], ort_session(q).run(None, feeds)[0])


def _f32(name, shape, data=None):
    return TensorSpec(name, tuple(shape), "FLOAT32", None if data is None else np.asarray(data, np.float32))


@st.composite
def tflite_case(draw):
    """CONV_2D (k 1 or 3, stride 1 or 2, SAME or VALID, fused activation) -> DEPTHWISE -> FC."""
    c, k, stride = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
    padding, act = draw(st.sampled_from([0, 1])), draw(st.sampled_from([0, 1, 3]))
    size = 6
    out = (size + stride - 1) // stride if padding == 0 else (size - k) // stride + 1
    cout = draw(st.integers(1, 5))
    w1, wd, wf = draw(weights((cout, k, k, c))), draw(weights((cout, 3, 3, 1))).transpose(3, 1, 2, 0), None
    wf = draw(weights((3, out * out * cout)))
    t = [_f32("x", (1, size, size, c)), _f32("w1", w1.shape, w1), _f32("b1", (cout,), np.linspace(-0.2, 0.2, cout)),
         _f32("h1", (1, out, out, cout)), _f32("wd", wd.shape, wd), _f32("bd", (cout,), np.zeros(cout)),
         _f32("h2", (1, out, out, cout)), TensorSpec("shape", (2,), "INT32", np.array([1, out * out * cout], np.int32)),
         _f32("flat", (1, out * out * cout)), _f32("wf", wf.shape, wf), _f32("bf", (3,), [0.1, 0.0, -0.1]),
         _f32("y", (1, 3))]  # fmt: skip
    ops = [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": padding, "stride_h": stride, "stride_w": stride,
                                              "fused_activation_function": act}),
           OpSpec("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {"padding": 0, "stride_h": 1, "stride_w": 1, "depth_multiplier": 1}),
           OpSpec("RESHAPE", [6, 7], [8]), OpSpec("FULLY_CONNECTED", [8, 9, 10], [11])]  # fmt: skip
    x = draw(calibration(size * size * c)).reshape(-1, size, size, c)
    return build(t, ops, [0], [11]), x


@settings(max_examples=25)
@given(case=tflite_case(), method=st.sampled_from(C.METHODS), activations=st.sampled_from(["int8", "int16"]),
       w=st.sampled_from(["int8", "int4"]))  # fmt: skip
def test_tflite_quantizer_on_drawn_models(case, method, activations, w):
    model, x = case
    try:
        q = T.quantize(model, x, method=method, activations=activations, weights=w, **OPTIONS.get(method, {}))
    except ValueError as e:  # only where calibration left a tensor without range (all zero: scale 1.0)
        event("refused: a tensor without range")
        assert "cannot run under TFLite's rules" in str(e) and "calibration saw no range in '" in str(e), str(e)
        return
    for profile in ("tflite-reference", "tflm"):
        assert_every_layer(q.data, profile, seed=2, draws=2)
