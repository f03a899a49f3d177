"""ONNX frontend: run quantized ONNX models bit-exact to onnxruntime or the ONNX reference.

``load(path_or_model)`` parses and checks a model; ``run(model, inputs, profile=...)`` runs
it (``return_intermediates=True`` gives every tensor by name); ``compare`` reports per-layer
error against the float model; ``Backend`` is an ``onnx.backend.base.Backend`` for ONNX's
conformance tests.
"""

from intsim.onnx.backend import Backend
from intsim.onnx.graph import Graph, ModelError
from intsim.onnx.interpreter import QDQ_MODES, Result, load, run

__all__ = ["QDQ_MODES", "Backend", "Graph", "ModelError", "Result", "load", "run"]
