"""XNNPACK's own int8 arithmetic, where LiteRT's default interpreter hands an operator to its
XNNPACK delegate and XNNPACK computes otherwise than LiteRT's kernels (profile ``xnnpack``,
``Profile.kernels="xnnpack"``).  Each rule says when the delegate takes the operator;
the others stay with LiteRT's kernels.  Checked against ai-edge-litert 2.3's default
``Interpreter()`` in ``tests/test_litert_default.py``.

* ADD / SUB (int8): ``xnnpack_add`` below.
* QUANTIZE int8 -> int8: XNNPACK's qs8-vcvt (``src/qs8-vcvt``): a Q8 multiplier
  ``lrintf(float32(s_in / s_out) * 256)`` and ``((zp_out << 8) + 128 + (x - zp_in) * m) >> 8``
  (arithmetic shift: round half up), saturated; the delegate takes it for ratios in
  [2**-8, 2**7] (measured).
* MUL (int8): the ``float32`` rule on the int32 product (``kernels_elementwise.mul``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from intsim._jit import check_backend, kernel


# ---- ADD / SUB ------------------------------------------------------------------------------------
# XNNPACK ``xnn_init_qs8_add_minmax_scalar_params`` (src/microparams-init.c) and the qs8-vadd
# micro-kernels (src/qs8-vadd/): the two input-to-output scale ratios in float32, the larger one's
# binary exponent fixing a shift that gives it 21 significant bits, each ratio scaled by 2**shift
# and rounded to an integer multiplier (lrintf: ties to even); then per element
#     acc = rounding + (x1 - z1) * m1 + (x2 - z2) * m2        (int32, exact)
#     y   = clamp(acc >> shift, lo - z_out, hi - z_out) + z_out
# with ``>>`` arithmetic (floor).  SUB is ADD with the second ratio negated.


def xnnpack_takes_add(s1, s2, s_out) -> bool:
    """Whether LiteRT's XNNPACK delegate takes an int8 ADD/SUB: both input/output scale ratios
    (float32) in [2**-10, 2**8), XNNPACK's range; it leaves others to LiteRT's kernels (measured:
    ai-edge-litert 2.3 keeps such an ADD out of its delegate partition)."""
    f32 = np.float32
    return all(2.0**-10 <= f32(f32(s) / f32(s_out)) < 2.0**8 for s in (s1, s2))


def xnnpack_add_params(s1, z1: int, s2, z2: int, s_out, subtract: bool = False) -> tuple[int, int, int, int]:
    """``(m1, m2, bias, shift)`` of XNNPACK's qs8 add: ``bias`` holds the rounding term and the
    zero points.  Ratios outside XNNPACK's range (``xnnpack_takes_add``) raise ``ValueError``."""
    f32 = np.float32
    if not xnnpack_takes_add(s1, s2, s_out):
        raise ValueError("XNNPACK's int8 ADD takes input/output scale ratios in [2**-10, 2**8)")
    a, b = f32(f32(s1) / f32(s_out)), f32(f32(s2) / f32(s_out))
    if subtract:
        b = -b
    top = max(abs(a), abs(b))
    shift = 20 - ((int(np.asarray(top).view(np.uint32)) >> 23) - 127)
    m1, m2 = (int(np.rint(f32(r * f32(2.0**shift)))) for r in (a, b))  # exact scaling, then ties to even
    return m1, m2, (1 << (shift - 1)) - m1 * int(z1) - m2 * int(z2), shift


@kernel
def _xnnpack_add_kernel(x1, x2, m1, m2, bias, shift, lo, hi, out):
    for i in prange(out.size):
        out[i] = min(max((bias + np.int64(x1[i]) * m1 + np.int64(x2[i]) * m2) >> shift, lo), hi)


def xnnpack_add(x1, x2, params, *, output_zero_point: int, clamp: tuple[int, int], backend: str = "jit"):
    """XNNPACK's int8 ADD/SUB (above) on two same-shape arrays with ``xnnpack_add_params``;
    int64 values in ``clamp``.  ``backend="reference"`` is the rule in numpy int64."""
    check_backend(backend)
    m1, m2, bias, shift = params
    lo, hi = (int(v) - int(output_zero_point) for v in clamp)
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"xnnpack_add takes same-shape inputs, got {x1.shape} and {x2.shape}")
    if backend == "reference":
        acc = bias + x1.astype(np.int64) * m1 + x2.astype(np.int64) * m2
        return np.clip(acc >> shift, lo, hi) + output_zero_point
    out = np.empty(x1.shape, np.int64)
    _xnnpack_add_kernel.build(backend, out.size)(np.ascontiguousarray(x1).reshape(-1), np.ascontiguousarray(x2).reshape(-1),
                                                 m1, m2, bias, shift, lo, hi, out.reshape(-1))  # fmt: skip
    return out + output_zero_point



# ---- QUANTIZE int8 -> int8 ------------------------------------------------------------------------


def xnnpack_takes_requantize(s_in, s_out) -> bool:
    """Whether the delegate takes an int8 -> int8 QUANTIZE: ratio ``s_in / s_out`` (float32) in
    [2**-8, 2**7] (measured on ai-edge-litert 2.3; XNNPACK's qs8-vcvt range)."""
    return 2.0**-8 <= np.float32(np.float32(s_in) / np.float32(s_out)) <= 2.0**7


def xnnpack_requantize(x, s_in, zp_in: int, s_out, zp_out: int) -> np.ndarray:
    """XNNPACK's int8 -> int8 QUANTIZE (module docstring), as int64 values in [-128, 127]; one
    numpy implementation for every backend (a few integer operations per element)."""
    if not xnnpack_takes_requantize(s_in, s_out):
        raise ValueError("XNNPACK's int8 QUANTIZE takes scale ratios in [2**-8, 2**7]")
    m = int(np.rint(np.float32(np.float32(np.float32(s_in) / np.float32(s_out)) * np.float32(256))))
    acc = (int(zp_out) << 8) + 128 + (np.asarray(x, np.int64) - int(zp_in)) * m
    return np.clip(acc >> 8, -128, 127)
