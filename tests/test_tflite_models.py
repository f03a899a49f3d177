"""Real TFLite models: intsim.tflite against the LiteRT reference interpreter and the TFLite
Micro goldens in tests/data/models."""

from __future__ import annotations

import _tflite_util
import numpy as np
import pytest
from _tflite_util import assert_every_layer, model_bytes, random_int
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import intsim.tflite as itf
from intsim import profiles

MODELS = ("hello_world_int8.tflite", "micro_speech_quantized.tflite")
DRAWS = 300


def _reference_outputs(path, inputs):
    ip = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ip.allocate_tensors()
    (inp,), (out,) = ip.get_input_details(), ip.get_output_details()
    outs = []
    for x in inputs:
        ip.set_tensor(inp["index"], x)
        ip.invoke()
        outs.append(ip.get_tensor(out["index"]).copy())
    return outs


def _draws(model, seed):
    rng = np.random.default_rng(seed)
    (t,) = model.input_details()
    return [random_int(rng, t.shape, t.dtype) for _ in range(DRAWS)]


@pytest.mark.parametrize("name", MODELS)
def test_reference_profile_is_bit_exact_to_builtin_ref(models_dir, name):
    path = models_dir / "tflite" / name
    model = itf.load(path)
    inputs = _draws(model, 1)
    want = _reference_outputs(path, inputs)
    for x, w in zip(inputs, want, strict=True):
        for whole_model in (None, False):  # hello_world runs as one program by default; and op by op
            (got,) = itf.run(model, x, profile="tflite-reference", whole_model=whole_model)
            np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("name", MODELS)
def test_tflm_differs_from_builtin_ref_only_through_fully_connected(models_dir, name):
    """TFLite Micro requantizes FULLY_CONNECTED with MBQM (multiplier from a float32 product)
    where LiteRT's reference kernel rounds ``double(acc) * M`` half away from zero.  Giving the
    tflm profile LiteRT's FC rule must remove every difference; and ``diff`` must place the
    origin of every disagreement in a FULLY_CONNECTED layer."""
    path = models_dir / "tflite" / name
    model = itf.load(path)
    inputs = _draws(model, 2)
    want = _reference_outputs(path, inputs)
    tflm_with_litert_fc = profiles.custom(
        "tflm", "tflm+litert-fc", rules={"fc": ("float64-away", "float64"), "int16-fc": ("float64-away", "float64")}
    )
    differing = 0
    for x, w in zip(inputs, want, strict=True):
        (tflm,) = itf.run(model, x, profile="tflm")
        (fixed,) = itf.run(model, x, profile=tflm_with_litert_fc)
        np.testing.assert_array_equal(fixed, w)
        if not np.array_equal(tflm, w):
            differing += 1
            rows = itf.diff(model, x, ("tflite-reference", "tflm"))
            assert all(r.op == "FULLY_CONNECTED" for r in rows if r.originate)
            assert max(r.max_lsb for r in rows if r.originate) == 1  # a rounding difference, never more
    if name == "hello_world_int8.tflite":
        assert differing > 0  # the rules do disagree on this model's tiny FC layers


def _seanet(models_dir, kind):
    folder = models_dir / "tflm-seanet" / kind
    return sorted(folder.glob(f"{kind}*.tflite"), key=lambda p: int(p.stem[len(kind):]))


def _csv(path):
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=1)


SEANET = {"conv": 22, "add": 17, "sub": 5, "leaky_relu": 23, "pad": 19, "strided_slice": 34, "transpose_conv": 5,
          "quantize": 2}  # kind -> models: every per-layer test of TFLite Micro's seanet integration tests


def _golden_case(path, model):
    """A seanet layer's inputs and golden output, read from its CSV files (the type is in the name)."""
    inputs = []
    for k, t in enumerate(model.input_details()):
        (csv,) = path.parent.glob(f"{path.stem}_input{k}_*.csv")
        inputs.append(_csv(csv).astype(t.dtype).reshape(t.shape))
    (golden,) = path.parent.glob(f"{path.stem}_golden_*.csv")
    return inputs, _csv(golden)


@pytest.mark.parametrize("kind", sorted(SEANET))
@pytest.mark.parametrize("profile", ["tflm", "tflite-reference"])
def test_seanet_goldens(models_dir, kind, profile):
    """TFLite Micro's golden outputs (its reference kernels) for every layer of a real int16 audio
    model: CONV_2D, TRANSPOSE_CONV, ADD, SUB, LEAKY_RELU, PAD, STRIDED_SLICE and QUANTIZE between
    int16 and int32."""
    paths = _seanet(models_dir, kind)
    assert len(paths) == SEANET[kind]
    for path in paths:
        model = itf.load(path)
        inputs, golden = _golden_case(path, model)
        for whole_model in (None, False):  # add models run as one program by default; and op by op
            (got,) = itf.run(model, inputs, profile=profile, whole_model=whole_model)
            np.testing.assert_array_equal(got.reshape(-1), golden, err_msg=path.name)


def test_intermediates_and_diff_report(models_dir):
    path = models_dir / "tflite" / "micro_speech_quantized.tflite"
    model = itf.load(path)
    x = _draws(model, 3)[0]
    outputs, tensors = itf.run(model, x, return_intermediates=True)
    assert set(tensors) >= {t.name for t in model.output_details()} | {"Relu", "add_1"}
    np.testing.assert_array_equal(tensors["labels_softmax"], outputs[0])
    assert tensors["Relu"].dtype == np.int8 and tensors["Relu"].shape == (1, 25, 20, 8)
    # the report against a profile that differs: tflm-single-rounding rounds the depthwise
    # conv's ties up once; each row counts exactly what the two runs' tensors say
    for x in _draws(model, 20):
        rows = itf.diff(model, x, ("tflite-reference", "tflm-single-rounding"))
        if rows[1].differ:
            break
    assert [r.op for r in rows] == ["RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert rows[1].elements == 25 * 20 * 8 and rows[1].differ > 0
    _, ref = itf.run(model, x, profile="tflite-reference", return_intermediates=True)
    _, other = itf.run(model, x, profile="tflm-single-rounding", return_intermediates=True)
    for row, op in zip(rows, model.operators, strict=True):
        name = model.tensors[op.outputs[0]].name
        delta = np.abs(ref[name].astype(np.int64) - other[name])
        assert (row.differ, row.max_lsb) == (int(np.count_nonzero(delta)), int(delta.max()))
        assert row.originate <= row.differ
    assert rows[0].differ == 0 and rows[1].originate == rows[1].differ  # the first to depart originates all


def test_multi_op_cnn_written_with_the_builder():
    """Nine operators chained (conv, depthwise, residual add, pool, reshape, FC, softmax)."""
    from _tflite_util import reference

    from intsim.tflite.builder import example_cnn

    data = example_cnn(seed=4, size=16, channels=8)
    model = itf.load(data)
    rng = np.random.default_rng(5)
    for _ in range(40):
        x = random_int(rng, model.input_details()[0].shape, np.int8)
        (want,) = reference(data, [x])
        (got,) = itf.run(model, x)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", _tflite_util.TFLM_MODELS)
def test_every_layer_equals_tflite_micro(name, models_dir):
    """The ``tflm`` profile against the TFLite Micro runtime, every layer."""
    assert_every_layer(model_bytes(name, models_dir), "tflm", seed=8)


@pytest.mark.parametrize("name", _tflite_util.MODELS)
def test_every_layer_equals_builtin_ref(name, models_dir):
    """The shared models and the builder's networks (the contention benchmark's 31-operator
    MobileNet; the mobile operators' block: pad, hard-swish, depthwise x2, residual add, max pool,
    mean): every tensor equals LiteRT BUILTIN_REF's."""
    assert_every_layer(model_bytes(name, models_dir), "tflite-reference", seed=6)

def test_person_detect_runs_under_tflm_and_is_refused_where_litert_refuses_it(models_dir):
    """TFLite Micro's person detector quantizes a 1-D bias along axis 3: the TFLite Micro runtime
    runs it (every layer equal: test_every_layer_equals_tflite_micro), LiteRT's interpreter
    refuses it at allocation, and so do the LiteRT profiles."""
    from _tflite_util import interpret

    data = model_bytes("person_detect", models_dir)
    model = itf.load(data)
    x = random_int(np.random.default_rng(0), (1, 96, 96, 1), np.int8)
    for profile in ("tflite-reference", "litert-builtin", "litert"):
        with pytest.raises((RuntimeError, ValueError), match="quantized_dimension"):
            interpret(data, [x], profile)
        with pytest.raises(itf.ModelError, match="quantized_dimension 3, outside"):
            itf.run(model, x, profile=profile)
