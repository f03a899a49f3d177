"""A throwaway TFLite flatbuffer reader for kernel tests (the ``tflite`` package: code generated
from the official schema), until ``intsim.tflite`` exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: np.dtype
    data: np.ndarray | None
    scale: np.ndarray
    zero_point: np.ndarray


def read(path) -> tuple[tflite.Model, list[Tensor]]:
    buf = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        dtype = np.dtype(TYPES[t.Type()])
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        shape = tuple(int(d) for d in t.ShapeAsNumpy())
        data = None if isinstance(raw, int) or raw.size == 0 else raw.view(dtype).reshape(shape)
        q = t.Quantization()
        scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0, np.float32)
        zp = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else np.zeros(0, np.int64)
        tensors.append(Tensor(t.Name().decode(), shape, dtype, data, scale, zp))
    return model, tensors


def conv2d_options(model, op_index=0) -> dict:
    op = model.Subgraphs(0).Operators(op_index)
    o = tflite.Conv2DOptions()
    o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    return dict(
        strides=(o.StrideH(), o.StrideW()), dilations=(o.DilationHFactor(), o.DilationWFactor()),
        padding=PADDING[o.Padding()], activation=ACTIVATION[o.FusedActivationFunction()],
        inputs=[int(i) for i in op.InputsAsNumpy()], outputs=[int(i) for i in op.OutputsAsNumpy()],
    )  # fmt: skip


def read_csv(path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=1)
