"""A float ONNX model and calibration data in, a QDQ ONNX model with intsim's scales out.

Three steps, each its own function:

1. ``observe``: run the float model in onnxruntime with every float tensor exposed, batch by
   batch, twice: the first pass records each tensor's range (its sign fixes the grid: signed
   when the tensor goes negative, unsigned otherwise), the second feeds one streaming observer
   per tensor (``intsim.ptq.observers``).  Only the current batch is ever in memory.
2. ``plan``: the parameters of every activation (from its observer) and of every weight
   (``intsim.calibrate`` on the initializer, per output channel or per tensor).
3. ``write``: onnxruntime's own QDQ quantizer (``quantize_static``) writes the graph, fed the
   plan through its per-tensor overrides (``TensorQuantOverrides``: scale and zero point per
   tensor, per channel for weights).  Chosen over a hand-written rewrite because onnxruntime's
   quantizer is what decides which tensors get Q/DQ pairs, which share their input's parameters
   (MaxPool, AveragePool, Flatten, Reshape, ...), where a Relu folds into its producer, how the
   bias becomes int32 at ``x_scale * w_scale``, and so which groups its QDQ transformer fuses
   into integer kernels: writing those rules again would be a second, drifting copy.

Widths.  ``weights`` and ``activations`` name a type, ``"int8"``, ``"uint8"``, ``"int16"`` or
any ``"intB"``/``"uintB"`` with B from 2 to 16 (``"int4"``, ``"int6"``): B sets the grid's
levels, the storage is the 8-bit (16-bit above 8 bits) type of the same signedness, the widths
onnxruntime's integer kernels take (a QDQ tensor typed INT4 would make onnxruntime dequantize it
and run the float operator).  A weight on a grid narrower than its storage is clipped to
``+-scale * qmax`` before onnxruntime rounds it, so every stored level lies on the grid; an
activation on a narrower grid gets a clamp to its grid's levels after each of its
QuantizeLinear nodes (``DequantizeLinear -> Clip -> QuantizeLinear`` at the grid's ends,
which onnxruntime and intsim both run exactly: each level dequantizes and requantizes to
itself, and the bounds are dequantized levels).  Bias stays onnxruntime's int32.  Activations wider
than 8 bits are refused: onnxruntime has no integer kernels for them (it runs those groups in
float and rewrites int8-weight MatMul/Gemm into MatMulNBits), so there is no integer arithmetic
to be exact against; ``intsim.ptq.tflite_model`` writes int16x8 models.  int8
activations follow onnxruntime's x86 route (``intsim.onnx.fuse``: single-use pairs run as
uint8; a Conv after a tensor read twice runs in float, within a step).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intsim.calibrate.api import calibrate
from intsim.calibrate.groups import grid_for
from intsim.ptq.data import InputSpec, batches
from intsim.ptq.observers import ClipObserver, check_method
from intsim.ptq.observers import observe as observe_stream

# operators the written model runs as integer kernels in onnxruntime and intsim (intsim.onnx.fuse)
WEIGHTED = {"Conv", "Gemm", "MatMul"}  # their input 1 is a weight (output channels: weight_axis)
HANDLED = WEIGHTED | {"Add", "Mul", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
                           "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "LeakyRelu", "Sigmoid",
                           "Identity"}  # fmt: skip


def storage(name: str, what: str) -> tuple[str, int]:
    """``(storage type, grid bits)`` of a ``weights``/``activations`` name."""
    try:
        grid = grid_for(name)
    except ValueError:
        raise ValueError(f"{what} must name an integer type such as int8, uint8, int4 or int16, got {name!r}") from None
    width = 8 if grid.bits <= 8 else 16
    return f"{'int' if grid.signed else 'uint'}{width}", grid.bits


def _load(model):
    import onnx

    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        try:
            proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read the float model {str(model)[:80]!r}: {e}") from None
        except Exception as e:  # protobuf's DecodeError
            raise ValueError(f"the float model is not an ONNX file ({type(e).__name__}: {e})") from None
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ValueError(f"the float model fails onnx.checker: {str(e).splitlines()[0]}") from None
    inits = {i.name for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in HANDLED:
            raise ValueError(f"node {node.name or node.output[0]!r} ({node.op_type}): the quantizer handles "
                             f"{', '.join(sorted(HANDLED))}")  # fmt: skip
        if node.op_type in WEIGHTED and node.input[1] not in inits:
            raise ValueError(f"node {node.name or node.output[0]!r} ({node.op_type}): its weight "
                             f"{node.input[1]!r} is not an initializer")  # fmt: skip
    return proto


def input_specs(proto) -> list[InputSpec]:
    inits = {i.name for i in proto.graph.initializer}
    specs = []
    for v in proto.graph.input:
        if v.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim)
        specs.append(InputSpec(v.name, dims))
    return specs


def _session(proto, names):
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in have)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def observe(proto, calibration_data, *, method: str, bits: int, batch_size: int = 256, progress=None,
            **options) -> dict[str, ClipObserver]:  # fmt: skip
    """Stream the calibration data through the float model twice (module docstring); the
    observer of each float tensor by name."""
    specs = input_specs(proto)
    names = [s.name for s in specs] + [o for n in proto.graph.node for o in n.output if o]
    sess = _session(proto, names)
    out_names = [o.name for o in sess.get_outputs()]

    def stream():
        for feed in batches(specs, calibration_data, batch_size):
            out = dict(zip(out_names, sess.run(None, feed), strict=True)) | feed
            yield {k: v for k, v in out.items() if np.issubdtype(np.asarray(v).dtype, np.floating)}

    _, clips, _ = observe_stream(stream, method, bits, describe=lambda n: f"tensor {n!r}", progress=progress,
                                 **options)  # fmt: skip
    return clips


@dataclass
class Plan:
    """What ``write`` gives onnxruntime: parameters per activation and per weight."""

    activations: dict  # tensor name -> QuantParams
    weights: dict  # initializer name -> (QuantParams, axis or None)
    weight_storage: str
    weight_bits: int
    activation_storage: str
    activation_bits: int


def weight_axis(proto, node) -> int:
    """The output-channel axis of a Conv/Gemm/MatMul weight."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return 1  # MatMul: (K, N)


def plan(proto, clips: dict[str, ClipObserver], *, method: str, weights: str, activations: str, per_channel: bool,
         **options) -> Plan:  # fmt: skip
    a_store, a_bits = storage(activations, "activations")
    w_store, w_bits = storage(weights, "weights")
    acts = {n: c.params(a_store) for n, c in clips.items()}
    inits = {i.name: i for i in proto.graph.initializer}
    from onnx import numpy_helper

    wparams = {}
    for node in proto.graph.node:
        if node.op_type not in WEIGHTED:
            continue
        name = node.input[1]
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        axis = weight_axis(proto, node) if per_channel and w.ndim > 1 else None
        p = calibrate(w, method, dtype=f"int{w_bits}", signed=True, axis=axis, storage=w_store, **options)
        wparams[name] = (p, axis)
    return Plan(acts, wparams, w_store, w_bits, a_store, a_bits)


_QTYPES = {"int8": "QInt8", "uint8": "QUInt8", "int16": "QInt16", "uint16": "QUInt16"}


def _overrides(p: Plan, proto) -> dict:
    np_store = {n: np.dtype(n) for n in _QTYPES}
    ov = {}
    for name, q in p.activations.items():
        ov[name] = [{"scale": np.array(q.scale, np.float32).reshape(()),
                     "zero_point": np.array(q.zero_point, np_store[p.activation_storage]).reshape(())}]  # fmt: skip
    for name, (q, axis) in p.weights.items():
        zp = np.asarray(q.zero_point).astype(np_store[p.weight_storage])
        if axis is None:
            ov[name] = [{"scale": np.array(q.scale, np.float32).reshape(()), "zero_point": zp.reshape(())}]
        else:
            ov[name] = [{"axis": axis, "scale": np.array(s, np.float32), "zero_point": np.array(z, zp.dtype)}
                        for s, z in zip(q.scale.reshape(-1), zp.reshape(-1), strict=True)]  # fmt: skip
    return ov


def _clip_weights(proto, p: Plan):
    """A copy of ``proto`` whose planned weights are clipped to their grids' ends (float32)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    qmax = np.float32(grid_for(f"int{p.weight_bits}").qmax)
    for init in model.graph.initializer:
        if init.name in p.weights:
            q, axis = p.weights[init.name]
            w = numpy_helper.to_array(init).astype(np.float32)
            shape = [1] * w.ndim
            if axis is not None:
                shape[axis] = -1
            top = (q.scale * qmax).reshape(shape)
            init.CopyFrom(numpy_helper.from_array(np.clip(w, -top, top), init.name))
    return model


def _clamp_narrow_activations(model, p: Plan) -> None:
    """After each activation QuantizeLinear, ``DequantizeLinear -> Clip -> QuantizeLinear`` to
    the grid's levels (module docstring).  Activations are stored in 8 bits (wider ones are
    refused)."""
    from onnx import helper, numpy_helper

    if p.activation_bits == 8:
        return
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = []
    renamed = {}
    for node in model.graph.node:
        nodes.append(node)
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:
            continue
        s_name, z_name = node.input[1], node.input[2]
        scale, zp = np.float32(inits[s_name]), int(inits[z_name])
        signed_store = p.activation_storage.startswith("int")
        signed_grid = (zp == 0) if signed_store else (zp != 0)  # see params_from_clip's offsets
        qmax = grid_for(f"int{p.activation_bits}", signed_grid).qmax
        low, high = (zp - qmax, zp + qmax) if signed_grid else (zp, zp + qmax)
        y = node.output[0]
        lo_name, hi_name = f"{y}_grid_low", f"{y}_grid_high"
        model.graph.initializer.extend([
            numpy_helper.from_array(np.float32(low - zp) * scale, lo_name),
            numpy_helper.from_array(np.float32(high - zp) * scale, hi_name)])  # fmt: skip
        clamped = f"{y}_on_grid"
        nodes += [
            helper.make_node("DequantizeLinear", [y, s_name, z_name], [f"{y}_grid_dq"], name=f"{y}_grid_dq"),
            helper.make_node("Clip", [f"{y}_grid_dq", lo_name, hi_name], [f"{y}_grid_clip"], name=f"{y}_grid_clip"),
            helper.make_node("QuantizeLinear", [f"{y}_grid_clip", s_name, z_name], [clamped], name=f"{y}_grid_q"),
        ]  # fmt: skip
        renamed[y] = clamped
    for node in nodes:
        if node.name.endswith("_grid_dq"):
            continue
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def write(proto, p: Plan, calibration_feed: dict):
    """The QDQ model onnxruntime's quantizer writes from ``proto`` with the plan's parameters."""
    import onnx

    model = _clip_weights(proto, p)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static's advice to pre-process, on the root logger
    try:
        out = _quantize_static(model, p, proto, calibration_feed)
    finally:
        root.setLevel(level)
    _clamp_narrow_activations(out, p)
    onnx.checker.check_model(out)
    return out


def _quantize_static(model, p: Plan, proto, calibration_feed: dict):
    import onnx
    from onnxruntime import quantization as q

    class OneBatch(q.CalibrationDataReader):  # onnxruntime calibrates too; the overrides replace it
        def __init__(self):
            self.feeds = iter([calibration_feed])

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "quantized.onnx")
        onnx.save(model, src)
        q.quantize_static(
            str(src), str(dst), OneBatch(), quant_format=q.QuantFormat.QDQ,
            per_channel=any(axis is not None for _, axis in p.weights.values()),
            weight_type=getattr(q.QuantType, _QTYPES[p.weight_storage]),
            activation_type=getattr(q.QuantType, _QTYPES[p.activation_storage]),
            extra_options={"TensorQuantOverrides": _overrides(p, proto)},
        )  # fmt: skip
        return onnx.load(str(dst))


def quantize(model, calibration_data, *, method: str = "octav", weights: str = "int8", activations: str = "uint8",
             per_channel: bool = True, batch_size: int = 256, progress=None, **options):  # fmt: skip
    """A QDQ ``onnx.ModelProto`` of the float ``model`` with intsim's parameters (module docstring).

    ``method``: ``octav`` (default), ``mse``, ``entropy``, ``percentile``, ``max`` or ``aciq``;
    ``options`` go to it (``percentile=99.9``, OCTAV's ``grid="paper"``, ...), the same for
    weights and activations.  ``per_channel``: weights per output channel (else per tensor).
    ``progress(stage, batches)`` is called after each calibration batch.
    """
    check_method(method, options)
    storage(weights, "weights")
    a_store, a_bits = storage(activations, "activations")
    if a_store.endswith("16"):
        raise ValueError(f"activations {activations!r}: onnxruntime has no integer kernels for activations "
                         "wider than 8 bits (it runs those groups in float, and int8-weight MatMul/Gemm as "
                         "MatMulNBits); intsim.ptq.tflite_model writes int16x8 models")  # fmt: skip
    proto = _load(model)
    clips = observe(proto, calibration_data, method=method, bits=a_bits, batch_size=batch_size, progress=progress,
                    **options)  # fmt: skip
    p = plan(proto, clips, method=method, weights=weights, activations=activations, per_channel=per_channel, **options)
    first = next(batches(input_specs(proto), calibration_data, batch_size))
    return write(proto, p, first)
