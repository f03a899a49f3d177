"""Run int8 and int16x8 TFLite models bit-exactly as the TFLite reference kernels do.

    model = intsim.tflite.load("model.tflite")
    outputs = intsim.tflite.run(model, x, profile="tflite-reference")   # LiteRT BUILTIN_REF
    outputs = intsim.tflite.run(model, x, profile="tflm")               # TFLite Micro / CMSIS-NN
    for row in intsim.tflite.diff(model, x): print(row.line())

Profiles: ``tflite-reference`` (LiteRT ``OpResolverType.BUILTIN_REF``), ``tflm`` (TFLite Micro
reference kernels = CMSIS-NN default), ``tflm-single-rounding``.  ``intsim.tflite.builder``
writes single-op models for tests and experiments.
"""

from intsim.tflite.interpreter import TFLITE_PROFILES, LayerDiff, diff, execute, load, run, supported_ops
from intsim.tflite.model import Model, ModelError, Operator, Tensor, parse

__all__ = [
    "TFLITE_PROFILES", "LayerDiff", "Model", "ModelError", "Operator", "Tensor", "diff", "execute",
    "load", "parse", "run", "supported_ops",
]  # fmt: skip
