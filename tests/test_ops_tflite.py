"""TFLite-shaped ops: the int16x8 seanet conv goldens (produced by TFLite Micro's reference
kernels), and int8 conv / depthwise / fully-connected rules."""

import numpy as np
import pytest
from conftest import ALL_BACKENDS

from intsim import fixedpoint as fxp
from intsim import ops
from intsim.tflite import parse
from intsim.tflite.context import PADDING

CONV_MODELS = sorted(range(22))


def load_conv_case(models_dir, n):
    """A seanet conv layer read with intsim.tflite (the whole models run in test_tflite_models)."""
    base = models_dir / "tflm-seanet" / "conv"
    model = parse(base / f"conv{n}.tflite")
    (op,) = model.operators
    x_t, w_t, b_t = (model.tensors[i] for i in op.inputs)
    y_t = model.tensors[op.outputs[0]]
    o = op.options
    opts = dict(strides=(o["stride_h"], o["stride_w"]), padding=PADDING[o["padding"]],
                dilations=(o["dilation_h_factor"], o["dilation_w_factor"]))  # fmt: skip
    x = _csv(base / f"conv{n}_input0_int16.csv").astype(np.int16).reshape(x_t.shape)
    golden = _csv(base / f"conv{n}_golden_int16.csv").astype(np.int16).reshape(y_t.shape)
    return x, w_t, b_t, x_t, y_t, opts, golden


def _csv(path):
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=1)


@pytest.mark.parametrize("backend", ["jit-serial", "reference"])
def test_seanet_conv_backends_agree(models_dir, backend):
    x, w_t, b_t, x_t, y_t, opts, golden = load_conv_case(models_dir, 0)
    x = x[:, :, :20]  # the reference backend is slow: a slice keeps the test short
    kwargs = dict(strides=opts["strides"], padding=opts["padding"], dilations=opts["dilations"],
                  input_scale=x_t.scale[0], filter_scale=w_t.scale, output_scale=y_t.scale[0], profile="tflm")  # fmt: skip
    want = ops.conv2d(x, w_t.data, b_t.data, **kwargs)
    np.testing.assert_array_equal(ops.conv2d(x, w_t.data, b_t.data, backend=backend, **kwargs), want)
    np.testing.assert_array_equal(want, golden[:, :, :14])


def tflite_conv_reference(x, w, bias, x_zp, out_zp, multipliers, shifts, stride, pads, act_min, act_max):
    """tflite-micro reference/integer_ops/conv.h ConvPerChannel, transliterated (NHWC, OHWI)."""
    batches, in_h, in_w, in_d = x.shape
    out_d, f_h, f_w, f_d = w.shape
    groups = in_d // f_d
    per_group = out_d // groups
    out_h = (in_h + pads[0] + pads[2] - f_h) // stride + 1
    out_w = (in_w + pads[1] + pads[3] - f_w) // stride + 1
    out = np.zeros((batches, out_h, out_w, out_d), np.int64)
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                for oc in range(out_d):
                    g = oc // per_group
                    acc = 0
                    for fy in range(f_h):
                        for fx in range(f_w):
                            iy, ix = oy * stride - pads[0] + fy, ox * stride - pads[1] + fx
                            if not (0 <= iy < in_h and 0 <= ix < in_w):
                                continue
                            for ic in range(f_d):
                                acc += int(w[oc, fy, fx, ic]) * (int(x[b, iy, ix, g * f_d + ic]) - x_zp)
                    acc += int(bias[oc])
                    acc = fxp.mbqm_reference(acc, int(multipliers[oc]), int(shifts[oc]))
                    out[b, oy, ox, oc] = min(max(acc + out_zp, act_min), act_max)
    return out


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
def test_int8_conv_per_channel_matches_tflite_transliteration(backend, activation):
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (1, 6, 7, 4)).astype(np.int8)
    w = rng.integers(-127, 128, (6, 3, 3, 2)).astype(np.int8)  # 2 groups
    bias = rng.integers(-3000, 3000, 6).astype(np.int32)
    s_in, s_out = np.float32(0.05), np.float32(0.09)
    s_w = rng.uniform(0.002, 0.02, 6).astype(np.float32)
    y = ops.conv2d(x, w, bias, strides=(2, 2), padding="SAME", input_scale=s_in, input_zero_point=-5,
                   filter_scale=s_w, output_scale=s_out, output_zero_point=3, activation=activation,
                   profile="tflm", backend=backend)  # fmt: skip
    m, s = fxp.quantize_multiplier(np.float64(s_in) * s_w.astype(np.float64) / np.float64(s_out))
    lo, hi = ops.activation_range(activation, s_out, 3, -128, 127)
    want = tflite_conv_reference(x, w, bias, -5, 3, m, s, 2, (0, 1, 1, 1), lo, hi)  # SAME: 6x7, stride 2
    np.testing.assert_array_equal(y, want)


def test_depthwise_maps_output_channels_like_tflite():
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (1, 5, 5, 3)).astype(np.int8)
    w = rng.integers(-127, 128, (1, 3, 3, 6)).astype(np.int8)  # depth multiplier 2
    kw = dict(input_scale=0.1, filter_scale=np.full(6, 0.01, np.float32), output_scale=0.2, padding="VALID", profile="tflm")
    y = ops.depthwise_conv2d(x, w, None, depth_multiplier=2, **kw)
    for oc in range(6):
        ic = oc // 2
        acc = sum(int(x[0, 1 + fy - 1, 1 + fx - 1, ic]) * int(w[0, fy, fx, oc]) for fy in range(3) for fx in range(3))
        m, s = fxp.quantize_multiplier(float(np.float32(0.1)) * float(np.float32(0.01)) / float(np.float32(0.2)))
        assert y[0, 0, 0, oc] == min(max(fxp.mbqm_reference(acc, m, s), -128), 127)


def test_fully_connected_targets_differ_only_in_rounding():
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (64, 40)).astype(np.int8)
    w = rng.integers(-127, 128, (10, 40)).astype(np.int8)
    bias = rng.integers(-2000, 2000, 10).astype(np.int32)
    kw = dict(input_scale=np.float32(0.031), input_zero_point=-7, filter_scale=np.float32(0.0047),
              output_scale=np.float32(0.11), output_zero_point=2)  # fmt: skip
    ref = ops.fully_connected(x, w, bias, profile="tflite-reference", **kw)
    tflm = ops.fully_connected(x, w, bias, profile="tflm", **kw)
    acc = (x.astype(np.int64) + 7) @ w.T.astype(np.int64) + bias
    m_ref = float(np.float32(0.031)) * float(np.float32(0.0047)) / float(np.float32(0.11))
    real = acc * m_ref
    want_ref = np.clip(np.where(real >= 0, np.floor(real + 0.5), np.ceil(real - 0.5)) + 2, -128, 127)
    np.testing.assert_array_equal(ref, want_ref)  # LiteRT reference: double, half away
    m_tflm = float(np.float32(np.float32(0.031) * np.float32(0.0047))) / float(np.float32(0.11))
    q, s = fxp.quantize_multiplier(m_tflm)
    want_tflm = np.clip(np.vectorize(lambda a: fxp.mbqm_reference(int(a), q, s))(acc) + 2, -128, 127)
    np.testing.assert_array_equal(tflm, want_tflm)
    assert np.abs(ref.astype(int) - tflm).max() <= 1


def test_activation_range_rounds_half_away_in_float32():
    assert ops.activation_range("relu6", np.float32(0.047), -128, -128, 127) == (-128, -128 + 128)
    assert ops.activation_range("relu", 0.1, 5, -128, 127) == (5, 127)
    assert ops.activation_range("relu6", 0.5, 0, -128, 127) == (0, 12)
    with pytest.raises(ValueError, match="activation"):
        ops.activation_range("gelu", 0.1, 0, -128, 127)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 3), np.int8), np.zeros((2, 3, 3, 2), np.int8), input_scale=1.0,
                            filter_scale=1.0, output_scale=1.0), "multiple"),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), None, padding=(1, 1, -1, 1),
                            input_scale=1.0, filter_scale=1.0, output_scale=1.0), "negative"),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), np.int16), np.zeros((2, 3, 3, 2), np.int8), input_scale=1.0,
                            input_zero_point=3, filter_scale=1.0, output_scale=1.0), "zero points"),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), np.zeros(2, np.int64),
                            input_scale=1.0, filter_scale=1.0, output_scale=1.0), "bias"),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), input_scale=0.0,
                            filter_scale=1.0, output_scale=1.0), "input_scale"),
        (lambda: ops.conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), input_scale=1.0,
                            input_zero_point=200, filter_scale=1.0, output_scale=1.0), "input_zero_point"),
        (lambda: ops.conv2d(np.zeros((1, 2, 2, 2), np.int8), np.zeros((2, 3, 3, 2), np.int8), padding="VALID",
                            input_scale=1.0, filter_scale=1.0, output_scale=1.0), "does not fit"),
        (lambda: ops.depthwise_conv2d(np.zeros((1, 4, 4, 2), np.int8), np.zeros((1, 3, 3, 3), np.int8), input_scale=1.0,
                                      filter_scale=1.0, output_scale=1.0), "depth_multiplier"),
        (lambda: ops.fully_connected(np.zeros((2, 5), np.int8), np.zeros((3, 4), np.int8), input_scale=1.0,
                                     filter_scale=1.0, output_scale=1.0), "depth"),
        (lambda: ops.fully_connected(np.zeros((2, 5), np.float32), np.zeros((3, 5), np.int8), input_scale=1.0,
                                     filter_scale=1.0, output_scale=1.0), "int8"),
    ],
)  # fmt: skip
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
