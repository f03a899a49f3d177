"""Regressions of issue 16: inputs that once gave a silent wrong answer now give the peer's
answer or a clear error."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _tflite_util import T, reference, single_op
from onnx import numpy_helper

import intsim.tflite as itf
from intsim import fixedpoint as fxp
from intsim import ops
from intsim import profiles as P
from intsim import quant as Q
from intsim.onnx import ModelError, examples, load, run
from intsim.tflite.builder import OpSpec, build

logging.getLogger().setLevel(logging.ERROR)
ORT = P.onnxruntime_cpu()


# ---- 1. a fused QDQ Conv relies on its bias DequantizeLinear's parameters ----------------------


def _qdq_cnn_with_bias_dq(scale_factor=1.0, zero_point=0):
    model = examples.quantize(examples.cnn(), fmt="qdq", per_channel=True, activation="uint8")
    inits = {i.name: i for i in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.name == "b1_DequantizeLinear")
    scale = numpy_helper.to_array(inits[dq.input[1]]) * np.float32(scale_factor)
    zp = np.full(numpy_helper.to_array(inits[dq.input[2]]).shape, zero_point, np.int32)
    inits[dq.input[1]].CopyFrom(numpy_helper.from_array(scale.astype(np.float32), dq.input[1]))
    inits[dq.input[2]].CopyFrom(numpy_helper.from_array(zp, dq.input[2]))
    return model


def _ort_optimized_ops(model, path) -> list[str]:
    """The operators of the graph onnxruntime runs after its optimizations (saved to ``path``)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(path)
    ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("factor, zp, fused", [(1.0, 0, True), (1.015, 0, True), (2.0, 0, False), (1.0, 39, False)])
def test_conv_fused_only_where_onnxruntime_fuses_it(tmp_path, factor, zp, fused):
    """onnxruntime fuses DQ -> Conv -> Q only with a bias DQ of zero point 0 and scale within
    1e-6 + 1% of x_scale * w_scale; the first conv of the model is fused by both or neither,
    and its output equals onnxruntime's (within the one step a float Conv may differ by)."""
    model = _qdq_cnn_with_bias_dq(factor, zp)
    assert ("Conv" not in _ort_optimized_ops(model, tmp_path / "optimized.onnx")) == fused
    graph = load(model)
    feeds = examples.calibration_inputs(examples.cnn(), 3, seed=11)
    name = "r1_QuantizeLinear_Output"
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.ValueInfoProto(name=name))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    for x in feeds:
        result = run(graph, x, profile=ORT, return_intermediates=True)
        assert any(note.startswith("Conv node 12 (conv1)") for note in result.fused) == fused
        want = sess.run([name], x)[0]
        steps = np.abs(result.values[name].astype(int) - want)
        assert steps.max() <= (0 if fused else 1)


@pytest.mark.parametrize("scale", [np.nan, -1.0])
def test_invalid_bias_dq_scale_is_an_error_naming_the_node(scale):
    model = _qdq_cnn_with_bias_dq(scale)
    with pytest.raises(ModelError, match="b1_DequantizeLinear"):
        run(load(model), examples.calibration_inputs(examples.cnn(), 1)[0], profile=ORT)


def test_gemm_fused_with_a_departing_bias_says_so():
    """onnxruntime 1.32 fuses a Gemm whatever its bias DQ says; intsim follows and notes it."""
    model = examples.quantize(examples.mlp(), fmt="qdq", per_channel=False, activation="uint8")
    inits = {i.name: i for i in model.graph.initializer}
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    dq = next(n for n in model.graph.node if n.output[0] == gemm.input[2])
    inits[dq.input[2]].CopyFrom(numpy_helper.from_array(
        np.full(numpy_helper.to_array(inits[dq.input[2]]).shape, 39, np.int32), dq.input[2]))  # fmt: skip
    result = run(load(model), examples.calibration_inputs(examples.mlp(), 1)[0], profile=ORT, return_intermediates=True)
    assert sum("differs from the graph as written" in n for n in result.fused) == 1


# ---- 2. a Python int where the output type comes from the zero point -------------------------


def test_python_int_output_zero_point_is_rejected():
    f32, u8, i8 = np.float32, np.uint8, np.int8
    x = np.full((1, 2, 5, 5), 130, np.uint8)
    with pytest.raises(ValueError, match="y_zero_point"):
        ops.qlinear_conv(x, f32(0.02), u8(128), np.ones((3, 2, 3, 3), i8), f32(0.005), i8(0), f32(0.01), 120,
                         None, pads=[1, 1, 1, 1])  # fmt: skip
    with pytest.raises(ValueError, match="y_zero_point"):
        ops.qlinear_matmul(np.ones((2, 3), u8), f32(0.1), u8(0), np.ones((3, 4), i8), f32(0.1), i8(0), f32(0.1), 7)
    y = ops.qlinear_matmul(np.ones((2, 3), u8), f32(0.1), u8(0), np.ones((3, 4), i8), f32(0.1), i8(0), f32(0.01), u8(7))
    assert y.dtype == np.uint8 and y.tolist() == [[10, 10, 10, 10]] * 2  # 3 * (0.1 * 0.1 / 0.01) + 7


# ---- 3. invalid parameters -------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda: P.get("tflm").requantize(np.array([100]), 0.05, 0.01, -0.1, 0, qmin=-128, qmax=127), "s_out"),
    (lambda: P.get("onnxruntime-cpu").requantize(np.array([100]), 0.05, np.nan, 0.1, 0, qmin=-128, qmax=127), "s_w"),
    (lambda: Q.dequantize(np.array([1], np.int8), 0.1, 1000), "zero_point"),
    (lambda: Q.dequantize(np.array([1], np.uint8), 0.1, -1), "zero_point"),
    (lambda: fxp.quantize_multiplier(-0.1), "non-negative"),
])  # fmt: skip
def test_invalid_parameters_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- 4. multipliers the targets leave undefined, or define -----------------------------------


def _fc_model(output_scale):
    x = T("x", (2, 8), "INT8", scale=0.1, zero_point=0)
    w = T("w", (4, 8), "INT8", data=np.ones((4, 8), np.int8), scale=0.1, zero_point=0)
    y = T("y", (2, 4), "INT8", scale=output_scale, zero_point=0)
    return single_op("FULLY_CONNECTED", [x, w, None], [y])


def test_absurd_fc_multiplier_follows_litert_or_raises():
    """A real multiplier of 1e10: LiteRT's reference FC converts the out-of-range product as
    x86's cvttsd2si does (INT32_MIN), which intsim reproduces; TFLite Micro's MBQM shifts left
    by 34 bits and single rounding overflows int32, which the C sources leave undefined."""
    data = _fc_model(1e-12)
    x = np.ones((2, 8), np.int8)
    (want,) = reference(data, [x])
    assert want.tolist() == [[-128] * 4] * 2
    for whole_model in (None, False):
        (got,) = itf.run(itf.load(data), [x], profile="tflite-reference", whole_model=whole_model)
        np.testing.assert_array_equal(got, want)
    kwargs = dict(input_scale=0.1, filter_scale=0.1, output_scale=1e-12)
    with pytest.raises(ValueError, match="left shift of 34 bits"):
        ops.fully_connected(x, np.ones((4, 8), np.int8), profile="tflm", **kwargs)
    with pytest.raises(ValueError, match="overflows int32"):
        ops.fully_connected(x, np.ones((4, 8), np.int8), profile="tflm-single-rounding", **kwargs)
    with pytest.raises(itf.ModelError, match="FULLY_CONNECTED"):
        itf.run(itf.load(data), [x], profile="tflm")


@pytest.mark.parametrize("backend", ["reference", "jit", "jit-serial"])
def test_single_rounding_overflow_is_reported_by_every_backend(backend):
    acc = np.array([[2**20, -(2**20)]], np.int32)
    with pytest.raises(ValueError, match="overflows int32"):
        P.get("tflm-single-rounding").requantize(acc, 1.0, 1.0, 1 / 4096, 0, qmin=-128, qmax=127, backend=backend)
    req = P.Requantizer(P.get("tflm-single-rounding"), 1.0, 1.0, 1 / 4096, 0, qmin=-128, qmax=127, backend=backend)
    with pytest.raises(ValueError, match="overflows int32"):
        req(acc)
    assert req(np.array([[2**10, -(2**10)]], np.int32)).tolist() == [[127, -128]]  # in range: defined


# ---- 5. operator codes: the larger of deprecated_builtin_code and builtin_code ---------------


def test_legacy_opcode_field_is_read_as_litert_reads_it():
    """A model with only deprecated_builtin_code (builtin_code absent, read as 0 = ADD) names
    its operator by the larger of the two, as LiteRT's GetBuiltinCode does."""
    x = T("x", (1, 4), "INT8", scale=0.05, zero_point=0)
    y = T("y", (1, 4), "INT8", scale=0.05, zero_point=0)
    data = build([x, y], [OpSpec("RELU", [0], [1], {})], [0], [1], legacy_opcodes=True)
    model = itf.load(data)
    assert [op.op for op in model.operators] == ["RELU"]
    xs = [np.array([[-5, 0, 3, 127]], np.int8)]
    np.testing.assert_array_equal(itf.run(model, xs)[0], reference(data, xs)[0])


# ---- rough edges -----------------------------------------------------------------------------


def test_onnx_backend_is_exported():
    from intsim.onnx import Backend
    from intsim.onnx.backend import Backend as Defined

    assert Backend is Defined


def test_cli_progress_line_on_long_commands(capsys):
    import time

    from intsim import cli

    with cli._Progress(after=0.01):
        time.sleep(0.2)
    assert "compiles numba kernels" in capsys.readouterr().err
    with cli._Progress(after=5.0):
        pass
    assert capsys.readouterr().err == ""
