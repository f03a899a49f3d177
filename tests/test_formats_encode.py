"""Encode against ml_dtypes, the onnx reference Cast, and exact rational arithmetic."""

import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import onnx
import pytest
from _formats_util import SMALL_FLOATS, edge_values, ml_codes, ml_type, random_float32
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from intsim import formats as F
from intsim.formats import reference

NO_NAN = {"float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"}


def ml_comparable(x, name):
    """Mask of inputs where ml_dtypes follows its own rule; see test_e8m0_subnormal_inputs."""
    if name != "float8_e8m0fnu":
        return np.ones(x.shape, bool)
    return ~((np.abs(x) > 2.0**-127) & (np.abs(x) < 1.5 * 2.0**-127))


def ml_rounding(name):
    # ml_dtypes rounds E8M0 ties upward (3 -> 4); that is our nearest_away (E8M0 is unsigned).
    return "nearest_away" if name == "float8_e8m0fnu" else "nearest_even"


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_edge_values_match_ml_dtypes(name):
    x = edge_values(name)
    x = x[ml_comparable(x, name)]
    got = F.encode(x, name, rounding=ml_rounding(name))
    np.testing.assert_array_equal(got, ml_codes(x, name))
    np.testing.assert_array_equal(F.encode(x, name, rounding=ml_rounding(name), backend="jit-serial"), got)


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_edge_values_match_rational_reference(name):
    x = edge_values(name)
    if F.get(name).bits > 8:
        x = x[:: max(1, x.size // 3000)]
    for rounding in ("nearest_even", "nearest_away"):
        for saturate in (False, True):
            got = F.encode(x, name, rounding=rounding, saturate=saturate)
            ref = F.encode(x, name, rounding=rounding, saturate=saturate, backend="reference")
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", SMALL_FLOATS)
def test_one_million_random_bit_patterns_match_ml_dtypes(name):
    x = random_float32(10**6, seed=sum(map(ord, name)))
    x = x[ml_comparable(x, name)]
    nan_in = np.isnan(x)
    got = F.encode(x, name, rounding=ml_rounding(name), nan="zero")
    want = ml_codes(x, name)
    if name in NO_NAN:
        # documented difference: ml_dtypes turns NaN into a zero of flipped sign; we give +0
        assert np.all(got[nan_in] == 0)
        np.testing.assert_array_equal(want[nan_in], np.where(np.signbit(x[nan_in]), 0, 1 << (F.get(name).bits - 1)))
    elif name == "float16":
        # documented difference: numpy keeps NaN payloads (even signalling ones); we emit the
        # canonical quiet NaN with the input's sign
        fmt = F.get(name)
        assert np.all(got[nan_in] == np.where(np.signbit(x[nan_in]), 0xFE00, 0x7E00))
        assert all(fmt.is_nan_code(int(c)) for c in want[nan_in][:1000])
    else:
        np.testing.assert_array_equal(got[nan_in], want[nan_in])
    np.testing.assert_array_equal(got[~nan_in], want[~nan_in])


# ---- documented differences from ml_dtypes, each with its exact value ----------------------------


@pytest.mark.parametrize("name", sorted(NO_NAN))
def test_nan_into_formats_without_nan(name):
    sign_bit = 1 << (F.get(name).bits - 1)
    x = np.array([np.nan, -np.nan], np.float32)
    assert ml_codes(x, name).tolist() == [sign_bit, 0]  # ml_dtypes: +NaN -> -0, -NaN -> +0
    with pytest.raises(ValueError, match="NaN"):
        F.encode(x, name)
    assert F.encode(x, name, nan="zero").tolist() == [0, 0]


def test_e8m0_ties():
    x = np.array([3.0, 6.0, 1.5 * 2**-127, 12.0], np.float32)
    assert ml_codes(x, "float8_e8m0fnu").tolist() == [129, 130, 1, 131]  # ties go up
    assert F.encode(x, "float8_e8m0fnu").tolist() == [128, 130, 0, 130]  # ties to the even code
    assert F.encode(x, "float8_e8m0fnu", rounding="nearest_away").tolist() == [129, 130, 1, 131]


def test_e8m0_subnormal_inputs():
    # ml_dtypes rounds every float32 subnormal above 2**-127 up to 2**-126, even those nearer
    # 2**-127; intsim rounds to the nearer one.
    x = np.array([1 + 2**-22, 1.25, 1.4999998, 1.5, 1.75], np.float64) * 2.0**-127
    x = x.astype(np.float32)
    assert ml_codes(x, "float8_e8m0fnu").tolist() == [1, 1, 1, 1, 1]
    assert F.encode(x, "float8_e8m0fnu", rounding="nearest_away").tolist() == [0, 0, 0, 1, 1]
    assert F.encode(x, "float8_e8m0fnu").tolist() == [0, 0, 0, 0, 1]  # the 1.5 tie: even code 0


def test_float64_double_rounding_trap():
    x = np.array([1.0625 + 2**-40])
    arr = x.astype(ml_dtypes.float8_e4m3fn)  # ml_dtypes arrays round via float32
    assert float(arr[0]) == 1.0
    assert float(ml_dtypes.float8_e4m3fn(x[0])) == 1.125  # its scalar constructor does not
    assert F.decode(F.encode(x, "float8_e4m3fn"), "float8_e4m3fn")[0] == 1.125
    y = np.array([1 + 2**-8 + 2**-30])
    assert float(ml_dtypes.bfloat16(y[0])) == 1.0  # bfloat16 double-rounds even for scalars
    assert F.decode(F.encode(y, "bfloat16"), "bfloat16")[0] == 1 + 2**-7


def test_float16_signalling_nan_payload():
    x = np.array([0x7F800001, 0xFFC00001], np.uint32).view(np.float32)
    assert x.astype(np.float16).view(np.uint16).tolist()[0] == 0x7C01  # numpy keeps the payload
    assert F.encode(x, "float16").tolist() == [0x7E00, 0xFE00]


# ---- saturating mode against the onnx reference Cast(saturate=1) -----------------------------------

ONNX_FLOAT8 = {
    "float8_e4m3fn": TensorProto.FLOAT8E4M3FN,
    "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
    "float8_e5m2": TensorProto.FLOAT8E5M2,
    "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
}


def onnx_cast(x, to, saturate):
    node = helper.make_node("Cast", ["x"], ["y"], to=to, saturate=saturate)
    graph = helper.make_graph(
        [node], "cast", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", to, list(x.shape))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("name", list(ONNX_FLOAT8))
def test_cast_matches_onnx_reference(name, saturate):
    x = np.concatenate([edge_values(name), random_float32(20000, seed=5)])
    x = x[~np.isnan(x)]
    want = onnx_cast(x, ONNX_FLOAT8[name], saturate).view(np.uint8)
    got = F.encode(x, name, saturate=bool(saturate))
    np.testing.assert_array_equal(got, want)
    assert onnx.__version__  # the peer ran


def test_saturate_table():
    x = np.array([np.inf, -np.inf, 1e9, -1e9, np.nan, -0.0], np.float32)
    assert F.encode(x, "float8_e4m3fn", saturate=True).tolist() == [0x7E, 0xFE, 0x7E, 0xFE, 0x7F, 0x80]
    assert F.encode(x, "float8_e5m2", saturate=True).tolist() == [0x7B, 0xFB, 0x7B, 0xFB, 0x7E, 0x80]
    assert F.encode(x, "float8_e4m3fnuz", saturate=True).tolist() == [0x7F, 0xFF, 0x7F, 0xFF, 0x80, 0]
    assert F.encode(x, "float8_e5m2", saturate=False).tolist() == [0x7C, 0xFC, 0x7C, 0xFC, 0x7E, 0x80]
    e8m0 = np.array([0.0, np.inf, 2.0**200, 2.0**-140], np.float64)
    assert F.encode(e8m0, "float8_e8m0fnu", saturate=True).tolist() == [0, 0xFE, 0xFE, 0]
    assert F.encode(e8m0, "float8_e8m0fnu", saturate=False).tolist() == [0xFF, 0xFF, 0xFF, 0]


# ---- float64 inputs: one rounding, checked against exact rational arithmetic ------------------------


@functools.cache
def exact_neighbours(name):
    v = np.unique(np.abs(F.get(name).table()[np.isfinite(F.get(name).table())]))
    return v


@st.composite
def float64_near_grid(draw, name):
    """A float64 at a representable value or midpoint, nudged by a tiny relative amount."""
    v = exact_neighbours(name)
    i = draw(st.integers(0, v.size - 2))
    point = draw(st.sampled_from([v[i], (v[i] + v[i + 1]) / 2]))
    nudge = draw(st.sampled_from([0.0, 2.0**-40, -(2.0**-40), 2.0**-52, -(2.0**-52), 2.0**-30]))
    sign = draw(st.sampled_from([1.0, -1.0]))
    return sign * point * (1 + nudge)


FLOAT64_FORMATS = ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "float4_e2m1fn",
                   "float6_e3m2fn", "float8_e4m3fnuz", "float8_e8m0fnu"]  # fmt: skip


@pytest.mark.parametrize("name", FLOAT64_FORMATS)
@given(data=st.data())
def test_float64_single_rounding(name, data):
    xs = [data.draw(float64_near_grid(name)) for _ in range(8)]
    xs += [data.draw(st.floats(allow_nan=False, allow_infinity=False, width=64))]
    x = np.array(xs, np.float64)
    got = F.encode(x, name, saturate=True)
    fmt = F.get(name)
    table = fmt.table()
    finite = np.flatnonzero(np.isfinite(table))
    order = finite[np.argsort(table[finite], kind="stable")]
    sorted_values = table[order]
    for xi, code in zip(xs, got.tolist(), strict=True):
        if not fmt.signed and xi <= 0:
            continue
        # the nearest value by exact rational distance (saturating: out of range -> the end),
        # ties to the even code
        i = int(np.searchsorted(sorted_values, xi))
        near = {sorted_values[j] for j in (i - 1, i) if 0 <= j < sorted_values.size}
        dist = {v: abs(Fraction(v) - Fraction(xi)) for v in near}
        best = min(dist.values())
        ties = np.flatnonzero(np.isin(table, [v for v in near if dist[v] == best])).tolist()
        even = {fmt.value(c) for c in ties if c % 2 == 0}
        assert fmt.value(code) in (even or {fmt.value(c) for c in ties}), (xi, code)
    np.testing.assert_array_equal(got, F.encode(x, name, saturate=True, backend="reference"))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e3m4"])
@given(data=st.data())
def test_float64_matches_ml_dtypes_scalar_constructor(name, data):
    # ml_dtypes' float8 scalar constructor rounds a Python float once (unlike its array cast)
    xs = [data.draw(float64_near_grid(name)) for _ in range(16)]
    got = F.encode(np.array(xs), name)
    want = [int(np.array(ml_type(name)(v)).view(np.uint8)) for v in xs]
    assert got.tolist() == want


# ---- every rounding mode: jit parallel == jit serial == rational reference ------------------------

MODES = ["nearest_even", "nearest_away", "toward_zero", "up", "down", "stochastic"]
ALL_FORMATS = SMALL_FLOATS + ["float32", "int2", "uint2", "int4", "uint4", "int8", "uint8",
                              "int16", "uint16", "int32"]  # fmt: skip


@st.composite
def edge_heavy_floats(draw, name):
    fmt = F.get(name)
    if fmt.kind == "float" and fmt.bits <= 16:
        return draw(float64_near_grid(name))
    big = float(2 ** min(fmt.bits + 2, 70))
    return draw(
        st.one_of(
            st.sampled_from([0.5, -0.5, 1.5, -2.5, 2.5, fmt.max + 0.5, fmt.min - 0.5, big, -big]),
            st.integers(-(2**40), 2**40).map(lambda i: i / 4),
            st.floats(-big, big, width=32),
            st.floats(allow_nan=False, allow_infinity=False),
        )
    )


@pytest.mark.parametrize("name", ALL_FORMATS)
@given(data=st.data())
def test_every_mode_jit_equals_reference(name, data):
    mode = data.draw(st.sampled_from(MODES))
    saturate = data.draw(st.booleans())
    width = data.draw(st.sampled_from([np.float32, np.float64]))
    with np.errstate(over="ignore"):  # float64 draws beyond float32's range become +-inf
        x = np.array([data.draw(edge_heavy_floats(name)) for _ in range(12)]).astype(width)
    if F.get(name).kind == "int" and not saturate:
        x = x[np.isfinite(x)]
    kw = dict(rounding=mode, saturate=saturate, seed=7)
    ref = F.encode(x, name, backend="reference", **kw)
    np.testing.assert_array_equal(F.encode(x, name, backend="jit", **kw), ref)
    np.testing.assert_array_equal(F.encode(x, name, backend="jit-serial", **kw), ref)


def test_directed_rounding_values():
    x = np.array([1.1, -1.1, 1.0625, -1.0625, 500.0, -500.0])

    def values(rounding):
        codes = F.encode(x, "float8_e4m3fn", rounding=rounding)
        return [None if math.isnan(v) else v for v in F.decode(codes, "float8_e4m3fn").tolist()]

    # overflow follows IEEE 754 7.4: only rounding away from zero reaches the overflow code (NaN)
    assert values("toward_zero") == [1.0, -1.0, 1.0, -1.0, 448, -448]
    assert values("up") == [1.125, -1.0, 1.125, -1.0, None, -448]
    assert values("down") == [1.0, -1.125, 1.0, -1.125, 448, None]
    assert values("nearest_away") == [1.125, -1.125, 1.125, -1.125, None, None]
    assert values("nearest_even") == [1.125, -1.125, 1.0, -1.0, None, None]


# ---- stochastic rounding ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["float8_e4m3fn", "bfloat16", "int4", "float4_e2m1fn"])
def test_stochastic_rounding_is_unbiased_and_picks_neighbours(name):
    fmt = F.get(name)
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, 64)
    n = 20000
    xs = np.repeat(x, n)
    codes = F.encode(xs, name, rounding="stochastic", seed=123)
    vals = F.decode(codes, fmt, dtype=np.float64).reshape(64, n)
    lo = F.decode(F.encode(x, name, rounding="down"), fmt, dtype=np.float64)
    hi = F.decode(F.encode(x, name, rounding="up"), fmt, dtype=np.float64)
    assert np.all((vals == lo[:, None]) | (vals == hi[:, None]))
    mean = vals.mean(axis=1)
    # each mean is a binomial average: its standard error is (hi - lo) * sqrt(p (1 - p) / n)
    p = np.where(hi > lo, (x - lo) / np.where(hi > lo, hi - lo, 1), 0)
    se = (hi - lo) * np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(mean - x) <= 5 * se + 1e-12)
    again = F.encode(xs, name, rounding="stochastic", seed=123)
    np.testing.assert_array_equal(codes, again)
    assert not np.array_equal(codes, F.encode(xs, name, rounding="stochastic", seed=124))


# ---- integer formats -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16"])
def test_integer_wrap_matches_ml_dtypes_truncating_cast(name):
    # ml_dtypes (and C) casts truncate toward zero and keep the low bits
    fmt = F.get(name)
    rng = np.random.default_rng(3)
    x = rng.uniform(-3 * 2.0**fmt.bits, 3 * 2.0**fmt.bits, 20000).astype(np.float32)
    if not fmt.signed:
        x = np.abs(x)
    got = F.encode(x, name, rounding="toward_zero", saturate=False)
    want = x.astype(np.int64).astype(ml_type(name)).view(np.uint8 if fmt.bits <= 8 else np.uint16)
    np.testing.assert_array_equal(got, want & ((1 << fmt.bits) - 1))


@pytest.mark.parametrize("name", ["int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "int32"])
def test_integer_saturation_matches_onnx_saturate_cast(name):
    fmt = F.get(name)
    x = np.concatenate([np.arange(-70000, 70000, 0.5), [1e12, -1e12, np.inf, -np.inf]])
    got = F.encode(x, name)  # nearest_even + saturate: the ONNX QuantizeLinear rule
    want = np.clip(np.rint(x), fmt.min, fmt.max).astype(np.int64)
    np.testing.assert_array_equal(F.decode(got, fmt, dtype=np.float64), want)


def test_integer_wrap_of_huge_values_is_exact():
    x = np.array([2.0**70 + 2.0**20 * 3, -(2.0**40) - 5, 2.0**31 + 7])
    assert F.encode(x, "int32", saturate=False).tolist() == [
        (2**70 + 3 * 2**20) % 2**32, (-(2**40) - 5) % 2**32, (2**31 + 7) % 2**32
    ]  # fmt: skip


def test_integer_errors():
    with pytest.raises(ValueError, match="NaN"):
        F.encode(np.array([1.0, np.nan]), "int8")
    with pytest.raises(ValueError, match="inf"):
        F.encode(np.array([np.inf]), "int8", saturate=False)
    assert F.encode(np.array([np.nan]), "int8", nan="zero").tolist() == [0]
    assert F.encode(np.array([np.inf, -np.inf]), "int8").tolist() == [127, 128]


def test_bad_arguments():
    with pytest.raises(ValueError, match="rounding"):
        F.encode(np.array([1.0]), "int8", rounding="banker")
    with pytest.raises(ValueError, match="nan"):
        F.encode(np.array([1.0]), "int8", nan="ignore")
    with pytest.raises(ValueError, match="float32 or float64"):
        F.encode(np.array(["a"]), "int8")
    with pytest.raises(ValueError, match="exactly"):
        F.encode(np.array([2**60 + 1], np.int64), "int8")


def test_reference_scalar_rules():
    fmt = F.get("float8_e4m3fn")
    assert reference.encode_scalar(464.0, fmt, saturate=False, rounding="nearest_even") == 0x7E
    assert reference.encode_scalar(465.0, fmt, saturate=False, rounding="nearest_even") == 0x7F
    assert reference.encode_scalar(-2.0**-10, fmt, saturate=False, rounding="nearest_even") == 0x80
    e5m2 = F.get("float8_e5m2")
    assert reference.encode_scalar(61440.0, e5m2, saturate=False, rounding="nearest_even") == 0x7C
    assert reference.encode_scalar(61439.0, e5m2, saturate=False, rounding="nearest_even") == 0x7B


def test_input_widths_and_shapes():
    x16 = np.array([[1.5, -2.25]], np.float16)
    assert F.encode(x16, "float8_e4m3fn").shape == (1, 2)
    bf = np.array([1.5], ml_dtypes.bfloat16)
    assert F.encode(bf, "float8_e4m3fn").tolist() == [0x3C]
    assert F.encode(np.zeros((0, 3)), "int8").shape == (0, 3)


# ---- the float32 nearest-even fast kernel equals the general kernel ----------------------------------


@pytest.mark.parametrize("saturate", [False, True])
def test_truncated_float32_kernel_equals_general_kernel(saturate):
    from intsim.formats import codec

    x = np.concatenate([random_float32(1_000_000, seed=12), edge_values("bfloat16")])
    params = codec.float_params(F.get("bfloat16"), saturate)
    general = np.empty(x.size, np.uint16)
    codec._encode_float_kernel.parallel(
        x.view(np.uint32), 23, 8, 127, *params, saturate, 0, np.zeros(0, np.uint64), general
    )
    assert codec.float_kernel(F.get("bfloat16"), x.dtype, 0) == "truncated_f32"
    for build in (codec._encode_truncated_f32_kernel.parallel, codec._encode_truncated_f32_kernel.serial):
        fast = np.empty_like(general)
        build(x.view(np.uint32), *params.for_truncated_f32(), saturate, fast)
        np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("name", SMALL_FLOATS + ["float32"])
def test_fast_kernel_equals_general_kernel(name, saturate):
    from intsim.formats import codec

    fmt = F.get(name)
    parts = [random_float32(300_000, seed=11)] + ([edge_values(name)] if fmt.bits <= 16 else [])
    x = np.concatenate(parts)
    assert x.dtype == np.float32
    params = codec.float_params(fmt, saturate)
    general = np.empty(x.size, F.code_dtype(fmt.bits))
    codec._encode_float_kernel.parallel(
        x.view(np.uint32), 23, 8, 127, *params, saturate, 0, np.zeros(0, np.uint64), general
    )
    applies = codec.nearest_even_f32_valid(fmt)
    assert applies == (name != "float8_e8m0fnu")  # E8M0's lowest binade is float32-subnormal
    if applies:
        fast = np.empty_like(general)
        codec._encode_f32_nearest_even_kernel.parallel(x, x.view(np.uint32), *params.for_nearest_even_f32(), saturate, fast)
        np.testing.assert_array_equal(fast, general)
        fast_serial = np.empty_like(general)
        codec._encode_f32_nearest_even_kernel.serial(x, x.view(np.uint32), *params.for_nearest_even_f32(), saturate, fast_serial)
        np.testing.assert_array_equal(fast_serial, general)
