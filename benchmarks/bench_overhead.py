"""Per-call overhead: layers and a model small enough that Python, checks and dispatch are most
of their time.  Each row is intsim alone (us per call, best of 30 interleaved samples); compare
two checkouts by running ``python benchmarks/run.py overhead`` in each, back to back.

* prepared conv: ``ops.prepare_conv2d`` on a 1x4x4x8 int8 input, 3x3 SAME, 8 filters (2.3k MACs);
* prepared FC: ``ops.prepare_fully_connected``, 1x16 -> 16 (256 MACs);
* prepared QLinearConv: ``ops.prepare_qlinear_conv`` on 1x8x4x4 uint8, 3x3, 8 filters;
* op conv2d: ``ops.conv2d`` on the same layer as the prepared conv (checks and packing per call);
* 31-op MobileNet: ``intsim.tflite.run`` on ``builder.example_mobilenet()`` (96x96x1, width 0.25).
"""

from __future__ import annotations

import numpy as np

import intsim.tflite as itf
from benchmarks._timing import best_times, table
from intsim import ops
from intsim.tflite.builder import example_mobilenet


def _cases():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, 4, 4, 8), dtype=np.int8)
    w = rng.integers(-127, 128, (8, 3, 3, 8), dtype=np.int8)
    b = rng.integers(-1000, 1000, 8, dtype=np.int32)
    q = dict(input_scale=0.02, input_zero_point=3, filter_scale=np.full(8, 0.01), output_scale=0.05,
             output_zero_point=-2, profile="tflite-reference")  # fmt: skip
    conv = ops.prepare_conv2d(w, b, input_shape=x.shape, input_dtype=np.int8, **q)
    xf = rng.integers(-128, 128, (1, 16), dtype=np.int8)
    wf = rng.integers(-127, 128, (16, 16), dtype=np.int8)
    fc = ops.prepare_fully_connected(wf, b[:1].repeat(16), input_dtype=np.int8, input_scale=0.02, filter_scale=0.01,
                                     output_scale=0.05, profile="tflm")  # fmt: skip
    xo = rng.integers(0, 256, (1, 8, 4, 4), dtype=np.uint8)
    wo = rng.integers(-127, 128, (8, 8, 3, 3), dtype=np.int8)
    qconv = ops.prepare_qlinear_conv(xo.shape, np.uint8, 0.02, np.uint8(128), wo, 0.01, np.int8(0), 0.05,
                                     np.uint8(128), pads=(1, 1, 1, 1), profile="onnxruntime-cpu")  # fmt: skip
    model = itf.load(example_mobilenet())
    xm = model.random_inputs(rng)
    return {
        "prepared conv 1x4x4x8, 3x3x8": lambda: conv(x),
        "prepared FC 16 -> 16": lambda: fc(xf),
        "prepared QLinearConv 1x8x4x4, 3x3x8": lambda: qconv(xo),
        "op conv2d 1x4x4x8, 3x3x8": lambda: ops.conv2d(x, w, b, padding="SAME", **q),
        "31-op int8 MobileNet (tflite.run)": lambda: itf.run(model, xm),
    }


def run() -> str:
    cases = _cases()
    t = best_times(cases, repeat=30)
    rows = [[name, f"{t[name] * 1e6:.1f}"] for name in cases]
    return "## Per-call overhead (us per call, best of 30 interleaved samples)\n\n" + table(["case", "us"], rows)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(run())
