"""OCTAV's binned recursion on large groups (``octav_bins``) against the full-pass recursion (the
``"reference"`` backend runs the definition: one pass over the data per update), and the MSE
kernels of ``calibrate.mse`` against their Python references."""

import numpy as np
import pytest
from conftest import ALL_BACKENDS, JIT_BACKENDS
from hypothesis import given, settings
from hypothesis import strategies as st

from intsim import calibrate as C
from intsim import quant as Q
from intsim.calibrate import octav_bins
from intsim.calibrate.groups import grid_for
from intsim.calibrate.mse import CHUNK, empirical_mse, modelled_mse

N = 40_000  # above octav_bins.worthwhile's threshold for float32 (32640)


def sample(kind: str, n: int, rng) -> np.ndarray:
    return {
        "gaussian": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(size=n),
        "student_t3": lambda: rng.standard_t(3, n),
        "uniform": lambda: rng.uniform(-1, 1, n),
        "relu": lambda: np.maximum(rng.standard_normal(n), 0.0),  # half zeros, unsigned grid
    }[kind]()


def test_binned_path_is_taken_for_large_groups_only():
    assert octav_bins.worthwhile(N, np.dtype(np.float32))
    assert not octav_bins.worthwhile(N // 2, np.dtype(np.float32))
    assert not octav_bins.worthwhile(N, np.dtype(np.float64))  # 32752 bins: needs 262016
    assert octav_bins.worthwhile(300_000, np.dtype(np.float64))


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "student_t3", "uniform", "relu"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_binned_fixed_point_equals_the_full_pass_recursion(kind, bits):
    # Run both to a tight tolerance: each binned update is exact (only float64 summation order
    # differs), so both land on the same fixed point.
    x = sample(kind, N, np.random.default_rng(bits)).astype(np.float32)
    dtype = f"{'u' if kind == 'relu' else ''}int{bits}"
    kw = dict(dtype=dtype, refine=False, tol=1e-13, max_iter=300)
    _, ref = C.octav(x, backend="reference", **kw)
    _, got = C.octav(x, **kw)
    assert got.warm_start_iterations > 0 and ref.warm_start_iterations == 0  # the two paths ran
    assert ref.converged and got.converged
    np.testing.assert_allclose(got.fixed_point, ref.fixed_point, rtol=1e-11)
    np.testing.assert_allclose(got.empirical_mse, ref.empirical_mse, rtol=1e-12)
    np.testing.assert_allclose(got.modelled_mse, ref.modelled_mse, rtol=1e-12)
    np.testing.assert_array_equal(got.max_mse, ref.max_mse)  # max|x| is exact on both paths


def test_binned_per_channel_float64_and_starts():
    rng = np.random.default_rng(7)
    x = rng.laplace(size=(3, 300_000)) * np.array([[0.5], [1.0], [40.0]])  # float64 groups
    for init in ("mean_nonzero", "zero", "max", np.array([0.1, 9.0, 1e4])):
        kw = dict(dtype="int5", axis=0, refine=False, tol=1e-13, max_iter=300, init=init)
        _, ref = C.octav(x, backend="reference", **kw)
        _, got = C.octav(x, **kw)
        assert got.warm_start_iterations > 0
        np.testing.assert_allclose(got.fixed_point, ref.fixed_point, rtol=1e-11)


def test_binned_serial_equals_parallel():
    x = np.random.default_rng(8).standard_t(3, (2, 200_000)).astype(np.float32)
    a = C.octav(x, dtype="int4", axis=0, backend="jit")[1]
    b = C.octav(x, dtype="int4", axis=0, backend="jit-serial")[1]
    for field in ("clip", "fixed_point", "empirical_mse", "modelled_mse", "max_mse"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.iterations, a.warm_start_iterations) == (b.iterations, b.warm_start_iterations)


def test_iterates_outside_the_gathered_bins_take_a_full_pass(monkeypatch):
    # With no bins gathered around the warm start every exact update takes the full-pass branch;
    # with one bin, some do.  Both must give the full-pass recursion's fixed point.
    x = np.random.default_rng(9).laplace(size=N).astype(np.float32)
    kw = dict(dtype="int3", refine=False, tol=1e-13, max_iter=300)
    _, ref = C.octav(x, backend="reference", **kw)
    for window in (-1, 0):
        monkeypatch.setattr(octav_bins, "WINDOW", window)
        _, got = C.octav(x, **kw)
        np.testing.assert_allclose(got.fixed_point, ref.fixed_point, rtol=1e-11)


def test_binned_degenerate_groups():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, N)).astype(np.float32)
    x[0] = 0.0
    x[1] = np.where(rng.random(N) < 0.5, 2.5, -2.5)
    x[2, :4] = [4000.0, -4000.0, 4000.0, -4000.0]
    x[3, : N // 2] = 0.0
    clip, got = C.octav(x, dtype="int4", axis=0)
    _, ref = C.octav(x, dtype="int4", axis=0, backend="reference")
    assert got.status.tolist() == ref.status.tolist()
    assert got.status.tolist()[:2] == ["all_zero", "constant"]
    assert clip[0] == 0.0 and clip[1] == 2.5
    np.testing.assert_allclose(clip[2:], ref.clip[2:], rtol=1e-4)


def test_histogram_statistics_are_exact():
    x = np.random.default_rng(11).standard_normal((2, 70_000)).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 1e-45, -3e38, 7e-39]  # zeros, the smallest subnormal, near-max, subnormal
    x[1, 10] = 0.0
    for data in (x, x.astype(np.float64)):
        bins = octav_bins.BinnedGroups(data, "jit")
        a = np.abs(data.astype(np.float64))
        for g in range(2):
            want, _ = np.histogram(a[g], bins=bins.edges)
            np.testing.assert_array_equal(bins.count[g], want)
            nz = a[g][a[g] > 0]
            assert bins.nonzero[g] == nz.size and bins.s_max[g] == a[g].max() and bins.nz_min[g] == nz.min()


# ---- MSE kernels ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    n=st.sampled_from([1, 7, 31, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]),
    f64=st.booleans(),
    bits=st.integers(2, 16),
    signed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_mse_kernels_equal_their_reference(n, f64, bits, signed, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((2, n)) * 3).astype(np.float64 if f64 else np.float32)
    x[:, ::5] = np.round(x[:, ::5])  # values on the grid and at ties
    grid = grid_for(f"{'' if signed else 'u'}int{bits}")
    clips = np.abs(rng.standard_normal((2, 3))) * 4 + 0.01
    clips[0, 0] = 2.0**-3 * grid.qmax  # scale a power of two: exact ties
    counts = np.array([n, n])
    with_zero = clips.copy()
    with_zero[1, 2] = 0.0  # a zero clip quantizes everything to 0
    ref = {
        "exact": empirical_mse(x, with_zero, grid, counts, "reference"),
        "search": empirical_mse(x, clips, grid, counts, "reference", exact=False),
        "model": modelled_mse(x, with_zero, 1 / 12 / grid.qmax**2, counts, "reference"),
    }
    for backend in JIT_BACKENDS:
        got = {
            "exact": empirical_mse(x, with_zero, grid, counts, backend),
            "search": empirical_mse(x, clips, grid, counts, backend, exact=False),
            "model": modelled_mse(x, with_zero, 1 / 12 / grid.qmax**2, counts, backend),
        }
        for key in ref:
            np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{key} {backend}")
    assert ref["exact"][1, 2] == pytest.approx(np.mean(x[1].astype(np.float64) ** 2), rel=1e-13)
    # the search arithmetic ranks candidates: it is the exact value to float32 rounding of terms
    np.testing.assert_allclose(ref["search"], empirical_mse(x, clips, grid, counts, "reference"), rtol=2e-5)


def test_empirical_mse_is_the_quantize_dequantize_round_trip():
    # the exact MSE is the mean squared difference of intsim.quant's own round trip (float64)
    x = np.random.default_rng(12).standard_normal(10_000).astype(np.float32)
    x[:100] = np.arange(100) / 14.0  # exact ties at scale 1/7
    x64 = x.astype(np.float64)
    grid = grid_for("int4")
    for clip in (0.5, 1.0, 2.0, 3.7):
        scale = clip / grid.qmax
        q = Q.quantize(x64, scale, dtype="int4", narrow_range=True)  # the rounding decisions
        want = np.mean((x64 - q.astype(np.float64) * scale) ** 2)
        got = empirical_mse(x.reshape(1, -1), np.array([clip]), grid, np.array([x.size]))[0]
        assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_arithmetic_rejects_non_positive_clips(backend):
    x = np.ones((1, 10), np.float32)
    with pytest.raises(ValueError, match="positive"):
        empirical_mse(x, np.array([[1.0, 0.0]]), grid_for("int8"), np.array([10]), backend, exact=False)
