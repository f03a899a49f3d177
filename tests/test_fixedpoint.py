"""Fixed-point requantization: literal transliterations of the TFLite/gemmlowp C rules in Python
ints, compared with exact equality against every backend on edge values and hypothesis inputs."""

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import ALL_BACKENDS
from hypothesis import given
from hypothesis import strategies as st

from intsim import fixedpoint as fxp

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---- transliterations (tensorflow/lite/kernels/internal/quantization_util.cc, common.cc;
# ---- gemmlowp fixedpoint/fixedpoint.h), C integer semantics spelled out ------------------------


def int32_cast(v):  # static_cast<int32_t> of an in-range-of-int64 value: two's complement
    return (v + 2**31) % 2**32 - 2**31


def c_div(a, b):  # C / on integers truncates toward zero
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def std_round(d: float) -> int:  # std::round: half away from zero, exactly
    f = Fraction(d)
    fl = math.floor(f)
    if f - fl > Fraction(1, 2) or (f - fl == Fraction(1, 2) and f > 0):
        return fl + 1
    if f - fl == Fraction(1, 2) and f < 0:
        return fl
    return fl


def QuantizeMultiplier(double_multiplier, single_rounding=False):
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    q_fixed = std_round(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed = c_div(q_fixed, 2)
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift


def SaturatingRoundingDoublingHighMul(a, b):
    overflow = a == b and a == INT32_MIN
    a_64, b_64 = a, b
    ab_64 = a_64 * b_64
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = int32_cast(c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def RoundingDivideByPOT(x, exponent):
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    zero, one = 0, 1
    remainder = x & mask
    threshold = (mask >> 1) + (one if x < zero else 0)
    return (x >> exponent) + (one if remainder > threshold else 0)


def MultiplyByQuantizedMultiplier_double(x, quantized_multiplier, shift):
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return RoundingDivideByPOT(
        SaturatingRoundingDoublingHighMul(int32_cast(x * (1 << left_shift)), quantized_multiplier),
        right_shift,
    )


def MultiplyByQuantizedMultiplier_single(x, quantized_multiplier, shift):
    total_shift = 31 - shift
    round_ = 1 << (total_shift - 1)
    result = x * quantized_multiplier + round_
    result = result >> total_shift
    return int32_cast(result)


def MultiplyByQuantizedMultiplier_int64(x, quantized_multiplier, shift):
    reduced_multiplier = (
        (quantized_multiplier + (1 << 15)) >> 16 if quantized_multiplier < 0x7FFF0000 else 0x7FFF
    )
    total_shift = 15 - shift
    x = x * reduced_multiplier + (1 << (total_shift - 1))
    return int32_cast(x >> total_shift)


def ruy_avx2_apply_multiplier(x, m, e):
    """ruy/kernel_avx2_fma.cc, Kernel8bitAvx2 ``apply_multiplier`` and ``rounding_right_shift``,
    lane by lane: the 64-bit product is offset into unsigned range for the logical shift."""
    left, right = max(e, 0), max(-e, 0)
    shifted = int32_cast(x << left)  # _mm256_sllv_epi32
    scaled = (shifted * m + (1 << 30) + (1 << 63)) % 2**64  # _mm256_mul_epi32, + offset_vector
    result = int32_cast((scaled >> 31) & 0xFFFFFFFF)  # _mm256_srlv_epi64 by 31, low dword
    nudge = (1 << (right - 1)) if right > 0 else 0
    if result > 0x7FFFFFFF - nudge:  # mask_num_plus_nudge_overflow
        return 1 << (31 - right)
    return int32_cast(result + nudge) >> right  # _mm256_srav_epi32


def optimized_quantize(acc_row, multipliers, shifts, block=8):
    """LiteRT optimized_ops.h ``Quantize`` (int8, no TFLITE_SINGLE_ROUNDING) on one row of
    channels: its NEON loop (vshlq_s32, vqrdmulhq_s32, vrshlq_s32 by the negative part) for
    channels 8 at a time, MultiplyByQuantizedMultiplier for the rest (``block=16``:
    integer_ops/mean.h ``MeanImpl``, 16 channels at a time)."""
    c, out = len(acc_row), []
    for i, (x, m, e) in enumerate(zip(acc_row, multipliers, shifts, strict=True)):
        if i < c // block * block:
            h = SaturatingRoundingDoublingHighMul(int32_cast(x << max(e, 0)), m)
            right = max(-e, 0)
            out.append((h + ((1 << right) >> 1)) >> right)  # VRSHL: rounding shift in wide arithmetic
        else:
            out.append(MultiplyByQuantizedMultiplier_double(x, m, e))
    return out


# ---- edge-heavy strategies ----------------------------------------------------------------------

EDGE_INT32 = sorted({INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, INT32_MAX - 1}
                    | {s * (2**k + d) for k in range(0, 31) for d in (-1, 0, 1) for s in (1, -1)
                       if INT32_MIN <= s * (2**k + d) <= INT32_MAX})  # fmt: skip
EDGE_MULT = [0, 1, 2**30, 2**30 + 1, 2**31 - 1, 2**31 - 2, 1583594044, 0x7FFF0000, 0x7FFEFFFF, 0x7FFF8000]

acc32 = st.one_of(st.sampled_from(EDGE_INT32), st.integers(INT32_MIN, INT32_MAX))
multipliers = st.one_of(st.sampled_from(EDGE_MULT), st.integers(2**30, 2**31 - 1))


def all_backends(fn, *args, **kwargs):
    results = [np.asarray(fn(*args, backend=b, **kwargs)) for b in ALL_BACKENDS]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    return results[0]


# ---- QuantizeMultiplier -------------------------------------------------------------------------

MULTIPLIER_EDGES = [0.0, 1.0, 0.5, 2.0, 1 - 2**-33, 1 - 2**-32, 1 - 2**-31, 2**-31, 2**-32,
                    2**-32 * (1 - 2**-40), 2**-33, 3.0, 0.75, 2**30, 2**31, 2**40, 1e-10,
                    0.0009765625, 0.1, 1 / 3, 123.456]  # fmt: skip


@pytest.mark.parametrize("real", MULTIPLIER_EDGES)
@pytest.mark.parametrize("single", [False, True])
def test_quantize_multiplier_edges(real, single):
    assert fxp.quantize_multiplier(real, single_rounding=single) == QuantizeMultiplier(real, single)


@given(st.floats(min_value=2**-40, max_value=2**35, allow_nan=False), st.booleans())
def test_quantize_multiplier_property(real, single):
    want = QuantizeMultiplier(real, single)
    assert fxp.quantize_multiplier(real, single_rounding=single) == want
    m, s = want
    if m and not (single and s == 30 and real > 2**30):
        assert abs(m * 2.0 ** (s - 31) - real) <= real * 2**-31


def test_quantize_multiplier_renormalises_and_flushes():
    assert fxp.quantize_multiplier(1 - 2**-33) == (2**30, 1)  # q_fixed hit 2**31
    assert fxp.quantize_multiplier(2**-32) == (2**30, -31)
    assert fxp.quantize_multiplier(2**-33) == (0, 0)  # shift -32: flushed to zero
    assert fxp.quantize_multiplier(2.0**31, single_rounding=True) == (2**31 - 1, 30)
    m, s = fxp.quantize_multiplier(np.array([0.5, 0.25, 3.0]))
    assert m.dtype == np.int32 and m.tolist() == [2**30, 2**30, 3 * 2**29] and s.tolist() == [0, -1, 2]


def test_quantize_multiplier_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        fxp.quantize_multiplier(float("nan"))


@pytest.mark.parametrize("real", [-0.1, np.array([0.5, -0.1]), -(2.0**-40)])
def test_quantize_multiplier_rejects_negative(real):
    """A real multiplier is a ratio of scales; a negative one gave a negative Q31 multiplier."""
    with pytest.raises(ValueError, match="non-negative"):
        fxp.quantize_multiplier(real)


# ---- SRDHM, RDBPOT, MBQM ------------------------------------------------------------------------


def test_tf_issue_25087_example():
    x, qm, shift = 7984, 1583594044, -9
    assert MultiplyByQuantizedMultiplier_double(x, qm, shift) == 12
    assert MultiplyByQuantizedMultiplier_single(x, qm, shift) == 11
    assert all_backends(fxp.multiply_by_quantized_multiplier, np.array([x]), qm, shift).tolist() == [12]
    assert all_backends(
        fxp.multiply_by_quantized_multiplier, np.array([x]), qm, shift, rounding="single"
    ).tolist() == [11]


def test_srdhm_edges():
    a = np.array(EDGE_INT32, np.int64)
    for b in EDGE_INT32[:: max(1, len(EDGE_INT32) // 25)] + [INT32_MIN, INT32_MAX, 0, 1, -1]:
        want = [SaturatingRoundingDoublingHighMul(int(v), b) for v in a]
        assert all_backends(fxp.saturating_rounding_doubling_high_mul, a, b).tolist() == want
    assert SaturatingRoundingDoublingHighMul(INT32_MIN, INT32_MIN) == INT32_MAX


def test_rdbpot_edges_and_ties():
    x = np.array(EDGE_INT32 + [5, -5, 6, -6, 3, -3, 2**20 + 2**19, -(2**20) - 2**19], np.int64)
    for e in range(32):
        want = [RoundingDivideByPOT(int(v), e) for v in x]
        assert all_backends(fxp.rounding_divide_by_pot, x, e).tolist() == want
    assert RoundingDivideByPOT(5, 1) == 3 and RoundingDivideByPOT(-5, 1) == -3  # ties away


@given(st.lists(acc32, min_size=1, max_size=16), multipliers, st.integers(-31, 30))
def test_mbqm_double_property(xs, qm, shift):
    want = [MultiplyByQuantizedMultiplier_double(x, qm, shift) for x in xs]
    assert all_backends(fxp.multiply_by_quantized_multiplier, np.array(xs), qm, shift).tolist() == want


@given(st.lists(acc32, min_size=1, max_size=16), multipliers, st.integers(-31, 30))
def test_mbqm_single_property(xs, qm, shift):
    want = [MultiplyByQuantizedMultiplier_single(x, qm, shift) for x in xs]
    got = all_backends(fxp.multiply_by_quantized_multiplier, np.array(xs), qm, shift, rounding="single")
    assert got.tolist() == want


@given(st.lists(acc32, min_size=1, max_size=16), multipliers, st.integers(-31, 7))
def test_mbqm_double_up_is_ruys_x86_kernel(xs, qm, shift):
    want = [ruy_avx2_apply_multiplier(x, qm, shift) for x in xs]
    got = all_backends(fxp.multiply_by_quantized_multiplier, np.array(xs), qm, shift, rounding="double-up")
    assert got.tolist() == want


def test_double_up_differs_from_double_only_in_negative_ties():
    acc = np.arange(-4096, 4096)
    m, s = fxp.quantize_multiplier(2.0**-5)  # 2**30, -4: SRDHM halves, then the shift by 4 sees ties
    assert (m, s) == (2**30, -4)
    up = fxp.multiply_by_quantized_multiplier(acc, m, s, rounding="double-up").astype(np.int64)
    double = fxp.multiply_by_quantized_multiplier(acc, m, s)
    half = (acc + 1) >> 1  # SRDHM by 2**30: x / 2, ties toward +inf
    assert np.array_equal(up - double, np.where((half < 0) & (half % 16 == 8), 1, 0))


@given(data=st.data())
def test_double_up8_rounds_by_the_channel_position(data):
    """``"double-up8"`` / ``"double-up16"`` equal LiteRT's optimized Quantize / MeanImpl channel
    by channel, per channel and per tensor (where the one multiplier is spread over every
    channel)."""
    block = data.draw(st.sampled_from([8, 16]), label="block")
    c = data.draw(st.sampled_from([1, 3, 8, 12, 17, 33]), label="channels")
    per_channel = data.draw(st.booleans(), label="per_channel")
    exps = data.draw(st.lists(st.integers(-14, 1), min_size=c, max_size=c), label="exponents")
    real = np.array([2.0**e for e in exps]) * data.draw(st.sampled_from([1.0, 0.75, 0.6180339887]))
    real = real if per_channel else real[:1]
    rows = data.draw(st.lists(st.lists(acc32, min_size=c, max_size=c), min_size=1, max_size=4), label="acc")
    zp = data.draw(st.integers(-128, 127))
    q, shift = fxp.quantize_multiplier(np.broadcast_to(real, (c,)))
    want = [[min(max(v + zp, -128), 127) for v in optimized_quantize(r, q.tolist(), shift.tolist(), block)]
            for r in rows]  # fmt: skip
    got = all_backends(fxp.requantize, np.array(rows), real, zp, f"double-up{block}", qmin=-128, qmax=127, axis=-1)
    assert got.tolist() == want


def test_double_up8_needs_the_channel_axis():
    with pytest.raises(ValueError, match="depends on the channel's position: pass axis"):
        fxp.requantize(np.zeros(8, np.int32), 0.01, 0, "double-up8", qmin=-128, qmax=127)


@given(
    st.lists(st.one_of(st.sampled_from([0, 1, -1, 2**47 - 1, -(2**47), 2**31, -(2**31) - 1]),
                       st.integers(-(2**47), 2**47 - 1)), min_size=1, max_size=16),
    multipliers, st.integers(-31, 7),
)  # fmt: skip
def test_mbqm_int64_property(xs, qm, shift):
    want = [MultiplyByQuantizedMultiplier_int64(x, qm, shift) for x in xs]
    got = all_backends(fxp.multiply_by_quantized_multiplier_int64, np.array(xs, np.int64), qm, shift)
    assert got.tolist() == want


def test_double_and_single_differ_by_at_most_one():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**20), 2**20, 200_000)
    m, s = fxp.quantize_multiplier(0.0037)
    d = fxp.multiply_by_quantized_multiplier(acc, m, s)
    single = fxp.multiply_by_quantized_multiplier(acc, m, s, rounding="single")
    diff = d.astype(np.int64) - single
    # single rounds ties toward +inf once; double's last step rounds ties away from zero
    assert set(np.unique(diff).tolist()) == {-1, 0, 1}
    assert np.all(diff[acc > 0] >= 0) and np.all(diff[acc < 0] <= 0)
    assert 0 < np.count_nonzero(diff) < 0.05 * acc.size


def test_per_channel_along_any_axis():
    rng = np.random.default_rng(1)
    acc = rng.integers(-(2**24), 2**24, (4, 5, 6))
    m, s = fxp.quantize_multiplier(rng.uniform(1e-4, 0.5, 5))
    got = all_backends(fxp.multiply_by_quantized_multiplier, acc, m, s, axis=1)
    for c in range(5):
        want = [MultiplyByQuantizedMultiplier_double(int(v), int(m[c]), int(s[c])) for v in acc[:, c].ravel()]
        assert got[:, c].ravel().tolist() == want
    m6, s6 = fxp.quantize_multiplier(rng.uniform(1e-4, 0.5, 6))
    last = all_backends(fxp.multiply_by_quantized_multiplier, acc, m6, s6)  # default: last axis
    assert last[1, 2, 3] == MultiplyByQuantizedMultiplier_double(int(acc[1, 2, 3]), int(m6[3]), int(s6[3]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([1]), 2**30, 31, rounding="single"), "shift"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([1]), 2**30, -32), "shift"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([2**31]), 2**30, 0), "acc"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([1.5]), 2**30, 0), "acc"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([1]), -1, 0, rounding="single"), "multiplier"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.array([1]), 2**30, 0, rounding="triple"), "rounding"),
        (lambda: fxp.multiply_by_quantized_multiplier(np.ones((2, 3), np.int32), np.ones(4, np.int32) << 30,
                                                      np.zeros(4, np.int32)), "per-channel"),
        (lambda: fxp.multiply_by_quantized_multiplier_int64(np.array([2**47]), 2**30, 0), "acc"),
        (lambda: fxp.rounding_divide_by_pot(np.array([1]), 32), "exponent"),
        (lambda: fxp.requantize_float(np.array([1]), np.nan, qmin=0, qmax=1, rule="float32"), "multiplier"),
        (lambda: fxp.requantize_float(np.array([1]), 1.0, qmin=0, qmax=1, rule="float16"), "rule"),
    ],
)  # fmt: skip
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- float rules --------------------------------------------------------------------------------


def mlas_requantize(acc, scale, zp, qmin, qmax):
    """onnxruntime MlasRequantizeOutput, scalar path."""
    f32 = np.float32
    minimum, maximum = f32(qmin - zp), f32(qmax - zp)
    value = f32(acc) * f32(scale)
    value = max(value, minimum)
    value = min(value, maximum)
    return int(np.rint(value)) + zp  # nearbyintf under round-to-nearest-even


def onnx_reference_requantize(acc, scale, zp, qmin, qmax):
    """onnx/reference/ops/op_qlinear_matmul.py: C * (float32 scale) promotes to float64."""
    d = np.array([acc], np.int32) * np.float32(scale)
    d += zp
    return int(np.clip(np.rint(d), qmin, qmax)[0])


def litert_fc_requantize(acc, multiplier, zp, qmin, qmax):
    """LiteRT reference FullyConnected (reference/integer_ops/fully_connected.h):
    ``int32_t acc_scaled = static_cast<int32_t>(round(double(acc) * multiplier));
    acc_scaled += output_offset;`` then the clamp.  A double outside int32 converts as x86-64's
    cvttsd2si does, to INT32_MIN."""
    r = std_round(float(acc) * multiplier)
    v = r if INT32_MIN <= r <= INT32_MAX else INT32_MIN
    return min(max(int32_cast(v + zp), qmin), qmax)


FLOAT_CASES = [("float32", mlas_requantize), ("float64-onnx", onnx_reference_requantize),
               ("float64-away", litert_fc_requantize)]  # fmt: skip


@pytest.mark.parametrize("rule, transliteration", FLOAT_CASES)
@given(data=st.data())
def test_float_rules_property(rule, transliteration, data):
    acc = data.draw(st.lists(st.one_of(acc32, st.integers(-(2**20), 2**20)), min_size=1, max_size=12))
    scale = data.draw(st.one_of(st.sampled_from([0.5, 0.25, 1.0, 2**-10, 0.0037]),
                                st.floats(float(np.float32(1e-6)), 4.0, width=32)))  # fmt: skip
    zp = data.draw(st.integers(-128, 127))
    want = [transliteration(a, scale, zp, -128, 127) for a in acc]
    got = all_backends(fxp.requantize_float, np.array(acc, np.int64), scale, zp, qmin=-128, qmax=127, rule=rule)
    assert got.tolist() == want


def test_float_rules_ties():
    acc = np.array([1, 3, 5, -1, -3, -5], np.int64)
    assert fxp.requantize_float(acc, 0.5, qmin=-128, qmax=127, rule="float32").tolist() == [0, 2, 2, 0, -2, -2]
    assert fxp.requantize_float(acc, 0.5, qmin=-128, qmax=127, rule="float64-away").tolist() == [1, 2, 3, -1, -2, -3]


def test_onnx_reference_rounds_after_adding_the_zero_point():
    # -257 * 0.5 = -128.5; ONNX: rint(-128.5 + 1) = -128; MLAS: rint(-128.5) + 1 = -127
    acc = np.array([-257], np.int64)
    assert fxp.requantize_float(acc, 0.5, 1, qmin=-128, qmax=127, rule="float64-onnx").tolist() == [-128]
    assert fxp.requantize_float(acc, 0.5, 1, qmin=-128, qmax=127, rule="float32").tolist() == [-127]


def test_float32_rule_differs_from_onnx_reference_beyond_2_24():
    acc = np.array([2**24 + 1], np.int64)  # float32(acc) rounds to 2**24 first
    assert fxp.requantize_float(acc, 1.0, qmin=INT32_MIN, qmax=INT32_MAX, rule="float32").tolist() == [2**24]
    assert fxp.requantize_float(acc, 1.0, qmin=INT32_MIN, qmax=INT32_MAX, rule="float64-onnx").tolist() == [2**24 + 1]


@given(st.lists(st.one_of(
    st.floats(0, 2.0**40, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 2.0**-32, 2.0**-31, 2.0**-33, 1.0, 0.5, 2.0**31, 1 - 2.0**-33, 1 - 2.0**-32, 2.0**30 * (1 - 2.0**-40)]),
), min_size=1, max_size=40), st.booleans())
def test_quantize_multiplier_array_equals_scalar(values, single):
    """The vectorized array path gives exactly the scalar transliteration's pairs."""
    q, s = fxp.quantize_multiplier(np.array(values), single_rounding=single)
    want = [fxp.quantize_multiplier(v, single_rounding=single) for v in values]
    assert list(zip(q.tolist(), s.tolist(), strict=True)) == want
