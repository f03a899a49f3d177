"""``intsim.onnx.Backend``: an ``onnx.backend.base.Backend``, so ONNX's conformance cases run
through intsim with ``onnx.backend.test.BackendTest(Backend, __name__)``.

Conformance cases are checked against the ONNX reference's outputs, so the backend runs the
``onnx-reference`` profile and the graph as written (``qdq="float"``)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx.backend.base import Backend as _Backend
from onnx.backend.base import BackendRep as _BackendRep

from intsim.onnx.graph import ModelError
from intsim.onnx.interpreter import load, run


class BackendRep(_BackendRep):
    def __init__(self, graph, profile):
        self.graph = graph
        self.profile = profile

    def run(self, inputs, **kwargs):
        names = [v.name for v in self.graph.inputs]
        if isinstance(inputs, dict):
            feeds = inputs
        else:
            inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            feeds = dict(zip(names, inputs))
        out = run(self.graph, feeds, profile=self.profile, qdq="float")
        return tuple(out[v.name] for v in self.graph.outputs)


class Backend(_Backend):
    profile = "onnx-reference"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> BackendRep:
        graph = load(model)
        return BackendRep(graph, kwargs.get("profile", cls.profile))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs) -> bool:
        try:
            load(model)
        except ModelError:
            return False
        return True
