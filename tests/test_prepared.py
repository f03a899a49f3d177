"""Prepared layers (constant weights packed, multipliers derived once) return exactly what the
op functions return, on every backend, for edge-heavy hypothesis cases: int8 and int16x8,
per-tensor and per-channel filter scales, fused activations, groups, depthwise multipliers,
strides, dilations and padding, every TFLite profile and the onnxruntime one; and where the
static int32 bound fails, through the general path."""

import numpy as np
import pytest
from conftest import ALL_BACKENDS
from hypothesis import given
from hypothesis import strategies as st

from intsim import ops
from intsim.kernels import Accumulator

PROFILES = ["tflite-reference", "tflm", "tflm-single-rounding", "onnxruntime-cpu"]
ACT = st.sampled_from(list(ops.ACTIVATIONS))


def _values(rng, shape, dtype, style):
    info = np.iinfo(dtype)
    if style == "edges":
        return rng.choice([info.min, info.max, 0, -1, 1], shape).astype(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def _quant(data, rng, dtype, channels):
    int16 = dtype == np.int16
    s_w = rng.uniform(0.001, 0.05, channels if data.draw(st.booleans()) else 1).astype(np.float32)
    q = dict(input_scale=np.float32(data.draw(st.sampled_from([0.5, 2.0**-7, 0.0371]))), filter_scale=s_w,
             output_scale=np.float32(data.draw(st.sampled_from([0.25, 2.0**-5, 0.113]))),
             activation=data.draw(ACT), profile=data.draw(st.sampled_from(PROFILES[:3] if int16 else PROFILES)))  # fmt: skip
    if not int16:
        q["input_zero_point"] = int(data.draw(st.sampled_from([-128, 127, 0, 5])))
        q["output_zero_point"] = int(data.draw(st.sampled_from([-128, 127, 0, -7])))
    return q


def _bias(rng, n, dtype):
    return rng.integers(-(2**15), 2**15, n).astype(np.int64 if dtype == np.int16 else np.int32)


@given(data=st.data())
def test_prepared_fully_connected_equals_op(data):
    dtype = data.draw(st.sampled_from([np.int8, np.int16]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m, k, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 70)), data.draw(st.integers(1, 9))
    style = data.draw(st.sampled_from(["random", "edges"]))
    x, w = _values(rng, (m, k), dtype, style), _values(rng, (n, k), np.int8, style)
    bias = _bias(rng, n, dtype) if data.draw(st.booleans()) else None
    q = _quant(data, rng, dtype, n)
    want = ops.fully_connected(x, w, bias, **q)
    for backend in ALL_BACKENDS:
        layer = ops.prepare_fully_connected(w, bias, input_dtype=dtype, backend=backend, **q)
        np.testing.assert_array_equal(layer(x), want)


@given(data=st.data())
def test_prepared_conv_equals_op(data):
    dtype = data.draw(st.sampled_from([np.int8, np.int16]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    depthwise = data.draw(st.booleans())
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    h, w_ = data.draw(st.integers((kh - 1) * dil[0] + 1, 7)), data.draw(st.integers((kw - 1) * dil[1] + 1, 7))
    style = data.draw(st.sampled_from(["random", "edges"]))
    geo = dict(strides=(data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))), dilations=dil,
               padding=data.draw(st.sampled_from(["SAME", "VALID"])))  # fmt: skip
    if depthwise:
        cin, mult = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
        cout = cin * mult
        filt = _values(rng, (1, kh, kw, cout), np.int8, style)
        geo["depth_multiplier"] = mult
    else:
        groups, cg, og = data.draw(st.sampled_from([1, 2])), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        cin, cout = groups * cg, groups * og
        filt = _values(rng, (cout, kh, kw, cg), np.int8, style)
    x = _values(rng, (data.draw(st.integers(1, 2)), h, w_, cin), dtype, style)
    bias = _bias(rng, cout, dtype) if data.draw(st.booleans()) else None
    q = _quant(data, rng, dtype, cout)
    if depthwise:
        want = ops.depthwise_conv2d(x, filt, bias, **geo, **q)
    else:
        want = ops.conv2d(x, filt, bias, **geo, **q)
    for backend in ALL_BACKENDS:
        layer = ops.prepare_conv2d(filt, bias, input_shape=x.shape, input_dtype=dtype, backend=backend, **geo, **q)
        np.testing.assert_array_equal(layer(x), want)


def test_prepared_layers_take_the_general_path_when_int32_could_overflow():
    """K = 70000 int8 taps at the extremes: 255 * 127 * 70000 > 2**31, so no static bound; the
    prepared layer must wrap exactly as the op does (it calls accumulate_matmul)."""
    x = np.full((2, 70000), -128, np.int8)
    x[1, ::2] = 127
    w = np.full((3, 70000), 127, np.int8)
    q = dict(input_scale=np.float32(0.5), filter_scale=np.float32(0.01), output_scale=np.float32(1e3),
             input_zero_point=127, output_zero_point=0)  # fmt: skip
    layer = ops.prepare_fully_connected(w, None, input_dtype=np.int8, **q)
    assert not layer.accumulate.fast
    np.testing.assert_array_equal(layer(x), ops.fully_connected(x, w, None, **q))
    narrow = ops.prepare_fully_connected(w[:, :300], None, input_dtype=np.int8, accumulator=Accumulator(16, "saturate"), **q)
    assert not narrow.accumulate.fast
    np.testing.assert_array_equal(narrow(x[:, :300]), ops.fully_connected(x[:, :300], w[:, :300], None,
                                                                           accumulator=Accumulator(16, "saturate"), **q))  # fmt: skip


def test_prepared_layers_check_their_input():
    layer = ops.prepare_conv2d(np.ones((2, 3, 3, 1), np.int8), None, input_shape=(1, 5, 5, 1), input_dtype=np.int8,
                               input_scale=0.1, filter_scale=0.1, output_scale=0.1)  # fmt: skip
    with pytest.raises(ValueError, match="prepared for int8 input of shape"):
        layer(np.zeros((1, 6, 5, 1), np.int8))
    with pytest.raises(ValueError, match="depthwise filters"):
        ops.prepare_conv2d(np.ones((1, 3, 3, 4), np.int8), None, input_shape=(1, 5, 5, 3), input_dtype=np.int8,
                           depth_multiplier=1, input_scale=0.1, filter_scale=0.1, output_scale=0.1)  # fmt: skip
    with pytest.raises(ValueError, match="scale"):
        ops.prepare_fully_connected(np.ones((2, 3), np.int8), None, input_dtype=np.int8, input_scale=0.1,
                                    filter_scale=np.float32(np.nan), output_scale=0.1)  # fmt: skip


@given(data=st.data())
def test_prepared_qlinear_conv_equals_op(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xt = data.draw(st.sampled_from([np.int8, np.uint8]))
    groups, cg, og = data.draw(st.sampled_from([1, 2, 3])), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    h, w_ = data.draw(st.integers(kh, 7)), data.draw(st.integers(kw, 7))
    style = data.draw(st.sampled_from(["random", "edges"]))
    x = _values(rng, (data.draw(st.integers(1, 2)), groups * cg, h, w_), xt, style)
    w = _values(rng, (groups * og, cg, kh, kw), np.int8, style)
    per_channel = data.draw(st.booleans())
    n_w = groups * og if per_channel else 1
    info = np.iinfo(xt)
    args = (np.float32(data.draw(st.sampled_from([0.5, 2.0**-7, 0.0371]))), xt(data.draw(st.sampled_from([info.min, info.max, 3]))),
            w, rng.uniform(0.001, 0.05, n_w).astype(np.float32), np.zeros(n_w, np.int8),
            np.float32(data.draw(st.sampled_from([0.25, 2.0**-5, 0.113]))), xt(data.draw(st.sampled_from([info.min, info.max, 7]))),
            rng.integers(-(2**15), 2**15, groups * og).astype(np.int32) if data.draw(st.booleans()) else None)  # fmt: skip
    attrs = dict(group=groups, strides=[data.draw(st.integers(1, 2))] * 2,
                 **data.draw(st.sampled_from([{"auto_pad": "SAME_UPPER"}, {"auto_pad": "VALID"},
                                              {"pads": [1, 0, 0, 1]}, {}])))  # fmt: skip
    profile = data.draw(st.sampled_from(["onnxruntime-cpu", "onnx-reference"]))
    want = ops.qlinear_conv(x, *args, profile=profile, **attrs)
    for backend in ALL_BACKENDS:
        layer = ops.prepare_qlinear_conv(x.shape, x.dtype, *args, profile=profile, backend=backend, **attrs)
        np.testing.assert_array_equal(layer(x), want)
