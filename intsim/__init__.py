"""intsim: a bit-accurate integer inference simulator.

The layers, each importing only those above it:

1. ``formats``, ``rounding``: number formats and rounding modes;
2. ``quant`` (quantize/dequantize, MX blocks) and ``fixedpoint`` (the requantization rules, one
   object each, in a registry);
3. ``profiles``: each target as a table from operator class to rule, plus its accumulator;
4. ``kernels``: numba GEMM, convolution, pooling and layout kernels, each beside its reference;
5. ``ops``: prepared layers (NHWC, padding resolved, a requantizer passed in) and the op
   functions shaped as ONNX and TFLite define them, each ``prepare(...)(x)``;
6. ``frontend`` (registry, error naming, prepared-layer cache) and the frontends ``tflite`` and
   ``onnx`` on it; ``calibrate`` (OCTAV and its peers); ``ptq`` (float models to quantized ones);
7. ``cli``.  ``_jit`` is the one module that sets numba flags.
"""

__version__ = "0.1.0"


def __getattr__(name):
    """``intsim.quantize``: ``intsim.ptq.quantize``, imported on first use (it needs onnx)."""
    if name == "quantize":
        from intsim.ptq import quantize

        return quantize
    raise AttributeError(f"module 'intsim' has no attribute {name!r}")
