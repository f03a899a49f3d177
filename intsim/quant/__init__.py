"""Quantization: affine (ONNX semantics), parameters from ranges, MX/NVFP4 blocks, VS-Quant."""

from intsim.quant.affine import dequantize, quantize
from intsim.quant.mx import (
    MX_FORMATS,
    SCALE_ROUNDINGS,
    mx_dequantize,
    mx_quantize,
    nvfp4_dequantize,
    nvfp4_quantize,
)
from intsim.quant.params import QuantParams
from intsim.quant.vsquant import vsquant_dequantize, vsquant_quantize

__all__ = [
    "MX_FORMATS",
    "SCALE_ROUNDINGS",
    "QuantParams",
    "dequantize",
    "mx_dequantize",
    "mx_quantize",
    "nvfp4_dequantize",
    "nvfp4_quantize",
    "quantize",
    "vsquant_dequantize",
    "vsquant_quantize",
]
