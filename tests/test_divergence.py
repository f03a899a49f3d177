"""The divergence report (intsim.tflite.divergence, intsim/tflite/report.py, and `intsim tflite --input --json`): its counts
equal what independent end-to-end runs of each profile give, layer by layer, and its
explanations name the rules that differ."""

from __future__ import annotations

import json

import numpy as np
import pytest

import intsim.tflite as itf
from intsim import cli, profiles
from intsim.tflite.builder import example_cnn

PAIR = ("tflite-reference", "tflm-single-rounding")


@pytest.fixture(scope="module")
def cnn():
    return itf.parse(example_cnn(seed=3), "example-cnn")


def _samples(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return [model.random_inputs(rng) for _ in range(n)]


def test_counts_equal_independent_runs(cnn):
    samples = _samples(cnn, 3)
    report = itf.divergence(cnn, samples, PAIR)
    (pair,) = report.pairs
    assert report.samples == 3 and (pair.a, pair.b) == PAIR
    runs = [[itf.run(cnn, x, profile=p, return_intermediates=True, whole_model=False) for p in PAIR] for x in samples]
    first = None
    for layer in pair.layers:
        a = [r[0][1][layer.tensor].astype(np.int64) for r in runs]
        b = [r[1][1][layer.tensor].astype(np.int64) for r in runs]
        differ = sum(int(np.count_nonzero(x != y)) for x, y in zip(a, b, strict=True))
        assert layer.differ == differ and layer.elements == sum(x.size for x in a), layer
        assert layer.max_lsb == max(int(np.abs(x - y).max(initial=0)) for x, y in zip(a, b, strict=True))
        assert layer.arrive <= layer.differ
        if layer.index == 0:  # the same inputs reach the first layer: everything originates there
            assert (layer.originate, layer.arrive) == (layer.differ, 0)
        if layer.op in ("RESHAPE", "MAX_POOL_2D", "AVERAGE_POOL_2D"):  # no rule of their own
            assert layer.originate == 0 and layer.arrive == layer.differ
        if differ and first is None:
            first = layer.index
    outputs = [(r[0][0][0], r[1][0][0]) for r in runs]
    assert pair.output_differ == sum(int(np.count_nonzero(x != y)) for x, y in outputs)
    assert pair.output_elements == sum(x.size for x, _ in outputs)
    assert pair.first_layer == first is not None  # the two targets do part in this model


def test_explanations_name_the_rules_that_differ(cnn):
    (pair,) = itf.divergence(cnn, _samples(cnn, 1), PAIR).pairs
    conv = next(d for d in pair.layers if d.op == "CONV_2D" and d.originate)
    assert "tflite-reference rounds twice (MultiplyByQuantizedMultiplier" in conv.why
    assert "tflm-single-rounding rounds once (single-rounding" in conv.why
    twin = profiles.custom("tflite-reference", "twin")
    same = itf.divergence(cnn, _samples(cnn, 1), ("tflite-reference", twin)).pairs[0]
    assert same.output_differ == 0 and all(d.differ == 0 and not d.why for d in same.layers)
    from intsim.tflite.report import explain

    op = next(o for o in cnn.operators if o.op == "FULLY_CONNECTED")
    assert explain(op, np.int8, profiles.get("tflite-reference"), profiles.get("tflm")) == (
        "FULLY_CONNECTED: tflite-reference rounds once in float64 (ties away from zero); tflm rounds twice "
        "(MultiplyByQuantizedMultiplier: SRDHM, then a rounding right shift, ties away from zero); multiplier "
        "s_in*s_w/s_out in "
        "float64 (tflite-reference) vs float32-product (tflm)")  # fmt: skip


def test_cli_reads_samples_and_writes_json(cnn, tmp_path, capsys):
    path = tmp_path / "cnn.tflite"
    path.write_bytes(example_cnn(seed=3))
    (t,) = cnn.input_details()
    samples = _samples(cnn, 2, seed=5)
    np.savez(tmp_path / "x.npz", **{t.name: np.stack([s[0] for s in samples])})
    np.save(tmp_path / "one.npy", samples[0][0])
    out_json = tmp_path / "report.json"
    assert cli.main(["tflite", str(path), "--profiles", ",".join(PAIR) + ",xnnpack", "--input",
                     str(tmp_path / "x.npz"), "--json", str(out_json)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "2 sample(s), inputs from" in text and "summary:" in text and text.count(" vs ") >= 3
    data = json.loads(out_json.read_text())
    want = itf.divergence(cnn, [{t.name: s[0]} for s in samples], (*PAIR, "xnnpack")).to_dict()
    want["model"] = data["model"]  # the file's path rather than the parsed bytes' name
    assert data == want and data["samples"] == 2 and len(data["pairs"]) == 3
    assert cli.main(["tflite", str(path), "--input", str(tmp_path / "one.npy")]) == 0
    assert "1 sample(s)" in capsys.readouterr().out


@pytest.mark.parametrize("name, array, message", [
    ("bad.npy", np.zeros((2, 3), np.int8), "must have shape"),
    ("bad.npy", None, "must be int8"),
    ("x.csv", None, "must be a .npy or .npz file"),
    ("bad.npz", None, "no array for input(s)"),
])  # fmt: skip
def test_cli_input_errors_are_one_line(cnn, tmp_path, capsys, name, array, message):
    path = tmp_path / "cnn.tflite"
    path.write_bytes(example_cnn(seed=3))
    (t,) = cnn.input_details()
    target = tmp_path / name
    if name == "bad.npz":
        np.savez(target, other=np.zeros(t.shape, np.int8))
    elif name.endswith(".npy"):
        np.save(target, array if array is not None else np.zeros(t.shape, np.float32))
    else:
        target.write_text("1,2,3")
    assert cli.main(["tflite", str(path), "--input", str(target)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
