"""intsim.ptq.quantize: float ONNX models quantized with intsim's calibrators.

The written model's parameters are intsim.calibrate's on the same tensor and data; onnxruntime
(all graph optimizations) runs the written model and intsim equals it bit for bit under every
backend; the narrow grids hold; bad input names what is wrong.
"""

import logging
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import ALL_BACKENDS
from test_onnx_models import ORT, ort_session

from intsim import calibrate as C
from intsim import ptq
from intsim.onnx import examples, run
from intsim.ptq.observers import ClipObserver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import digits  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)
X, Y = digits.load()
TRAIN, TEST = digits.split(len(Y))
CALIB = X[TRAIN[:200]]


def float_values(model, x) -> dict:
    """Every tensor of the float model on ``x`` (onnxruntime, no graph optimization)."""
    from intsim.ptq.onnx_model import _session

    names = ["image"] + [o for n in model.graph.node for o in n.output]
    sess = _session(model, names)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": x}), strict=True)) | {"image": x}


def written_params(q) -> tuple[dict, dict]:
    """Activation name -> (scale, zero point, scale initializer); weight -> (scale, zp, codes)."""
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    acts, weights = {}, {}
    for n in q.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and not n.name.endswith("_grid_q"):
            name = n.input[0].removesuffix("_QuantizeLinear_Input")  # a graph output, renamed by onnxruntime
            acts[name] = (inits[n.input[1]], inits[n.input[2]], n.input[1])
        if n.op_type == "DequantizeLinear" and n.input[0].endswith("_quantized") and n.input[0] in inits:
            name = n.input[0][: -len("_quantized")]
            if name.endswith("_w"):  # the digits CNN's weights (its biases end in _b)
                weights[name] = (inits[n.input[1]], inits[n.input[2]], inits[n.input[0]])
    return acts, weights


CONFIGS = [("int8", "uint8"), ("int4", "int6")]


@pytest.mark.parametrize("method", C.METHODS)
@pytest.mark.parametrize("weights,activations", CONFIGS)
def test_every_written_scale_is_what_calibrate_returns(method, weights, activations):
    """One batch of calibration data: each activation's scale and zero point equal
    ``calibrate(tensor, method)`` on its float values (signed grid where the tensor goes
    negative), each weight's ``calibrate(w, axis=0)``; tensors onnxruntime ties to their input
    (Flatten) carry exactly their input's parameters; the stored weight codes are the grid's."""
    model = onnx.load(digits.ONNX_PATH)
    q = ptq.quantize(model, CALIB, method=method, weights=weights, activations=activations, batch_size=len(CALIB))
    values = float_values(model, CALIB)
    acts, wts = written_params(q)
    a_bits, a_store = int(activations.lstrip("uint")), "int8" if activations.startswith("int") else "uint8"
    assert set(acts) == {"image", "relu1", "relu2", "relu3", "flat", "logits"}
    for name, (scale, zp, scale_name) in acts.items():
        if scale_name != f"{name}_scale":  # shared with the tensor it passes through
            owner = scale_name[: -len("_scale")]
            assert (scale, zp) == acts[owner][:2] and name == "flat" and owner == "relu3"
            continue
        v = values[name]
        want = C.calibrate(v, method, dtype=f"int{a_bits}", signed=bool(v.min() < 0), storage=a_store)
        assert scale.dtype == np.float32 and scale == want.scale, name
        assert zp == want.zero_point, name
    w_bits = int(weights[3:])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert set(wts) == {"conv1_w", "dw_w", "pw_w", "fc_w"}
    for name, (scale, zp, codes) in wts.items():
        want = C.calibrate(inits[name], method, dtype=f"int{w_bits}", signed=True, axis=0, storage="int8")
        np.testing.assert_array_equal(scale, want.scale, err_msg=name)
        np.testing.assert_array_equal(zp, 0)
        qmax = 2 ** (w_bits - 1) - 1
        w = inits[name].reshape(len(scale), -1)
        expect = np.clip(np.round(w / scale[:, None]), -qmax, qmax)  # ties to even, as QuantizeLinear
        np.testing.assert_array_equal(codes.reshape(len(scale), -1), expect, err_msg=name)


def test_streaming_rules_over_several_batches():
    """Three batches: ``max`` is the maximum over all the data, ``octav`` the mean of the
    per-batch OCTAV clips (the paper's streaming rule), ``entropy`` one histogram over all."""
    model = onnx.load(digits.ONNX_PATH)
    batches = np.array_split(CALIB, 3)
    whole = float_values(model, CALIB)
    parts = [float_values(model, b) for b in batches]
    for method in ("max", "octav", "entropy"):
        q = ptq.quantize(model, CALIB, method=method, batch_size=len(batches[0]))
        acts, _ = written_params(q)
        for name in ("relu1", "relu2", "logits"):
            signed = bool(whole[name].min() < 0)
            if method == "max":
                want = C.calibrate(whole[name], "max", dtype="int8", signed=signed, storage="uint8").scale
            else:
                obs = ClipObserver(method, 8, signed)
                for p in parts:
                    obs.update(p[name])
                want = obs.params("uint8").scale
                if method == "octav":
                    clips = [C.clip_for(p[name].reshape(-1), "octav", dtype="int8", signed=signed) for p in parts]
                    assert want == C.params_from_clip(np.mean(clips), "int8", signed=signed, storage="uint8").scale
            assert acts[name][0] == want, (method, name)


def _assert_equals_onnxruntime(q, feeds, backends=("jit",)):
    want = ort_session(q).run(None, feeds)[0]
    for backend in backends:
        got = run(q, feeds, profile=ORT, backend=backend)
        np.testing.assert_array_equal(next(iter(got.values())), want, err_msg=backend)
    return want


@pytest.mark.parametrize("method", ["octav", "entropy", "mse"])
@pytest.mark.parametrize("weights,activations", [("int8", "uint8"), ("int8", "int8"), ("int4", "uint4"),
                                                 ("int3", "uint6"), ("int6", "int4")])  # fmt: skip
def test_digits_cnn_runs_bit_exact_to_onnxruntime(method, weights, activations):
    """The quantized digits CNN on the 360 test images: intsim's logits equal onnxruntime's
    (reference and jit-serial on the first 16)."""
    q = ptq.quantize(digits.ONNX_PATH, CALIB, method=method, weights=weights, activations=activations)
    want = _assert_equals_onnxruntime(q, {"image": X[TEST]})
    _assert_equals_onnxruntime(q, {"image": X[TEST[:16]]}, ALL_BACKENDS)
    # a float model at 98% does not fall below 85% at 8-bit activations and weights of 4+ bits
    if activations.endswith("8") and weights != "int3":
        assert np.mean(want.argmax(1) == Y[TEST]) > 0.85


@pytest.mark.parametrize("model,activations", [(examples.cnn, "uint8"), (examples.mlp, "int8"),
                                               (examples.gated_mlp, "uint8"), (examples.cnn, "uint4")])  # fmt: skip
def test_example_models_run_bit_exact_to_onnxruntime(model, activations):
    """Residual add, grouped and depthwise convs, max/average/global pooling, concat (cnn);
    Gemm, MatMul + Add (mlp); sigmoid, leaky relu, mul (gated mlp): every output equal."""
    f = model()
    calib = examples.calibration_inputs(f, 6, seed=4)
    q = ptq.quantize(f, lambda: iter(calib), method="octav", activations=activations)
    for feeds in examples.calibration_inputs(f, 3, seed=9):
        _assert_equals_onnxruntime(q, feeds, ALL_BACKENDS)


def test_narrow_activation_grids_hold_in_both_runtimes():
    """uint4 activations: every quantized activation lies on its 16 levels in onnxruntime and in
    intsim, and the first conv's output, clamped, differs from the unclamped 8-bit one."""
    q = ptq.quantize(digits.ONNX_PATH, CALIB, activations="uint4", batch_size=len(CALIB))
    names = [n.output[0] for n in q.graph.node if n.name.endswith("_grid_q")]
    assert {n[: -len("_QuantizeLinear_Output_on_grid")] for n in names} == {"image", "relu1", "relu2", "relu3",
                                                                            "flat", "logits"}  # fmt: skip
    exposed = onnx.ModelProto()
    exposed.CopyFrom(q)
    exposed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    sess = ort_session(exposed)
    ort_values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": X[TEST]}), strict=True))
    mine = run(q, {"image": X[TEST]}, profile=ORT, return_intermediates=True).values
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    for n in names:
        zp = int(inits[[node for node in q.graph.node if node.output[0] == n][0].input[2]])
        low, high = (zp, zp + 15) if zp == 0 else (zp - 7, zp + 7)
        for v in (ort_values[n], mine[n]):
            assert v.min() >= low and v.max() <= high, n
        np.testing.assert_array_equal(ort_values[n], mine[n])
    before = mine["relu1_QuantizeLinear_Output"]
    assert before.max() > 15  # the 8-bit container held more than the grid before the clamp


def _with_node(op_type, **attrs):
    m = onnx.load(digits.ONNX_PATH)
    m.graph.node[-1].output[0] = "pre"
    m.graph.node.append(helper.make_node(op_type, ["pre"], ["logits"], name="head", **attrs))
    return m


def test_bad_input_names_what_is_wrong():
    with pytest.raises(ValueError, match=r"node 'head' \(Softmax\): the quantizer handles"):
        ptq.quantize(_with_node("Softmax", axis=1), CALIB)
    with pytest.raises(ValueError, match=r"input 'image' has shape \(200, 64\); expected \(samples, 1, 8, 8\)"):
        ptq.quantize(digits.ONNX_PATH, CALIB.reshape(200, 64))
    with pytest.raises(ValueError, match=r"input 'image' has dtype int64; the float model takes float32"):
        ptq.quantize(digits.ONNX_PATH, (CALIB * 16).astype(np.int64))
    with pytest.raises(ValueError, match=r"no model input named 'pixels' \(the inputs are image\)"):
        ptq.quantize(digits.ONNX_PATH, {"pixels": CALIB})
    with pytest.raises(ValueError, match=r"\(batch 1\): input 'image' is missing"):
        ptq.quantize(digits.ONNX_PATH, [{"image": CALIB}, {}])
    with pytest.raises(ValueError, match=r"input 'image' holds NaN or inf"):
        ptq.quantize(digits.ONNX_PATH, np.where(CALIB > 0.5, np.nan, CALIB))
    with pytest.raises(ValueError, match="one-shot iterator, but it is read twice"):
        ptq.quantize(digits.ONNX_PATH, iter([{"image": CALIB}]))
    with pytest.raises(ValueError, match="holds no sample"):
        ptq.quantize(digits.ONNX_PATH, CALIB[:0])
    with pytest.raises(ValueError, match=r"method must be one of octav, max, percentile, mse, entropy, aciq, got 'kl'"):
        ptq.quantize(digits.ONNX_PATH, CALIB, method="kl")
    with pytest.raises(ValueError, match=r"method 'percentile' takes no option bins \(it takes: percentile\)"):
        ptq.quantize(digits.ONNX_PATH, CALIB, method="percentile", bins=10)
    with pytest.raises(ValueError, match=r"activations must name an integer type .* got 'float8_e4m3fn'"):
        ptq.quantize(digits.ONNX_PATH, CALIB, activations="float8_e4m3fn")
    with pytest.raises(ValueError, match=r"not an ONNX file|cannot read"):
        ptq.quantize(b"\x08\x01garbage", CALIB)
    with pytest.raises(ValueError, match=r"no such file 'missing.npz'"):
        ptq.quantize(digits.ONNX_PATH, "missing.npz")


def test_calibration_data_from_files(tmp_path):
    """.npy and .npz files give the same model as the array itself."""
    np.save(tmp_path / "c.npy", CALIB)
    np.savez(tmp_path / "c.npz", image=CALIB)
    a = ptq.quantize(digits.ONNX_PATH, CALIB, method="max")
    for path in (tmp_path / "c.npy", tmp_path / "c.npz"):
        assert ptq.quantize(digits.ONNX_PATH, path, method="max").SerializeToString() == a.SerializeToString()


def test_wide_activations_are_refused_and_a_fixed_batch_axis_takes_whole_batches():
    with pytest.raises(ValueError, match=r"activations 'int16': onnxruntime has no integer kernels .* int16x8"):
        ptq.quantize(digits.ONNX_PATH, CALIB, activations="int16")
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(6, 5)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 6])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 5])], [w])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(10, 6)).astype(np.float32)
    for batch_size in (4, 8):  # 10 samples: two batches of 4, the last 2 left out
        q = ptq.quantize(model, x, method="max", batch_size=batch_size)
        acts, _ = written_params(q)
        assert acts["x"][0] == C.calibrate(x[:8], "max", dtype="int8", signed=True, storage="uint8").scale
    with pytest.raises(ValueError, match=r"holds no sample \(the model's batch axis is fixed to 4\)"):
        ptq.quantize(model, x[:3], batch_size=4)
