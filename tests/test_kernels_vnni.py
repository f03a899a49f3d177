"""The int32 GEMM's two micro-kernels (AVX512-VNNI ``vpdpbusd`` and the portable numba loop):
both equal the exact sum wrapped to int32, serial and parallel, on shapes that cross every
edge of the VNNI tiling (6-row blocks, 64-column panels, K not a multiple of 4, several row
tasks), with edge-heavy values and zero points; and they agree with the Python-int reference.

The exact sum is computed by numpy in int64 (every product and partial sum of these sizes fits)
and wrapped once: ``sum_k (a - za)(b - zb) + bias`` modulo 2**32, the ONNX MatMulInteger /
TFLite rule, independent of the kernels' zero-point identity and re-biasing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import int_array, zero_point

from intsim.fixedpoint import wrap32
from intsim.kernels import accumulate_matmul, gemm, pack_weights, vnni
from intsim.kernels.gemm import PreparedGemm

MICROKERNELS = [
    "portable",
    pytest.param("vnni", marks=pytest.mark.skipif(not vnni.AVAILABLE, reason="this CPU has no AVX512-VNNI")),
]


def exact_wrapped(a, b, za, zb, bias):
    acc = (a.astype(np.int64) - za) @ (b.astype(np.int64) - np.asarray(zb, np.int64).reshape(1, -1))
    return wrap32(acc + bias.reshape(1, -1)).astype(np.int32)


@pytest.mark.parametrize("microkernel", MICROKERNELS)
@settings(max_examples=60)
@given(data=st.data())
def test_microkernel_equals_the_wrapped_exact_sum(microkernel, data):
    at, bt = data.draw(st.sampled_from([np.int8, np.uint8])), data.draw(st.sampled_from([np.int8, np.uint8]))
    m = data.draw(st.sampled_from([1, 5, 6, 7, 12, 13, 97]))
    k = data.draw(st.sampled_from([1, 3, 4, 5, 64, 129, 300]))
    n = data.draw(st.sampled_from([1, 15, 16, 63, 64, 65, 130]))
    a, b = data.draw(int_array(at, (m, k))), data.draw(int_array(bt, (k, n)))
    za = data.draw(zero_point(at))
    zb = np.array(data.draw(st.lists(zero_point(bt), min_size=n, max_size=n)), np.int64)
    bias = np.array(data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n)), np.int64)
    want = exact_wrapped(a, b, za, zb, bias)
    packed = pack_weights(b)
    with gemm.use_microkernel(microkernel):
        for backend in ("jit", "jit-serial"):
            got, _ = accumulate_matmul(a, packed, za, zb, bias, backend=backend)
            np.testing.assert_array_equal(got, want)
        prepared = PreparedGemm(b.T, zb, bias, input_dtype=at)
        np.testing.assert_array_equal(prepared(a, za), want)


@pytest.mark.parametrize("microkernel", MICROKERNELS)
def test_microkernels_agree_with_the_python_int_reference(microkernel):
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (8, 70)).astype(np.int8)
    b = rng.integers(0, 256, (70, 67)).astype(np.uint8)
    zb = rng.integers(0, 256, 67)
    bias = rng.integers(-(2**20), 2**20, 67)
    want, _ = accumulate_matmul(a, b, -3, zb, bias, backend="reference")
    with gemm.use_microkernel(microkernel):
        got, _ = accumulate_matmul(a, b, -3, zb, bias)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("microkernel", MICROKERNELS)
def test_int32_wraparound_is_exact_and_reported(microkernel):
    # 255 * -128 * 70000 = -2.285e9 leaves int32: the kernels wrap as the hardware adds
    a = np.full((7, 70000), 255, np.uint8)
    b = np.full((70000, 65), -128, np.int8)
    b[:, 64] = 1  # one column that stays in range
    with gemm.use_microkernel(microkernel):
        got, report = accumulate_matmul(a, b)
    want = exact_wrapped(a, b, 0, np.zeros(65, np.int64), np.zeros(65, np.int64))
    np.testing.assert_array_equal(got, want)
    assert got[0, 64] == 255 * 70000 and report.count == 7 * 64 and report.mask[:, :64].all()


def test_microkernel_choice_is_checked():
    with pytest.raises(ValueError, match="microkernel must be one of"), gemm.use_microkernel("avx2"):
        pass
    if not vnni.AVAILABLE:
        with pytest.raises(RuntimeError, match="AVX512-VNNI"), gemm.use_microkernel("vnni"):
            pass


@pytest.mark.parametrize("backend", ["jit", "jit-serial"])
def test_panels_layout(backend):
    rng = np.random.default_rng(2)
    for n, k in ((1, 1), (65, 2), (64, 8), (130, 31)):
        bt = rng.integers(-128, 128, (n, k)).astype(np.int8)
        panels = vnni.pack_panels(bt, backend)
        padded = np.zeros((-(-n // 64) * 64, -(-k // 4) * 4), np.int8)  # the layout, in numpy
        padded[:n, :k] = bt
        want = padded.reshape(-1, 64, padded.shape[1] // 4, 4).transpose(0, 2, 1, 3)
        np.testing.assert_array_equal(panels, want)
    assert panels[1, 0, 0].tolist() == bt[64, :4].tolist()  # panel 1 starts at column 64


def test_environment_picks_the_default_microkernel(monkeypatch):
    monkeypatch.setenv("INTSIM_GEMM", "portable")
    assert gemm._default_microkernel() == "portable"
    monkeypatch.setenv("INTSIM_GEMM", "")
    assert gemm._default_microkernel() == ("vnni" if vnni.AVAILABLE else "portable")
    monkeypatch.setenv("INTSIM_GEMM", "amx")
    with pytest.raises(ValueError, match="INTSIM_GEMM must be one of"):
        gemm._default_microkernel()
