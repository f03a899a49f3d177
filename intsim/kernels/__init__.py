"""Integer kernels (numba) with their Python-int references: matrix multiply and convolution."""

from intsim.kernels.accumulator import INT32, INT64, Accumulator, OverflowReport
from intsim.kernels.gemm import PackedWeights, accumulate_matmul, pack_weights

__all__ = [
    "INT32", "INT64", "Accumulator", "OverflowReport", "PackedWeights", "accumulate_matmul",
    "pack_weights",
]  # fmt: skip
