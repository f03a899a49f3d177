"""Whole-model programs (intsim.tflite.program) against their reference, the op-by-op path
(jit kernels and the Python-int ``backend="reference"``), and against the LiteRT reference
interpreter, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import T, random_int, reference, single_op
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tflite_ops import CASES

import intsim.tflite as itf
from intsim import profiles
from intsim.tflite import program
from intsim.tflite.model import ModelError

PROFILES = itf.TFLITE_PROFILES
PROGRAM_CASES = sorted(c for c in CASES if itf.load(CASES[c](np.random.default_rng(0))).operators[0].op in program.PROGRAM_OPS)


def _all_paths(model, xs, profile):
    """(program, op path jit, op path Python-int reference) outputs; asserts the program ran."""
    assert isinstance(program.program_for(model, profiles.get(profile)), program.Program)
    return (itf.run(model, xs, profile=profile, whole_model=True),
            itf.run(model, xs, profile=profile, whole_model=False),
            itf.run(model, xs, profile=profile, backend="reference"))  # fmt: skip


def _assert_same(*runs):
    first = runs[0]
    for other in runs[1:]:
        for a, b in zip(first, other, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def _check_draws(data, model, profile, rng, draws):
    """On ``draws`` random edge-heavy inputs: program == op path (jit) == op path (reference),
    and == LiteRT's BUILTIN_REF for the tflite-reference profile."""
    for _ in range(draws):
        xs = [random_int(rng, t.shape, t.dtype) for t in model.input_details()]
        runs = _all_paths(model, xs, profile)
        _assert_same(*runs)
        if profile == "tflite-reference":
            _assert_same(runs[0], reference(data, xs))


def test_program_covers_these_cases():
    # FULLY_CONNECTED (int8 per tensor / per channel, int4 weights, int16x8), ADD, SUB, RESHAPE, SQUEEZE;
    # the broadcasting ADD is the one that falls back to the op path
    assert len(PROGRAM_CASES) >= 10


@pytest.mark.parametrize("case", PROGRAM_CASES)
@pytest.mark.parametrize("profile", PROFILES)
def test_single_op_program_equals_op_path_and_litert(case, profile):
    rng = np.random.default_rng(sum(map(ord, case)))
    data = CASES[case](rng)
    model = itf.load(data)
    if isinstance(program.program_for(model, profiles.get(profile)), str):
        assert case == "add_int8_broadcast_relu"  # broadcasting runs op by op
        return
    _check_draws(data, model, profile, rng, 10)


REAL_MODELS = ("tflite/hello_world_int8.tflite", *(f"tflm-seanet/add/add{i}.tflite" for i in (0, 1, 5, 10)))


@pytest.mark.parametrize("path", REAL_MODELS)
def test_real_models_program_equals_op_path(models_dir, path):
    data = (models_dir / path).read_bytes()
    model = itf.load(data)
    rng = np.random.default_rng(7)
    for profile in PROFILES:
        _check_draws(data, model, profile, rng, 20)


# ---- property tests: random layers, edge-heavy parameters -----------------------------------------

SCALES = st.one_of(st.sampled_from([2.0**-8, 2.0**-4, 0.5, 1.0, 2.0**-12, 0.1, 1 / 3]),
                   st.floats(1e-4, 0.5, allow_nan=False))  # fmt: skip


def _zero_point(kind):
    if kind == "INT16":
        return st.just(0)
    return st.one_of(st.sampled_from([-128, 127, 0, -1, 1]), st.integers(-128, 127))


@st.composite
def fc_models(draw):
    kind = draw(st.sampled_from(["INT8", "INT16"]))
    batch, depth, units = draw(st.integers(1, 4)), draw(st.integers(1, 40)), draw(st.integers(1, 20))
    per_channel = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
    w.reshape(-1)[: min(2, w.size)] = [-127, 127][: min(2, w.size)]
    w_scale = rng.uniform(1e-3, 0.05, units) if per_channel else draw(SCALES)
    w_zp = np.zeros(units, np.int64) if per_channel else 0
    bound = draw(st.sampled_from([0, 100, 2**20]))
    bias_type = "INT64" if kind == "INT16" else "INT32"
    b = rng.integers(-bound, bound + 1, units).astype(np.int64 if kind == "INT16" else np.int32)
    x_scale = draw(SCALES)
    x = T("x", (batch, depth), kind, scale=x_scale, zero_point=draw(_zero_point(kind)))
    y = T("y", (batch, units), kind, scale=draw(SCALES), zero_point=draw(_zero_point(kind)))
    wt = T("w", (units, depth), "INT8", data=w, scale=w_scale, zero_point=w_zp)
    # the bias scale a converter writes (LiteRT checks it against input x filter scale)
    b_scale = np.float32(x_scale) * np.asarray(w_scale, np.float32)
    bt = T("b", (units,), bias_type, data=b, scale=b_scale, zero_point=np.zeros(np.size(b_scale), np.int64)) if draw(st.booleans()) else None
    act = draw(st.sampled_from([0, 1, 3]))
    return single_op("FULLY_CONNECTED", [x, wt, bt], [y], dict(fused_activation_function=act))


@st.composite
def add_models(draw):
    kind = draw(st.sampled_from(["INT8", "INT16"]))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    op = draw(st.sampled_from(["ADD", "SUB"]))
    a = T("a", shape, kind, scale=draw(SCALES), zero_point=draw(_zero_point(kind)))
    b = T("b", shape, kind, scale=draw(SCALES), zero_point=draw(_zero_point(kind)))
    y = T("y", shape, kind, scale=draw(SCALES), zero_point=draw(_zero_point(kind)))
    opts = dict(fused_activation_function=draw(st.sampled_from([0, 1, 3])))
    if kind == "INT16":
        opts["pot_scale_int16"] = False
    return single_op(op, [a, b], [y], opts)


def _check_model(data, seed):
    try:
        model = itf.load(data)
        runs_ok = itf.run(model, [np.zeros(t.shape, t.dtype) for t in model.input_details()], whole_model=False)
    except (ModelError, ValueError):
        # parameters the op path rejects (e.g. a multiplier out of range): the program must reject them too
        with pytest.raises((ModelError, ValueError)):
            itf.run(itf.load(data), [np.zeros(t.shape, t.dtype) for t in itf.load(data).input_details()], whole_model=True)
        return
    assert runs_ok
    rng = np.random.default_rng(seed)
    for _ in range(3):
        xs = [random_int(rng, t.shape, t.dtype) for t in model.input_details()]
        for profile in PROFILES:
            _assert_same(*_all_paths(model, xs, profile))
        _assert_same(itf.run(model, xs, whole_model=True), reference(data, xs))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(fc_models(), st.integers(0, 2**32 - 1))
def test_fully_connected_program_property(data, seed):
    _check_model(data, seed)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(add_models(), st.integers(0, 2**32 - 1))
def test_add_sub_program_property(data, seed):
    _check_model(data, seed)


def test_int32_accumulator_wraps_as_the_op_path_does():
    """Bias near INT32_MAX: the int8 accumulator wraps, in the program as in the op path."""
    x = T("x", (2, 16), "INT8", scale=0.5, zero_point=0)
    w = T("w", (3, 16), "INT8", data=np.full((3, 16), 127, np.int8), scale=0.5, zero_point=0)
    b = T("b", (3,), "INT32", data=np.full(3, 2**31 - 100, np.int32))
    y = T("y", (2, 3), "INT8", scale=2.0**20, zero_point=0)
    model = itf.load(single_op("FULLY_CONNECTED", [x, w, b], [y]))
    xs = [np.full((2, 16), 127, np.int8)]
    for profile in PROFILES:
        got = _all_paths(model, xs, profile)
        _assert_same(*got)
        assert np.all(got[0][0] < 0)  # 2**31 - 100 + 16 * 127**2 wrapped negative


def test_int16x8_accumulator_out_of_range_is_reported():
    x = T("x", (1, 4), "INT16", scale=0.5, zero_point=0)
    w = T("w", (2, 4), "INT8", data=np.ones((2, 4), np.int8), scale=0.5, zero_point=0)
    b = T("b", (2,), "INT64", data=np.array([2**50, 0], np.int64))
    y = T("y", (1, 2), "INT16", scale=1.0, zero_point=0)
    model = itf.load(single_op("FULLY_CONNECTED", [x, w, b], [y]))
    for whole_model in (True, False):
        with pytest.raises(ModelError, match=r"operator 0 \(FULLY_CONNECTED\)"):
            itf.run(model, [np.zeros((1, 4), np.int16)], profile="tflm", whole_model=whole_model)


# ---- which models run as programs, and errors ----------------------------------------------------


def test_models_outside_the_program_say_why(models_dir):
    model = itf.load(models_dir / "tflite" / "micro_speech_quantized.tflite")
    why = program.program_for(model, profiles.get("tflite-reference"))
    assert isinstance(why, str) and "operator 1 (DEPTHWISE_CONV_2D)" in why
    x = np.zeros(model.input_details()[0].shape, np.int8)
    with pytest.raises(ModelError, match=r"operator 1 \(DEPTHWISE_CONV_2D\)"):
        itf.run(model, x, whole_model=True)
    np.testing.assert_array_equal(itf.run(model, x)[0], itf.run(model, x, whole_model=False)[0])
    with pytest.raises(ValueError, match="whole_model=True needs"):
        itf.run(model, x, backend="reference", whole_model=True)


def test_large_layers_and_custom_accumulators_run_op_by_op():
    rng = np.random.default_rng(0)
    depth, units = 1024, 1025  # > MAX_MACS multiply-adds
    x = T("x", (1, depth), "INT8", scale=0.1, zero_point=0)
    w = T("w", (units, depth), "INT8", data=rng.integers(-127, 128, (units, depth)).astype(np.int8), scale=0.01, zero_point=0)
    y = T("y", (1, units), "INT8", scale=1.0, zero_point=0)
    big = itf.load(single_op("FULLY_CONNECTED", [x, w, None], [y]))
    assert "multiply-adds" in program.program_for(big, profiles.get("tflm"))
    small = itf.load(CASES["fc_int8_per_tensor_relu"](rng))
    acc16 = profiles.custom("tflm", "tflm-acc16", accumulator_bits=16, accumulator_overflow="saturate")
    assert "16-bit accumulator" in program.program_for(small, acc16)
    xs = [random_int(rng, t.shape, t.dtype) for t in small.input_details()]
    _assert_same(itf.run(small, xs, profile=acc16), itf.run(small, xs, profile=acc16, backend="reference"))


def test_program_checks_inputs_like_the_op_path(models_dir):
    model = itf.load(models_dir / "tflite" / "hello_world_int8.tflite")
    good = np.zeros((1, 1), np.int8)
    for bad, message in ((good.astype(np.int16), "needs dtype int8"), (np.zeros((1, 2), np.int8), "needs shape"),
                         ([good, good], "takes 1 input")):  # fmt: skip
        for whole_model in (None, False):
            with pytest.raises(ValueError, match=message):
                itf.run(model, bad, whole_model=whole_model)
    by_name = {model.input_details()[0].name: good}
    _assert_same(itf.run(model, by_name), itf.run(model, [good], whole_model=False))
    strided = np.zeros((1, 2), np.int8)[:, :1]  # a non-contiguous view is read correctly
    strided[0, 0] = 77
    _assert_same(itf.run(model, strided), itf.run(model, strided.copy(), whole_model=False))


def test_custom_profile_with_a_reused_name_gets_its_own_program(models_dir):
    model = itf.load(models_dir / "tflite" / "hello_world_int8.tflite")
    a = profiles.custom("tflm", "same-name")
    b = profiles.custom("tflite-reference", "same-name")
    xs = [np.array([[v]], np.int8) for v in range(-128, 128)]
    for p in (a, b, a):
        got = [itf.run(model, x, profile=p)[0] for x in xs]
        want = [itf.run(model, x, profile=p, whole_model=False)[0] for x in xs]
        _assert_same(got, want)
