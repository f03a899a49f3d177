"""LiteRT's optimized builtin kernels (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``)
against the ``litert-builtin`` profile, bit for bit: every operator case of test_tflite_ops,
tie-heavy convolutions with 12 channels (the rounding of optimized_ops::Quantize changes at
channel 8), and every layer of the shared models and the builder's CNNs.  The reference
interpreter is the control: on the tie-heavy cases the two modes must really disagree."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _tflite_util import MODELS, T, assert_every_layer, interpret, model_bytes, random_int, single_op
from conftest import ALL_BACKENDS
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from test_tflite_ops import CASES, NOT_MODELLED, _inputs, _not_modelled, _refused, REFUSED

import intsim.tflite as itf

PROFILE = "litert-builtin"


def _pow2_layer(rng, op, c=12, batch=24):
    """``op`` with power-of-two scales (the last shift of the requantization sees exact ties),
    per-channel filters, extreme input zero points, no fused activation."""
    s_x, s_y = 2.0**-4, 2.0**-1
    s_w = 2.0 ** -rng.integers(1, 5, c)  # multipliers 2**-4 .. 2**-7 and small weights: frequent ties,
    zp_x, zp_y = int(rng.choice([-128, 0, 127])), int(rng.choice([-20, 0, 20]))  # outputs mostly in range
    w = lambda shape: rng.integers(-8, 9, shape).astype(np.int8)  # noqa: E731
    x = T("x", (batch, 40) if op == "FULLY_CONNECTED" else (1, 9, 9, 3), "INT8", scale=s_x, zero_point=zp_x)
    bias = T("b", (c,), "INT32", data=rng.integers(-3000, 3000, c).astype(np.int32), scale=s_x * s_w,
             zero_point=[0] * c)  # fmt: skip
    zeros = [0] * c
    if op == "FULLY_CONNECTED":
        f = T("w", (c, 40), "INT8", data=w((c, 40)), scale=s_w, zero_point=zeros)
        return single_op(op, [x, f, bias], [T("y", (batch, c), "INT8", scale=s_y, zero_point=zp_y)])
    y = T("y", (1, 9, 9, c), "INT8", scale=s_y, zero_point=zp_y)
    if op == "CONV_2D":
        f = T("w", (c, 1, 1, 3), "INT8", data=w((c, 1, 1, 3)), scale=s_w,
              zero_point=zeros)  # fmt: skip
        return single_op(op, [x, f, bias], [y], {"padding": 0, "stride_h": 1, "stride_w": 1})
    if op == "DEPTHWISE_CONV_2D":  # depth multiplier 4: 12 channels from 3
        f = T("w", (1, 3, 3, c), "INT8", data=w((1, 3, 3, c)), scale=s_w,
              zero_point=zeros, quantized_dimension=3)  # fmt: skip
        return single_op(op, [x, f, bias], [y], {"padding": 0, "stride_h": 1, "stride_w": 1, "depth_multiplier": 4})
    shape = T("shape", (4,), "INT32", data=np.array([1, 9, 9, c], np.int32))  # TRANSPOSE_CONV, stride 1
    f = T("w", (c, 3, 3, 3), "INT8", data=w((c, 3, 3, 3)), scale=s_w,
          zero_point=zeros)  # fmt: skip
    return single_op(op, [shape, f, x], [y], {"padding": 0, "stride_h": 1, "stride_w": 1})


TIES = {
    "ties_conv_1x1_12ch": lambda r: _pow2_layer(r, "CONV_2D"),
    "ties_depthwise_12ch": lambda r: _pow2_layer(r, "DEPTHWISE_CONV_2D"),
    "ties_transpose_conv_12ch": lambda r: _pow2_layer(r, "TRANSPOSE_CONV"),
    "ties_fc_12_units": lambda r: _pow2_layer(r, "FULLY_CONNECTED"),
    "ties_fc_batch1": lambda r: _pow2_layer(r, "FULLY_CONNECTED", batch=1),  # the GEMV path
}


def _check(data, draws, rng, against_ref=True):
    model = itf.load(data)
    departs = 0
    for draw in range(draws):
        xs = _inputs(model, rng)
        want = interpret(data, xs, PROFILE)
        for backend in ALL_BACKENDS if draw == 0 else ("jit",):  # the Python-int reference once
            got = itf.run(model, xs, reset_state=True, profile=PROFILE, backend=backend)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and g.shape == w.shape
                np.testing.assert_array_equal(g, w, err_msg=backend)
        if against_ref:  # how often BUILTIN_REF disagrees (it lacks some kernels, ELU)
            departs += sum(int(np.count_nonzero(a != b)) for a, b in zip(interpret(data, xs, "tflite-reference"), want))
    return departs


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_litert_builtin(case):
    rng = np.random.default_rng(sum(map(ord, case)) + 2)
    if "tflite-reference" in REFUSED.get(case, ()):  # refused by LiteRT's kernels in every mode
        data = CASES[case](rng)
        return _refused(data, itf.load(data), _inputs(itf.load(data), rng), PROFILE, case)
    if PROFILE in NOT_MODELLED.get(case, ()):
        data = CASES[case](rng)
        interpret(data, _inputs(itf.load(data), rng), PROFILE)  # LiteRT runs it
        return _not_modelled(itf.load(data), _inputs(itf.load(data), rng), PROFILE)
    _check(CASES[case](rng), 4, rng, against_ref="builtin-ref" not in REFUSED.get(case, ()))


@pytest.mark.parametrize("case", sorted(TIES))
def test_tie_heavy_layers_match_litert_builtin_and_depart_from_builtin_ref(case):
    rng = np.random.default_rng(sum(map(ord, case)))
    assert _check(TIES[case](rng), 3, rng), "BUILTIN_REF agrees everywhere: the case does not tell the modes apart"


@pytest.mark.parametrize("dtype", ["INT8", "UINT8", "INT16"])
def test_quantize_and_dequantize_at_every_position(dtype):
    """13 and 29 elements: the NEON loop takes 8 and 24, the scalar loop the rest.  Inputs are
    exact ties of the scale (half to even in the loop, away from zero in the tail), huge values
    and infinities."""
    rng = np.random.default_rng(len(dtype))
    scale, zp = 2.0**-5, {"INT8": -3, "UINT8": 128, "INT16": 0}[dtype]
    info = np.iinfo(dtype.lower())
    departs = 0
    for n in (13, 29):
        q = single_op("QUANTIZE", [T("x", (n,), "FLOAT32")], [T("y", (n,), dtype, scale=scale, zero_point=zp)])
        dq = single_op("DEQUANTIZE", [T("x", (n,), dtype, scale=0.0371, zero_point=zp)], [T("y", (n,), "FLOAT32")])
        for _ in range(6):
            x = (rng.integers(-300, 300, n) + 0.5) * scale
            x[rng.integers(0, n, 3)] = rng.choice([1e30, -1e30, np.inf, -np.inf, 3e9 * scale], 3)
            x = x.astype(np.float32)
            xi = random_int(rng, (n,), info.dtype)
            for data, inputs in ((q, [x]), (dq, [xi])):
                want = interpret(data, inputs, PROFILE)[0]
                np.testing.assert_array_equal(itf.run(itf.load(data), inputs, profile=PROFILE)[0], want)
                departs += int(np.count_nonzero(interpret(data, inputs, "tflite-reference")[0] != want))
    assert departs, "BUILTIN_REF agrees everywhere: the cases do not tell the modes apart"


@pytest.mark.parametrize("channels", [4, 16, 20, 37])
def test_mean_over_h_and_w_by_channel_blocks(channels):
    """The optimized MEAN: channels in blocks of 16 round their ties up, the rest away from zero;
    H * W = 4 and power-of-two scales make ties frequent."""
    rng = np.random.default_rng(channels)
    for zp_in, zp_out in ((-128, 0), (5, -7), (127, 127)):
        x = T("x", (3, 2, 2, channels), "INT8", scale=2.0**-3, zero_point=zp_in)
        axes = T("axes", (2,), "INT32", data=np.array([2, 1], np.int32))
        y = T("y", (3, 1, 1, channels), "INT8", scale=2.0**-5, zero_point=zp_out)
        data = single_op("MEAN", [x, axes], [y], {"keep_dims": True})
        _check(data, 2, rng)


@pytest.mark.parametrize("name", MODELS)
def test_every_layer_matches_litert_builtin(name, models_dir):
    assert_every_layer(model_bytes(name, models_dir), PROFILE, seed=11)


ADD_SCALE = st.one_of(st.sampled_from([2.0**-7, 0.02, 0.05, 0.1, 1.0, 1e-4]), st.floats(2.0**-10, 0.5, width=32))
# (input shapes): one flat row (16-element blocks and a tail), a scalar against rows of 21 (8-element
# blocks), rows of 50 repeated, rows of 15 (all tail), and shapes no five-fold loop takes (the reference)
ADD_LAYOUTS = [((3, 50), (3, 50)), ((1, 1), (3, 21)), ((3, 21), (1,)), ((2, 1, 50), (2, 5, 50)),
               ((2, 5, 15), (2, 1, 15)), ((3, 1, 5), (1, 7, 1)), ((6, 1), (6, 13))]  # fmt: skip
# a tiny output scale: the SIMD paths' int16 narrowing wraps, so every element shows its path
SHARP = [example(op="ADD", layout=layout, scales=(0.02, 0.05, 1e-4), zps=(3, -7, 1), act=0, seed=0)
         for layout in ADD_LAYOUTS]  # fmt: skip


@functools.reduce(lambda f, e: e(f), SHARP)
@settings(max_examples=40, deadline=None)
@given(op=st.sampled_from(["ADD", "SUB"]), layout=st.sampled_from(ADD_LAYOUTS),
       scales=st.tuples(ADD_SCALE, ADD_SCALE, ADD_SCALE), zps=st.tuples(*[st.sampled_from([-128, -1, 0, 5, 127])] * 3),
       act=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2**16))  # fmt: skip
def test_add_and_sub_match_litert_builtin_by_position(op, layout, scales, zps, act, seed):
    """int8 ADD: the SIMD rows (16), the scalar-broadcast runs (8) and the scalar tails each round
    their own way; SUB is the reference kernel's everywhere."""
    (s1, s2, so), (z1, z2, zo) = scales, zps
    twice_max = 2 * max(np.float32(s1), np.float32(s2))
    assume(float(twice_max) / (2**20 * float(np.float32(so))) < 1)  # LiteRT CHECKs this multiplier below 1
    shape1, shape2 = layout
    out = np.broadcast_shapes(shape1, shape2)
    model = single_op(op, [T("a", shape1, "INT8", scale=s1, zero_point=z1), T("b", shape2, "INT8", scale=s2, zero_point=z2)],
                      [T("y", out, "INT8", scale=so, zero_point=zo)], {"fused_activation_function": act})  # fmt: skip
    rng = np.random.default_rng(seed)
    xs = [random_int(rng, shape1, np.int8), random_int(rng, shape2, np.int8)]
    np.testing.assert_array_equal(itf.run(itf.load(model), xs, profile=PROFILE)[0], interpret(model, xs, PROFILE)[0])


def test_optimized_add_departs_from_builtin_ref():
    """The control: a small output scale overflows the SIMD path's int16 narrowing, and ties
    round their own way there."""
    model = single_op("ADD", [T("a", (4, 64), "INT8", scale=0.02, zero_point=3),
                              T("b", (4, 64), "INT8", scale=0.05, zero_point=-7)],
                      [T("y", (4, 64), "INT8", scale=1e-5, zero_point=1)])  # fmt: skip
    rng = np.random.default_rng(0)
    xs = [random_int(rng, (4, 64), np.int8), random_int(rng, (4, 64), np.int8)]
    got = itf.run(itf.load(model), xs, profile=PROFILE)[0]
    np.testing.assert_array_equal(got, interpret(model, xs, PROFILE)[0])
    assert np.count_nonzero(got != interpret(model, xs, "tflite-reference")[0]) > 0


# ---- optimized ADD, transliterated from optimized/integer_ops/add.h lane by lane in Python ints ----


def _i32(v):
    return ((v + 2**31) % 2**32) - 2**31


def _vshl(x, s):  # vshlq_s32 by a signed amount: a left shift, or an arithmetic (floor) right shift
    return _i32(x << s) if s >= 0 else x >> min(-s, 31)


def _vqrdmulh(a, b):  # floor((2ab + 2**31) / 2**32), saturated
    return min((2 * a * b + 2**31) >> 32, 2**31 - 1)


def _rdbpot(x, e):
    mask, threshold = (1 << e) - 1, ((1 << e) - 1 >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def _mbqm_smaller_than_one(x, q, shift):  # MultiplyByQuantizedMultiplierSmallerThanOneExp
    return _rdbpot(_vqrdmulh(x, q), -shift)


def _narrow(s, p):  # vmovn_s32, vaddq_s16 with the output offset, vqmovn_s16, then the clamp
    s16 = ((s + 2**15) % 2**16) - 2**15
    s16 = ((s16 + p["zo"] + 2**15) % 2**16) - 2**15
    return min(max(min(max(s16, -128), 127), p["lo"]), p["hi"])


def _tail(a, b, p):  # the scalar loops of both functions
    t1 = _mbqm_smaller_than_one(_i32((a - p["z1"]) << 20), p["q1"], p["e1"])
    t2 = _mbqm_smaller_than_one(_i32((b - p["z2"]) << 20), p["q2"], p["e2"])
    return min(max(_mbqm_smaller_than_one(_i32(t1 + t2), p["qo"], p["eo"]) + p["zo"], p["lo"]), p["hi"])


def add_elementwise_int8(a, b, p):
    out, n = [], len(a)
    for i in range(n):
        if i < n - n % 16:
            x1 = _vqrdmulh(_vshl(a[i] - p["z1"], 20 + p["e1"]), p["q1"])
            x2 = _vqrdmulh(_vshl(b[i] - p["z2"], 20 + p["e2"]), p["q2"])
            out.append(_narrow(_rdbpot(_vqrdmulh(_i32(x1 + x2), p["qo"]), -p["eo"]), p))
        else:
            out.append(_tail(a[i], b[i], p))
    return out


def add_scalar_broadcast(a, b, p):  # a: the scalar, b: the run
    out, n = [], len(b)
    x1 = _vshl(_vqrdmulh(_vshl(a - p["z1"], 20), p["q1"]), p["e1"])
    for i in range(n):
        if i < n - n % 8:
            x2 = _vshl(_vqrdmulh(_vshl(b[i] - p["z2"], 20), p["q2"]), p["e2"])
            out.append(_narrow(_rdbpot(_vqrdmulh(_i32(x1 + x2), p["qo"]), -p["eo"]), p))
        else:
            out.append(_tail(a, b[i], p))
    return out


@settings(max_examples=40, deadline=None)
@given(scales=st.tuples(ADD_SCALE, ADD_SCALE, ADD_SCALE), zps=st.tuples(*[st.sampled_from([-128, -1, 0, 5, 127])] * 3),
       n=st.sampled_from([7, 16, 37, 50]), clamp=st.sampled_from([(-128, 127), (-5, 127), (-128, 20)]),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_optimized_add_equals_its_transliteration(scales, zps, n, clamp, seed):
    """``optimized.add_int8`` on every backend against add.h's two functions written out lane by
    lane: a flat row (AddElementwiseInt8) and a scalar against a run (AddScalarBroadcast)."""
    from intsim import fixedpoint as fxp
    from intsim.tflite import optimized

    s1, s2, so = (float(np.float32(s)) for s in scales)
    tm = 2 * max(s1, s2)
    assume(tm / (2**20 * so) < 1)
    (q1, e1), (q2, e2), (qo, eo) = (fxp.quantize_multiplier(r) for r in (s1 / tm, s2 / tm, tm / (2**20 * so)))
    p = dict(z1=zps[0], z2=zps[1], zo=zps[2], q1=q1, e1=e1, q2=q2, e2=e2, qo=qo, eo=eo, lo=clamp[0], hi=clamp[1])
    kw = dict(zero_points=zps[:2], multipliers=(q1, q2, qo), shifts=(e1, e2, eo), output_zero_point=zps[2], clamp=clamp)
    rng = np.random.default_rng(seed)
    a, b = random_int(rng, (n,), np.int8), random_int(rng, (n,), np.int8)
    scalar = np.full((n,), a[0], np.int8)
    for backend in ALL_BACKENDS:
        got = optimized.add_int8(a, b, (n,), (n,), **kw, backend=backend)
        assert got.tolist() == add_elementwise_int8(a.tolist(), b.tolist(), p), backend
        got = optimized.add_int8(scalar, b, (1,), (n,), **kw, backend=backend)
        assert got.tolist() == add_scalar_broadcast(int(a[0]), b.tolist(), p), backend


def test_five_fold_consolidates_as_litert_does():
    """``ProcessBroadcastShapes``'s own example: ..., 1, 3, 1, 7, 9, 5 against ..., 2, 3, 1, 7, 1, 1."""
    from intsim.tflite.optimized import five_fold

    assert five_fold((1, 3, 1, 7, 9, 5), (2, 3, 1, 7, 1, 1)) == ("second", (1, 2, 21, 45, 1))
    assert five_fold((4, 5), (4, 5)) == ("none", ())
    assert five_fold((1,), (3, 21)) == ("first", (1, 1, 1, 63, 1))
    assert five_fold((3, 1, 5), (1, 7, 1)) == ("generic", ())
    assert five_fold((2, 3, 4), (3, 5)) == ("generic", ())


def test_requantize_and_int16_leaky_relu_as_the_optimized_kernels():
    """QUANTIZE int8 -> int8 / uint8 over 29 elements (the NEON loop takes 16, ties up; the scalar
    loop 13), and int16 LEAKY_RELU with a negative alpha (its signed multiplier's SRDHM ties the
    other way): power-of-two scale ratios make the ties."""
    rng = np.random.default_rng(3)
    departs = 0
    models = [single_op("QUANTIZE", [T("x", (29,), "INT8", scale=2.0**-3, zero_point=-5)],
                        [T("y", (29,), kind, scale=2.0**-1, zero_point=zp)]) for kind, zp in (("INT8", 3), ("UINT8", 130))]
    models.append(single_op("LEAKY_RELU", [T("x", (40,), "INT16", scale=2.0**-4, zero_point=0)],
                            [T("y", (40,), "INT16", scale=2.0**-2, zero_point=0)], {"alpha": -0.75}))  # fmt: skip
    for data in models:
        departs += _check(data, 4, rng)
    assert departs, "BUILTIN_REF agrees everywhere: the cases do not tell the modes apart"
