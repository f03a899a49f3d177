"""EXP, LOG, ELU, GELU on int8: a 256-entry table per operator, built in float32 as each
runtime builds it (``LUTPopulateInt8``, ``internal/common.h``; TFLite Micro's ``elu.cc`` has its
own copy), then one lookup per element.

Which runtime has which: EXP, LOG and GELU are LiteRT's only (TFLite Micro's EXP and LOG take
float32, it has no GELU); ELU is TFLite Micro's and LiteRT's optimized builtin kernel's (the
reference resolver, ``BUILTIN_REF``, does not register it), and LiteRT's default interpreter
hands int8 ELU to XNNPACK, whose table rounds half to even (``xnnpack.xnnpack_elu_table``).
The float math is numpy's float32 (``exp``, ``log``, ``expm1``, ``tanh``) and ``erfc`` in
double rounded to float32: it matches the runtimes' libm on every case tested, but a
different last bit of a transcendental function could move one entry that sits on a
rounding tie.
"""

from __future__ import annotations

import math

import numpy as np

from intsim.tflite import xnnpack
from intsim.tflite.context import kernel, qparams
from intsim.tflite.kernels_activation import lut_int8
from intsim.tflite.model import ModelError

f32 = np.float32
_SQRT1_2 = f32(-math.sqrt(0.5))  # static_cast<float>(-M_SQRT1_2)
_SQRT_2_PI = f32(2 / math.sqrt(math.pi) * math.sqrt(0.5))  # kSqrt2dPi = M_2_SQRTPI * M_SQRT1_2


def _erfc32(v):
    return np.array([math.erfc(float(t)) for t in np.ravel(v)], np.float64).astype(f32).reshape(np.shape(v))


def _gelu(v):  # GeluTransform: 0.5f * in * erfc(in * -M_SQRT1_2)
    v = np.asarray(v, f32)
    return f32(0.5) * v * _erfc32(v * _SQRT1_2)


def _gelu_approximate(v):  # GeluTransformApproximate
    v = np.asarray(v, f32)
    inner = v + f32(0.044715) * v * v * v
    return f32(0.5) * v * (f32(1) + np.tanh(_SQRT_2_PI * inner))


def _log_table_fn(output_min):
    def fn(v):
        v = np.asarray(v, f32)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v <= 0, f32(output_min), np.log(np.where(v > 0, v, f32(1))))

    return fn


def _table(ctx, op):
    """The operator's 256-entry table (indexed by ``x + 128``), once per model and profile."""
    it, ot = ctx.in_tensor(op, 0), ctx.out_tensor(op)
    if it.dtype != np.int8 or ot.dtype != np.int8:
        raise ModelError(f"{op.describe()}: {op.op} is modelled for int8 (got {it.dtype} -> {ot.dtype})")
    (si, zi), (so, zo) = qparams(it, op), qparams(ot, op)
    kernels = ctx.profile.kernels
    if op.op in ("EXP", "LOG", "GELU"):
        ctx.refuse(op, tflm=f"int8 {op.op} (TFLite Micro's takes float32 only)" if op.op != "GELU"
                   else "GELU (TFLite Micro has no GELU kernel)")  # fmt: skip
    if op.op == "EXP":
        return lut_int8(si, zi, so, zo, lambda v: np.exp(np.asarray(v, f32)))
    if op.op == "LOG":
        return lut_int8(si, zi, so, zo, _log_table_fn(f32(f32(-128 - zo) * so)))
    if op.op == "GELU":
        return lut_int8(si, zi, so, zo, _gelu_approximate if op.options.get("approximate", False) else _gelu)
    # ELU
    if kernels == "reference":
        ctx.refuse(op, litert="ELU (BUILTIN_REF registers no ELU kernel; LiteRT's optimized resolver has one)")
    if kernels == "xnnpack":
        return xnnpack.xnnpack_elu_table(si, zi, so, zo)
    if kernels == "tflm":  # elu.cc: exp(v) - 1, its own table (a plain x86 conversion)
        return lut_int8(si, zi, so, zo, lambda v: np.where(np.asarray(v, f32) < 0, np.exp(np.asarray(v, f32)) - f32(1),
                                                            np.asarray(v, f32)), x86_cast=True)  # fmt: skip
    return lut_int8(si, zi, so, zo, lambda v: np.where(np.asarray(v, f32) < 0, np.expm1(np.asarray(v, f32)),
                                                        np.asarray(v, f32)))  # fmt: skip


@kernel("EXP", "LOG", "ELU", "GELU")
def lut_op(ctx, op):
    table = ctx.once(("lut", op.index), lambda: _table(ctx, op))
    return [table[ctx.input(op, 0).astype(np.int64) + 128].astype(np.int8)]
