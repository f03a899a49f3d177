"""int16 pair saturation (x86 vpmaddubsw, intsim.kernels.pairs): the numba kernel, its Python-int
reference and a transliteration of the instruction agree; GEMM and convolution apply it alike
under every backend.  onnxruntime itself is the peer in test_ops_onnx / test_onnx_models."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intsim.kernels import Accumulator, accumulate_matmul, pairs
from intsim.kernels.conv import accumulate_conv2d

PAIRS = Accumulator(32, "wrap", int16_pairs=True)


def vpmaddubsw_dot(a_row, b_col) -> int:
    """The instruction pair by pair: sat16(a0*b0 + a1*b1), summed exactly (vpmaddwd), K padded."""
    a = list(map(int, a_row)) + [0] * (len(a_row) % 2)
    b = list(map(int, b_col)) + [0] * (len(b_col) % 2)
    return sum(min(max(a[k] * b[k] + a[k + 1] * b[k + 1], -32768), 32767) for k in range(0, len(a), 2))


edge_u8 = st.sampled_from([0, 1, 127, 128, 200, 254, 255])
edge_i8 = st.sampled_from([-128, -127, -1, 0, 1, 126, 127])


@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 4), st.data())
def test_loss_kernel_equals_reference_and_the_instruction(m, k, n, data):
    a = np.array(data.draw(st.lists(st.one_of(edge_u8, st.integers(0, 255)), min_size=m * k, max_size=m * k)),
                 np.uint8).reshape(m, k)  # fmt: skip
    b = np.array(data.draw(st.lists(st.one_of(edge_i8, st.integers(-128, 127)), min_size=k * n, max_size=k * n)),
                 np.int8).reshape(k, n)  # fmt: skip
    exact = a.astype(np.int64) @ b.astype(np.int64)
    want = np.array([[vpmaddubsw_dot(a[i], b[:, j]) for j in range(n)] for i in range(m)], np.int64)
    np.testing.assert_array_equal(exact - pairs.loss_reference(a, np.ascontiguousarray(b.T)), want)
    for backend in ("reference", "jit", "jit-serial"):
        got = pairs.saturate_pairs(exact.astype(np.int32), a, np.ascontiguousarray(b.T), backend)
        np.testing.assert_array_equal(got, want.astype(np.int32))


@pytest.mark.parametrize("backend", ["reference", "jit", "jit-serial"])
def test_gemm_and_conv_apply_pairs_under_every_backend(backend):
    rng = np.random.default_rng(3)
    a = rng.integers(180, 256, (5, 13)).astype(np.uint8)
    b = rng.choice(np.array([-128, 127, -100, 100], np.int8), (13, 6))
    acc, _ = accumulate_matmul(a, b, np.uint8(7), np.int8(2), accumulator=PAIRS, backend=backend)
    want = [[vpmaddubsw_dot(a[i], b[:, j]) - 2 * int(a[i].astype(np.int64).sum()) - 7 * int(b[:, j].astype(np.int64).sum())
             + 13 * 7 * 2 for j in range(6)] for i in range(5)]  # fmt: skip
    assert acc.tolist() == want
    x = rng.integers(180, 256, (1, 5, 5, 3)).astype(np.uint8)
    w = rng.choice(np.array([-128, 127], np.int8), (4, 3, 3, 3))
    got, _ = accumulate_conv2d(x, w, 9, 0, padding="SAME", accumulator=PAIRS, backend=backend)
    ref, _ = accumulate_conv2d(x, w, 9, 0, padding="SAME", accumulator=PAIRS, backend="reference")
    exact, _ = accumulate_conv2d(x, w, 9, 0, padding="SAME", backend=backend)
    np.testing.assert_array_equal(got, ref)
    assert np.any(got != exact)  # pairs saturated somewhere
    dw = rng.choice(np.array([-128, 127], np.int8), (3, 3, 3, 1))  # depthwise: MLAS widens, no pairs
    got_dw, _ = accumulate_conv2d(x, dw, 9, 0, padding="SAME", groups=3, accumulator=PAIRS, backend=backend)
    np.testing.assert_array_equal(got_dw, accumulate_conv2d(x, dw, 9, 0, padding="SAME", groups=3, backend=backend)[0])


def test_pairs_only_with_an_int32_wrapping_accumulator():
    with pytest.raises(ValueError, match="int16_pairs"):
        Accumulator(24, "saturate", int16_pairs=True)


def test_profile_with_pairs_needs_an_int32_wrapping_accumulator():
    from intsim import profiles as P

    with pytest.raises(ValueError, match="int16_pairs"):
        P.custom("onnxruntime-cpu-avx2", "narrow", accumulator_bits=16)
