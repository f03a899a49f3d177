"""What each calibration method and bit width costs on a real trained model and real data.

The digits CNN (``benchmarks/digits.py``: 98.3% float top-1 on its 360 held-out images) is
quantized by ``intsim.ptq.quantize`` with every method at weights {8, 6, 4, 3} bits x activations
{8, 6, 4} bits (per-channel symmetric weights; activations on the unsigned grid after each ReLU,
the signed one for the logits), calibrated on the 1,437 training images in batches of 256.
Each integer model runs in intsim on the 360 test images, checked element by element against
onnxruntime on the same model; per-layer SQNR against the float tensors (``intsim.onnx.compare``).
The TFLite twin (int8 and int16x8) runs in intsim's ``tflm`` profile and in the TFLite Micro runtime.

``python benchmarks/run.py quantization`` prints the tables and writes
``benchmarks/results/quantization.md`` and ``quantization.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
W_BITS, A_BITS = (8, 6, 4, 3), (8, 6, 4)


def _progress(i: int, n: int, what: str) -> None:
    width = 30
    done = int(width * i / n)
    print(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {what:40s}", end="", file=sys.stderr, flush=True)


def _onnx_rows(x, y, train, test):
    import onnxruntime as ort

    from benchmarks import digits
    from intsim import ptq
    from intsim.calibrate import METHODS
    from intsim.onnx import run
    from intsim.onnx.compare import compare
    from intsim.profiles import onnxruntime_cpu

    so = ort.SessionOptions()
    so.log_severity_level = 3
    float_logits = ort.InferenceSession(str(digits.ONNX_PATH), so, providers=["CPUExecutionProvider"]).run(
        None, {"image": x[test]})[0]  # fmt: skip
    float_acc = float(np.mean(float_logits.argmax(1) == y[test]))
    rows, n, k = [], len(METHODS) * len(W_BITS) * len(A_BITS), 0
    for method in METHODS:
        for wb in W_BITS:
            for ab in A_BITS:
                k += 1
                _progress(k, n, f"onnx {method} w{wb} a{ab}")
                t0 = time.perf_counter()
                q = ptq.quantize(digits.ONNX_PATH, x[train], method=method, weights=f"int{wb}", activations=f"uint{ab}")
                seconds = time.perf_counter() - t0
                feeds = {"image": x[test]}
                logits = run(q, feeds, profile=onnxruntime_cpu())["logits"]
                peer = ort.InferenceSession(q.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
                layers = compare(q, str(digits.ONNX_PATH), feeds)
                # the last row of a tensor is its value on the grid (after the clamp of a narrow one)
                sqnr = {r.float_tensor: r.sqnr_db for r in layers if r.float_tensor in ("relu1", "relu2", "relu3", "logits")}
                rows.append({"method": method, "w": wb, "a": ab, "acc": float(np.mean(logits.argmax(1) == y[test])),
                             "differ": int(np.count_nonzero(logits != peer)), "seconds": seconds, "sqnr": sqnr})  # fmt: skip
    print(file=sys.stderr)
    return float_acc, rows


def _tflite_rows(x, y, train, test):
    from tflite_micro import runtime

    from benchmarks import digits
    from intsim.calibrate import METHODS
    from intsim.ptq import tflite_model
    import intsim.tflite as itf

    nhwc = x.transpose(0, 2, 3, 1)
    rows, n, k = [], 2 * len(METHODS), 0
    for activations in ("int8", "int16"):
        for method in METHODS:
            k += 1
            _progress(k, n, f"tflite {method} {activations}")
            t0 = time.perf_counter()
            q = tflite_model.quantize(digits.TFLITE_PATH, nhwc[train], method=method, activations=activations)
            seconds = time.perf_counter() - t0
            (s, z), dtype = q.input_params[0], np.dtype(activations)
            m = itf.load(q.data)
            micro = runtime.Interpreter.from_bytes(q.data)
            correct = differ = 0
            for i in test:
                xi = np.clip(np.round(nhwc[i : i + 1] / s) + z, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
                mine = itf.run(m, xi, profile="tflm")[0]
                micro.set_input(xi, 0)
                micro.invoke()
                differ += int(np.count_nonzero(mine != micro.get_output(0)))
                correct += int(mine.argmax() == y[i])
            rows.append({"method": method, "a": activations, "acc": correct / len(test), "differ": differ, "seconds": seconds})
    print(file=sys.stderr)
    return rows


def _markdown(float_acc, rows, trows) -> str:
    from intsim.calibrate import METHODS

    lines = [f"Digits CNN, 360 test images, float top-1 {float_acc:.1%}.  ONNX QDQ models run by intsim; "
             "'!= ORT' counts logits differing from onnxruntime on the same model.", "",
             "Top-1 accuracy (%) by method, weights x activations bits:", "",
             "| method | " + " | ".join(f"w{w}/a{a}" for w in W_BITS for a in A_BITS) + " |",
             "|---|" + "---|" * (len(W_BITS) * len(A_BITS))]  # fmt: skip
    by = {(r["method"], r["w"], r["a"]): r for r in rows}
    for method in METHODS:
        cells = []
        for w in W_BITS:
            for a in A_BITS:
                best = max(by[(m, w, a)]["acc"] for m in METHODS)
                acc = by[(method, w, a)]["acc"]
                cells.append(f"**{acc * 100:.1f}**" if acc == best else f"{acc * 100:.1f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Per-layer SQNR (dB) at w4/a4 and calibration time (s, w8/a8 .. w3/a4 mean):", "",
              "| method | relu1 | relu2 | relu3 | logits | calibration s | != ORT (all 72 models) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in METHODS:
        r = by[(method, 4, 4)]
        mean_s = np.mean([x["seconds"] for x in rows if x["method"] == method])
        differ = sum(x["differ"] for x in rows if x["method"] == method)
        lines.append(f"| {method} | " + " | ".join(f"{r['sqnr'].get(t, float('nan')):.1f}" for t in ("relu1", "relu2", "relu3", "logits"))
                     + f" | {mean_s:.2f} | {differ} |")  # fmt: skip
    lines += ["", "TFLite twin, fully integer, run by intsim's tflm profile ('!= TFLM' against the TFLite Micro runtime):", "",
              "| method | int8 top-1 % | int16x8 top-1 % | calibration s (int8) | != TFLM |", "|---|---|---|---|---|"]  # fmt: skip
    tb = {(r["method"], r["a"]): r for r in trows}
    for method in METHODS:
        a, b = tb[(method, "int8")], tb[(method, "int16")]
        lines.append(f"| {method} | {a['acc'] * 100:.1f} | {b['acc'] * 100:.1f} | {a['seconds']:.2f} | {a['differ'] + b['differ']} |")
    return "\n".join(lines)


def _plot(float_acc, rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from intsim.calibrate import METHODS

    fig, axes = plt.subplots(1, len(A_BITS), figsize=(12, 3.6), sharey=True)
    for ax, a in zip(axes, A_BITS, strict=True):
        for method in METHODS:
            accs = [next(r["acc"] for r in rows if (r["method"], r["w"], r["a"]) == (method, w, a)) for w in W_BITS]
            ax.plot(W_BITS, np.array(accs) * 100, marker="o", label=method)
        ax.axhline(float_acc * 100, color="k", ls="--", lw=0.8, label="float")
        ax.set_title(f"{a}-bit activations")
        ax.set_xlabel("weight bits")
        ax.invert_xaxis()
    axes[0].set_ylabel("top-1 % (360 digits)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run() -> str:
    from benchmarks import digits

    x, y = digits.load()
    train, test = digits.split(len(y))
    float_acc, rows = _onnx_rows(x, y, train, test)
    trows = _tflite_rows(x, y, train, test)
    text = _markdown(float_acc, rows, trows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quantization.md").write_text(text + "\n")
    _plot(float_acc, rows, RESULTS / "quantization.png")
    return text + f"\n\nwrote {RESULTS / 'quantization.md'} and {RESULTS / 'quantization.png'}"
