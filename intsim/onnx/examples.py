"""Small float models built with ``onnx.helper`` and their quantization by onnxruntime.

``cnn()``: conv (3x3, pad 1) -> relu -> grouped strided conv -> relu -> depthwise conv ->
residual add -> max pool -> average pool -> concat with a 1x1 branch -> global average pool
-> flatten -> gemm.  ``mlp()``: gemm -> relu -> matmul + add -> relu -> gemm.  ``gated_mlp()``:
sigmoid(gemm) * leaky_relu(gemm) -> gemm, the gated unit of modern MLP blocks.  Weights are
seeded, so every call builds the same model.  ``quantize(model, ...)`` runs onnxruntime's
``quantize_static`` (QDQ or QOperator, per tensor or per channel, int8 or uint8
activations) on seeded calibration data; it needs onnxruntime, which ``intsim[test]`` has.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _model(nodes, inits, x_shape, y_shape, name):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, y_shape)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def cnn(size: int = 16, channels: int = 8, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """A residual CNN on a (1, 3, size, size) input; ``size`` must be a multiple of 4."""
    rng = np.random.default_rng(seed)
    c = channels

    def w(*shape):
        fan_in = int(np.prod(shape[1:]))
        return rng.normal(0, 1.0 / np.sqrt(fan_in), shape)

    inits = [
        _init("w1", w(c, 3, 3, 3)), _init("b1", rng.normal(0, 0.1, c)),
        _init("w2", w(c, c // 2, 3, 3)), _init("b2", rng.normal(0, 0.1, c)),
        _init("w3", w(c, 1, 3, 3)), _init("b3", rng.normal(0, 0.1, c)),
        _init("w4", w(c, c, 1, 1)), _init("b4", rng.normal(0, 0.1, c)),
        _init("wf", w(classes, 2 * c)), _init("bf", rng.normal(0, 0.1, classes)),
    ]  # fmt: skip
    mk = helper.make_node
    nodes = [
        mk("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        mk("Relu", ["c1"], ["r1"], name="relu1"),
        mk("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2_grouped_s2", pads=[1, 1, 1, 1], strides=[2, 2],
           group=2, kernel_shape=[3, 3]),
        mk("Relu", ["c2"], ["r2"], name="relu2"),
        mk("Conv", ["r2", "w3", "b3"], ["c3"], name="conv3_depthwise", pads=[1, 1, 1, 1], group=c,
           kernel_shape=[3, 3]),
        mk("Add", ["c3", "r2"], ["res"], name="residual_add"),
        mk("MaxPool", ["res"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        mk("AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
           strides=[1, 1]),
        mk("Conv", ["mp", "w4", "b4"], ["c4"], name="conv4_1x1"),
        mk("Concat", ["ap", "c4"], ["cat"], name="concat", axis=1),
        mk("GlobalAveragePool", ["cat"], ["gap"], name="global_pool"),
        mk("Flatten", ["gap"], ["flat"], name="flatten"),
        mk("Gemm", ["flat", "wf", "bf"], ["output"], name="classifier", transB=1),
    ]  # fmt: skip
    return _model(nodes, inits, [1, 3, size, size], [1, classes], "intsim_cnn")


def mlp(features: int = 64, hidden: int = 32, classes: int = 10, batch: int = 4, seed: int = 1) -> onnx.ModelProto:
    """Gemm -> Relu -> MatMul + Add -> Relu -> Gemm on a (batch, features) input."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", rng.normal(0, 1 / np.sqrt(features), (features, hidden))), _init("b1", rng.normal(0, 0.1, hidden)),
        _init("w2", rng.normal(0, 1 / np.sqrt(hidden), (hidden, hidden))), _init("b2", rng.normal(0, 0.1, hidden)),
        _init("w3", rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes))), _init("b3", rng.normal(0, 0.1, classes)),
    ]  # fmt: skip
    mk = helper.make_node
    nodes = [
        mk("Gemm", ["input", "w1", "b1"], ["h1"], name="fc1"),
        mk("Relu", ["h1"], ["r1"], name="relu1"),
        mk("MatMul", ["r1", "w2"], ["m2"], name="fc2_matmul"),
        mk("Add", ["m2", "b2"], ["h2"], name="fc2_bias"),
        mk("Relu", ["h2"], ["r2"], name="relu2"),
        mk("Gemm", ["r2", "w3", "b3"], ["output"], name="fc3"),
    ]
    return _model(nodes, inits, [batch, features], [batch, classes], "intsim_mlp")


def gated_mlp(features: int = 48, hidden: int = 32, classes: int = 10, batch: int = 4, seed: int = 3) -> onnx.ModelProto:
    """``Gemm(Sigmoid(Gemm(x)) * LeakyRelu(Gemm(x)))`` on a (batch, features) input: onnxruntime
    quantizes the gate and the product into QLinearSigmoid, QLinearLeakyRelu and QLinearMul."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("wg", rng.normal(0, 1 / np.sqrt(features), (features, hidden))), _init("bg", rng.normal(0, 0.5, hidden)),
        _init("wu", rng.normal(0, 1 / np.sqrt(features), (features, hidden))), _init("bu", rng.normal(0, 0.1, hidden)),
        _init("wo", rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes))), _init("bo", rng.normal(0, 0.1, classes)),
    ]  # fmt: skip
    mk = helper.make_node
    nodes = [
        mk("Gemm", ["input", "wg", "bg"], ["g"], name="gate_fc"),
        mk("Sigmoid", ["g"], ["gs"], name="gate_sigmoid"),
        mk("Gemm", ["input", "wu", "bu"], ["u"], name="up_fc"),
        mk("LeakyRelu", ["u"], ["ul"], name="up_leaky_relu", alpha=0.1),
        mk("Mul", ["gs", "ul"], ["h"], name="gate_mul"),
        mk("Gemm", ["h", "wo", "bo"], ["output"], name="down_fc"),
    ]
    return _model(nodes, inits, [batch, features], [batch, classes], "intsim_gated_mlp")


def calibration_inputs(model: onnx.ModelProto, count: int = 8, seed: int = 2) -> list[dict]:
    """``count`` seeded float32 input batches shaped like ``model``'s input."""
    rng = np.random.default_rng(seed)
    v = model.graph.input[0]
    shape = [d.dim_value for d in v.type.tensor_type.shape.dim]
    return [{v.name: rng.normal(0, 1, shape).astype(np.float32)} for _ in range(count)]


def quantize(model: onnx.ModelProto, *, fmt: str = "qdq", per_channel: bool = False,
             activation: str = "int8", calibration: list[dict] | None = None) -> onnx.ModelProto:  # fmt: skip
    """``onnxruntime.quantization.quantize_static`` of ``model``: ``fmt`` ``"qdq"`` or
    ``"qoperator"``, int8 weights, ``activation`` ``"int8"`` or ``"uint8"``, MinMax calibration
    on ``calibration`` (default: ``calibration_inputs(model)``)."""
    from onnxruntime import quantization as q

    data = list(calibration or calibration_inputs(model))

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter(data)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "quant.onnx")
        onnx.save(model, src)
        q.quantize_static(
            str(src), str(dst), Reader(),
            quant_format=q.QuantFormat.QDQ if fmt == "qdq" else q.QuantFormat.QOperator,
            per_channel=per_channel, weight_type=q.QuantType.QInt8,
            activation_type=q.QuantType.QInt8 if activation == "int8" else q.QuantType.QUInt8,
        )  # fmt: skip
        return onnx.load(dst)
