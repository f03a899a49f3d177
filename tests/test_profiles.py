"""Named target profiles: each bundles the rules its source uses, and the rules compose."""

import re

import numpy as np
import pytest

from intsim import fixedpoint as fxp
from intsim import profiles as P


def test_every_named_profile_exists_and_names_its_source():
    assert set(P.PROFILES) >= {"tflite-reference", "tflm", "tflm-single-rounding", "onnxruntime-cpu",
                               "onnx-reference", "xnnpack"}  # fmt: skip
    for profile in P.PROFILES.values():  # each names the source files its rules were read from
        assert re.search(r"[\w*]+\.(cc|h|cpp|py)\b", profile.source), (profile.name, profile.source)
        assert profile.name in P.PROFILES and P.get(profile.name) is profile


def test_rules_per_target():
    assert P.get("tflite-reference").rules("fc") == ("float64-away", "float64")
    assert P.get("tflite-reference").rules("conv") == ("double", "float64")
    assert P.get("tflm").rules("fc") == ("double", "float32-product")
    assert P.get("tflm-single-rounding").rules("conv") == ("single", "float64")
    assert P.get("onnxruntime-cpu").rules("conv") == ("float32", "float32")
    assert P.get("onnx-reference").rules("fc") == ("float64-onnx", "float32")
    assert P.get("tflm").rules("int16") == ("int64", "float64")


def test_multiplier_derivations():
    s_in, s_w, s_out = np.float32(0.1), np.float32(0.037), np.float32(0.3)
    f64 = float(s_in) * float(s_w) / float(s_out)
    prod = float(np.float32(s_in * s_w)) / float(s_out)
    f32 = float(np.float32(np.float32(s_in * s_w) / s_out))
    assert P.real_multiplier(s_in, s_w, s_out, "float64") == f64
    assert P.real_multiplier(s_in, s_w, s_out, "float32-product") == prod
    assert P.real_multiplier(s_in, s_w, s_out, "float32") == f32
    assert len({f64, prod, f32}) == 3  # the three derivations really differ here


def test_requantize_composes_the_rules():
    rng = np.random.default_rng(0)
    acc = rng.integers(-60000, 60000, (20000, 4))
    s_w = rng.uniform(0.001, 0.01, 4).astype(np.float32)
    tflm = P.get("tflm")
    got = tflm.requantize(acc, 0.02, s_w, 0.05, 3, qmin=-128, qmax=127, op="conv")
    m, s = fxp.quantize_multiplier(P.real_multiplier(0.02, s_w, 0.05, "float64"))
    want = np.clip(fxp.multiply_by_quantized_multiplier(acc, m, s) + 3, -128, 127)
    np.testing.assert_array_equal(got, want)
    ort = P.get("onnxruntime-cpu").requantize(acc, 0.02, s_w, 0.05, 3, qmin=-128, qmax=127)
    np.testing.assert_array_equal(
        ort, fxp.requantize_float(acc, P.real_multiplier(0.02, s_w, 0.05, "float32"), 3, qmin=-128, qmax=127, rule="float32")
    )
    # targets disagree by at most one step, and do disagree somewhere
    assert np.abs(got.astype(int) - ort).max() == 1


def test_custom_profile():
    hw = P.custom("tflm", "my-npu", accumulator_bits=24, accumulator_overflow="saturate")
    assert hw.accumulator_bits == 24 and hw.rules("conv") == ("double", "float64") and "tflm" in hw.source
    with pytest.raises(ValueError, match="accumulator_overflow"):
        P.custom("tflm", "bad", accumulator_overflow="clip")
    with pytest.raises(ValueError, match="unknown profile"):
        P.get("tensorrt")
    with pytest.raises(ValueError, match="op"):
        P.get("tflm").rules("pool")


@pytest.mark.parametrize("name", sorted(P.PROFILES))
@pytest.mark.parametrize("op", ["int16", "int16-fc"])
def test_requantizer_int16x8_equals_profile_requantize(name, op):
    """int16x8 layers: int64 accumulators (the int64 rule's kernel takes [-2**47, 2**47); the
    float rules int32 values), per tensor and per channel, equal Profile.requantize's Python-int
    reference; accumulators out of a rule's range raise as Profile.requantize does."""
    profile = P.get(name)
    rule, _ = profile.rules(op)
    limit = 2**47 if rule == "int64" else 2**31
    rng = np.random.default_rng(12)
    acc = rng.integers(-limit, limit, (3, 5, 7), dtype=np.int64)
    acc[0, 0, :] = [-limit, limit - 1, 0, 1, -1, 2**20, -(2**20)]
    for s_w in (np.float32(0.003), rng.uniform(1e-4, 1e-2, 7).astype(np.float32)):
        args = (np.float32(1e-4), s_w, np.float32(0.5), np.asarray(np.int16(0)))
        want = profile.requantize(acc, *args, qmin=-32768, qmax=32767, op=op, axis=-1, backend="reference")
        req = P.Requantizer(profile, *args, qmin=-32768, qmax=32767, op=op)
        np.testing.assert_array_equal(req(acc), want)
        out = np.empty(acc.shape, np.int16)
        np.testing.assert_array_equal(req(acc, out=out), want)
    with pytest.raises(ValueError, match="acc"):
        req(np.full((2, 7), limit, np.int64))


@pytest.mark.parametrize("name", sorted(P.PROFILES))
@pytest.mark.parametrize("op", ["conv", "fc"])
def test_requantizer_equals_profile_requantize_and_writes_into_out(name, op):
    """A layer's fixed Requantizer (the vectorized paths: per-channel, and per-tensor repeated
    along the last axis) returns exactly Profile.requantize's Python-int reference, as int32 or
    into an output array of the layer's type."""
    profile = P.get(name)
    rng = np.random.default_rng(11)
    acc = rng.integers(-(2**31), 2**31, (3, 5, 7), dtype=np.int64).astype(np.int32)
    acc[0, 0, :] = [-(2**31), 2**31 - 1, 0, 1, -1, 2**20, -(2**20)]
    for s_w in (np.float32(0.003), rng.uniform(1e-4, 1e-2, 7).astype(np.float32)):
        for zp, dtype in ((np.int8(-3), np.int8), (np.uint8(128), np.uint8)):
            info = np.iinfo(dtype)
            args = (np.float32(0.02), s_w, np.float32(0.5), np.asarray(zp))
            want = profile.requantize(acc, *args, qmin=info.min, qmax=info.max, op=op, axis=-1, backend="reference")
            req = P.Requantizer(profile, *args, qmin=info.min, qmax=info.max, op=op)
            np.testing.assert_array_equal(req(acc), want)
            out = np.empty(acc.shape, dtype)
            assert req(acc, out=out) is out
            np.testing.assert_array_equal(out, want)
            if np.size(s_w) == 1:  # a last axis of one: nothing to repeat
                column = acc[:, :, :1]
                np.testing.assert_array_equal(req(column), profile.requantize(
                    column, *args, qmin=info.min, qmax=info.max, op=op, axis=-1))  # fmt: skip
    with pytest.raises(ValueError, match="holding"):
        req(acc, out=np.empty(acc.shape, np.int8))  # uint8 range does not fit int8
    with pytest.raises(ValueError, match="C-contiguous"):
        req(acc, out=np.empty(acc.shape[::-1], np.uint8).T)
