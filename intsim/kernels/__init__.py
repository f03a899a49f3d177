"""Integer kernels (numba), each with its Python-int reference (``backend="reference"``).

==============  ===================================================================================
``gemm``        int8/uint8/int4 GEMM into int32 (``accumulate_matmul``, ``PackedWeights``,
                ``PreparedGemm``) with the accumulator model and overflow report
``vnni``        the AVX512-VNNI micro-kernel (``vpdpbusd``) where the CPU has it
``conv``        2-D convolution by im2col + GEMM and a depthwise kernel (``accumulate_conv2d``,
                ``PreparedConv``)
``accumulator`` the accumulator model (width, wrap or saturate) and ``OverflowReport``
``pairs``       x86 ``vpmaddubsw`` int16 pair saturation (onnxruntime on AVX2)
``geometry``    output sizes, padding rules and pooling windows every frontend uses
``pool``        average pooling (TFLite rounding)
``layout``      NCHW <-> NHWC
==============  ===================================================================================
"""

from intsim.kernels.accumulator import INT32, INT64, Accumulator, OverflowReport
from intsim.kernels.gemm import PackedWeights, accumulate_matmul, pack_weights

__all__ = [
    "INT32", "INT64", "Accumulator", "OverflowReport", "PackedWeights", "accumulate_matmul",
    "pack_weights",
]  # fmt: skip
