"""Quantized ADD / SUB as the TFLite reference kernels compute them, in one pass (XNNPACK's, for
LiteRT's default interpreter, is in ``intsim.tflite.xnnpack``).

``reference_integer_ops::Add`` / ``reference_ops::Sub`` general path (LiteRT
``tflite/kernels/internal/reference/integer_ops/add.h``, ``reference/sub.h``), per element:

    a   = MBQM((x1 - z1) << left_shift, m1)          (the shift in int32, wrapping)
    b   = MBQM((x2 - z2) << left_shift, m2)
    raw = a + b   (or a - b; int32, wrapping)
    y   = clamp(MBQM(raw, m_out) + z_out, lo, hi)

with ``MBQM`` = ``MultiplyByQuantizedMultiplier`` under the profile's rounding (``"double"`` or
``"single"``, ``intsim.fixedpoint``).  ``quantized_add(..., backend="reference")`` is that rule
on numpy int64 arrays through ``fixedpoint.multiply_by_quantized_multiplier``'s reference;
the jit builds fuse the three multiplies into one loop over the elements.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim import fixedpoint as fxp
from intsim._jit import check_backend, helper, kernel
from intsim.fixedpoint import mbqm_double_scalar, mbqm_single_scalar, wrap32, wrap_int32


@helper
def quantized_add_scalar(x1, x2, z1, z2, left_shift, q1, e1, q2, e2, qo, eo, zo, lo, hi, subtract, single):
    """One element of the rule above (int64-held values; ``q*``/``e*``: quantized multiplier and
    shift of input 1, input 2 and the output).  Shared by the kernel below and the TFLite
    whole-model program (``intsim.tflite.program``)."""
    s1 = wrap_int32((x1 - z1) << left_shift)
    s2 = wrap_int32((x2 - z2) << left_shift)
    if single:
        a = mbqm_single_scalar(s1, q1, e1)
        b = mbqm_single_scalar(s2, q2, e2)
    else:
        a = mbqm_double_scalar(s1, q1, e1)
        b = mbqm_double_scalar(s2, q2, e2)
    raw = wrap_int32(a - b if subtract else a + b)
    y = (mbqm_single_scalar(raw, qo, eo) if single else mbqm_double_scalar(raw, qo, eo)) + zo
    return min(max(y, lo), hi)


@kernel
def _add_kernel(x1, x2, z1, z2, left_shift, mult, shift, zo, lo, hi, subtract, single, out):
    """``mult``/``shift``: (input 1, input 2, output) quantized multipliers."""
    for i in prange(out.size):
        out[i] = quantized_add_scalar(np.int64(x1[i]), np.int64(x2[i]), z1, z2, left_shift, mult[0], shift[0],
                                      mult[1], shift[1], mult[2], shift[2], zo, lo, hi, subtract, single)  # fmt: skip


def quantized_add(x1, x2, *, zero_points, left_shift: int, multipliers, shifts, output_zero_point: int,
                  clamp: tuple[int, int], subtract: bool = False, rounding: str = "double",
                  backend: str = "jit") -> np.ndarray:  # fmt: skip
    """TFLite ADD/SUB (module docstring) on two same-shape integer arrays; returns int64 values
    in ``clamp``.  ``multipliers``/``shifts``: the three ``quantize_multiplier`` results for
    input 1, input 2 and the output."""
    check_backend(backend)
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"quantized_add takes same-shape inputs, got {x1.shape} and {x2.shape}")
    z1, z2 = (int(z) for z in zero_points)
    lo, hi = (int(v) for v in clamp)
    mult, shift = np.asarray(multipliers, np.int64), np.asarray(shifts, np.int64)
    if mult.shape != (3,) or shift.shape != (3,):
        raise ValueError("quantized_add takes three multipliers and three shifts (input 1, input 2, output)")
    fxp.check_quantized_multiplier(mult, shift, rounding)
    if backend == "reference":

        def mbqm(v, k):
            flat = np.asarray(v, np.int64).reshape(-1)
            out = fxp.multiply_by_quantized_multiplier(flat, mult[k], shift[k], rounding=rounding, backend="reference")
            return out.astype(np.int64).reshape(np.shape(v))

        a = mbqm(wrap32((x1.astype(np.int64) - z1) << left_shift), 0)
        b = mbqm(wrap32((x2.astype(np.int64) - z2) << left_shift), 1)
        raw = wrap32(a - b if subtract else a + b)
        return np.clip(mbqm(raw, 2) + output_zero_point, lo, hi)
    out = np.empty(x1.shape, np.int64)
    _add_kernel.build(backend, out.size)(np.ascontiguousarray(x1).reshape(-1), np.ascontiguousarray(x2).reshape(-1), z1, z2,
                               int(left_shift), mult, shift, int(output_zero_point), lo, hi, bool(subtract),
                               rounding == "single", out.reshape(-1))  # fmt: skip
    return out
