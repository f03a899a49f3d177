"""Run int8 and int16x8 TFLite models bit-exactly as the TFLite reference kernels do.

    model = intsim.tflite.load("model.tflite")
    outputs = intsim.tflite.run(model, x, profile="tflite-reference")   # LiteRT BUILTIN_REF
    outputs = intsim.tflite.run(model, x, profile="tflm")               # TFLite Micro / CMSIS-NN
    for row in intsim.tflite.diff(model, x): print(row.line())

Any profile runs a model (``intsim.profiles``): ``tflite-reference`` (LiteRT
``OpResolverType.BUILTIN_REF``), ``tflm`` (TFLite Micro reference kernels = CMSIS-NN default),
``tflm-single-rounding``, ``xnnpack``, or your own.

=======================  ==========================================================================
``model``, ``verify``    the flatbuffer parser and LiteRT's FlatBuffers verifier
``context``              the operator registry, run context and TFLite's small rules (activation
                         ranges, padding, MultiplyByQuantizedMultiplier per operator class)
``kernels_nn``           CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, pools, MEAN,
                         SUM
``kernels_elementwise``  ADD, SUB, MUL, the ReLUs, LEAKY_RELU, HARD_SWISH, QUANTIZE, DEQUANTIZE
``kernels_arithmetic``   DIV, SQUARED_DIFFERENCE, RSQRT, PRELU, BATCH_MATMUL
``kernels_activation``   SOFTMAX, LOGISTIC, TANH (``int16_activations``: their int16 forms)
``kernels_lut``          EXP, LOG, ELU, GELU (int8 tables)
``kernels_compare``      the comparisons, SELECT_V2, LOGICAL_*
``kernels_shape``        RESHAPE, TRANSPOSE, PAD, CONCATENATION, STRIDED_SLICE, ...
``kernels_movement``     SPLIT, PACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_BATCH_ND, TILE, ...
``kernels_resize``       RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR
``kernels_tensor``       SHAPE, FILL, ZEROS_LIKE, CAST, ARG_MAX/MIN, REDUCE_MAX/MIN
``kernels_recurrent``    SVDF (state in variable tensors, ``Model.state``)
``lstm``                 UNIDIRECTIONAL_SEQUENCE_LSTM
``add``, ``softmax``     TFLite's ADD/SUB and int8 SOFTMAX kernels, each beside its reference
``program``              small models compiled into one numba call
``interpreter``          ``load``, ``run``
``report``               why targets differ: ``diff`` (two profiles, one input) and ``divergence``
                         (per layer and pair of profiles over input samples, with the rule that
                         explains each difference)
``builder``              writes single-op models and example networks
=======================  ==========================================================================
"""

from intsim.frontend import lazy_exports

# names load their module on first use, so that ``intsim.tflite.conventions`` imports alone
_EXPORTS = {
    **dict.fromkeys(("TFLITE_PROFILES", "execute", "load", "run", "supported_ops"), "interpreter"),
    **dict.fromkeys(("Model", "ModelError", "Operator", "Tensor", "parse"), "model"),
    **dict.fromkeys(("Divergence", "LayerDiff", "diff", "divergence"), "report"),
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
