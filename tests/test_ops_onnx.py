"""ONNX-shaped integer ops bit-exact against onnxruntime (the profile of its CPU EP on this
machine, ``profiles.onnxruntime_cpu()``) and the onnx reference implementation (profile
onnx-reference) on randomized cases."""

import numpy as np
import pytest
from _onnx_ops import run_ort, run_ref

from intsim import ops
from intsim import profiles as P
from intsim.kernels import Accumulator, accumulate_matmul

CONST = ("w", "w_scale", "w_zero_point", "x_scale", "x_zero_point", "y_scale", "y_zero_point", "B",
         "b", "b_scale", "b_zero_point", "a_scale", "a_zero_point")  # fmt: skip
# (activation dtype, weight dtype) pairs onnxruntime's CPU kernels implement
TYPE_PAIRS = [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)]
ORT = P.onnxruntime_cpu()  # on x86 without VNNI, uint8 x int8 products saturate in int16 pairs
ORT_ACC = ops.profile_accumulator(ORT)


def rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    edge = rng.random(shape) < 0.1  # a share of extreme values
    values = rng.integers(info.min, info.max + 1, shape)
    return np.where(edge, rng.choice([info.min, info.max], shape), values).astype(dtype)


def conv_case(rng, xt, wt):
    group = int(rng.choice([1, 2]))
    cin = group * int(rng.integers(1, 4))
    cout = group * int(rng.integers(1, 4))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rand(rng, xt, (int(rng.integers(1, 3)), cin, int(rng.integers(kh + 2, 10)), int(rng.integers(kw + 2, 10))))
    w = rand(rng, wt, (cout, cin // group, kh, kw))
    attrs = dict(group=group, strides=[int(rng.integers(1, 3)), int(rng.integers(1, 3))],
                 dilations=[int(rng.integers(1, 3)), 1], pads=[int(v) for v in rng.integers(0, 2, 4)])  # fmt: skip
    return x, w, attrs


def zp_of(rng, dtype):
    info = np.iinfo(dtype)
    return np.asarray(rng.choice([info.min, info.max, 0, int(rng.integers(info.min, info.max + 1))])).astype(dtype)


@pytest.mark.parametrize("xt, wt", TYPE_PAIRS)
def test_matmul_integer(xt, wt):
    rng = np.random.default_rng(1)
    for _ in range(6):
        m, k, n = (int(v) for v in rng.integers(1, 40, 3))
        a, b = rand(rng, xt, (m, k)), rand(rng, wt, (k, n))
        az, bz = zp_of(rng, xt), zp_of(rng, wt)
        inputs = {"A": a, "B": b, "a_zero_point": az, "b_zero_point": bz}
        np.testing.assert_array_equal(ops.matmul_integer(a, b, az, bz, accumulator=ORT_ACC),
                                      run_ort("MatMulInteger", inputs, np.int32))
        np.testing.assert_array_equal(ops.matmul_integer(a, b, az, bz), run_ref("MatMulInteger", inputs, np.int32))
    a3, b2 = rand(rng, xt, (2, 3, 5, 7)), rand(rng, wt, (7, 4))  # batched broadcasting
    np.testing.assert_array_equal(ops.matmul_integer(a3, b2, accumulator=ORT_ACC),
                                  run_ort("MatMulInteger", {"A": a3, "B": b2}, np.int32))


def test_matmul_integer_per_column_b_zero_point():
    rng = np.random.default_rng(2)
    a, b = rand(rng, np.uint8, (9, 17)), rand(rng, np.uint8, (17, 6))
    az, bz = np.uint8(3), rng.integers(0, 256, 6).astype(np.uint8)
    inputs = {"A": a, "B": b, "a_zero_point": az, "b_zero_point": bz}
    np.testing.assert_array_equal(ops.matmul_integer(a, b, az, bz), run_ort("MatMulInteger", inputs, np.int32))
    np.testing.assert_array_equal(ops.matmul_integer(a, b, az, bz), run_ref("MatMulInteger", inputs, np.int32))


@pytest.mark.parametrize("xt, wt", TYPE_PAIRS)
def test_conv_integer(xt, wt):
    rng = np.random.default_rng(3)
    for _ in range(6):
        x, w, attrs = conv_case(rng, xt, wt)
        xz, wz = zp_of(rng, xt), zp_of(rng, wt)
        inputs = {"x": x, "w": w, "x_zero_point": xz, "w_zero_point": wz}
        np.testing.assert_array_equal(ops.conv_integer(x, w, xz, wz, accumulator=ORT_ACC, **attrs),
                                      run_ort("ConvInteger", inputs, np.int32, attrs))
        np.testing.assert_array_equal(ops.conv_integer(x, w, xz, wz, **attrs), run_ref("ConvInteger", inputs, np.int32, attrs))


def test_conv_integer_auto_pad():
    rng = np.random.default_rng(4)
    x, w = rand(rng, np.uint8, (1, 2, 7, 8)), rand(rng, np.uint8, (3, 2, 3, 2))
    for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        attrs = dict(auto_pad=auto_pad, strides=[2, 3])
        inputs = {"x": x, "w": w, "x_zero_point": np.uint8(7), "w_zero_point": np.uint8(9)}
        got = ops.conv_integer(x, w, np.uint8(7), np.uint8(9), **attrs)
        np.testing.assert_array_equal(got, run_ref("ConvInteger", inputs, np.int32, attrs))
        np.testing.assert_array_equal(got, run_ort("ConvInteger", inputs, np.int32, attrs))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("xt, wt", TYPE_PAIRS)
def test_qlinear_matmul(xt, wt, per_channel):
    rng = np.random.default_rng(5)
    for _ in range(6):
        m, k, n = (int(v) for v in rng.integers(1, 40, 3))
        a, b = rand(rng, xt, (m, k)), rand(rng, wt, (k, n))
        a_s = np.float32(rng.uniform(0.001, 0.1))
        b_s = rng.uniform(0.001, 0.1, n if per_channel else ()).astype(np.float32)
        y_s = np.float32(rng.uniform(0.05, 2.0))
        az, bz, yz = zp_of(rng, xt), np.asarray(0 if wt == np.int8 else 128).astype(wt), zp_of(rng, xt)
        if per_channel:
            bz = np.full(n, bz, wt)
        inputs = {"a": a, "a_scale": a_s, "a_zero_point": az, "b": b, "b_scale": b_s, "b_zero_point": bz,
                  "y_scale": y_s, "y_zero_point": yz}  # fmt: skip
        args = (a, a_s, az, b, b_s, bz, y_s, yz)
        want_ort = run_ort("QLinearMatMul", inputs, xt, initializers=CONST)
        want_ref = run_ref("QLinearMatMul", inputs, xt, initializers=CONST)
        np.testing.assert_array_equal(ops.qlinear_matmul(*args, profile=ORT), want_ort)
        np.testing.assert_array_equal(ops.qlinear_matmul(*args, profile="onnx-reference"), want_ref)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("xt, wt", TYPE_PAIRS)
def test_qlinear_conv(xt, wt, per_channel):
    rng = np.random.default_rng(6)
    for _ in range(5):
        x, w, attrs = conv_case(rng, xt, wt)
        cout = w.shape[0]
        x_s, y_s = np.float32(rng.uniform(0.005, 0.05)), np.float32(rng.uniform(0.05, 1.0))
        w_s = rng.uniform(0.001, 0.05, cout if per_channel else ()).astype(np.float32)
        xz, yz = zp_of(rng, xt), zp_of(rng, xt)
        wz = np.asarray(0 if wt == np.int8 else 128).astype(wt)  # onnxruntime needs equal weight zero points
        if per_channel:
            wz = np.full(cout, wz, wt)
        bias = rng.integers(-20000, 20000, cout).astype(np.int32)
        inputs = {"x": x, "x_scale": x_s, "x_zero_point": xz, "w": w, "w_scale": w_s, "w_zero_point": wz,
                  "y_scale": y_s, "y_zero_point": yz, "B": bias}  # fmt: skip
        args = (x, x_s, xz, w, w_s, wz, y_s, yz, bias)
        want_ort = run_ort("QLinearConv", inputs, xt, attrs, initializers=CONST)
        want_ref = run_ref("QLinearConv", inputs, xt, attrs, initializers=CONST)
        np.testing.assert_array_equal(ops.qlinear_conv(*args, profile=ORT, **attrs), want_ort)
        np.testing.assert_array_equal(ops.qlinear_conv(*args, profile="onnx-reference", **attrs), want_ref)


def test_profiles_really_differ_somewhere():
    """The two ONNX targets are not the same rule: find a case where they disagree."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (400, 64)).astype(np.uint8)
    b = rng.integers(-128, 128, (64, 50)).astype(np.int8)
    args = (a, np.float32(0.02), np.uint8(128), b, np.float32(0.01), np.int8(0), np.float32(0.5), np.uint8(127))
    ort_like = ops.qlinear_matmul(*args, profile="onnxruntime-cpu")
    ref_like = ops.qlinear_matmul(*args, profile="onnx-reference")
    diff = ort_like.astype(int) - ref_like
    assert 0 < np.count_nonzero(diff) and np.abs(diff).max() == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ops.matmul_integer(np.zeros((2, 3), np.uint8), np.zeros((4, 2), np.uint8)), "inner"),
        (lambda: ops.matmul_integer(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), np.int8(1)), "dtype"),
        (lambda: ops.matmul_integer(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), np.zeros(2, np.uint8)), "per-row"),
        (lambda: ops.matmul_integer(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.uint8)), "integer"),
        (lambda: accumulate_matmul(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), bias=np.array([0, 2**15]),
                                   accumulator=Accumulator(16, "saturate")), "does not fit the 16-bit"),
        (lambda: ops.conv_integer(np.zeros((1, 3, 5, 5), np.uint8), np.zeros((2, 2, 3, 3), np.uint8), group=2), "groups"),
        (lambda: ops.conv_integer(np.zeros((1, 4, 5, 5), np.uint8), np.zeros((2, 3, 3, 3), np.uint8)), "filter has"),
        (lambda: ops.conv_integer(np.zeros((1, 2, 5, 5), np.uint8), np.zeros((2, 2, 3, 3), np.uint8), pads=[-1, 0, 0, 0]), "negative"),
        (lambda: ops.conv_integer(np.zeros((1, 2, 5, 5), np.uint8), np.zeros((2, 2, 3, 3), np.uint8), kernel_shape=[2, 2]), "kernel_shape"),
        (lambda: ops.conv_integer(np.zeros((2, 5, 5), np.uint8), np.zeros((2, 2, 3, 3), np.uint8)), "2-D"),
        (lambda: ops.qlinear_conv(np.zeros((1, 2, 5, 5), np.uint8), 0.1, np.uint8(0), np.zeros((2, 2, 3, 3), np.int8),
                                  np.float32(np.nan), np.int8(0), 0.1, np.uint8(0)), "w_scale"),
        (lambda: ops.qlinear_conv(np.zeros((1, 2, 5, 5), np.uint8), 0.1, np.uint8(0), np.zeros((2, 2, 3, 3), np.int8),
                                  0.1, np.int8(0), 0.1, np.uint8(0), np.zeros(2, np.int64)), "int32"),
        (lambda: ops.qlinear_matmul(np.zeros((2, 3), np.uint8), 0.1, np.uint8(0), np.zeros((3, 2), np.int8), 0.1,
                                    np.int8(0), -1.0, np.uint8(0)), "y_scale"),
    ],
)  # fmt: skip
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
