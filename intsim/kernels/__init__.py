"""Integer kernels (numba) with their Python-int references: matrix multiply and convolution."""

from intsim.kernels.accumulator import INT32, INT64, Accumulator, OverflowReport
from intsim.kernels.gemm import accumulate_matmul

__all__ = ["INT32", "INT64", "Accumulator", "OverflowReport", "accumulate_matmul"]
