"""The intsim command: demo, formats, error-sweep (with its table and plot)."""

import io

import numpy as np
import pytest

from intsim import cli
from intsim.calibrate import sweep


def test_demo_runs_and_shows_each_target():
    out = io.StringIO()
    cli.demo(out)
    cli.demo_requantization(out)
    cli.demo_conv_layer(out)
    text = out.getvalue()
    assert "float8_e4m3fn" in text and "tflm-single-rounding" in text
    assert "MBQM double            [12, -12, 1440, 0]" in text  # TF issue 25087: 12 double, 11 single
    assert "MBQM single            [11, -11, 1440, 0]" in text
    assert "outputs saturated in a 16-bit accumulator" in text


def test_error_sweep_table_and_plot(tmp_path):
    assert cli.main(["formats"]) == 0
    rows = sweep.error_sweep(sweep.synthetic(20_000), bits=[4])
    assert {r["method"] for r in rows} == {"octav", "max", "percentile", "mse", "entropy", "aciq"}
    by = {(r["tensor"], r["method"]): r for r in rows}
    for name in ("gaussian", "laplace", "student_t3", "uniform"):
        # OCTAV within 0.5% of the brute-force sweep, and better than max calibration
        assert by[(name, "octav")]["mse"] <= by[(name, "mse")]["mse"] * 1.005
        assert by[(name, "octav")]["sqnr"] > by[(name, "max")]["sqnr"]
    table = sweep.markdown(rows)
    assert table.count("\n| ") == 4 and "**" in table
    assert cli.main(["error-sweep", "--n", "5000", "--bits", "3-4", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "error_sweep.md").read_text().startswith("| tensor | bits |")
    png = (tmp_path / "j_curve_gaussian_4bit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert np.isfinite([r["sqnr"] for r in rows]).all()


def test_tflite_command_prints_outputs_and_per_layer_diff(models_dir):
    out = io.StringIO()
    cli.tflite_command(models_dir / "tflite" / "micro_speech_quantized.tflite", seed=2, out=out)
    text = out.getvalue()
    assert "4 operators" in text and text.count("output: [") == 3  # litert, tflm, tflite-reference by default
    assert text.count(" vs ") >= 3  # every pair
    for op in ("RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"):
        assert f" {op} " in text
    assert "/4000" in text  # the depthwise layer's 25 x 20 x 8 outputs


@pytest.mark.parametrize("argv, message", [
    (["tflite", "no-such-model.tflite"], "cannot read no-such-model.tflite"),
    (["tflite", "MODELS/tflite/hello_world_int8.tflite", "--profiles", "tflm,bogus"], "unknown profile 'bogus'"),
    (["tflite", "MODELS/tflite/keyword_scrambled_8bit.tflite"], "LiteRT cannot run it"),
    (["report", "MODELS/none.onnx", "--float", "f.onnx", "--inputs", "nope.npz"], "none.onnx"),
    (["report", "TMP/q.onnx", "--float", "TMP/f.onnx", "--inputs", "TMP/nope.npz"], "nope.npz"),
    (["error-sweep", "--bits", "9-3"], "--bits: need 2 <= LO <= HI <= 16"),
    (["error-sweep", "--bits", "x"], "--bits: expected LO-HI"),
])  # fmt: skip
def test_errors_are_one_line_and_exit_2(models_dir, tmp_path, capsys, argv, message):
    if "TMP/q.onnx" in argv:  # real models, a missing inputs file
        from intsim.onnx import examples

        float_model = examples.mlp()
        (tmp_path / "f.onnx").write_bytes(float_model.SerializeToString())
        (tmp_path / "q.onnx").write_bytes(examples.quantize(float_model).SerializeToString())
    argv = [a.replace("MODELS", str(models_dir)).replace("TMP", str(tmp_path)) for a in argv]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("usage:")]) == 1


@pytest.mark.parametrize("profiles", ["tflm", "tflite-reference,tflm,tflm-single-rounding"])
def test_tflite_command_takes_any_number_of_profiles(models_dir, capsys, profiles):
    assert cli.main(["tflite", str(models_dir / "tflite" / "micro_speech_quantized.tflite"), "--profiles", profiles]) == 0
    out = capsys.readouterr().out
    names = profiles.split(",")
    assert all(f"  {p} " in out for p in names)
    pairs = [f"{a} vs {b}, per layer" for i, a in enumerate(names) for b in names[i + 1 :]]  # every pair
    assert all(p in out for p in pairs) and out.count(", per layer") == len(pairs)


def test_quantize_command_onnx_and_tflite(tmp_path, capsys):
    """``intsim quantize`` writes a model each runtime loads, prints one row per activation
    (and a JSON file on request); bad input is one line and exit 2."""
    import json
    import sys
    from pathlib import Path

    import onnxruntime as ort

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import digits

    x, _ = digits.load()
    np.savez(tmp_path / "calib.npz", image=x[:300])
    np.save(tmp_path / "calib_nhwc.npy", x[:300].transpose(0, 2, 3, 1))
    out, js = tmp_path / "q.onnx", tmp_path / "q.json"
    assert cli.main(["quantize", str(digits.ONNX_PATH), "--data", str(tmp_path / "calib.npz"), "--method", "octav",
                     "--weights", "int4", "--out", str(out), "--json", str(js)]) == 0  # fmt: skip
    printed = capsys.readouterr()
    rows = json.loads(js.read_text())["tensors"]
    assert [r["tensor"] for r in rows] == ["image", "relu1", "relu2", "relu3", "flat", "logits"]
    assert all(f"{r['tensor']:32s} uint8" in printed.out for r in rows)
    assert "ranges: 2 batch(es)" in printed.err and "octav observers: 2 batch(es)" in printed.err
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x[:4]})
    tfl = tmp_path / "q.tflite"
    assert cli.main(["quantize", str(digits.TFLITE_PATH), "--data", str(tmp_path / "calib_nhwc.npy"), "--activations",
                     "int16", "--method", "percentile", "--option", "percentile=99.9", "--out", str(tfl)]) == 0  # fmt: skip
    assert "int16" in capsys.readouterr().out
    import intsim.tflite as itf

    assert {m.tensors[k].type_name for m in [itf.load(tfl)] for op in m.operators for k in op.outputs} == {"INT16"}
    for argv, message in [
        (["--data", str(tmp_path / "calib_nhwc.npy"), "--out", str(out)], "input 'image' has shape (300, 8, 8, 1)"),
        (["--data", str(tmp_path / "calib.npz"), "--out", str(out), "--method", "kl"], "method must be one of"),
        (["--data", str(tmp_path / "calib.npz"), "--out", str(tmp_path / "q.tflite")], "--out must be a .onnx file"),
        (["--data", str(tmp_path / "calib.npz"), "--out", str(out), "--option", "bins=9"], "takes no option bins"),
    ]:
        assert cli.main(["quantize", str(digits.ONNX_PATH), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("intsim quantize: error: ") and message in err, err
