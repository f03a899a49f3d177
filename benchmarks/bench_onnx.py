"""ONNX forward pass: intsim (exact) against onnxruntime on the same quantized models.

The models are intsim.onnx.examples' CNN (the largest test CNN, here at 32x32 and 64x64
inputs) and MLP, quantized by onnxruntime's quantize_static in QDQ and QOperator formats
(per channel, uint8 activations, where onnxruntime fuses every QDQ group).  Each row checks
that intsim's output equals onnxruntime's before timing.
"""

from __future__ import annotations

import logging

import numpy as np

from benchmarks._timing import best_time, table


def run() -> str:
    import onnxruntime as ort

    from intsim.onnx import examples, load
    from intsim.onnx import run as intsim_run
    from intsim.profiles import onnxruntime_cpu

    ORT = onnxruntime_cpu()  # the profile of onnxruntime on this CPU

    logging.getLogger().setLevel(logging.ERROR)
    rows = []
    for label, float_model in (("CNN 32x32", examples.cnn(size=32)), ("CNN 64x64", examples.cnn(size=64)),
                               ("MLP 4x64", examples.mlp())):  # fmt: skip
        feeds = examples.calibration_inputs(float_model, 1, seed=4)[0]
        for fmt in ("qdq", "qoperator"):
            model = examples.quantize(float_model, fmt=fmt, per_channel=True, activation="uint8")
            so = ort.SessionOptions()
            so.log_severity_level = 3
            sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            graph = load(model)
            want = sess.run(None, feeds)[0]
            got = intsim_run(graph, feeds, profile=ORT)["output"]
            exact = np.array_equal(want, got)
            t_ort = best_time(lambda: sess.run(None, feeds), repeat=20)
            t_sim = best_time(lambda: intsim_run(graph, feeds, profile=ORT), repeat=20)
            rows.append([label, fmt, f"{t_sim * 1e3:.2f}", f"{t_ort * 1e3:.3f}", f"{t_sim / t_ort:.1f}x",
                         "yes" if exact else "NO"])  # fmt: skip
    return "ONNX forward pass, best of 20 (ms):\n" + table(
        ["model", "format", "intsim", "onnxruntime", "intsim / ORT time", "bit-exact"], rows
    )
