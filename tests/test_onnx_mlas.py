"""intsim.onnx.mlas: the float32 steps of onnxruntime's MLAS kernels, exact.

``fma32`` is checked against exact rational arithmetic (including sums that land exactly on a
float32 midpoint in float64, where a plain float64 fma would round twice); ``logistic`` against
onnxruntime's own float Sigmoid, which is ``MlasComputeLogistic``, on every float32 value class
that matters (the clamp at +-18, zeros, subnormals, NaN, infinities).
"""

from fractions import Fraction

import numpy as np
import onnxruntime as ort
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from intsim.onnx import mlas

F32 = np.float32


def fma_reference(a, b, c):
    """The exact a*b + c rounded to the nearest float32, ties to an even significand."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if exact == 0:  # the sign of a zero follows IEEE's rule, which float64 applies exactly here
        return F32(np.float64(a) * np.float64(b) + np.float64(c))
    r = F32(float(exact))  # within one float32 step of the answer
    cands = [np.nextafter(r, F32(-np.inf)), r, np.nextafter(r, F32(np.inf))]
    best = min(abs(Fraction(float(x)) - exact) for x in cands)
    ties = [x for x in cands if abs(Fraction(float(x)) - exact) == best]
    return ties[0] if len(ties) == 1 else next(x for x in ties if int(x.view(np.uint32)) % 2 == 0)


EDGE = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0**-24, 1 + 2.0**-23, 1 - 2.0**-24, 3.4e38, 1e-45, -1e-45, 1.1754944e-38])
F32S = st.one_of(EDGE, st.floats(width=32, allow_nan=False, allow_infinity=False),
                 st.floats(-4, 4, width=32))  # fmt: skip


@settings(max_examples=400, deadline=None, derandomize=True)
@given(F32S, F32S, F32S)
def test_fma32_equals_exact_rounding(a, b, c):
    a, b, c = F32(a), F32(b), F32(c)
    with np.errstate(over="ignore"):
        if not np.isfinite(np.float64(a) * np.float64(b) + np.float64(c)) or abs(np.float64(a) * b + c) > 3.4e38:
            return
        got = mlas.fma32(a, b, c)
    assert got.view(np.uint32) == fma_reference(a, b, c).view(np.uint32)


def test_fma32_double_rounding_cases():
    """a*b = 2^k (1 + 2^-36) exactly (2^36 + 1 = (2^12 + 1)(2^24 - 2^12 + 1)), so a*b + c lands
    a hair off a float32 midpoint that float64 rounds onto; both signs, both directions."""
    cases = []
    for k in (-24, -20, 0, 10):
        for sa in (1, -1):
            for sc in (1, -1):
                a = F32(sa * (2**12 + 1) * 2.0 ** (k - 12))
                b = F32((2**24 - 2**12 + 1) * 2.0**-24)
                for c in (F32(sc * 2.0 ** (k + 24)), F32(sc * 3 * 2.0 ** (k + 23)), F32(sc * 2.0 ** (k + 23))):
                    cases.append((a, b, c))
    a, b, c = (np.array(t, F32) for t in zip(*cases))
    got = mlas.fma32(a, b, c)
    want = np.array([fma_reference(*t) for t in cases], F32)
    naive = (a.astype(np.float64) * b + c).astype(F32)
    assert (naive != want).any()  # the cases do exercise double rounding
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def _ort_sigmoid(x):
    node = helper.make_node("Sigmoid", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x.size])])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_logistic_equals_onnxruntime_sigmoid():
    rng = np.random.default_rng(11)
    special = np.array([0.0, -0.0, 18.0, -18.0, 17.999998, -17.999998, 18.000002, 100.0, -100.0, 1e-45, -1e-45,
                        1e-30, 0.5, -0.5, 1.0, -1.0, np.inf, -np.inf], F32)  # fmt: skip
    x = np.concatenate([special, rng.uniform(-20, 20, 40000).astype(F32), rng.standard_normal(40000).astype(F32),
                        (2.0 ** rng.integers(-20, 6, 2000)).astype(F32) * rng.choice([-1, 1], 2000)])  # fmt: skip
    x = np.concatenate([x, np.arange(256, dtype=np.int32).astype(F32) * F32(0.0625) - F32(8.0)]).astype(F32)
    np.testing.assert_array_equal(mlas.logistic(x).view(np.uint32), _ort_sigmoid(x).view(np.uint32))
    nan = _ort_sigmoid(np.array([np.nan] * 8, F32))
    assert np.isnan(nan).all() and np.isnan(mlas.logistic(np.array([np.nan], F32))).all()
