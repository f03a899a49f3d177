"""ONNX's conventions for the layers ``intsim.ops`` and the ONNX frontend share: NCHW layout
around the NHWC layers, ``auto_pad`` and ``pads``, the 2-D Conv attribute checks, zero points
typed like their tensors, and the output type carried by ``y_zero_point``.  Imports nothing of
onnx (``intsim.onnx`` loads its modules on first use)."""

from __future__ import annotations

import numpy as np

from intsim.kernels.gemm import PackedWeights
from intsim.kernels.layout import nchw_to_nhwc, nhwc_to_nchw


def output_dtype(y_zero_point) -> np.dtype:
    """The output type, which ONNX's QLinear ops take from ``y_zero_point``: a numpy uint8 or
    int8 value (a Python int carries no type)."""
    if not isinstance(y_zero_point, np.ndarray | np.generic):
        raise ValueError(f"y_zero_point must be a numpy uint8 or int8 value (its type is the output type), "
                         f"got {y_zero_point!r} of type {type(y_zero_point).__name__}")  # fmt: skip
    dtype = np.asarray(y_zero_point).dtype
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise ValueError(f"y_zero_point must be uint8 or int8 (its type is the output type), got {dtype}")
    return dtype


def check_zero_point_dtype(name, zp, data) -> None:
    dtype = data.dtype if isinstance(data, PackedWeights) else np.asarray(data).dtype
    if zp is not None and np.asarray(zp).dtype != dtype:
        raise ValueError(f"{name} has dtype {np.asarray(zp).dtype} but its tensor has {dtype}")


def padding(auto_pad, pads):
    """``auto_pad`` and ``pads`` as the conv kernels take padding: explicit pads or a mode."""
    mode = (auto_pad or "NOTSET").upper()
    if mode == "NOTSET":
        return (0, 0, 0, 0) if pads is None else tuple(pads)
    if pads is not None and any(pads):
        raise ValueError(f"pads must not be set together with auto_pad={auto_pad}")
    return {"VALID": "VALID", "SAME_UPPER": "SAME_UPPER", "SAME_LOWER": "SAME_LOWER"}[mode]


def check_conv(x_shape, w, kernel_shape, auto_pad) -> np.ndarray:
    """The checks ONNX's 2-D Conv attributes need beyond ``accumulate_conv2d``'s; returns ``w``."""
    w = np.asarray(w)
    if len(x_shape) != 4 or w.ndim != 4:
        raise ValueError(f"only 2-D convolution (4-D NCHW input, OIHW weights); got {tuple(x_shape)} and {w.shape}")
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        raise ValueError(f"kernel_shape {tuple(kernel_shape)} disagrees with the weights {w.shape[2:]}")
    if auto_pad not in (None, "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got {auto_pad!r}")
    return w


def nchw_report(report):
    if report.mask is not None:
        report.mask = np.transpose(report.mask, (0, 3, 1, 2))
    return report


class NCHWLayer:
    """A ``PreparedLayer`` (NHWC) taking and returning NCHW arrays, as ONNX lays them out."""

    def __init__(self, layer, backend: str):
        self.layer, self.backend = layer, backend

    def __call__(self, x) -> np.ndarray:
        return nhwc_to_nchw(self.layer(nchw_to_nhwc(x, backend=self.backend)), backend=self.backend)

    def run(self, x, return_report: bool = False):
        if not return_report:
            return self(x)
        y, report = self.layer.run(nchw_to_nhwc(x, backend=self.backend), True)
        return nhwc_to_nchw(y, backend=self.backend), nchw_report(report)
