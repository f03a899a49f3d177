"""quantize/dequantize against onnxruntime and the onnx reference: every dtype, per tensor,
per axis and blocked."""

import ml_dtypes
import numpy as np
import pytest
from _onnx_util import qdq_model, run_onnxruntime, run_reference

from intsim import formats as F
from intsim import quant as Q

INT_DTYPES = ["int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16"]
FLOAT8 = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]
# onnxruntime 1.32 has no float4 QuantizeLinear kernel ("Could not find an implementation for
# QuantizeLinear(23)"), so float4 is compared with the onnx reference only.
ORT_DTYPES = INT_DTYPES + FLOAT8
REF_DTYPES = INT_DTYPES + FLOAT8 + ["float4_e2m1fn"]
GRANULARITY = ["tensor", "axis", "block"]


def case(dtype, granularity, seed):
    """x of shape (3, 6, 4) with exact ties and out-of-range values; scale and zero point."""
    rng = np.random.default_rng(seed)
    fmt = F.get(dtype)
    shape = (3, 6, 4)
    if granularity == "tensor":
        scale = np.float32(rng.choice([0.25, 0.5, 0.0123, 0.7]))
        pshape = ()
        axis = block = None
    elif granularity == "axis":
        pshape, axis, block = (6,), 1, None
        scale = rng.choice([0.25, 0.5, 0.0123, 0.7, 2.0], size=pshape).astype(np.float32)
    else:
        pshape, axis, block = (3, 3, 4), 1, 2
        scale = rng.choice([0.25, 0.5, 0.0123, 0.7, 2.0], size=pshape).astype(np.float32)
    if fmt.kind == "int":
        zp = rng.integers(fmt.min, fmt.max + 1, size=pshape)
    else:
        zp = np.zeros(pshape, np.int64)
    span = (fmt.max - fmt.min) if fmt.kind == "int" else fmt.max
    ties = (rng.integers(-span, span, size=shape) + 0.5).astype(np.float32)
    wide = rng.uniform(-1.5 * span, 1.5 * span, size=shape).astype(np.float32)
    s_full = np.broadcast_to(
        scale if block is None and axis is None else
        (scale.reshape(1, -1, 1) if block is None else np.repeat(scale, 2, axis=1)[:, :6]), shape)  # fmt: skip
    x = np.where(rng.random(shape) < 0.5, ties, wide) * s_full
    return x.astype(np.float32), scale, zp, axis, block


def intsim_values(x, scale, zp, dtype, axis, block):
    q = Q.quantize(x, scale, zp, dtype=dtype, axis=axis, block_size=block)
    fmt = F.get(dtype)
    values = q.astype(np.float64) if fmt.kind == "int" else F.decode(q, fmt, dtype=np.float64)
    y = Q.dequantize(q, scale, zp if fmt.kind == "int" else 0, axis=axis, block_size=block, fmt=dtype)
    return values, y


PEER_CASES = [(run_onnxruntime, d) for d in ORT_DTYPES] + [(run_reference, d) for d in REF_DTYPES]


@pytest.mark.parametrize("granularity", GRANULARITY)
@pytest.mark.parametrize("peer, dtype", PEER_CASES, ids=lambda v: getattr(v, "__name__", v))
def test_matches_peer(peer, dtype, granularity):
    for seed in range(3):
        x, scale, zp, axis, block = case(dtype, granularity, seed)
        model = qdq_model(x.shape, dtype, scale, zp, axis=axis, block_size=block)
        q_peer, y_peer = peer(model, {"x": x})
        values, y = intsim_values(x, scale, zp, dtype, axis, block)
        np.testing.assert_array_equal(values, q_peer.astype(np.float64))
        np.testing.assert_array_equal(y, y_peer)


def test_round_half_even_and_away():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    assert Q.quantize(x, 1.0).tolist() == [0, 2, 2, 0, -2]
    assert Q.quantize(x, 1.0, rounding="nearest_away").tolist() == [1, 2, 3, -1, -3]


def test_division_happens_in_float32():
    # float32(7.05) / float32(0.1) is exactly 70.5 in float32 (a tie, to even: 70) but
    # 70.5000009 in float64 (71): ONNX divides in the scale's precision.
    x, s = np.float32(7.05), np.float32(0.1)
    assert x / s == np.float32(70.5)
    assert np.rint(np.float64(x) / np.float64(s)) == 71
    assert Q.quantize(np.array([x]), s).tolist() == [70]
    assert Q.quantize(np.array([np.float64(x)]), np.float64(s)).tolist() == [71]


def test_saturate_and_wrap():
    x = np.array([200.0, -300.0, 127.4], np.float32)
    assert Q.quantize(x, 1.0).tolist() == [127, -128, 127]
    assert Q.quantize(x, 1.0, saturate=False).tolist() == [-56, -44, 127]
    assert Q.quantize(x, 1.0, narrow_range=True).tolist() == [127, -127, 127]


def test_int32_output_and_large_values():
    x = np.array([3e9, -3e9, 12345.5], np.float64)
    assert Q.quantize(x, 1.0, dtype="int32").tolist() == [2**31 - 1, -(2**31), 12346]


def test_float8_zero_point_must_be_zero_for_onnx_but_is_honoured():
    q = Q.quantize(np.array([1.0], np.float32), 1.0, 0, dtype="float8_e4m3fn")
    assert F.decode(q, "float8_e4m3fn").tolist() == [1.0]
    y = Q.dequantize(np.array([1.0], ml_dtypes.float8_e4m3fn), np.float32(2.0))
    assert y.tolist() == [2.0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scale=0.0), "scale"), (dict(scale=-1.0), "scale"), (dict(scale=np.nan), "scale"),
        (dict(scale=np.inf), "scale"), (dict(scale=1.0, zero_point=128), "zero_point"),
        (dict(scale=1.0, zero_point=-1, dtype="uint8"), "zero_point"),
        (dict(scale=np.ones(3, np.float32)), "axis"),
        (dict(scale=np.ones(3, np.float32), axis=1), "per-axis scale"),
        (dict(scale=np.ones((2, 2), np.float32), axis=1, block_size=1), "blocked scale"),
        (dict(scale=np.ones((2, 2), np.float32), axis=1, block_size=0), "block_size"),
        (dict(scale=1.0, dtype="int7"), "dtype"),
        (dict(scale=np.ones(4, np.float32), axis=5), "axis"),
        (dict(scale=1.0, zero_point=0.5), "zero_point"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(kwargs, message):
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        Q.quantize(x, **kwargs)


def test_dequantize_bad_input():
    with pytest.raises(ValueError, match="scale"):
        Q.dequantize(np.array([1], np.int8), 0.0)
    with pytest.raises(ValueError, match="integer array"):
        Q.dequantize(np.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="range"):
        Q.dequantize(np.array([9], np.int8), 1.0, fmt="int4")


def test_nan_input_raises():
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize(np.array([np.nan], np.float32), 1.0)
