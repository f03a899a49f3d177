"""Post-training quantization with intsim's calibrators: float models in, quantized models out.

``quantize(model, calibration_data, method="octav", weights="int8", activations="uint8")``
returns a QDQ ONNX model (``onnx_model``); the observers stream the calibration data
(``observers``, ``data``).
"""

from intsim.ptq.onnx_model import quantize

__all__ = ["quantize"]
