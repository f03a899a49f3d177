"""Single-op ONNX models: intsim.onnx against onnxruntime, exact, on edge-heavy parameters.

The com.microsoft ops have no definition but onnxruntime's CPU kernels, so onnxruntime is the
peer; scales include powers of two (ties in every division), zero points at the extremes,
inputs at -128/127 and 0/255.
"""

import zlib

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from conftest import ALL_BACKENDS

from intsim import profiles as P
from intsim.onnx import run

MS = "com.microsoft"
TYPES = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8}


def single_op(op_type, x_shapes, dtype, inits, attrs=None, domain=MS, out_dtype=None, input_names=None):
    names = input_names or [f"x{i}" for i in range(len(x_shapes))]
    graph_inputs = [helper.make_tensor_value_info(n, TYPES[dtype], s) for n, s in zip(names, x_shapes)]
    node_inputs = [n if n in names or n == "" else n for n in attrs.pop("_inputs")] if attrs and "_inputs" in attrs else None
    node = helper.make_node(op_type, node_inputs, ["y"], domain=domain, name="op", **(attrs or {}))
    out_t = TYPES[out_dtype or dtype]
    graph = helper.make_graph([node], "g", graph_inputs, [helper.make_tensor_value_info("y", out_t, [f"d{i}" for i in range(len(x_shapes[0]))])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    return model


def ort_run(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def edge_ints(rng, shape, dtype):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, shape)
    flat = x.reshape(-1)
    flat[: min(4, flat.size)] = [info.min, info.max, 0 if dtype == np.int8 else 128, info.min + 1][: min(4, flat.size)]
    return x.astype(dtype)


def scales(rng):
    """A scale that is a power of two half the time (exact ratios: ties), else random."""
    return np.float32(2.0 ** rng.integers(-9, -2)) if rng.random() < 0.5 else np.float32(rng.uniform(0.002, 0.08))


def zero_point(rng, dtype):
    info = np.iinfo(dtype)
    return dtype(rng.choice([info.min, info.max, 0, rng.integers(info.min, info.max + 1)]))


def assert_same(model, feeds):
    want = ort_run(model, feeds)
    for backend in ALL_BACKENDS:
        got = run(model, feeds, profile=P.onnxruntime_cpu(), backend=backend)["y"]
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=backend)


# Both operators follow MLAS's float32 formulas, whose rounding depends on the order of the float
# operations (the zero point is added in float before rounding): edge codes and power-of-two
# scales put many values on ties.
@pytest.mark.parametrize("op_type", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("shape_b", [(3, 37), (37,), (1,)])
def test_qlinear_binary(op_type, dtype, shape_b):
    rng = np.random.default_rng(zlib.crc32(repr((op_type, dtype.__name__, shape_b)).encode()))
    for _ in range(25):
        inits = {"sa": scales(rng), "za": zero_point(rng, dtype), "sb": scales(rng), "zb": zero_point(rng, dtype),
                 "sc": scales(rng), "zc": zero_point(rng, dtype)}  # fmt: skip
        m = single_op(op_type, [(3, 37), shape_b], dtype, inits,
                      {"_inputs": ["x0", "sa", "za", "x1", "sb", "zb", "sc", "zc"]})  # fmt: skip
        assert_same(m, {"x0": edge_ints(rng, (3, 37), dtype), "x1": edge_ints(rng, shape_b, dtype)})


@settings(max_examples=60, deadline=None, derandomize=True)
@given(a=st.integers(-128, 127), b=st.integers(-128, 127), ea=st.integers(-8, -2), eb=st.integers(-8, -2),
       ec=st.integers(-8, -2), zc=st.integers(-128, 127))  # fmt: skip
def test_qlinear_add_ties_with_power_of_two_scales(a, b, ea, eb, ec, zc):
    inits = {"sa": np.float32(2.0**ea), "za": np.int8(0), "sb": np.float32(2.0**eb), "zb": np.int8(0),
             "sc": np.float32(2.0**ec), "zc": np.int8(zc)}  # fmt: skip
    m = single_op("QLinearAdd", [(16,), (16,)], np.int8, inits, {"_inputs": ["x0", "sa", "za", "x1", "sb", "zb", "sc", "zc"]})
    x0 = np.arange(16, dtype=np.int64) + a
    assert_same(m, {"x0": np.clip(x0, -128, 127).astype(np.int8), "x1": np.full(16, b, np.int8)})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_qlinear_lookup_ops_and_concat(dtype):
    rng = np.random.default_rng(5)
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(2, 128)
    for _ in range(10):
        p = {"xs": scales(rng), "xz": zero_point(rng, dtype), "ys": scales(rng), "yz": zero_point(rng, dtype)}
        m = single_op("QLinearLeakyRelu", [x.shape], dtype, p, {"_inputs": ["x0", "xs", "xz", "ys", "yz"], "alpha": 0.1})
        assert_same(m, {"x0": x})
        sig = dict(p, xs=np.float32(p["xs"] * rng.choice([1, 8, 64])), ys=np.float32(rng.choice([1 / 256, 1 / 255, 0.004])))
        m = single_op("QLinearSigmoid", [x.shape], dtype, sig, {"_inputs": ["x0", "xs", "xz", "ys", "yz"]})
        assert_same(m, {"x0": x})  # every code; x_scale up to 5 reaches the +-18 clamp
        q = {"ys": p["ys"], "yz": p["yz"], "s1": scales(rng), "z1": zero_point(rng, dtype)}
        m = single_op("QLinearConcat", [x.shape, x.shape], dtype, q,
                      {"_inputs": ["ys", "yz", "x0", "s1", "z1", "x1", "ys", "yz"], "axis": 1})  # fmt: skip
        assert_same(m, {"x0": x, "x1": x[:, ::-1].copy()})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]},
    {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2], "count_include_pad": 1},
    {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
])  # fmt: skip
def test_qlinear_pools(dtype, attrs):
    rng = np.random.default_rng(6)
    for _ in range(8):
        p = {"xs": scales(rng), "xz": zero_point(rng, dtype), "ys": scales(rng), "yz": zero_point(rng, dtype)}
        x = edge_ints(rng, (2, 3, 7, 9), dtype)
        m = single_op("QLinearAveragePool", [x.shape], dtype, p, {"_inputs": ["x0", "xs", "xz", "ys", "yz"], **attrs})
        assert_same(m, {"x0": x})
        p["ys"] = np.float32(p["xs"] * rng.uniform(0.3, 3))  # onnxruntime bounds the ratio
        m = single_op("QLinearGlobalAveragePool", [x.shape], dtype, p, {"_inputs": ["x0", "xs", "xz", "ys", "yz"]})
        assert_same(m, {"x0": x})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("per_column", [False, True])
def test_qgemm(dtype, per_column):
    rng = np.random.default_rng(7)
    for trans_b in (0, 1):
        n = 24
        b = rng.integers(-128, 128, (n, 40) if trans_b else (40, n)).astype(np.int8)
        p = {"as": scales(rng), "az": zero_point(rng, dtype), "b": b,
             "bs": (rng.uniform(0.001, 0.02, n) if per_column else rng.uniform(0.001, 0.02, 1)).astype(np.float32),
             "bz": np.zeros(n if per_column else 1, np.int8), "c": rng.integers(-5000, 5000, n).astype(np.int32),
             "ys": scales(rng), "yz": zero_point(rng, dtype)}  # fmt: skip
        m = single_op("QGemm", [(5, 40)], dtype, p, {"_inputs": ["x0", "as", "az", "b", "bs", "bz", "c", "ys", "yz"],
                                                     "transB": trans_b, "alpha": 1.0})  # fmt: skip
        assert_same(m, {"x0": edge_ints(rng, (5, 40), dtype)})
