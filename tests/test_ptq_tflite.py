"""intsim.ptq.tflite_model: float .tflite models to fully integer int8 and int16x8 models.

The written models load and run in LiteRT (BUILTIN_REF, the optimized builtin kernels, the
default XNNPACK interpreter) and the TFLite Micro runtime, and intsim equals every layer of each
bit for bit; each activation's scale is intsim.calibrate's on its float values.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from _tflite_util import assert_every_layer, interpret

import intsim.tflite as itf
from intsim import calibrate as C
from intsim.ptq import tflite_model as T
from intsim.tflite.builder import OpSpec, TensorSpec, build

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import digits  # noqa: E402

X, Y = digits.load()
TRAIN, TEST = digits.split(len(Y))
NHWC = X.transpose(0, 2, 3, 1)
PROFILES = ("tflite-reference", "litert-builtin", "litert", "tflm")
RELU, RELU6, SAME, VALID = 1, 3, 0, 1


def f32(name, shape, data=None):
    return TensorSpec(name, tuple(shape), "FLOAT32", None if data is None else np.asarray(data, np.float32))


def mobile_float(seed: int = 0) -> bytes:
    """conv 3x3 s2 -> relu6 -> depthwise 3x3 -> relu6 -> pointwise 1x1 -> ADD (residual)
    -> PAD -> MAX_POOL 2x2 -> AVERAGE_POOL 2x2 -> MEAN -> RESHAPE -> FC -> SOFTMAX."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.normal(0, 1 / np.sqrt(np.prod(s[1:])), s)  # noqa: E731
    t = [
        f32("x", (1, 16, 16, 3)),
        f32("w1", (8, 3, 3, 3), w(8, 3, 3, 3)), f32("b1", (8,), rng.normal(0, 0.1, 8)), f32("h1", (1, 8, 8, 8)),
        f32("wd", (1, 3, 3, 8), w(1, 3, 3, 8) * 3), f32("bd", (8,), rng.normal(0, 0.1, 8)), f32("h2", (1, 8, 8, 8)),
        f32("wp", (8, 1, 1, 8), w(8, 1, 1, 8)), f32("bp", (8,), rng.normal(0, 0.1, 8)), f32("h3", (1, 8, 8, 8)),
        f32("res", (1, 8, 8, 8)),
        TensorSpec("pads", (4, 2), "INT32", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)), f32("padded", (1, 10, 10, 8)),
        f32("mp", (1, 5, 5, 8)), f32("ap", (1, 4, 4, 8)),
        TensorSpec("axes", (2,), "INT32", np.array([1, 2], np.int32)), f32("mean", (1, 1, 1, 8)),
        TensorSpec("shape", (2,), "INT32", np.array([1, 8], np.int32)), f32("flat", (1, 8)),
        f32("wf", (10, 8), w(10, 8)), f32("bf", (10,), rng.normal(0, 0.1, 10)), f32("logits", (1, 10)),
        f32("probs", (1, 10)),
    ]  # fmt: skip
    ix = {s.name: i for i, s in enumerate(t)}
    op = lambda name, ins, outs, **o: OpSpec(name, [ix[i] for i in ins], [ix[i] for i in outs], o)  # noqa: E731
    ops = [
        op("CONV_2D", ["x", "w1", "b1"], ["h1"], padding=SAME, stride_h=2, stride_w=2, fused_activation_function=RELU6),
        op("DEPTHWISE_CONV_2D", ["h1", "wd", "bd"], ["h2"], padding=SAME, stride_h=1, stride_w=1, depth_multiplier=1,
           fused_activation_function=RELU6),
        op("CONV_2D", ["h2", "wp", "bp"], ["h3"], padding=SAME, stride_h=1, stride_w=1),
        op("ADD", ["h3", "h1"], ["res"]),
        op("PAD", ["res", "pads"], ["padded"]),
        op("MAX_POOL_2D", ["padded"], ["mp"], padding=VALID, stride_h=2, stride_w=2, filter_height=2, filter_width=2),
        op("AVERAGE_POOL_2D", ["mp"], ["ap"], padding=VALID, stride_h=1, stride_w=1, filter_height=2, filter_width=2),
        op("MEAN", ["ap", "axes"], ["mean"], keep_dims=True),
        op("RESHAPE", ["mean", "shape"], ["flat"]),
        op("FULLY_CONNECTED", ["flat", "wf", "bf"], ["logits"]),
        op("SOFTMAX", ["logits"], ["probs"], beta=1.0),
    ]  # fmt: skip
    return build(t, ops, [ix["x"]], [ix["probs"]])


def mlp_float(seed: int = 1) -> bytes:
    """FC (relu) -> FC (relu) -> FC -> LOGISTIC on a (1, 20) input."""
    rng = np.random.default_rng(seed)
    t = [f32("x", (1, 20)),
         f32("w1", (16, 20), rng.normal(0, 0.3, (16, 20))), f32("b1", (16,), rng.normal(0, 0.1, 16)), f32("h1", (1, 16)),
         f32("w2", (16, 16), rng.normal(0, 0.3, (16, 16))), f32("b2", (16,), rng.normal(0, 0.1, 16)), f32("h2", (1, 16)),
         f32("w3", (4, 16), rng.normal(0, 0.3, (4, 16))), f32("b3", (4,), rng.normal(0, 0.1, 4)), f32("h3", (1, 4)),
         f32("y", (1, 4))]  # fmt: skip
    ops = [OpSpec("FULLY_CONNECTED", [0, 1, 2], [3], {"fused_activation_function": RELU}),
           OpSpec("FULLY_CONNECTED", [3, 4, 5], [6], {"fused_activation_function": RELU}),
           OpSpec("FULLY_CONNECTED", [6, 7, 8], [9]), OpSpec("LOGISTIC", [9], [10])]  # fmt: skip
    return build(t, ops, [0], [10])


MODELS = {"digits": lambda: digits.TFLITE_PATH.read_bytes(), "mobile": mobile_float, "mlp": mlp_float}


def calibration(name):
    rng = np.random.default_rng(5)
    if name == "digits":
        return NHWC[TRAIN[:120]]
    shape = {"mobile": (64, 16, 16, 3), "mlp": (64, 20)}[name]
    return rng.normal(0, 1, shape).astype(np.float32)


@pytest.mark.parametrize("activations", ["int8", "int16"])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("profile", PROFILES)
def test_quantized_model_runs_in_every_runtime_and_intsim_equals_every_layer(name, activations, profile):
    q = T.quantize(MODELS[name](), calibration(name), method="octav", activations=activations)
    assert_every_layer(q.data, profile, seed=3, draws=2)


@pytest.mark.parametrize("activations", ["int8", "int16"])
def test_digits_on_real_images_in_every_runtime(activations):
    """The test digits quantized with the result's input parameters: every runtime's logits
    equal intsim's (all four on the first 24, TFLite Micro on all), and the integer model keeps
    the float model's accuracy on the same images within 2 points."""
    q = T.quantize(digits.TFLITE_PATH, NHWC[TRAIN], method="octav", activations=activations)
    (s, z), dtype = q.input_params[0], np.dtype(activations)
    m = itf.load(q.data)
    correct = 0
    for i in TEST[:: 4 if activations == "int16" else 1]:
        x = np.clip(np.round(NHWC[i : i + 1] / s) + z, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        outs = {p: itf.run(m, x, profile=p)[0] for p in PROFILES}
        for p in PROFILES if i in TEST[:24] else ("tflm",):
            np.testing.assert_array_equal(outs[p], interpret(q.data, [x], p)[0], err_msg=f"{p} sample {i}")
        correct += int(outs["tflm"].argmax() == Y[i])
    subset = TEST[:: 4 if activations == "int16" else 1]
    import onnxruntime as ort  # the same network's float ONNX file, on the same images

    logits = ort.InferenceSession(str(digits.ONNX_PATH), providers=["CPUExecutionProvider"]).run(None, {"image": X[subset]})[0]
    assert correct / len(subset) >= np.mean(logits.argmax(1) == Y[subset]) - 0.02


def test_activation_scales_are_calibrate_on_the_float_tensor():
    """One batch: each activation's (scale, zero point) is ``calibrate`` of its float values in
    LiteRT (unsigned grid, zero point -128, where the tensor never goes negative); pass-through
    operators carry their input's, SOFTMAX the fixed 1/256, -128."""
    data = calibration("mobile")
    float_model = mobile_float()
    q = T.quantize(float_model, data, method="mse", batch_size=len(data))
    fm, qm = itf.parse(float_model), itf.load(q.data)
    values = next(T._stream(fm, T._interpreter(float_model), data, len(data)))
    by_name = {t.name: t for t in qm.tensors}
    for k, v in values.items():
        name = fm.tensors[k].name
        t = by_name[name]
        if name in ("padded", "mp", "ap", "flat"):  # PAD, MAX_POOL, AVERAGE_POOL, RESHAPE
            continue
        if name == "probs":
            assert (float(t.scale[0]), int(t.zero_point[0])) == (np.float32(1 / 256), -128)
            continue
        want = C.calibrate(v, "mse", dtype="int8", signed=bool(v.min() < 0), storage="int8")
        assert t.scale[0] == want.scale and t.zero_point[0] == want.zero_point, name
    for a, b in (("padded", "res"), ("mp", "res"), ("ap", "res"), ("flat", "mean")):
        assert by_name[a].scale[0] == by_name[b].scale[0] and by_name[a].zero_point[0] == by_name[b].zero_point[0]


def test_int16_activations_are_symmetric_and_bias_int64():
    q = T.quantize(digits.TFLITE_PATH, NHWC[TRAIN[:64]], activations="int16")
    m = itf.load(q.data)
    for op in m.operators:
        for k in op.outputs:
            assert m.tensors[k].type_name == "INT16" and m.tensors[k].zero_point[0] == 0
        if op.op in T.WEIGHT_AXIS:
            assert m.tensors[op.inputs[2]].type_name == "INT64"
            assert m.tensors[op.inputs[1]].type_name == "INT8" and np.abs(m.tensors[op.inputs[1]].data).max() <= 127


def test_bad_input_names_what_is_wrong():
    int8_model = T.quantize(mlp_float(), calibration("mlp")).data
    with pytest.raises(ValueError, match=r"operator 0 \(FULLY_CONNECTED\): tensor 0 'x' \(INT8\[1, 20\]\) is not float32"):
        T.quantize(int8_model, calibration("mlp"))
    tanh = build([f32("x", (1, 4)), f32("y", (1, 4))], [OpSpec("TANH", [0], [1])], [0], [1])
    with pytest.raises(ValueError, match=r"operator 0 \(TANH\): the TFLite quantizer handles"):
        T.quantize(tanh, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"input 'image' has shape \(4, 8, 8\); expected \(samples, 8, 8, 1\)"):
        T.quantize(digits.TFLITE_PATH, NHWC[:4, :, :, 0])
    with pytest.raises(ValueError, match=r"input 'image' has dtype uint8"):
        T.quantize(digits.TFLITE_PATH, (NHWC[:4] * 16).astype(np.uint8))
    with pytest.raises(ValueError, match=r"activations must be int8 or int16"):
        T.quantize(digits.TFLITE_PATH, NHWC[:4], activations="uint8")
    with pytest.raises(ValueError, match=r"weights must be int8 or a narrower signed grid"):
        T.quantize(digits.TFLITE_PATH, NHWC[:4], weights="int16")


def test_a_model_tflite_cannot_run_is_refused_naming_the_tensors_without_range():
    """All-zero calibration images: the input's clip is 0, its scale 1.0 (calibrate's rule), and
    the first int16x8 conv would need a multiplier of 1035 (a left shift of 11; TFLite's int16
    requantization defines at most 7): refused.  int8 (shifts up to 30) runs."""
    zeros = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match=r"operator 0 \(CONV_2D\): the real multiplier 1035.* calibration saw no "
                                         r"range in 'image' \(scale 1.0\)"):  # fmt: skip
        T.quantize(digits.TFLITE_PATH, zeros, activations="int16")
    q = T.quantize(digits.TFLITE_PATH, zeros, activations="int8")
    assert q.input_params[0] == (1.0, -128)  # the unsigned grid of a tensor never negative, scale 1.0
    assert_every_layer(q.data, "tflm", seed=1, draws=1)
