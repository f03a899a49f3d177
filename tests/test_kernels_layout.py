"""The layout kernel (intsim.kernels.layout): swap_last_two and the NCHW <-> NHWC changes,
reference (numpy) == jit serial == jit parallel, exactly, across tile edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intsim.kernels import layout

EDGES = st.sampled_from([1, 2, 63, 64, 65, 127, 130])
DTYPES = st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.int64])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(1, 3), EDGES, EDGES, DTYPES, st.integers(0, 2**32 - 1))
def test_swap_last_two_backends_agree(batch, rows, cols, dtype, seed):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    a = rng.integers(info.min, int(info.max) + 1, (batch, rows, cols), dtype=np.int64).astype(dtype)
    a.reshape(-1)[0] = info.min
    a.reshape(-1)[-1] = info.max
    want = layout.swap_last_two(a, backend="reference")
    assert want.shape == (batch, cols, rows) and want.flags.c_contiguous
    np.testing.assert_array_equal(want, np.swapaxes(a, 1, 2))  # the reference is numpy's own swap
    for backend in ("jit", "jit-serial"):
        got = layout.swap_last_two(a, backend=backend)
        assert got.dtype == a.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(layout.swap_last_two(a[0]), a[0].T)  # 2-D
    strided = a[:, ::2, :]  # non-contiguous input
    np.testing.assert_array_equal(layout.swap_last_two(strided), np.swapaxes(strided, 1, 2))


@pytest.mark.parametrize("shape, dtype", [((1, 1024, 65), np.int8), ((2, 70, 256), np.int32), ((300, 2048), np.uint8)])
def test_rows_a_multiple_of_1kib_apart_take_the_buffered_path(shape, dtype):
    a = np.random.default_rng(0).integers(0, 100, shape).astype(dtype)
    want = np.swapaxes(a, -1, -2)
    for backend in ("jit", "jit-serial"):
        np.testing.assert_array_equal(layout.swap_last_two(a, backend=backend), want)


def test_nchw_nhwc_round_trip():
    x = np.arange(2 * 5 * 7 * 3, dtype=np.int32).reshape(2, 5, 7, 3)  # NCHW, C=5
    nhwc = layout.nchw_to_nhwc(x)
    np.testing.assert_array_equal(nhwc, np.transpose(x, (0, 2, 3, 1)))
    np.testing.assert_array_equal(layout.nhwc_to_nchw(nhwc), x)
    np.testing.assert_array_equal(layout.nchw_to_nhwc(x, backend="reference"), nhwc)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        layout.swap_last_two(np.zeros(5, np.int8))
    with pytest.raises(ValueError, match="NCHW tensor"):
        layout.nchw_to_nhwc(np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="NHWC tensor"):
        layout.nhwc_to_nchw(np.zeros((2, 3, 4), np.int8))
    with pytest.raises(ValueError, match="backend"):
        layout.swap_last_two(np.zeros((2, 2), np.int8), backend="fast")
    assert layout.swap_last_two(np.zeros((3, 0), np.int8)).shape == (0, 3)
