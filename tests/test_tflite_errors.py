"""Bad models and bad inputs give clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import T, single_op

import intsim.tflite as itf
from intsim import profiles as P


@pytest.fixture
def hello(models_dir):
    return models_dir / "tflite" / "hello_world_int8.tflite"


def test_truncated_file(hello, tmp_path):
    data = hello.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 16):
        with pytest.raises(itf.ModelError, match="not a TFLite flatbuffer|malformed|truncated|needs|past the end"):
            itf.load(data[:cut])


def test_not_a_model(tmp_path):
    with pytest.raises(itf.ModelError, match="TFL3"):
        itf.load(b"this is not a flatbuffer at all")
    with pytest.raises(itf.ModelError, match="cannot read"):
        itf.load(tmp_path / "missing.tflite")
    garbage = bytearray(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    garbage[4:8] = b"TFL3"
    with pytest.raises(itf.ModelError):
        itf.load(bytes(garbage))


def test_wrong_input_dtype_or_shape(hello):
    model = itf.load(hello)
    with pytest.raises(ValueError, match="needs dtype int8, got float32"):
        itf.run(model, np.zeros((1, 1), np.float32))
    with pytest.raises(ValueError, match=r"needs shape \(1, 1\), got \(1, 2\)"):
        itf.run(model, np.zeros((1, 2), np.int8))
    with pytest.raises(ValueError, match="takes 1 input"):
        itf.run(model, [])
    with pytest.raises(ValueError, match="unknown input name"):
        itf.run(model, {"nope": np.zeros((1, 1), np.int8)})


def test_unsupported_operator_is_named_at_load():
    x = T("x", (4,), "FLOAT32")
    data = single_op("FLOOR", [x], [T("y", (4,), "FLOAT32")])
    with pytest.raises(itf.ModelError, match=r"operator 0 \(FLOOR\)"):
        itf.load(data)


def test_unsupported_types_and_parameters():
    x = T("x", (2, 4), "FLOAT32")
    data = single_op("RELU", [x], [T("y", (2, 4), "FLOAT32")])
    with pytest.raises(itf.ModelError, match=r"operator 0 \(RELU\).*unsupported types"):
        itf.run(data, np.zeros((2, 4), np.float32))
    x = T("x", (2, 4), "INT8", scale=0.0, zero_point=0)
    data = single_op("RELU", [x], [T("y", (2, 4), "INT8", scale=0.1, zero_point=0)])
    with pytest.raises(itf.ModelError, match="scale 0.0"):
        itf.run(data, np.zeros((2, 4), np.int8))
    x = T("x", (2, 4), "INT8", scale=0.1, zero_point=0)
    data = single_op("SOFTMAX", [x], [T("y", (2, 4), "INT8", scale=0.1, zero_point=0)], dict(beta=1.0))
    with pytest.raises(itf.ModelError, match="scale 1/256 and zero point -128"):
        itf.run(data, np.zeros((2, 4), np.int8))


def test_every_profile_runs_a_tflite_model_and_unknown_ones_fail(hello):
    """Float-rule profiles (xnnpack, onnxruntime) run TFLite models too: their FC rule, here
    float32 requantization, on the same accumulators."""
    x = np.array([[37]], np.int8)
    for name in P.PROFILES:
        (y,) = itf.run(hello, x, profile=name)
        assert y.dtype == np.int8 and y.shape == (1, 1)
    with pytest.raises(ValueError, match="unknown profile"):
        itf.run(hello, np.zeros((1, 1), np.int8), profile="tpu")
