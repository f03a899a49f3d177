"""A float ``.tflite`` model and calibration data in, a fully integer ``.tflite`` model out.

Follows the TFLite quantization specification (tensorflow/lite/g3doc/performance/
quantization_spec.md) and writes the flatbuffer with ``intsim.tflite.builder``; no TensorFlow:

* ``activations="int8"``: every activation int8 per tensor, its parameters from intsim's
  observers (a tensor that never goes negative on the calibration data gets the unsigned grid,
  stored with zero point -128; others the symmetric signed grid, zero point 0);
  ``activations="int16"`` (16x8): int16, symmetric, zero point 0 always, as the spec requires.
* weights int8, symmetric, per output channel (CONV_2D and FULLY_CONNECTED along axis 0,
  DEPTHWISE_CONV_2D along axis 3), narrow range ``[-127, 127]`` (``weights="int4"``: the 4-bit
  grid in int8), rounded half away from zero as the converter does (``std::round``);
* bias int32 (int64 for 16x8) at ``input_scale * weight_scale`` (a float32 product, as the
  converter's ``SymmetricPerChannelBiasQuantize``), zero point 0;
* MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE and PAD keep their input's parameters; SOFTMAX and
  LOGISTIC write the fixed output ``1/256, -128`` (int8) or ``1/32768, 0`` (int16).

The graph's input and output become integer tensors (the converter's
``inference_input_type``/``inference_output_type`` set to the activation type): quantize the
input with ``input_params`` and dequantize the output with ``output_params`` of the result.

Calibration runs the float model in LiteRT's builtin kernels with every tensor kept
(``experimental_preserve_all_tensors``), one sample at a time, gathered into batches for the
streaming observers (``intsim.ptq.observers``): two passes, ranges then clips, as for ONNX.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intsim.calibrate.api import calibrate
from intsim.ptq.data import InputSpec, batches
from intsim.ptq.observers import check_method, observe
from intsim.rounding import round_half_away
from intsim.tflite.builder import OpSpec, TensorSpec, build
from intsim.tflite.model import parse

WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
SAME_AS_INPUT = {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD"}
FIXED_OUTPUT = {"SOFTMAX", "LOGISTIC"}
HANDLED = set(WEIGHT_AXIS) | SAME_AS_INPUT | FIXED_OUTPUT | {"ADD", "MEAN"}
FIXED = {"int8": (1 / 256, -128), "int16": (1 / 32768, 0)}


@dataclass
class Quantized:
    """The integer model's bytes and what a caller needs to feed and read it."""

    data: bytes
    input_params: list  # (scale, zero point) per graph input
    output_params: list  # (scale, zero point) per graph output
    seconds: float


def _float_model(model):
    m = parse(model, None if isinstance(model, (bytes, bytearray)) else str(model))
    for op in m.operators:
        if op.op not in HANDLED:
            raise ValueError(f"operator {op.index} ({op.op}): the TFLite quantizer handles {', '.join(sorted(HANDLED))}")
        for k in op.inputs + op.outputs:
            t = m.tensors[k] if k >= 0 else None
            if t is not None and t.data is None and t.type_name != "FLOAT32":
                raise ValueError(f"operator {op.index} ({op.op}): {t.describe()} is not float32; "
                                 "the quantizer takes float models")  # fmt: skip
    return m


def _interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():  # LiteRT warns that preserving every tensor is for debugging
        warnings.simplefilter("ignore")
        ip = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                         experimental_preserve_all_tensors=True)  # fmt: skip
    ip.allocate_tensors()
    return ip


def _activations(m) -> list[int]:
    """Indices of the float tensors that carry activations: graph inputs and operator outputs."""
    out = list(m.inputs) + [k for op in m.operators for k in op.outputs]
    return list(dict.fromkeys(k for k in out if m.tensors[k].data is None))


def _stream(m, ip, calibration_data, batch_size):
    """Batches of every activation (by tensor index), the float model run sample by sample."""
    specs = [InputSpec(m.tensors[k].name, (None, *m.tensors[k].shape[1:])) for k in m.inputs]
    wanted = _activations(m)
    for feed in batches(specs, calibration_data, batch_size):
        n = next(iter(feed.values())).shape[0]
        rows: dict[int, list] = {k: [] for k in wanted}
        for i in range(n):
            for k in m.inputs:
                ip.set_tensor(k, feed[m.tensors[k].name][i : i + 1])
            ip.invoke()
            for k in wanted:
                rows[k].append(ip.get_tensor(k).copy())
        yield {k: np.concatenate(v) for k, v in rows.items()}


def quantize(model, calibration_data, *, method: str = "octav", activations: str = "int8", weights: str = "int8",
             batch_size: int = 256, progress=None, **options) -> Quantized:  # fmt: skip
    """The fully integer model of the float ``model`` (module docstring); ``method`` and
    ``options`` as ``intsim.ptq.quantize``."""
    t0 = time.perf_counter()
    check_method(method, options)
    if activations not in FIXED:
        raise ValueError(f"activations must be int8 or int16 (16x8) for TFLite, got {activations!r}")
    w_bits = _weight_bits(weights)
    m = _float_model(model)
    raw = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    ip = _interpreter(bytes(raw))
    _, clips, _ = observe(lambda: _stream(m, ip, calibration_data, batch_size), method, 16 if activations == "int16" else 8,
                          all_signed=activations == "int16", describe=lambda k: m.tensors[k].describe(), progress=progress,
                          **options)  # fmt: skip
    params = {k: c.params(activations) for k, c in clips.items()}
    data = _write(m, params, activations, method, w_bits, options)
    _check_runs(data, [m.tensors[k].name for k, c in clips.items() if c.clip == 0])
    q = lambda k: (float(params[k].scale), int(params[k].zero_point))  # noqa: E731
    return Quantized(data, [q(k) for k in m.inputs], [q(k) for k in m.outputs], time.perf_counter() - t0)


def _check_runs(data: bytes, no_range: list[str]) -> None:
    """Run the written model once (zeros) under the TFLite rules: a layer whose multiplier
    ``s_in * s_w / s_out`` the runtimes' requantization does not define (int16x8 allows a left
    shift of at most 7) is refused here, naming the tensors calibration gave no range."""
    import intsim.tflite as itf
    from intsim.tflite.model import ModelError

    model = itf.load(data)
    zeros = [np.zeros(t.shape, t.dtype) for t in model.input_details()]
    try:
        for profile in ("tflite-reference", "tflm"):
            itf.run(model, zeros, profile=profile, backend="reference")
    except (ModelError, ValueError) as e:
        why = (f"calibration saw no range in {', '.join(repr(n) for n in no_range)} (scale 1.0)" if no_range
               else "no tensor lacked a range")  # fmt: skip
        raise ValueError(f"the quantized model cannot run under TFLite's rules: {str(e).splitlines()[0]}; {why}") from None


def _weight_bits(weights: str) -> int:
    if weights.startswith("int") and weights[3:].isdigit() and 2 <= int(weights[3:]) <= 8:
        return int(weights[3:])
    raise ValueError(f"weights must be int8 or a narrower signed grid (int2 ... int7) for TFLite, got {weights!r}")


def _write(m, params: dict, activations: str, method: str, w_bits: int, options: dict):
    """The integer model's bytes: tensor specs from the parameters, operators copied with their options."""
    type_name = activations.upper()
    specs: dict[int, TensorSpec] = {}
    chosen = {k: (np.float32(p.scale), int(p.zero_point)) for k, p in params.items()}
    for op in m.operators:  # fixed and inherited parameters, in graph order
        out = op.outputs[0]
        if op.op in SAME_AS_INPUT:
            chosen[out] = chosen[op.inputs[0]]
        elif op.op in FIXED_OUTPUT:
            chosen[out] = (np.float32(FIXED[activations][0]), FIXED[activations][1])
    for k, (s, z) in chosen.items():
        t = m.tensors[k]
        specs[k] = TensorSpec(t.name, t.shape, type_name, None, float(s), z)
    for op in m.operators:
        if op.op in WEIGHT_AXIS:
            axis = WEIGHT_AXIS[op.op]
            w = m.tensors[op.inputs[1]]
            p = calibrate(w.data.astype(np.float32), method, dtype=f"int{w_bits}", signed=True, axis=axis,
                          storage="int8", **options)  # fmt: skip
            scale = p.scale.reshape(-1).astype(np.float32)
            shape = [1] * w.data.ndim
            shape[axis] = -1
            qmax = (1 << (w_bits - 1)) - 1
            q = np.clip(round_half_away(w.data.astype(np.float64) / scale.astype(np.float64).reshape(shape)), -qmax, qmax)
            specs[op.inputs[1]] = TensorSpec(w.name, w.shape, "INT8", q.astype(np.int8), scale, np.zeros(scale.size, np.int64), axis)
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b = m.tensors[op.inputs[2]]
                bscale = (chosen[op.inputs[0]][0] * scale).astype(np.float32)
                wide = np.int64 if activations == "int16" else np.int32
                info = np.iinfo(wide)
                qb = np.clip(round_half_away(b.data.astype(np.float64) / bscale.astype(np.float64)), info.min, info.max)
                specs[op.inputs[2]] = TensorSpec(b.name, b.shape, "INT64" if wide is np.int64 else "INT32",
                                                 qb.astype(wide), bscale, np.zeros(bscale.size, np.int64), 0)  # fmt: skip
    for t in m.tensors:  # the rest: integer constants (shapes, axes, paddings) as they are
        if t.index not in specs:
            if t.data is None or t.type_name == "FLOAT32":
                if t.data is not None:
                    raise ValueError(f"{t.describe()}: a float constant outside a weight or bias is not handled")
                continue
            specs[t.index] = TensorSpec(t.name, t.shape, t.type_name, t.data)
    order = sorted(specs)
    index = {k: i for i, k in enumerate(order)}
    ops = [OpSpec(op.op, [index[k] if k >= 0 else -1 for k in op.inputs], [index[k] for k in op.outputs],
                  _options(op)) for op in m.operators]  # fmt: skip
    return build([specs[k] for k in order], ops, [index[k] for k in m.inputs], [index[k] for k in m.outputs],
                 description=f"intsim.ptq: {method} calibration, {activations} activations, int{w_bits} weights")  # fmt: skip


def _options(op) -> dict:
    """The operator's builtin options as ``parse`` read them, less fields the builder writes
    itself or that hold no value."""
    return {k: v for k, v in op.options.items() if not (isinstance(v, list) and not v)}
