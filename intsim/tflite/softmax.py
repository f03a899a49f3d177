"""int8 SOFTMAX of the TFLite reference kernels (``reference_ops::Softmax<int8_t, int8_t>``, LiteRT
``tflite/kernels/internal/reference/softmax.h``; TFLite Micro computes the same): two jitted
passes and, beside them, their numpy reference (``softmax_int8(..., backend="reference")``).

Per row of ``n`` values: ``diff = x - max(row)``; the entries with ``diff >= diff_min`` take
``exp = table[-diff]`` (gemmlowp ``exp_on_negative_values`` of the rescaled difference, Q0.31,
precomputed for the 256 possible differences); ``sum = wrap32(sum of RoundingDivideByPOT(exp,
12))`` (Q12.19); ``GetReciprocal(sum, 12)`` gives ``(scale, bits)``; the output is
``RoundingDivideByPOT(SRDHM(scale, exp), bits + 23) - 128`` clamped to int8, and -128 where
``diff < diff_min``.  The reciprocal is computed between the two passes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import prange

from intsim import fixedpoint as fxp
from intsim._jit import kernel
from intsim.fixedpoint import gemmlowp as g
from intsim.fixedpoint import rounding_divide_by_pot_scalar, srdhm_scalar, wrap_int32
from intsim.tflite.model import ModelError

f32, f64 = np.float32, np.float64


@kernel
def softmax_sums(x, table, diff_min, tops, sums):
    """``tops[r]``, ``sums[r]``: the maximum and the Q12.19 sum of exponentials of row ``r`` of
    ``x`` (rows, n)."""
    for r in prange(x.shape[0]):
        row = x[r]
        top = np.int64(row[0])
        for i in range(row.size):
            top = max(top, np.int64(row[i]))
        tops[r] = top
        total = np.int64(0)
        for i in range(row.size):
            diff = np.int64(row[i]) - top
            if diff >= diff_min:
                total += rounding_divide_by_pot_scalar(table[-diff], 12)
        sums[r] = wrap_int32(total)


@kernel
def softmax_outputs(x, table, diff_min, tops, scale, bits, out_bits, out):
    """``out`` (rows, n) int8 or int16 (``out_bits``) from the rows' maxima and reciprocals
    ``scale``/``bits`` (``GetReciprocal``)."""
    lo = -(1 << (out_bits - 1))
    hi = -lo - 1
    for r in prange(x.shape[0]):
        row, dst, top = x[r], out[r], tops[r]
        exponent = bits[r] + 31 - out_bits
        for i in range(row.size):
            diff = np.int64(row[i]) - top
            if diff >= diff_min:
                v = rounding_divide_by_pot_scalar(srdhm_scalar(scale[r], table[-diff]), exponent) + lo
                dst[i] = min(max(v, lo), hi)
            else:
                dst[i] = lo


def input_radius(integer_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """``CalculateInputRadius``: floor((2**ib - 1) * 2**(tb - ib) / 2**left_shift)."""
    return math.floor(((1 << integer_bits) - 1) * float(1 << (total_bits - integer_bits)) / float(1 << left_shift))


@functools.lru_cache(maxsize=256)
def softmax_int8_params(beta: float, input_scale, single_rounding: bool):
    """``PreprocessSoftmaxScaling(beta, s_in, 5)`` and ``diff_min``: (multiplier, shift, diff_min)."""
    max_real = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(f64(f32(beta)) * f64(f32(input_scale)) * float(1 << 26), max_real)
    q, shift = fxp.quantize_multiplier(real, single_rounding=single_rounding)
    if shift < 0:
        raise ModelError(f"softmax input multiplier {real} < 1 (beta * input_scale too small)")
    return q, shift, -input_radius(5, shift)


def softmax_int8(x, beta, input_scale, rounding: str = "double", backend: str = "jit", out_dtype=np.int8) -> np.ndarray:
    """``reference_ops::Softmax<int8_t, int8_t>`` (``<int8_t, int16_t>`` for an int16
    ``out_dtype``: the last shift ``bits + 31 - 16``, the offset -32768) over the last axis: the
    numpy code below is the reference (``backend="reference"``) of the two jitted passes above."""
    out_bits = np.dtype(out_dtype).itemsize * 8
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    q, shift, diff_min = softmax_int8_params(beta, input_scale, rounding == "single")
    table = _softmax_exp_table(q, shift, rounding)
    if backend != "reference":
        rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
        tops, sums = np.empty(rows.shape[0], np.int64), np.empty(rows.shape[0], np.int64)
        softmax_sums.build(backend, rows.size)(rows, table, diff_min, tops, sums)
        scale, bits = _reciprocals(sums)
        out = np.empty(rows.shape, out_dtype)
        softmax_outputs.build(backend, rows.size)(rows, table, diff_min, tops, scale, bits, out_bits, out)
        return out.reshape(x.shape)
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    keep = diff >= diff_min
    exps = table[-diff]  # diff = x - max lies in [-255, 0]
    sum_of_exps = g.wrap32(np.where(keep, g.rescale(exps, 0, 12), 0).sum(axis=-1, keepdims=True))
    shifted_scale, bits_over_unit = (v.reshape(sum_of_exps.shape) for v in _reciprocals(sum_of_exps.reshape(-1)))
    exponent = bits_over_unit + 31 - out_bits
    out = g.rdbpot(g.srdhm(shifted_scale, exps), exponent) + lo
    return np.where(keep, np.clip(out, lo, hi), lo).astype(out_dtype)


def _reciprocals(sums) -> tuple[np.ndarray, np.ndarray]:
    """``GetReciprocal(sum, 12)`` of each row's sum: (shifted_scale, num_bits_over_unit)."""
    if sums.size <= 64:  # a few rows (a classifier's output): one cached scalar each
        pairs = [_reciprocal(int(v)) for v in sums]
        return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)
    return g.get_reciprocal(sums, 12)


@functools.lru_cache(maxsize=4096)
def _reciprocal(sum_of_exps: int) -> tuple[int, int]:
    """``GetReciprocal(sum_of_exps, 12)`` of one row: (shifted_scale, num_bits_over_unit)."""
    scale, bits = g.get_reciprocal(np.array([sum_of_exps], np.int64), 12)
    return int(scale[0]), int(bits[0])


@functools.lru_cache(maxsize=64)
def _softmax_exp_table(q: int, shift: int, rounding: str) -> np.ndarray:
    """The per-element part of int8 Softmax, which depends only on ``d = x - max``:
    ``exp_on_negative_values(rescale(d))`` for ``d = 0, -1, ..., -255`` (entry ``-d``)."""
    diff = -np.arange(256, dtype=np.int64)
    if rounding == "single":  # MultiplyByQuantizedMultiplierGreaterThanOne = MBQM in these builds
        rescaled = fxp.multiply_by_quantized_multiplier(diff, q, shift, rounding="single").astype(np.int64)
    else:
        rescaled = g.srdhm(g.wrap32(diff << shift), q)
    table = g.exp_on_negative_values(rescaled, 5)
    table.flags.writeable = False
    return table
