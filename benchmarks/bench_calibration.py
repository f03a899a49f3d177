"""Calibration: the quantization-error sweep (synthetic distributions and the real weight tensors
of the shared TFLite models), and OCTAV's speed against onnxruntime's histogram calibrators and
a 1000-point brute-force sweep, measured in the same run.

Run: ``python benchmarks/run.py calibration``.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import tflite
from onnxruntime.quantization.calibrate import HistogramCollector

from benchmarks._timing import best_time, table
from intsim import calibrate as C
from intsim.calibrate import sweep
from intsim.calibrate.groups import grid_for, make_groups
from intsim.calibrate.mse import empirical_mse

MODELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "models" / "tflite"


def model_weights() -> dict[str, np.ndarray]:
    """Float weights (int8 values times their per-channel scales) of every constant int8 tensor
    with at least 2 dimensions in the TFLite models of tests/data."""
    out = {}
    for path in sorted(MODELS.glob("*.tflite")):
        model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        graph = model.Subgraphs(0)
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            raw = model.Buffers(t.Buffer()).DataAsNumpy()
            shape = tuple(int(d) for d in t.ShapeAsNumpy())
            if t.Type() != 9 or isinstance(raw, int) or raw.size == 0 or len(shape) < 2:
                continue
            q = t.Quantization()
            scale = q.ScaleAsNumpy().astype(np.float64)
            dims = [1] * len(shape)
            dims[q.QuantizedDimension()] = scale.size
            values = raw.view(np.int8).reshape(shape).astype(np.float64) * scale.reshape(dims)
            out[f"{path.stem}:{t.Name().decode()[-28:]}"] = values.reshape(-1)
    return out


def ort_collector(method, x):
    def run():
        c = HistogramCollector(method=method, symmetric=True, num_bins=2048, num_quantized_bins=128,
                               percentile=99.999, scenario="same")  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress
            c.collect({"t": [x]})
            return float(c.compute_collection_result()["t"][1])

    return run


def speed_rows(n: int = 10**6):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    groups = make_groups(x)
    grid = grid_for("int8")

    def mse(clip):
        return float(empirical_mse(groups.data, np.array([clip]), grid, groups.counts)[0])

    runs = {
        "intsim OCTAV (int8)": lambda: float(C.octav(x, dtype="int8")[0]),
        "intsim OCTAV fixed point only (refine=False)": lambda: float(C.octav(x, dtype="int8", refine=False)[0]),
        "intsim entropy (TensorRT KL)": lambda: float(C.clip_entropy(x, dtype="int8")),
        "intsim MSE sweep, 1000 points": lambda: float(C.clip_mse(x, dtype="int8", candidates=1000)),
        "onnxruntime HistogramCollector entropy": ort_collector("entropy", x),
        "onnxruntime HistogramCollector percentile 99.999": ort_collector("percentile", x),
    }
    times = {}
    for name, fn in runs.items():
        t0 = time.perf_counter()
        fn()
        once = time.perf_counter() - t0
        times[name] = best_time(fn, repeat=max(3, min(20, int(0.5 / once))), warmup=1)
    clips = {name: fn() for name, fn in runs.items()}
    mses = {name: mse(clip) for name, clip in clips.items()}
    t_octav, sweep_mse = times["intsim OCTAV (int8)"], mses["intsim MSE sweep, 1000 points"]
    return [[name, f"{times[name] * 1e3:.1f}", f"{times[name] / t_octav:.1f}", f"{clips[name]:.4f}",
             f"{mses[name]:.4e}", f"{mses[name] / sweep_mse - 1:+.3%}"] for name in runs]  # fmt: skip


def run() -> str:
    tensors = sweep.synthetic(100_000) | model_weights()
    rows = sweep.error_sweep(tensors, bits=range(2, 9))
    out = ["quantization error by calibration method (signed narrow grid, per tensor)", sweep.markdown(rows), ""]
    out.append("calibration speed on 10**6 float32 Gaussian values (ratio = time / OCTAV's time)")
    out.append(table(["method", "ms", "x OCTAV time", "clip", "int8 MSE", "MSE vs sweep"], speed_rows()))
    return "\n".join(out)


if __name__ == "__main__":
    print(run())
