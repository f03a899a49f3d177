"""Fixed-point arithmetic, each rule once: the gemmlowp primitives, TFLite's QuantizeMultiplier,
and the requantization rules of every target (TFLite, TFLite Micro, CMSIS-NN, onnxruntime,
XNNPACK, the ONNX reference), with a registry for your own hardware's.

==================  ==========================================================================
``primitives``      wrap32, SRDHM, RDBPOT: numpy forms (references) and numba scalars
``gemmlowp``        gemmlowp's exp, logistic, tanh, reciprocal and int16 helpers (numpy)
``multiplier``      ``quantize_multiplier`` and the checks of requantization parameters
``rules``           ``Rule`` / ``IntegerRule``, the six named rules, ``register``, ``get_rule``
``arrays``          the rules over numpy arrays, per tensor or per channel, on every backend
==================  ==========================================================================

Every array function takes a ``backend``: ``"jit"``, ``"jit-serial"`` or ``"reference"`` (each
rule's numpy reference, written as the target's C source is).
"""

from __future__ import annotations

from intsim.fixedpoint.arrays import (
    apply, multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_int64, requantize, requantize_float,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
)  # fmt: skip
from intsim.fixedpoint.multiplier import (
    check_layer_multiplier, check_quantized_multiplier, check_requant_params, check_single_rounding_range,
    quantize_multiplier,
)  # fmt: skip
from intsim.fixedpoint.primitives import (
    INT32_MAX, INT32_MIN, rounding_divide_by_pot_reference, rounding_divide_by_pot_scalar, srdhm_reference,
    srdhm_scalar, wrap32, wrap_int32,
)  # fmt: skip
from intsim.fixedpoint.rules import (
    FLOAT_RULES, ROUNDINGS, RULES, FloatRule, IntegerRule, MultiplyByQuantizedMultiplier, Rule, get_rule, jit_scalar,
    mbqm_double_scalar, mbqm_int64_scalar, mbqm_single_scalar, register,
)  # fmt: skip


def mbqm_reference(x: int, multiplier: int, shift: int, rounding: str = "double") -> int:
    """MultiplyByQuantizedMultiplier(int32 x) on ints (``rounding`` "double" or "single"), as a
    Python int."""
    return int(get_rule(rounding).scale_reference(x, multiplier, shift))


def mbqm_int64_reference(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int64 x), the int16x8 rule, as a Python int."""
    return int(get_rule("int64").scale_reference(x, multiplier, shift))


def requantize_float_reference(acc: int, multiplier: float, zero_point: int, qmin: int, qmax: int, rule: str) -> int:
    """A float rule on one accumulator, as a Python int."""
    r = get_rule(rule)
    return int(r.reference(acc, multiplier, 0, zero_point, qmin, qmax))


__all__ = [
    "apply", "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_int64",
    "requantize", "requantize_float", "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul", "check_layer_multiplier", "check_quantized_multiplier",
    "check_requant_params", "check_single_rounding_range", "quantize_multiplier", "INT32_MAX",
    "INT32_MIN", "rounding_divide_by_pot_reference", "rounding_divide_by_pot_scalar",
    "srdhm_reference", "srdhm_scalar", "wrap32", "wrap_int32", "FLOAT_RULES", "ROUNDINGS", "RULES",
    "FloatRule", "IntegerRule", "MultiplyByQuantizedMultiplier", "Rule", "get_rule", "jit_scalar",
    "mbqm_double_scalar", "mbqm_int64_scalar", "mbqm_single_scalar", "register", "mbqm_reference",
    "mbqm_int64_reference", "requantize_float_reference",
]  # fmt: skip
