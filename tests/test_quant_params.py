"""QuantParams.from_range against onnxruntime's compute_scale_zp and a transliteration of
TFLite's GetAsymmetricQuantizationParams / GetSymmetricQuantizationParams."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnxruntime.quantization.quant_utils import compute_scale_zp

from intsim import formats as F
from intsim import quant as Q

f32 = np.float32


def tflite_asymmetric(mn, mx, quant_min, quant_max):
    """tensorflow/lite/tools/optimize/quantization_utils.cc, in float32."""
    quant_min_float, quant_max_float = f32(quant_min), f32(quant_max)
    mn, mx = min(f32(mn), f32(0)), max(f32(mx), f32(0))
    scale = f32((mx - mn) / (quant_max_float - quant_min_float))
    zero_point_from_min = quant_min_float
    if scale != 0:
        zero_point_from_min = f32(quant_min_float - mn / scale)
    if zero_point_from_min < quant_min_float:
        zero_point = quant_min
    elif zero_point_from_min > quant_max_float:
        zero_point = quant_max
    else:
        v = float(zero_point_from_min)  # std::round, half away (|v| + 0.5 is exact in float64)
        zero_point = int(math.copysign(math.floor(abs(v) + 0.5), v))
    return scale, zero_point


ranges = st.tuples(
    st.floats(-1e4, 1e4, width=32, allow_subnormal=False),
    st.floats(-1e4, 1e4, width=32, allow_subnormal=False),
).map(sorted)


@given(ranges, st.sampled_from(["int8", "uint8", "int16", "uint16"]), st.booleans())
def test_matches_onnxruntime_compute_scale_zp(rng, dtype, symmetric):
    mn, mx = f32(rng[0]), f32(rng[1])
    fmt = F.get(dtype)
    narrow = symmetric and fmt.signed
    qmin = np.array(fmt.min + (1 if narrow else 0), dtype=fmt.numpy_dtype)
    qmax = np.array(fmt.max, dtype=fmt.numpy_dtype)
    zp, scale = compute_scale_zp(np.array(mn), np.array(mx), qmin, qmax, symmetric=symmetric)
    p = Q.QuantParams.from_range(mn, mx, dtype, symmetric=symmetric)
    assert p.scale.item() == float(scale) and p.scale.dtype == np.float32
    assert p.zero_point.item() == int(zp)


@given(ranges, st.sampled_from(["int8", "int16"]))
def test_matches_tflite_asymmetric(rng, dtype):
    fmt = F.get(dtype)
    scale, zp = tflite_asymmetric(rng[0], rng[1], fmt.min, fmt.max)
    if scale == 0:
        with pytest.raises(ValueError, match="scale 0"):
            Q.QuantParams.from_range(rng[0], rng[1], dtype, convention="tflite")
        return
    p = Q.QuantParams.from_range(rng[0], rng[1], dtype, convention="tflite")
    assert (p.scale.item(), p.zero_point.item()) == (float(scale), zp)


def test_tflite_symmetric_per_channel():
    mn = np.array([-1.0, -0.2, 0.0], f32)
    mx = np.array([0.5, 0.7, 3.0], f32)
    p = Q.QuantParams.from_range(mn, mx, "int8", symmetric=True, convention="tflite", axis=0)
    want = (np.maximum(np.abs(mn), np.abs(mx)) / f32(127)).astype(f32)
    np.testing.assert_array_equal(p.scale, want)
    assert p.zero_point.tolist() == [0, 0, 0] and p.narrow_range
    q = p.quantize(np.array([[-1.0], [0.7], [3.0]], f32))
    assert q.ravel().tolist() == [-127, 127, 127]


def test_tflite_zero_point_rounds_half_away():
    # min/scale = -0.5 exactly: the zero point is round(-128 + 0.5) = -128 (away from zero)
    p = Q.QuantParams.from_range(f32(-0.5), f32(254.5), "int8", convention="tflite")
    assert p.scale.item() == 1.0 and p.zero_point.item() == -128  # -127.5 -> -128 (away)
    p = Q.QuantParams.from_range(f32(-0.5), f32(254.5), "int8")
    assert p.zero_point.item() == -128  # -127.5 half-even -> -128 as well


def test_degenerate_ranges():
    p = Q.QuantParams.from_range(0.0, 0.0, "uint8")
    assert (p.scale.item(), p.zero_point.item()) == (1.0, 0)  # onnxruntime's substitute
    with pytest.raises(ValueError, match="scale 0"):
        Q.QuantParams.from_range(0.0, 0.0, "uint8", convention="tflite")
    with pytest.raises(ValueError, match="min must not exceed max"):
        Q.QuantParams.from_range(1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        Q.QuantParams.from_range(np.nan, 1.0)
    with pytest.raises(ValueError, match="convention"):
        Q.QuantParams.from_range(0.0, 1.0, convention="torch")
    with pytest.raises(ValueError, match="axis"):
        Q.QuantParams.from_range(np.zeros(2), np.ones(2))


def test_params_validate_and_round_trip():
    p = Q.QuantParams(np.float32(0.1), 3, "int8")
    x = np.array([0.1, -0.26, 1.0], f32)
    np.testing.assert_array_equal(p.dequantize(p.quantize(x)), Q.dequantize(Q.quantize(x, 0.1, 3), 0.1, 3))
    with pytest.raises(ValueError, match="scale"):
        Q.QuantParams(0.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        Q.QuantParams(1.0, 300, "int8")
    with pytest.raises(ValueError, match="symmetric"):
        Q.QuantParams(1.0, 3, "int8", symmetric=True)
    with pytest.raises(ValueError, match="axis"):
        Q.QuantParams(np.ones(3, f32), 0)
    assert not p.scale.flags.writeable
