"""int8 SOFTMAX of the TFLite reference kernels (``reference_ops::Softmax<int8_t, int8_t>``, LiteRT
``tflite/kernels/internal/reference/softmax.h``; TFLite Micro computes the same), jitted.

Per row of ``n`` values: ``diff = x - max(row)``; the entries with ``diff >= diff_min`` take
``exp = table[-diff]`` (gemmlowp ``exp_on_negative_values`` of the rescaled difference, Q0.31,
precomputed for the 256 possible differences); ``sum = wrap32(sum of RoundingDivideByPOT(exp,
12))`` (Q12.19); ``GetReciprocal(sum, 12)`` gives ``(scale, bits)``; the output is
``RoundingDivideByPOT(SRDHM(scale, exp), bits + 23) - 128`` clamped to int8, and -128 where
``diff < diff_min``.  The reciprocal is computed between the two kernels by the caller
(``tflite.kernels_activation.softmax_int8``, whose numpy code is these kernels' reference).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import kernel
from intsim.fixedpoint import rounding_divide_by_pot_scalar, srdhm_scalar, wrap_int32


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
def softmax_outputs(x, table, diff_min, tops, scale, bits, out):
    """``out`` (rows, n) int8 from the rows' maxima and reciprocals ``scale``/``bits``
    (``GetReciprocal``)."""
    for r in prange(x.shape[0]):
        row, dst, top = x[r], out[r], tops[r]
        exponent = bits[r] + 31 - 8
        for i in range(row.size):
            diff = np.int64(row[i]) - top
            if diff >= diff_min:
                v = rounding_divide_by_pot_scalar(srdhm_scalar(scale[r], table[-diff]), exponent) - 128
                dst[i] = min(max(v, -128), 127)
            else:
                dst[i] = -128
