"""ONNX frontend: run quantized ONNX models bit-exact to onnxruntime or the ONNX reference.

``load(path_or_model)`` parses and checks a model; ``run(model, inputs, profile=...)`` runs
it (``return_intermediates=True`` gives every tensor by name); ``compare`` reports per-layer
error against the float model; ``Backend`` is an ``onnx.backend.base.Backend`` for ONNX's
conformance tests.

================  ===================================================================================
``graph``         the ModelProto reader and its checks
``registry``      the operator registry and run context (on ``intsim.frontend``)
``ops_quant``     QuantizeLinear, DequantizeLinear, the integer ops and onnxruntime's com.microsoft ops
``ops_float``     the float ops of QDQ graphs
``fuse``          onnxruntime's QDQ fusions (DequantizeLinear -> op -> QuantizeLinear groups)
``mlas``          onnxruntime MLAS's own float rules (QLinearAdd/Mul, pooling)
``interpreter``   ``load``, ``run``
``compare``       per-layer error against the float model
``backend``       the ``onnx.backend`` interface
``examples``      small float models and their quantization by onnxruntime
================  ===================================================================================
"""

from intsim.frontend import lazy_exports

# names load their module (and the onnx package) on first use, so that
# ``intsim.onnx.conventions`` imports without onnx installed
_EXPORTS = {
    "Backend": "backend", "Graph": "graph", "ModelError": "graph",
    **dict.fromkeys(("QDQ_MODES", "Result", "load", "run"), "interpreter"),
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
