"""Write TFLite flatbuffers with the schema's generated builder API (the ``tflite`` package).

    x = TensorSpec("x", (1, 8, 8, 4), "INT8", scale=0.05, zero_point=-3)
    ...
    data = build([x, w, b, y], [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": 0, "stride_h": 1,
                 "stride_w": 1})], inputs=[0], outputs=[3])

Used by the tests to cover operators that the shipped models do not contain, and by anyone who
wants a one-op model to probe a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import importlib

import flatbuffers
import numpy as np
import tflite

from intsim.formats.packing import pack


def _mod(name: str):
    """The generated module ``tflite.<name>`` (the package re-exports the class of that name)."""
    return importlib.import_module(f"tflite.{name}")

# BuiltinOperator -> its BuiltinOptions table
OPTIONS = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "ADD": "AddOptions", "SUB": "SubOptions",
    "MUL": "MulOptions", "MEAN": "ReducerOptions", "PAD": "PadOptions", "PADV2": "PadV2Options",
    "RESHAPE": "ReshapeOptions", "TRANSPOSE": "TransposeOptions", "SQUEEZE": "SqueezeOptions",
    "CONCATENATION": "ConcatenationOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions", "SOFTMAX": "SoftmaxOptions", "LEAKY_RELU": "LeakyReluOptions",
    "HARD_SWISH": "HardSwishOptions", "DEQUANTIZE": "DequantizeOptions",
    "QUANTIZE": "QuantizeOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions", "EXPAND_DIMS": "ExpandDimsOptions", "SLICE": "SliceOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions", "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions", "PACK": "PackOptions", "UNPACK": "UnpackOptions", "GATHER": "GatherOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions", "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "BROADCAST_TO": "BroadcastToOptions", "SHAPE": "ShapeOptions", "FILL": "FillOptions",
    "ZEROS_LIKE": "ZerosLikeOptions", "CAST": "CastOptions", "ARG_MAX": "ArgMaxOptions", "ARG_MIN": "ArgMinOptions",
    "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions", "SUM": "ReducerOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions", "SVDF": "SVDFOptions",
    "DIV": "DivOptions", "SQUARED_DIFFERENCE": "SquaredDifferenceOptions", "GELU": "GeluOptions", "BATCH_MATMUL": "BatchMatMulOptions",
    "MIRROR_PAD": "MirrorPadOptions", "L2_NORMALIZATION": "L2NormOptions",
    "CUMSUM": "CumsumOptions", "LOG_SOFTMAX": "LogSoftmaxOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions", "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
}  # fmt: skip


@dataclass
class TensorSpec:
    name: str
    shape: tuple
    type: str  # schema TensorType name: "INT8", "INT16", "INT32", "INT64", "FLOAT32", "INT4"
    data: np.ndarray | None = None
    scale: object = None  # float or sequence (per channel)
    zero_point: object = None
    quantized_dimension: int = 0
    variable: bool = False  # a state tensor (SVDF, LSTM): kept across invocations


@dataclass
class OpSpec:
    op: str
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)  # snake_case field names of the options table
    version: int = 1
    intermediates: list = field(default_factory=list)  # tensors of internal scales (integer LSTM)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _int32_vector(b, values):
    return b.CreateNumpyVector(np.asarray(values, dtype=np.int32))


def _table_vector(b, start, offsets):
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _options(b, spec: OpSpec):
    table = OPTIONS.get(spec.op)
    if table is None:
        if spec.options:
            raise ValueError(f"no options table known for {spec.op}")
        return 0, 0
    mod = _mod(table)
    vectors = {k: _int32_vector(b, v) for k, v in spec.options.items() if isinstance(v, (list, tuple, np.ndarray))}
    getattr(mod, f"{table}Start")(b)
    for key, value in spec.options.items():
        adder = getattr(mod, f"{table}Add{_camel(key)}", None)
        if adder is None:
            raise ValueError(f"{table} has no field {key!r}")
        adder(b, vectors.get(key, value))
    return getattr(tflite.BuiltinOptions, table), getattr(mod, f"{table}End")(b)


def _tensor_bytes(t: TensorSpec) -> bytes:
    if t.type == "INT4":
        return pack(np.asarray(t.data).astype(np.int8).reshape(-1) & 0xF, 4).tobytes()
    return np.ascontiguousarray(t.data).tobytes()


def build(tensors: list[TensorSpec], ops: list[OpSpec], inputs: list[int], outputs: list[int],
          description: str = "intsim.tflite.builder", legacy_opcodes: bool = False) -> bytes:  # fmt: skip
    """The bytes of a one-subgraph ``.tflite`` model.  Operator codes go in both schema fields
    (``deprecated_builtin_code``, capped at 127, and ``builtin_code``); ``legacy_opcodes=True``
    writes only the deprecated one, as models from before schema 3a do."""
    b = flatbuffers.Builder(1024)
    buffers = [(None)] + [t for t in tensors if t.data is not None]
    buffer_offsets = []
    for t in buffers:
        data = None if t is None else b.CreateNumpyVector(np.frombuffer(_tensor_bytes(t), np.uint8))
        _mod("Buffer").BufferStart(b)
        if data is not None:
            _mod("Buffer").BufferAddData(b, data)
        buffer_offsets.append(_mod("Buffer").BufferEnd(b))
    tensor_offsets = []
    next_buffer = 1
    for t in tensors:
        name = b.CreateString(t.name)
        shape = _int32_vector(b, t.shape)
        quant = None
        if t.scale is not None:
            scale = b.CreateNumpyVector(np.atleast_1d(np.asarray(t.scale, np.float32)))
            zp = np.atleast_1d(np.asarray(0 if t.zero_point is None else t.zero_point, np.int64))
            zp = b.CreateNumpyVector(zp)
            _mod("QuantizationParameters").QuantizationParametersStart(b)
            _mod("QuantizationParameters").QuantizationParametersAddScale(b, scale)
            _mod("QuantizationParameters").QuantizationParametersAddZeroPoint(b, zp)
            _mod("QuantizationParameters").QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quant = _mod("QuantizationParameters").QuantizationParametersEnd(b)
        _mod("Tensor").TensorStart(b)
        _mod("Tensor").TensorAddShape(b, shape)
        _mod("Tensor").TensorAddType(b, getattr(tflite.TensorType, t.type))
        if t.data is not None:
            _mod("Tensor").TensorAddBuffer(b, next_buffer)
            next_buffer += 1
        if t.variable:
            _mod("Tensor").TensorAddIsVariable(b, True)
        _mod("Tensor").TensorAddName(b, name)
        if quant is not None:
            _mod("Tensor").TensorAddQuantization(b, quant)
        tensor_offsets.append(_mod("Tensor").TensorEnd(b))
    codes = sorted({(s.op, s.version) for s in ops})
    code_offsets = []
    for name, version in codes:
        code = getattr(tflite.BuiltinOperator, name)
        _mod("OperatorCode").OperatorCodeStart(b)
        _mod("OperatorCode").OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        if not legacy_opcodes:
            _mod("OperatorCode").OperatorCodeAddBuiltinCode(b, code)
        _mod("OperatorCode").OperatorCodeAddVersion(b, version)
        code_offsets.append(_mod("OperatorCode").OperatorCodeEnd(b))
    op_offsets = []
    for s in ops:
        ins, outs = _int32_vector(b, s.inputs), _int32_vector(b, s.outputs)
        inter = _int32_vector(b, s.intermediates) if s.intermediates else None
        kind, options = _options(b, s)
        _mod("Operator").OperatorStart(b)
        _mod("Operator").OperatorAddOpcodeIndex(b, codes.index((s.op, s.version)))
        _mod("Operator").OperatorAddInputs(b, ins)
        _mod("Operator").OperatorAddOutputs(b, outs)
        if inter is not None:
            _mod("Operator").OperatorAddIntermediates(b, inter)
        if kind:
            _mod("Operator").OperatorAddBuiltinOptionsType(b, kind)
            _mod("Operator").OperatorAddBuiltinOptions(b, options)
        op_offsets.append(_mod("Operator").OperatorEnd(b))
    t_vec = _table_vector(b, _mod("SubGraph").SubGraphStartTensorsVector, tensor_offsets)
    o_vec = _table_vector(b, _mod("SubGraph").SubGraphStartOperatorsVector, op_offsets)
    in_vec, out_vec = _int32_vector(b, inputs), _int32_vector(b, outputs)
    name = b.CreateString("main")
    _mod("SubGraph").SubGraphStart(b)
    _mod("SubGraph").SubGraphAddTensors(b, t_vec)
    _mod("SubGraph").SubGraphAddInputs(b, in_vec)
    _mod("SubGraph").SubGraphAddOutputs(b, out_vec)
    _mod("SubGraph").SubGraphAddOperators(b, o_vec)
    _mod("SubGraph").SubGraphAddName(b, name)
    graph = _mod("SubGraph").SubGraphEnd(b)
    graphs = _table_vector(b, _mod("Model").ModelStartSubgraphsVector, [graph])
    codes_vec = _table_vector(b, _mod("Model").ModelStartOperatorCodesVector, code_offsets)
    bufs = _table_vector(b, _mod("Model").ModelStartBuffersVector, buffer_offsets)
    desc = b.CreateString(description)
    _mod("Model").ModelStart(b)
    _mod("Model").ModelAddVersion(b, 3)
    _mod("Model").ModelAddOperatorCodes(b, codes_vec)
    _mod("Model").ModelAddSubgraphs(b, graphs)
    _mod("Model").ModelAddDescription(b, desc)
    _mod("Model").ModelAddBuffers(b, bufs)
    b.Finish(_mod("Model").ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _random_filter(rng, name: str, shape, axis: int, max_scale: float) -> TensorSpec:
    """Random int8 filters quantized per channel along ``axis`` (scales in [0.002, max_scale))."""
    n = shape[axis]
    return TensorSpec(name, shape, "INT8", data=rng.integers(-127, 128, shape).astype(np.int8),
                      scale=rng.uniform(0.002, max_scale, n), zero_point=np.zeros(n, np.int64),
                      quantized_dimension=axis)  # fmt: skip


def example_cnn(seed: int = 0, size: int = 32, channels: int = 16, every_output: bool = False) -> bytes:
    """A small int8 CNN (conv, depthwise, residual add, average pool, reshape, fully connected,
    softmax) with random weights: the benchmark's and demo's model.  Biases are quantized as the
    TFLite converter writes them (scale ``s_in * s_w``; LiteRT's XNNPACK delegate rejects a conv
    whose bias is not).  ``every_output=True`` makes every activation a graph output too, so
    that each layer's result is read without LiteRT's debugging option
    ``experimental_preserve_all_tensors``."""
    rng = np.random.default_rng(seed)
    c, h = channels, size

    def act(name, shape, scale, zp=0):
        return TensorSpec(name, shape, "INT8", scale=scale, zero_point=zp)

    def weights(name, shape, axis=0):
        return _random_filter(rng, name, shape, axis, 0.006)

    def bias(name, n, s_in, w):
        return TensorSpec(name, (n,), "INT32", data=rng.integers(-2000, 2000, n).astype(np.int32),
                          scale=np.float32(s_in) * np.asarray(w.scale, np.float32) * np.ones(n, np.float32),
                          zero_point=np.zeros(n, np.int64))  # fmt: skip

    # drawn in the order of the tensors below (the seed's values are those of earlier versions)
    conv1_w = weights("conv1/w", (c, 3, 3, 8))
    conv1_b = bias("conv1/b", c, 0.05, conv1_w)
    dw_w = weights("dw/w", (1, 3, 3, c), axis=3)
    dw_b = bias("dw/b", c, 0.08, dw_w)
    pw_a_w = weights("pw_a/w", (2 * c, 1, 1, c))
    pw_a_b = bias("pw_a/b", 2 * c, 0.05, pw_a_w)
    pw_b_w = weights("pw_b/w", (2 * c, 1, 1, c))
    pw_b_b = bias("pw_b/b", 2 * c, 0.05, pw_b_w)
    fc_w = TensorSpec("fc/w", (10, (h // 4) ** 2 * 2 * c), "INT8", scale=0.003, zero_point=0,
                      data=rng.integers(-127, 128, (10, (h // 4) ** 2 * 2 * c)).astype(np.int8))  # fmt: skip
    t = [
        act("input", (1, h, h, 8), 0.05, -2),                                   # 0
        conv1_w, conv1_b,                                                       # 1, 2
        act("conv1", (1, h, h, c), 0.08, -128),                                 # 3
        dw_w, dw_b,                                                             # 4, 5
        act("dw", (1, h // 2, h // 2, c), 0.05, -128),                          # 6
        pw_a_w, pw_a_b,                                                         # 7, 8
        act("pw_a", (1, h // 2, h // 2, 2 * c), 0.04, 3),                       # 9
        pw_b_w, pw_b_b,                                                         # 10, 11
        act("pw_b", (1, h // 2, h // 2, 2 * c), 0.04, -5),                      # 12
        act("add", (1, h // 2, h // 2, 2 * c), 0.05, -128),                     # 13
        act("pool", (1, h // 4, h // 4, 2 * c), 0.05, -128),                    # 14
        TensorSpec("flat/shape", (2,), "INT32", data=np.array([1, -1], np.int32)),  # 15
        act("flat", (1, (h // 4) ** 2 * 2 * c), 0.05, -128),                    # 16
        fc_w,                                                                   # 17
        bias("fc/b", 10, 0.05, fc_w),                                           # 18
        act("logits", (1, 10), 2.0, 0),                                         # 19
        act("probabilities", (1, 10), 1 / 256, -128),                           # 20
    ]  # fmt: skip
    conv = dict(padding=0, stride_h=1, stride_w=1)
    ops = [
        OpSpec("CONV_2D", [0, 1, 2], [3], dict(conv, fused_activation_function=1)),
        OpSpec("DEPTHWISE_CONV_2D", [3, 4, 5], [6], dict(padding=0, stride_h=2, stride_w=2, depth_multiplier=1,
                                                         fused_activation_function=3)),
        OpSpec("CONV_2D", [6, 7, 8], [9], conv),
        OpSpec("CONV_2D", [6, 10, 11], [12], conv),
        OpSpec("ADD", [9, 12], [13], dict(fused_activation_function=1)),
        OpSpec("AVERAGE_POOL_2D", [13], [14], dict(padding=1, stride_h=2, stride_w=2, filter_height=2, filter_width=2)),
        OpSpec("RESHAPE", [14, 15], [16]),
        OpSpec("FULLY_CONNECTED", [16, 17, 18], [19]),
        OpSpec("SOFTMAX", [19], [20], dict(beta=1.0)),
    ]  # fmt: skip
    outputs = [3, 6, 9, 12, 13, 14, 16, 19, 20] if every_output else [20]
    return build(t, ops, inputs=[0], outputs=outputs, description="intsim example CNN")


def example_mobilenet(seed: int = 0, size: int = 96, width: int = 8) -> bytes:
    """A 31-operator int8 MobileNet v1 (width 0.25 at ``width=8``) on a ``size`` x ``size``
    grayscale image, shaped like TFLite Micro's person detector (conv, 13 depthwise/pointwise
    pairs, average pool, 1x1 conv classifier, reshape, softmax), with random weights: the
    contention benchmark's model."""
    rng = np.random.default_rng(seed)
    tensors: list[TensorSpec] = []
    ops: list[OpSpec] = []

    def add(t: TensorSpec) -> int:
        tensors.append(t)
        return len(tensors) - 1

    def act(shape, scale=0.05, zp=-128):
        return add(TensorSpec(f"t{len(tensors)}", shape, "INT8", scale=scale, zero_point=zp))

    def layer(op, x, shape_in, cout, k, stride, options, depthwise=False, out_q=(0.05, -128), act_fn=3):
        cin = shape_in[3]
        w_shape = (1, k, k, cin) if depthwise else (cout, k, k, cin)
        axis = 3 if depthwise else 0
        w_scale = rng.uniform(0.002, 0.02, cout)
        w = add(TensorSpec(f"w{len(tensors)}", w_shape, "INT8", data=rng.integers(-127, 128, w_shape).astype(np.int8),
                           scale=w_scale, zero_point=np.zeros(cout, np.int64), quantized_dimension=axis))  # fmt: skip
        s_in = np.float32(tensors[x].scale)
        b = add(TensorSpec(f"b{len(tensors)}", (cout,), "INT32", data=rng.integers(-500, 500, cout).astype(np.int32),
                           scale=s_in * w_scale.astype(np.float32), zero_point=np.zeros(cout, np.int64)))  # fmt: skip
        hw = -(-shape_in[1] // stride)
        shape = (1, hw, hw, cout)
        y = act(shape, *out_q)
        ops.append(OpSpec(op, [x, w, b], [y], dict(padding=0, stride_h=stride, stride_w=stride,
                                                   fused_activation_function=act_fn, **options)))  # fmt: skip
        return y, shape

    x = act((1, size, size, 1), 1 / 255, -128)
    y, shape = layer("CONV_2D", x, (1, size, size, 1), width, 3, 2, {})
    plan = [(1, 2), (2, 2), (1, 4), (2, 4), (1, 8), (2, 8), (1, 16), (1, 16), (1, 16), (1, 16), (1, 16), (2, 32), (1, 32)]
    for stride, mult in plan:
        y, shape = layer("DEPTHWISE_CONV_2D", y, shape, shape[3], 3, stride, dict(depth_multiplier=1), depthwise=True)
        y, shape = layer("CONV_2D", y, shape, width * mult, 1, 1, {})
    pooled = act((1, 1, 1, shape[3]))
    ops.append(OpSpec("AVERAGE_POOL_2D", [y], [pooled], dict(padding=1, stride_h=shape[1], stride_w=shape[2],
                                                             filter_height=shape[1], filter_width=shape[2])))  # fmt: skip
    logits4, _ = layer("CONV_2D", pooled, (1, 1, 1, shape[3]), 2, 1, 1, {}, out_q=(0.1, 0), act_fn=0)
    new_shape = add(TensorSpec("shape", (2,), "INT32", data=np.array([1, 2], np.int32)))
    logits = act((1, 2), 0.1, 0)
    ops.append(OpSpec("RESHAPE", [logits4, new_shape], [logits]))
    probs = act((1, 2), 1 / 256, -128)
    ops.append(OpSpec("SOFTMAX", [logits], [probs], dict(beta=1.0)))
    return build(tensors, ops, inputs=[x], outputs=[probs], description="intsim example MobileNet")


def example_mobile_block(seed: int = 0, size: int = 16, every_output: bool = False) -> bytes:
    """An 11-operator int8 CNN of the operators mobile networks use besides those of
    ``example_cnn``: PAD, a 3x3 conv, HARD_SWISH, a depthwise conv with depth multiplier 2, a 1x1
    conv, a residual ADD, MAX_POOL_2D, MEAN over H and W (MobileNetV3's head), RESHAPE, FULLY_CONNECTED
    and SOFTMAX, with random weights and 20 channels (whole blocks of 8 and 16 and a remainder in
    LiteRT's optimized kernels).  Biases are quantized as the converter writes them."""
    rng = np.random.default_rng(seed)
    h, c1, c2 = size, 10, 20

    def act(name, shape, scale, zp):
        return TensorSpec(name, shape, "INT8", scale=scale, zero_point=zp)

    def weights(name, shape, axis=0):
        return _random_filter(rng, name, shape, axis, 0.02)

    def bias(name, s_in, w):
        n = w.scale.size
        return TensorSpec(name, (n,), "INT32", data=rng.integers(-800, 800, n).astype(np.int32),
                          scale=np.float32(s_in) * np.asarray(w.scale, np.float32), zero_point=np.zeros(n, np.int64))

    conv_w = weights("conv/w", (c1, 3, 3, 3))
    dw_w = weights("dw/w", (1, 3, 3, c2), axis=3)
    pw_w = weights("pw/w", (c2, 1, 1, c2))
    fc_w = weights("fc/w", (10, c2))
    t = [
        act("input", (1, h, h, 3), 0.05, -2),                                           # 0
        TensorSpec("pad/paddings", (4, 2), "INT32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),
        act("pad", (1, h + 2, h + 2, 3), 0.05, -2),                                     # 2
        conv_w, bias("conv/b", 0.05, conv_w),                                           # 3, 4
        act("conv", (1, h, h, c1), 0.06, 4),                                            # 5
        act("hard_swish", (1, h, h, c1), 0.05, -20),                                    # 6
        dw_w, bias("dw/b", 0.05, dw_w),                                                 # 7, 8
        act("dw", (1, h, h, c2), 0.04, -128),                                           # 9
        pw_w, bias("pw/b", 0.04, pw_w),                                                 # 10, 11
        act("pw", (1, h, h, c2), 0.05, 3),                                              # 12
        act("add", (1, h, h, c2), 0.06, -10),                                           # 13
        act("max_pool", (1, h // 2, h // 2, c2), 0.06, -10),                            # 14
        TensorSpec("mean/axes", (2,), "INT32", data=np.array([1, 2], np.int32)),        # 15
        act("mean", (1, 1, 1, c2), 0.03, -5),                                           # 16
        TensorSpec("flat/shape", (2,), "INT32", data=np.array([1, c2], np.int32)),      # 17
        act("flat", (1, c2), 0.03, -5),                                                 # 18
        fc_w, bias("fc/b", 0.03, fc_w),                                                 # 19, 20
        act("logits", (1, 10), 0.1, 0),                                                 # 21
        act("probabilities", (1, 10), 1 / 256, -128),                                   # 22
    ]  # fmt: skip
    ops = [
        OpSpec("PAD", [0, 1], [2]),
        OpSpec("CONV_2D", [2, 3, 4], [5], dict(padding=1, stride_h=1, stride_w=1)),
        OpSpec("HARD_SWISH", [5], [6]),
        OpSpec("DEPTHWISE_CONV_2D", [6, 7, 8], [9], dict(padding=0, stride_h=1, stride_w=1, depth_multiplier=2,
                                                         fused_activation_function=1)),
        OpSpec("CONV_2D", [9, 10, 11], [12], dict(padding=0, stride_h=1, stride_w=1)),
        OpSpec("ADD", [9, 12], [13]),
        OpSpec("MAX_POOL_2D", [13], [14], dict(padding=1, stride_h=2, stride_w=2, filter_height=2, filter_width=2)),
        OpSpec("MEAN", [14, 15], [16], dict(keep_dims=True)),
        OpSpec("RESHAPE", [16, 17], [18]),
        OpSpec("FULLY_CONNECTED", [18, 19, 20], [21]),
        OpSpec("SOFTMAX", [21], [22], dict(beta=1.0)),
    ]  # fmt: skip
    outputs = [2, 5, 6, 9, 12, 13, 14, 16, 18, 21, 22] if every_output else [22]
    return build(t, ops, inputs=[0], outputs=outputs, description="intsim example mobile block")
