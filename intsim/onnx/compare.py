"""Per-layer error of a quantized ONNX model against its float model, and against onnxruntime.

``compare(quantized, float_model, inputs)`` runs the quantized model with intsim, the float
model with intsim's float operators, and (when onnxruntime is installed) the quantized model
with onnxruntime exposing every quantized tensor.  For each quantized activation it reports
the SQNR and max abs error of its dequantized value against the float tensor it stands for
(matched by name: onnxruntime's quantizer names them ``<float>_quantized`` or
``<float>_QuantizeLinear_Output``), and how many integer elements differ from onnxruntime's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from intsim.onnx.graph import MS_DOMAIN, Graph
from intsim.onnx.interpreter import load, run
from intsim.profiles import onnxruntime_cpu

# producer op type -> positions of (scale, zero point) of its output
OUTPUT_PARAMS = {
    ("", "QuantizeLinear"): (1, 2), ("", "QLinearConv"): (6, 7), ("", "QLinearMatMul"): (6, 7),
    (MS_DOMAIN, "QGemm"): (7, 8), (MS_DOMAIN, "QLinearAdd"): (6, 7), (MS_DOMAIN, "QLinearMul"): (6, 7),
    (MS_DOMAIN, "QLinearAveragePool"): (3, 4), (MS_DOMAIN, "QLinearGlobalAveragePool"): (3, 4),
    (MS_DOMAIN, "QLinearLeakyRelu"): (3, 4), (MS_DOMAIN, "QLinearSigmoid"): (3, 4), (MS_DOMAIN, "QLinearConcat"): (0, 1),
}  # fmt: skip
PASS_THROUGH = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"}
SUFFIXES = ("_QuantizeLinear_Output", "_quantized", "_output_quantized")


@dataclass
class LayerError:
    tensor: str  # the quantized tensor
    float_tensor: str | None  # the float tensor it approximates
    producer: str
    sqnr_db: float
    max_abs_error: float
    differs_from_onnxruntime: int | None  # elements; None when onnxruntime did not run
    elements: int


def quantized_tensors(graph: Graph) -> dict[str, tuple[str, str, str]]:
    """Quantized activation name -> (scale name, zero point name, producer label)."""
    params = {}
    for n in graph.nodes:
        key = ("" if n.domain in ("", "ai.onnx") else n.domain, n.op_type)
        if key in OUTPUT_PARAMS:
            s, z = OUTPUT_PARAMS[key]
            if len(n.inputs) > z and n.inputs[z]:
                params[n.outputs[0]] = (n.inputs[s], n.inputs[z], n.label())
        elif n.op_type in PASS_THROUGH and n.inputs[0] in params:
            s, z, _ = params[n.inputs[0]]
            params[n.outputs[0]] = (s, z, n.label())
    return params


def _float_name(name: str, float_names: set) -> str | None:
    name = name.removesuffix("_on_grid")  # intsim.ptq's clamp of a narrow activation grid
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in float_names:
            return name[: -len(suffix)]
    return name if name in float_names else None


def _after_fused_relu(graph: Graph, name: str | None) -> str | None:
    """The QOperator quantizer folds a Relu into the op before it but names the result after
    the op's pre-activation output; compare with the Relu's output then."""
    users = [n for n in graph.nodes if name in n.inputs]
    if name is not None and len(users) == 1 and users[0].op_type == "Relu":
        return users[0].outputs[0]
    return name


def _onnxruntime_values(graph: Graph, names, inputs):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    model = onnx.ModelProto()
    model.CopyFrom(graph.proto)
    have = {o.name for o in model.graph.output}
    for name in names:
        if name not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, inputs)
    return {o.name: v for o, v in zip(sess.get_outputs(), outs)}


def compare(quantized_model, float_model, inputs: dict, *, profile=None,
            qdq: str = "fused") -> list[LayerError]:  # fmt: skip
    """Per-layer errors (see the module docstring), in graph order.  ``profile=None`` takes the
    profile of onnxruntime's CPU EP on this machine (``profiles.onnxruntime_cpu()``), the peer
    the integer tensors are compared with."""
    profile = profile or onnxruntime_cpu()
    q = load(quantized_model)
    f = load(float_model)
    qres = run(q, inputs, profile=profile, qdq=qdq, return_intermediates=True)
    fres = run(f, inputs, qdq="float", return_intermediates=True)
    params = quantized_tensors(q)
    names = [n for n in params if n in qres.values]
    ort_values = _onnxruntime_values(q, names, inputs)
    rows = []
    for name in names:
        s_name, z_name, producer = params[name]
        qv = qres.values[name]
        scale = np.float64(qres.values[s_name])
        zp = np.int64(qres.values[z_name])
        deq = (qv.astype(np.int64) - zp) * scale
        fname = _after_fused_relu(f, _float_name(name, set(fres.values)))
        if fname is not None and fres.values[fname].shape == qv.shape:
            ref = fres.values[fname].astype(np.float64)
            noise = float(np.sum((ref - deq) ** 2))
            sqnr = float("inf") if noise == 0 else 10 * np.log10(max(float(np.sum(ref**2)), 1e-300) / noise)
            err = float(np.max(np.abs(ref - deq)))
        else:
            fname, sqnr, err = None, float("nan"), float("nan")
        differs = None if ort_values is None or name not in ort_values else int(np.sum(ort_values[name] != qv))
        rows.append(LayerError(name, fname, producer, sqnr, err, differs, qv.size))
    return rows


def format_report(rows: list[LayerError]) -> str:
    lines = [f"{'quantized tensor':40s} {'float tensor':14s} {'SQNR dB':>8s} {'max |err|':>10s} {'!= ORT':>8s}"]
    for r in rows:
        differs = "n/a" if r.differs_from_onnxruntime is None else f"{r.differs_from_onnxruntime}/{r.elements}"
        lines.append(f"{r.tensor[:40]:40s} {str(r.float_tensor)[:14]:14s} {r.sqnr_db:8.2f} {r.max_abs_error:10.4g} {differs:>8s}")
    return "\n".join(lines)
