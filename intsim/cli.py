"""The ``intsim`` command.

``intsim demo``     number formats on a few values, requantization by each target, and an
                    int8 conv layer run under every named target's rules
``intsim formats``  list every named format
``intsim error-sweep``  SQNR and time of every calibration method on four distributions with its parameters
``intsim quantize`` a float .onnx or .tflite model and calibration data -> a quantized model
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from intsim import formats as F

DEMO_VALUES = np.array([0.1, 1 / 3, 1.0625 + 2**-40, 3.0, -2.5, 300.0, 470.0, 70000.0, 1e-5])
DEMO_FORMATS = [
    "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float6_e2m3fn",
    "float4_e2m1fn", "float8_e8m0fnu", "int8", "int4",
]  # fmt: skip


def _fmt_value(v: float) -> str:
    return "nan" if np.isnan(v) else f"{v:.6g}"


def demo(out=None) -> None:
    out = out or sys.stdout
    print("intsim demo: each input rounded once (nearest even) to each format, then decoded.", file=out)
    print(
        "Default overflow rule: non-saturating for floats (ml_dtypes), saturating for integers.\n"
        "[x] shows the other rule where it differs (ONNX saturate=1 for floats, wrapping for ints).\n",
        file=out,
    )
    width = 15
    print("format".ljust(16) + "".join(_fmt_value(v).rjust(width) for v in DEMO_VALUES), file=out)
    for name in DEMO_FORMATS:
        fmt = F.get(name)
        default = F.encode(DEMO_VALUES, fmt)
        is_int = fmt.kind == "int"
        other = F.encode(DEMO_VALUES, fmt, saturate=not is_int)
        cells = []
        for a, b in zip(F.decode(default, fmt, dtype=np.float64), F.decode(other, fmt, dtype=np.float64), strict=True):
            same = a == b or (np.isnan(a) and np.isnan(b))
            cells.append((_fmt_value(a) + ("" if same else f" [{_fmt_value(b)}]")).rjust(width))
        print(name.ljust(16) + "".join(cells), file=out)
    x = np.array([1.0625 + 2**-40])
    print(
        "\nSingle rounding from float64: 1.0625 + 2**-40 -> float8_e4m3fn gives "
        f"{F.decode(F.encode(x, 'float8_e4m3fn'), 'float8_e4m3fn')[0]} "
        "(a float64 -> float32 -> float8 cast gives 1.0).",
        file=out,
    )
    codes = F.encode(np.array([-8.0, -1.0, 0.0, 3.0, 7.0]), "int4")
    print(f"int4 codes of [-8, -1, 0, 3, 7]: {codes.tolist()}, packed: "
          f"{[hex(b) for b in F.pack(codes, 4).tolist()]}", file=out)


def demo_requantization(out=None) -> None:
    out = out or sys.stdout
    from intsim import fixedpoint as fxp
    from intsim import profiles

    acc = np.array([7984, -7984, 1000003, -257])
    m, s = 1583594044, -9
    print("\nRequantizing int32 accumulators (TF issue 25087's multiplier 1583594044, shift -9):", file=out)
    print(f"  accumulators           {acc.tolist()}", file=out)
    for rounding in ("double", "single"):
        got = fxp.multiply_by_quantized_multiplier(acc, m, s, rounding=rounding)
        print(f"  MBQM {rounding:<17} {got.tolist()}", file=out)
    real = m * 2.0 ** (s - 31)
    print(f"  exact acc * {real:.9f}: {[round(float(a) * real, 4) for a in acc]}", file=out)
    print("\nThe same accumulators through each target's requantization (zero point 1):", file=out)
    for name, prof in profiles.PROFILES.items():
        rule, _ = prof.rules("fc")
        got = profiles.requantize(acc, real, 1, rule, qmin=-(2**31), qmax=2**31 - 1)
        print(f"  {name:<22} FullyConnected rule {rule:<13} {got.tolist()}", file=out)


def demo_conv_layer(out=None) -> None:
    out = out or sys.stdout
    import time

    from intsim import ops, profiles
    from intsim.kernels import Accumulator

    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (1, 56, 56, 64)).astype(np.int8)
    w = rng.integers(-127, 128, (64, 3, 3, 64)).astype(np.int8)
    bias = rng.integers(-20000, 20000, 64).astype(np.int32)
    qp = dict(input_scale=np.float32(0.02), input_zero_point=-3, filter_scale=rng.uniform(0.001, 0.004, 64).astype(np.float32),
              output_scale=np.float32(0.12), output_zero_point=5, activation="relu6", padding="SAME")  # fmt: skip
    print("\nAn int8 conv layer (1x56x56x64 input, 64 filters 3x3, per-channel scales, ReLU6)", file=out)
    print("run by each target's rules, compared with tflite-reference:", file=out)
    ref = ops.conv2d(x, w, bias, profile="tflite-reference", **qp)
    for name in profiles.PROFILES:
        ops.conv2d(x, w, bias, profile=name, **qp)  # the first call compiles
        t0 = time.perf_counter()
        y = ops.conv2d(x, w, bias, profile=name, **qp)
        dt = time.perf_counter() - t0
        diff = np.abs(y.astype(int) - ref)
        print(f"  {name:<22} {np.count_nonzero(diff):6d} of {y.size} outputs differ "
              f"(max {diff.max()} LSB)  {dt * 1e3:6.1f} ms", file=out)
    _, report = ops.conv2d(x, w, bias, profile="tflm", accumulator=Accumulator(16, "saturate"),
                           return_report=True, **qp)  # fmt: skip
    print(f"  with a 16-bit saturating accumulator: {report}", file=out)


def error_sweep_command(args, out=None) -> None:
    out = out or sys.stdout
    from pathlib import Path

    from intsim.calibrate import sweep

    lo, hi = args.bits
    rows = sweep.error_sweep(sweep.synthetic(args.n), bits=range(lo, hi + 1))
    table = sweep.markdown(rows)
    print(f"Quantization error by calibration method ({args.n} samples per distribution):\n", file=out)
    print(table, file=out)
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error_sweep.md").write_text(table + "\n")
        sweep.plot_j_curve(sweep.synthetic(args.n)["gaussian"], 4, folder / "j_curve_gaussian_4bit.png")
        print(f"\nwrote {folder / 'error_sweep.md'} and {folder / 'j_curve_gaussian_4bit.png'}", file=out)


def tflite_command(model_source, profiles=("litert", "tflm", "tflite-reference"), seed: int = 0, out=None, inputs=None,
                   json_path=None) -> None:  # fmt: skip
    """Run a TFLite model under two or more profiles (one profile: just its output) on the
    samples of ``inputs`` (a .npy/.npz file) or one random input; print the outputs of the first
    sample and the divergence report (``intsim.tflite.report.divergence``), and write it as JSON to
    ``json_path`` if given."""
    out = out or sys.stdout
    import json

    import intsim.tflite as itf
    from intsim import profiles as P
    from intsim.tflite.report import divergence, samples_from_file

    for p in profiles:
        P.get(p)  # an unknown name fails here, before any work
    model = itf.load(model_source)
    if inputs is not None:
        samples, origin = samples_from_file(model, inputs), f"inputs from {inputs}"
    else:
        samples, origin = [model.random_inputs(np.random.default_rng(seed))], f"random input, seed {seed}"
    print(f"{model.source}: {len(model.operators)} operators "
          f"({', '.join(sorted({op.op for op in model.operators}))}); {len(samples)} sample(s), {origin}", file=out)  # fmt: skip
    for p in profiles:
        outputs = itf.run(model, samples[0], profile=p)
        print(f"  {p:<22} output: {np.array2string(outputs[0].reshape(-1)[:12], separator=' ')}", file=out)
    if len(profiles) < 2:
        return
    report = divergence(model, samples, profiles)
    print("\n" + report.text().split("\n", 1)[1].lstrip("\n"), file=out)
    if json_path is not None:
        with open(json_path, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
        print(f"\nwrote {json_path}", file=out)


def report_command(model, float_model, inputs_path, profile=None, qdq="fused", out=None) -> None:
    """Per-layer SQNR and max abs error of a quantized ONNX model against its float model, and
    where its integer tensors differ from onnxruntime's."""
    out = out or sys.stdout
    from intsim.onnx import load
    from intsim.onnx.compare import compare, format_report
    from intsim.profiles import onnxruntime_cpu

    graph = load(model)
    if inputs_path:
        with np.load(inputs_path) as data:
            inputs = {k: data[k] for k in data.files}
    else:
        rng = np.random.default_rng(0)
        inputs = {v.name: rng.normal(0, 1, [d or 1 for d in v.shape]).astype(v.dtype) for v in graph.inputs}
        print("no --inputs given: one standard-normal input, seed 0", file=out)
    rows = compare(graph, float_model, inputs, profile=profile, qdq=qdq)
    print(f"{graph.source} against {float_model}, profile {profile or onnxruntime_cpu()}, QDQ groups {qdq}:", file=out)
    print(format_report(rows), file=out)


def _option_value(text: str):
    """``key=value`` of ``--option``: the value as int, float or text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as percentile=99.9, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


class _BatchProgress:
    """One stderr line per calibration stage, rewritten after each batch."""

    def __init__(self):
        self.stage = None

    def __call__(self, stage: str, batches: int) -> None:
        if stage != self.stage and self.stage is not None:
            print(file=sys.stderr)
        self.stage = stage
        print(f"\rintsim quantize: {stage}: {batches} batch(es)", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.stage is not None:
            print(file=sys.stderr, flush=True)


def quantize_command(model, data, out_path, method="octav", weights="int8", activations=None, per_tensor=False,
                     batch_size=256, options=(), json_path=None, out=None) -> list[dict]:  # fmt: skip
    """Quantize a float ``.onnx`` (QDQ, via onnxruntime's quantizer) or ``.tflite`` (fully integer,
    via intsim's builder) model; print the parameters of each activation, one row per tensor."""
    import json
    import time
    from pathlib import Path

    out = out or sys.stdout
    suffix = Path(model).suffix
    if suffix not in (".onnx", ".tflite"):
        raise ValueError(f"the model must be a .onnx or .tflite file, got {model!r}")
    if Path(out_path).suffix != suffix:
        raise ValueError(f"--out must be a {suffix} file like the model, got {out_path!r}")
    opts = dict(options)
    progress = _BatchProgress()
    t0 = time.perf_counter()
    try:
        if suffix == ".onnx":
            import onnx

            from intsim import ptq

            q = ptq.quantize(model, data, method=method, weights=weights, activations=activations or "uint8",
                             per_channel=not per_tensor, batch_size=batch_size, progress=progress, **opts)  # fmt: skip
            onnx.save(q, out_path)
            rows = _onnx_rows(q)
        else:
            from intsim.ptq import tflite_model

            if per_tensor:
                raise ValueError("--per-tensor: the TFLite quantizer writes per-channel weights, as the spec says")
            q = tflite_model.quantize(model, data, method=method, weights=weights, activations=activations or "int8",
                                      batch_size=batch_size, progress=progress, **opts)  # fmt: skip
            Path(out_path).write_bytes(q.data)
            rows = _tflite_rows(q.data)
    finally:
        progress.done()
    seconds = time.perf_counter() - t0
    activations = activations or ("uint8" if suffix == ".onnx" else "int8")
    print(f"{model} -> {out_path}: {method} calibration, {weights} weights, {activations} activations, "
          f"{seconds:.2f} s", file=out)  # fmt: skip
    print(f"{'tensor':32s} {'type':6s} {'scale':>12s} {'zero point':>10s}", file=out)
    for r in rows:
        print(f"{r['tensor'][:32]:32s} {r['type']:6s} {r['scale']:12.6g} {r['zero_point']:10d}", file=out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"model": str(model), "out": str(out_path), "method": method, "seconds": seconds, "tensors": rows}, f, indent=1)
        print(f"wrote {json_path}", file=out)
    return rows


def _onnx_rows(q) -> list[dict]:
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    return [{"tensor": n.input[0].removesuffix("_QuantizeLinear_Input"), "type": str(inits[n.input[2]].dtype), "scale": float(inits[n.input[1]]),
             "zero_point": int(inits[n.input[2]])}
            for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits
            and not n.name.endswith("_grid_q")]  # fmt: skip


def _tflite_rows(data: bytes) -> list[dict]:
    import intsim.tflite as itf

    m = itf.parse(data)
    acts = list(m.inputs) + [k for op in m.operators for k in op.outputs]
    return [{"tensor": m.tensors[k].name, "type": m.tensors[k].type_name.lower(), "scale": float(m.tensors[k].scale[0]),
             "zero_point": int(m.tensors[k].zero_point[0])} for k in dict.fromkeys(acts)]  # fmt: skip


def list_formats(out=None) -> None:
    out = out or sys.stdout
    for fmt in F.REGISTRY.values():
        print(fmt.describe(), file=out)


def _bit_range(text: str) -> tuple[int, int]:
    """``--bits LO-HI`` with 2 <= LO <= HI <= 16."""
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO-HI such as 3-8, got {text!r}") from None
    if not 2 <= lo <= hi <= 16:
        raise argparse.ArgumentTypeError(f"need 2 <= LO <= HI <= 16, got {text!r}")
    return lo, hi


def _profile_list(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one profile")
    return names


class _Progress:
    """Says on stderr that work is under way when a command runs for more than ``after``
    seconds (first runs compile numba kernels; later runs load them cached)."""

    def __init__(self, after: float = 2.0):
        import threading

        self.timer = threading.Timer(after, lambda: print(
            "intsim: working... (a first run compiles numba kernels, which later runs load from the "
            "cache)", file=sys.stderr, flush=True))  # fmt: skip
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()

    def __exit__(self, *exc):
        self.timer.cancel()


def main(argv: list[str] | None = None) -> int:
    """The command line; errors print one line naming what is wrong and return 2."""
    parser = argparse.ArgumentParser(prog="intsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="show the number formats at work on a few values")
    sub.add_parser("formats", help="list every named format")
    sweep_parser = sub.add_parser("error-sweep", help="SQNR of every calibration method, 2 to 8 bits")
    sweep_parser.add_argument("--n", type=int, default=100_000, help="samples per distribution")
    sweep_parser.add_argument("--bits", default=(2, 8), type=_bit_range, help="bit range LO-HI, e.g. 3-8")
    sweep_parser.add_argument("--out", help="folder for the markdown table and the J(s) plot")
    tfl = sub.add_parser("tflite", help="run a .tflite model under one or more profiles and show where they differ")
    tfl.add_argument("model", help="path of an int8 or int16x8 .tflite model")
    tfl.add_argument("--profiles", default=("litert", "tflm", "tflite-reference"), type=_profile_list,
                     help="one or more profiles, comma separated; every pair is compared")
    tfl.add_argument("--input", help=".npy (one input) or .npz (arrays by input name) file; a leading axis holds samples")
    tfl.add_argument("--json", dest="json_path", help="write the divergence report to this JSON file")
    tfl.add_argument("--seed", type=int, default=0, help="seed of the random input (without --input)")
    rep = sub.add_parser("report", help="per-layer error of a quantized ONNX model against its float model")
    rep.add_argument("model", help="quantized .onnx model (QDQ or QOperator)")
    rep.add_argument("--float", dest="float_model", required=True, help="the float .onnx model it came from")
    rep.add_argument("--inputs", help=".npz file of input arrays by name (default: one random input)")
    rep.add_argument("--profile", default=None,
                     help="target profile (default: onnxruntime's CPU EP on this machine, onnxruntime-cpu or onnxruntime-cpu-avx2)")
    rep.add_argument("--qdq", default="fused", choices=("fused", "float"), help="how QDQ groups run")
    qz = sub.add_parser("quantize", help="a float .onnx or .tflite model and calibration data -> a quantized model")
    qz.add_argument("model", help="float .onnx model (written as QDQ) or float .tflite model (written fully integer)")
    qz.add_argument("--data", required=True, help=".npz (arrays by input name) or .npy calibration data; axis 0 holds samples")
    qz.add_argument("--out", required=True, help="the quantized model's path (same suffix as the model)")
    qz.add_argument("--method", default="octav", help="octav (default), mse, entropy, percentile, max or aciq")
    qz.add_argument("--weights", default="int8", help="weight grid: int8 (default), int4, int6, ...")
    qz.add_argument("--activations", default=None,
                    help="activation type: ONNX uint8 (default), int8, uint4, int6, ...; TFLite int8 (default) or int16")
    qz.add_argument("--per-tensor", action="store_true", help="ONNX: one weight scale per tensor (default per channel)")
    qz.add_argument("--batch-size", type=int, default=256, help="calibration samples per batch (default 256)")
    qz.add_argument("--option", action="append", default=[], type=_option_value,
                    help="a calibration option KEY=VALUE, e.g. percentile=99.9 or grid=paper (repeatable)")
    qz.add_argument("--json", dest="json_path", help="write the per-tensor parameters to this JSON file")
    args = parser.parse_args(argv)
    try:
        with _Progress():
            _dispatch(args)
    except (ValueError, OSError, KeyError) as e:  # ModelError is a ValueError
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"intsim {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


def _dispatch(args) -> None:
    if args.command == "demo":
        demo()
        demo_requantization()
        demo_conv_layer()
        import intsim.tflite as itf
        from intsim.tflite.builder import example_cnn

        print("\nA 9-operator int8 TFLite CNN (written with intsim.tflite.builder), LiteRT's reference "
              "kernels against a single-rounding TFLite Micro build:", file=sys.stdout)  # fmt: skip
        tflite_command(itf.parse(example_cnn(), "example-cnn.tflite"), ("tflite-reference", "tflm-single-rounding"), seed=1)
    elif args.command == "tflite":
        tflite_command(args.model, args.profiles, args.seed, inputs=args.input, json_path=args.json_path)
    elif args.command == "report":
        report_command(args.model, args.float_model, args.inputs, args.profile, args.qdq)
    elif args.command == "formats":
        list_formats()
    elif args.command == "quantize":
        quantize_command(args.model, args.data, args.out, args.method, args.weights, args.activations, args.per_tensor,
                         args.batch_size, args.option, args.json_path)  # fmt: skip
    elif args.command == "error-sweep":
        error_sweep_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
