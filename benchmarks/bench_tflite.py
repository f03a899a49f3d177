"""TFLite models: intsim.tflite forward time against the LiteRT reference interpreter
(BUILTIN_REF, the kernels intsim is bit-exact to) and the default interpreter (XNNPACK),
measured in the same run on the same input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import intsim.tflite as itf
from benchmarks._timing import best_times, table
from intsim import profiles
from intsim.tflite.program import Program, program_for
from intsim.tflite.builder import example_cnn, example_mobile_block

MODELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "models"


def _models():
    yield "hello_world_int8", (MODELS / "tflite" / "hello_world_int8.tflite").read_bytes()
    yield "micro_speech_quantized", (MODELS / "tflite" / "micro_speech_quantized.tflite").read_bytes()
    yield "seanet conv0 (int16x8)", (MODELS / "tflm-seanet" / "conv" / "conv0.tflite").read_bytes()
    yield "seanet add0 (int16)", (MODELS / "tflm-seanet" / "add" / "add0.tflite").read_bytes()
    yield "example CNN 32x32x8", example_cnn()
    yield "example CNN 96x96x8", example_cnn(size=96, channels=32)


def _interpreter(data, resolver, inputs):
    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    ip = Interpreter(model_content=data, **kwargs)
    ip.allocate_tensors()
    for d, x in zip(ip.get_input_details(), inputs, strict=True):
        ip.set_tensor(d["index"], x)
    return ip


def run() -> str:
    rows = []
    rng = np.random.default_rng(0)
    for name, data in _models():
        model = itf.load(data)
        xs = model.random_inputs(rng)
        ref = _interpreter(data, OpResolverType.BUILTIN_REF, xs)
        xnn = _interpreter(data, None, xs)
        ref.invoke()
        exact = all(np.array_equal(a, ref.get_tensor(d["index"]))
                    for a, d in zip(itf.run(model, xs), ref.get_output_details(), strict=True))  # fmt: skip
        t = best_times({"intsim": lambda: itf.run(model, xs), "ref": _inputs_to_outputs(ref, xs),
                        "invoke": ref.invoke, "xnn": _inputs_to_outputs(xnn, xs)}, repeat=20)  # fmt: skip
        path = "one program" if isinstance(program_for(model, profiles.get("tflite-reference")), Program) else "op by op"
        rows.append([name, len(model.operators), path, "yes" if exact else "NO", f"{t['intsim'] * 1e6:.1f}",
                     f"{t['ref'] * 1e6:.1f}", f"{t['invoke'] * 1e6:.1f}", f"{t['xnn'] * 1e6:.1f}",
                     f"{t['ref'] / t['intsim']:.2f}x", f"{t['xnn'] / t['intsim']:.2f}x"])  # fmt: skip
    return ("## TFLite models: forward pass, inputs in to outputs out (us per call, best of 20 samples, "
            "interleaved; ratio > 1 means intsim is faster)\n\n" + table(
        ["model", "ops", "intsim path", "bit-exact to BUILTIN_REF", "intsim run()", "reference set+invoke+get",
         "reference invoke() only", "XNNPACK set+invoke+get", "speed vs reference", "speed vs XNNPACK"], rows))  # fmt: skip


# each LiteRT mode and the profile that models it
MODES = {"litert": None, "litert-builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
         "tflite-reference": OpResolverType.BUILTIN_REF}  # fmt: skip


def run_modes() -> str:
    """intsim under each LiteRT mode's profile against that mode, on models whose layers the
    modes compute differently: bit-exact on the measured input, and the time of both."""
    rows = []
    rng = np.random.default_rng(1)
    models = [("micro_speech_quantized", (MODELS / "tflite" / "micro_speech_quantized.tflite").read_bytes()),
              ("example CNN 32x32x8", example_cnn()), ("example mobile block 16x16", example_mobile_block())]  # fmt: skip
    for name, data in models:
        model = itf.load(data)
        xs = model.random_inputs(rng)
        for profile, resolver in MODES.items():
            ip = _interpreter(data, resolver, xs)
            ip.invoke()
            exact = all(np.array_equal(a, ip.get_tensor(d["index"]))
                        for a, d in zip(itf.run(model, xs, profile=profile), ip.get_output_details(), strict=True))  # fmt: skip
            t = best_times({"intsim": lambda p=profile: itf.run(model, xs, profile=p),
                            "litert": _inputs_to_outputs(ip, xs)}, repeat=20)  # fmt: skip
            rows.append([name, profile, "yes" if exact else "NO", f"{t['intsim'] * 1e6:.1f}", f"{t['litert'] * 1e6:.1f}",
                         f"{t['litert'] / t['intsim']:.2f}x"])  # fmt: skip
    return ("## TFLite models in each LiteRT mode (us per call, best of 20 samples, interleaved; ratio > 1 "
            "means intsim is faster)\n\n" + table(
        ["model", "profile = LiteRT mode", "bit-exact", "intsim run()", "LiteRT set+invoke+get", "speed vs LiteRT"], rows))  # fmt: skip


def _inputs_to_outputs(ip, xs):
    """The interpreter's equivalent of ``intsim.tflite.run``: set every input, invoke, read every
    output (copied, as ``run`` returns fresh arrays)."""
    ins = [d["index"] for d in ip.get_input_details()]
    outs = [d["index"] for d in ip.get_output_details()]

    def call():
        for i, x in zip(ins, xs, strict=True):
            ip.set_tensor(i, x)
        ip.invoke()
        return [ip.get_tensor(o) for o in outs]

    return call


def _micro(data, xs):
    from tflite_micro import runtime

    ip = runtime.Interpreter.from_bytes(data, arena_size=16 << 20)

    def call():
        for k, x in enumerate(xs):
            ip.set_input(x, k)
        ip.invoke()
        return ip.get_output(0).copy()

    return call


def run_streaming() -> str:
    """Models with state (LSTM, SVDF): intsim under ``tflm`` against the TFLite Micro runtime and
    under ``tflite-reference`` against LiteRT's reference kernels (and the default interpreter,
    which runs these operators with the same kernels).  Each runs 5 consecutive calls from reset
    first (bit-exact: every output equal), then the timed calls, state carried along."""
    rows = []
    rng = np.random.default_rng(2)
    for name in ("micro_speech_lstm", "mnist_lstm_int8", "dtln_noise_suppression", "keyword_scrambled"):
        data = (MODELS / "tflite" / f"{name}.tflite").read_bytes()
        model = itf.load(data)
        xs = model.random_inputs(rng)
        micro = _micro(data, xs)
        ref, xnn = (_interpreter(data, r, xs) for r in (OpResolverType.BUILTIN_REF, None))
        exact = {"tflm": True, "tflite-reference": True}
        for _ in range(5):
            exact["tflm"] &= np.array_equal(itf.run(model, xs, profile="tflm")[0], micro().reshape(-1).reshape(
                model.output_details()[0].shape))
            exact["tflite-reference"] &= np.array_equal(itf.run(model, xs, profile="tflite-reference")[0],
                                                        _inputs_to_outputs(ref, xs)()[0])  # fmt: skip
        t = best_times({"tflm": lambda: itf.run(model, xs, profile="tflm"), "micro": micro,
                        "ref": lambda: itf.run(model, xs, profile="tflite-reference"),
                        "litert-ref": _inputs_to_outputs(ref, xs), "litert": _inputs_to_outputs(xnn, xs)}, repeat=20)  # fmt: skip
        us = {k: f"{v * 1e6:.0f}" for k, v in t.items()}
        rows.append([name, "yes" if exact["tflm"] else "NO", us["tflm"], us["micro"], f"{t['micro'] / t['tflm']:.2f}x",
                     "yes" if exact["tflite-reference"] else "NO", us["ref"], us["litert-ref"], us["litert"],
                     f"{t['litert-ref'] / t['ref']:.2f}x"])  # fmt: skip
    return ("## Models with state (LSTM, SVDF): us per call, best of 20 samples, interleaved; ratio > 1 means "
            "intsim is faster\n\n" + table(
        ["model", "tflm bit-exact", "intsim tflm", "TFLite Micro runtime", "speed vs TFLite Micro",
         "tflite-reference bit-exact", "intsim tflite-reference", "LiteRT BUILTIN_REF", "LiteRT default",
         "speed vs BUILTIN_REF"], rows))  # fmt: skip
