"""Requantization rules: each one object, registered once by name.

A rule maps an integer accumulator ``acc`` and a layer's real multiplier ``M = s_in * s_w /
s_out`` to an output value.  It says:

* ``params(real)``: the two per-channel parameters it derives from ``M`` (float64 array), with
  its checks (``ValueError`` for a multiplier the target leaves undefined);
* ``acc_limit``: it takes accumulators in ``[-acc_limit, acc_limit)``;
* ``check_acc(acc, p1, p2, real, axis)``: checks that depend on the data (none by default);
* ``reference(acc, p1, p2, zp, qmin, qmax)``: numpy over int64 arrays, broadcasting, the rule
  as the target's source writes it;
* ``scalar``: the numba scalar ``(x, p1, p2, zp, qmin, qmax) -> int64`` the kernels inline.

An ``IntegerRule`` is "scale, then ``+ zp`` and clamp": it gives ``scale_reference(x, p1, p2)``
and ``scale_scalar`` (often the same Python function, compiled by ``jit_scalar``).  The rules
here (``RULES``, names as in ``intsim.profiles``):

``"double"``        QuantizeMultiplier + MultiplyByQuantizedMultiplier, double rounding
                    (TFLite, TFLite Micro, CMSIS-NN default):
                    ``RDBPOT(SRDHM(wrap32(x * 2**max(s, 0)), q), max(-s, 0))``
``"single"``        the TFLITE_SINGLE_ROUNDING / CMSIS_NN_USE_SINGLE_ROUNDING build:
                    ``wrap32((x * q + 2**(30 - s)) >> (31 - s))``, shifts above 30 clamped
``"double-up"``     LiteRT's optimized kernels on x86 and ARM (ruy's AVX2/AVX-512 kernels,
                    ``ruy/kernel_avx2_fma.cc``; NEON ``vqrdmulhq_s32`` + ``vrshlq_s32`` in
                    ``cpu_backend_gemm_custom_gemv.h``): the same parameters and SRDHM as
                    ``"double"``, then a rounding right shift whose ties go toward +inf:
                    ``rshift_round_up(SRDHM(wrap32(x * 2**max(s, 0)), q), max(-s, 0))``
``"double-up8"``    LiteRT's optimized ``optimized_ops::Quantize`` (``optimized_ops.h``, the
                    depthwise output stage): ``"double-up"`` in the channels of whole blocks of
                    8 (its NEON loop), ``"double"`` in the last ``C % 8`` channels (its scalar
                    loop); ``"double-up16"`` likewise in blocks of 16 (``integer_ops/mean.h``).
                    The rule depends on the channel's position: a per-tensor layer is given
                    its channel count (``Requantizer(channels=...)``)
``"int64"``         the int16x8 kernels' int64 MultiplyByQuantizedMultiplier: ``q`` reduced to
                    16 bits, ``(x * reduced + 2**(14 - s)) >> (15 - s)``, ``|x| < 2**47``
``"float32"``       onnxruntime MLAS ``MlasRequantizeOutput`` and XNNPACK:
                    ``v = float32(acc) * float32(M)`` clamped to ``[qmin - zp, qmax - zp]``,
                    rounded half to even, ``+ zp``
``"float64-onnx"``  the ONNX reference QLinearMatMul/QLinearConv:
                    ``rint(float64(acc) * float64(float32(M)) + zp)``, clipped (the zero point
                    is added before rounding, so ties go to even *after* the offset)
``"float64-away"``  LiteRT BUILTIN_REF FullyConnected (LiteRT commit 9213607, 2025,
                    ``tflite/kernels/internal/reference/integer_ops/fully_connected.h``):
                    ``static_cast<int32_t>(round(double(acc) * M)) + zp``, clamped.  A product
                    outside int32 converts as x86-64's ``cvttsd2si`` does, to ``INT32_MIN``
                    (C++ leaves it undefined; ai-edge-litert's x86-64 wheels compute this),
                    and ``+ zp`` wraps in int32 before the clamp

Integer overflow the C sources leave undefined is modelled as two's-complement wrapping.

Adding a rule is one class and one ``register`` call (README, "Your own hardware"); a profile
then names it for the operator classes it applies to.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import prange

from intsim._jit import Kernel, helper, uncached_helper
from intsim.fixedpoint.multiplier import (
    check_layer_multiplier, check_quantized_multiplier, check_single_rounding_range, quantize_multiplier,
)  # fmt: skip
from intsim.fixedpoint.primitives import (
    i64, rdbpot, rounding_divide_by_pot_scalar, rshift_round_up, rshift_round_up_scalar, srdhm,
    srdhm_scalar, wrap32, wrap_int32,
)  # fmt: skip
from intsim.rounding import round_half_away, x86_int32

jit_scalar = uncached_helper  # compiles a rule's scalar function for the kernels (inlined, exact IEEE arithmetic)


class Rule:
    """A requantization rule (module docstring).  Subclass ``IntegerRule`` for a new integer
    rule; this base is for rules that need their own clamp (the float rules)."""

    name: str = ""
    source: str = ""
    acc_limit: int = 1 << 31
    by_channel_position = False  # params depend on where a channel is: give them every channel's multiplier

    @property
    def summary(self) -> str:
        """How the rule rounds, in a few words (what the divergence report prints)."""
        return f"requantizes by rule {self.name!r} ({self.source})"

    def params(self, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def needs_acc_check(self, p1, p2) -> bool:
        """Whether ``check_acc`` can fail for these parameters (then every call runs it)."""
        return False

    def check_acc(self, acc, p1, p2, real, axis=None) -> None:
        """Raise if the result is undefined for some accumulator of ``acc`` (none by default)."""

    def reference(self, acc, p1, p2, zp, qmin: int, qmax: int) -> np.ndarray:
        raise NotImplementedError

    scalar = None

    @functools.cached_property
    def _kernel(self) -> Kernel:
        return _rule_kernel(self.scalar, self.name)

    def kernel(self, backend: str, work: int | None = None):
        """The compiled ``kernel(acc (outer, C, inner), p1[C], p2[C], zp[C], qmin, qmax, out)``."""
        return self._kernel.build(backend, work)

    def __repr__(self):
        return f"<rule {self.name!r}>"


class IntegerRule(Rule):
    """``clamp(scale(acc, p1, p2) + zp, qmin, qmax)``: give ``params``, ``scale_reference(x,
    p1, p2)`` (numpy int64 arrays) and ``scale_scalar`` (numba, int64 scalars).  Set
    ``scales_into_int32`` where the scaled value always fits int32 (it wraps, as MBQM does):
    then a call without zero point or clamp skips both."""

    scale_scalar = None
    scales_into_int32 = False

    @staticmethod
    def scale_reference(x, p1, p2):
        raise NotImplementedError

    def reference(self, acc, p1, p2, zp, qmin: int, qmax: int) -> np.ndarray:
        return np.clip(self.scale_reference(i64(acc), i64(p1), i64(p2)) + i64(zp), qmin, qmax)

    @functools.cached_property
    def scalar(self):
        return None if self.scale_scalar is None else _clamped(self.scale_scalar)

    @functools.cached_property
    def _scale_kernel(self) -> Kernel:
        return _rule_kernel(_unclamped(self.scale_scalar), self.name + "_scale")

    def scale_kernel(self, backend: str, work: int | None = None):
        """The kernel of the scaling alone (``scales_into_int32`` rules): same arguments as
        ``kernel``, zero point and clamp ignored."""
        return self._scale_kernel.build(backend, work)


def _clamped(scale):
    @uncached_helper
    def scalar(x, p1, p2, zp, qmin, qmax):
        return min(max(scale(x, p1, p2) + zp, qmin), qmax)

    return scalar


def _unclamped(scale):
    @uncached_helper
    def scalar(x, p1, p2, zp, qmin, qmax):
        return scale(x, p1, p2)

    return scalar


# ---- MultiplyByQuantizedMultiplier ----------------------------------------------------------------


@helper
def mbqm_double_scalar(x, multiplier, shift):
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot_scalar(srdhm_scalar(wrap_int32(x << left), multiplier), right)


@helper
def mbqm_double_up_scalar(x, multiplier, shift):
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rshift_round_up_scalar(srdhm_scalar(wrap_int32(x << left), multiplier), right)


@helper
def mbqm_single_scalar(x, multiplier, shift):
    total = 31 - shift
    return wrap_int32((x * multiplier + (np.int64(1) << (total - 1))) >> total)


@helper
def mbqm_int64_scalar(x, multiplier, shift):
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else np.int64(0x7FFF)
    total = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total - 1))) >> total)


class MultiplyByQuantizedMultiplier(IntegerRule):
    """QuantizeMultiplier, then MultiplyByQuantizedMultiplier: ``p1`` the Q31 multiplier, ``p2``
    the shift (tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/common.cc``,
    ``quantization_util.cc``).  The TFLite operators that quantize their own multipliers
    (ADD, MUL, SOFTMAX, ...) take the two builds of this class only."""

    scales_into_int32 = True

    def __init__(self, rounding: str, source: str):
        self.name = self.rounding = rounding
        self.source = source

    @property
    def summary(self) -> str:
        if self.rounding == "double":
            return "rounds twice (MultiplyByQuantizedMultiplier: SRDHM, then a rounding right shift, ties away from zero)"
        if self.rounding == "double-up":
            return "rounds twice (SRDHM, then a rounding right shift with ties toward +inf: ruy, NEON VRSHL)"
        return "rounds once (single-rounding MultiplyByQuantizedMultiplier)"

    def params(self, real):
        q, shift = quantize_multiplier(np.asarray(real, np.float64), single_rounding=self.rounding == "single")
        check_layer_multiplier(real, shift, self.rounding)
        check_quantized_multiplier(q, shift, self.rounding)
        return np.asarray(q, np.int64).reshape(-1), np.asarray(shift, np.int64).reshape(-1)

    def scale_reference(self, x, q, shift):
        if self.rounding != "single":
            shifted = rdbpot if self.rounding == "double" else rshift_round_up
            return shifted(srdhm(wrap32(x << np.maximum(shift, 0)), q), np.maximum(-shift, 0))
        total = 31 - shift
        return wrap32((x * q + (np.int64(1) << (total - 1))) >> total)

    @property
    def scale_scalar(self):
        return {"double": mbqm_double_scalar, "double-up": mbqm_double_up_scalar}.get(self.rounding, mbqm_single_scalar)

    def needs_acc_check(self, p1, p2) -> bool:
        return self.rounding == "single" and bool(np.any(np.asarray(p2) > 0))

    def check_acc(self, acc, p1, p2, real, axis=None) -> None:
        if self.rounding == "single":
            check_single_rounding_range(acc, p1, p2, real, axis)


class MultiplyByQuantizedMultiplierInt64(MultiplyByQuantizedMultiplier):
    """The int16x8 kernels' ``MultiplyByQuantizedMultiplier(int64_t x, ...)``: the same
    QuantizeMultiplier parameters and checks, a 16-bit reduced multiplier, int64 accumulators."""

    acc_limit = 1 << 47
    scale_scalar = mbqm_int64_scalar
    summary = "rounds once with a 16-bit multiplier (int64 MultiplyByQuantizedMultiplier)"

    def __init__(self):
        super().__init__("int64", "tensorflow/lite/kernels/internal/common.cc MultiplyByQuantizedMultiplier"
                         "(int64_t x, ...): the int16x8 kernels' rule, 16-bit reduced multiplier")  # fmt: skip

    @staticmethod
    def scale_reference(x, q, shift):
        reduced = np.where(q < 0x7FFF0000, (q + (1 << 15)) >> 16, 0x7FFF)
        total = 15 - shift
        return wrap32((x * reduced + (np.int64(1) << (total - 1))) >> total)


BLOCK_FLAG = 64  # added to a channel's shift (in [-31, 30]) to mark it as in a whole block


@helper
def mbqm_double_up8_scalar(x, multiplier, flagged_shift):
    if flagged_shift >= BLOCK_FLAG - 32:
        return mbqm_double_up_scalar(x, multiplier, flagged_shift - BLOCK_FLAG)
    return mbqm_double_scalar(x, multiplier, flagged_shift)


class MultiplyByQuantizedMultiplierBlocks(MultiplyByQuantizedMultiplier):
    """LiteRT's ``optimized_ops::Quantize`` (``tflite/kernels/internal/optimized/optimized_ops.h``,
    the int8 depthwise output stage): its NEON loop (NEON_2_SSE on x86) takes the channels 8 at
    a time by VQRDMULH + VRSHL (``"double-up"``), its scalar loop the last ``C % 8`` channels by
    MultiplyByQuantizedMultiplier (``"double"``).  ``p2`` is the shift, plus ``BLOCK_FLAG`` in
    the channels of whole blocks; ``params`` takes the multiplier of every channel."""

    by_channel_position = True
    scale_scalar = mbqm_double_up8_scalar
    summary = ("rounds twice (SRDHM, then a rounding right shift: ties toward +inf in channels of whole blocks "
               "of 8, away from zero in the last C % 8: LiteRT optimized_ops::Quantize)")  # fmt: skip

    def __init__(self, block: int = 8):
        super().__init__("double", "LiteRT tflite/kernels/internal/optimized/optimized_ops.h Quantize")
        self.name, self.block = f"double-up{block}", block

    def params(self, real):
        q, shift = super().params(real)
        blocks = np.arange(shift.size) < shift.size // self.block * self.block
        return q, shift + BLOCK_FLAG * blocks

    def scale_reference(self, x, q, flagged_shift):
        up = flagged_shift >= BLOCK_FLAG - 32
        shift = flagged_shift - BLOCK_FLAG * up
        x = wrap32(x << np.maximum(shift, 0))
        h, right = srdhm(x, q), np.maximum(-shift, 0)
        return np.where(up, rshift_round_up(h, right), rdbpot(h, right))


# ---- float rules ----------------------------------------------------------------------------------


@helper
def float32_scalar(acc, multiplier, _, zero_point, qmin, qmax):
    v = np.float32(acc) * np.float32(multiplier)
    v = min(max(v, np.float32(qmin - zero_point)), np.float32(qmax - zero_point))
    return np.int64(np.rint(v)) + zero_point


@helper
def float64_onnx_scalar(acc, multiplier, _, zero_point, qmin, qmax):
    v = np.rint(np.float64(acc) * np.float64(np.float32(multiplier)) + np.float64(zero_point))
    return min(max(np.int64(v), qmin), qmax)


@helper
def float64_away_scalar(acc, multiplier, _, zero_point, qmin, qmax):
    v = np.float64(acc) * multiplier
    r = np.trunc(v)
    if abs(v - r) >= 0.5:
        r += 1.0 if v > 0 else -1.0
    i = np.int64(r) if -2147483648.0 <= r < 2147483648.0 else np.int64(-2147483648)  # cvttsd2si
    return min(max(wrap_int32(i + zero_point), qmin), qmax)


class FloatRule(Rule):
    """A float rule: ``p1`` is the real multiplier itself (float64), ``p2`` unused."""

    def __init__(self, name: str, source: str, scalar, reference, summary: str):
        self.name, self.source, self.scalar, self._reference = name, source, scalar, reference
        self._summary = summary

    @property
    def summary(self) -> str:
        return self._summary

    def params(self, real):
        m = np.asarray(real, np.float64).reshape(-1)
        return m, np.zeros(m.shape, np.int64)

    def reference(self, acc, p1, p2, zp, qmin: int, qmax: int) -> np.ndarray:
        return self._reference(i64(acc), np.asarray(p1, np.float64), i64(zp), qmin, qmax)


def _float32_reference(acc, m, zp, qmin, qmax):
    v = acc.astype(np.float32) * m.astype(np.float32)
    v = np.minimum(np.maximum(v, (qmin - zp).astype(np.float32)), (qmax - zp).astype(np.float32))
    return np.rint(v).astype(np.int64) + zp


def _float64_onnx_reference(acc, m, zp, qmin, qmax):
    v = acc.astype(np.float64) * m.astype(np.float32).astype(np.float64) + zp
    return np.clip(np.rint(v), qmin, qmax).astype(np.int64)


def _float64_away_reference(acc, m, zp, qmin, qmax):
    v = x86_int32(round_half_away(acc.astype(np.float64) * m))  # cvttsd2si: INT32_MIN out of range
    return np.clip(wrap32(v + zp), qmin, qmax)


# ---- kernels over (outer, channel, inner) views --------------------------------------------------
# ``acc`` is viewed as (outer, C, inner) and per-channel parameters have length C.  The parallel
# loop runs over whichever of outer and C is longer; every output is independent.


def _rule_kernel(scalar, name: str) -> Kernel:
    """The kernel applying ``scalar(x, p1[c], p2[c], zp[c], qmin, qmax)`` over a view."""

    def apply_rule(acc, p1, p2, zp, qmin, qmax, out):
        outer, channels, inner = acc.shape
        if inner == 1:  # channels last (NHWC, (M, N)): the channel loop is innermost and vectorizes
            for o in prange(outer):
                for c in range(channels):
                    out[o, c, 0] = scalar(np.int64(acc[o, c, 0]), p1[c], p2[c], np.int64(zp[c]), qmin, qmax)
        elif outer >= channels:
            for o in prange(outer):
                for c in range(channels):
                    a, b, z = p1[c], p2[c], np.int64(zp[c])
                    for i in range(inner):
                        out[o, c, i] = scalar(np.int64(acc[o, c, i]), a, b, z, qmin, qmax)
        else:
            for c in prange(channels):
                a, b, z = p1[c], p2[c], np.int64(zp[c])
                for o in range(outer):
                    for i in range(inner):
                        out[o, c, i] = scalar(np.int64(acc[o, c, i]), a, b, z, qmin, qmax)

    apply_rule.__name__ = apply_rule.__qualname__ = f"apply_{name.replace('-', '_')}"
    return Kernel(apply_rule, cache=False)  # a closure: see intsim._jit


# ---- the registry ---------------------------------------------------------------------------------

RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Make ``rule`` known by ``rule.name`` to profiles (``Profile(rules={...})``)."""
    if not isinstance(rule, Rule) or not rule.name:
        raise ValueError(f"register takes a Rule instance with a name, got {rule!r}")
    if rule.scalar is None or type(rule).params is Rule.params:
        raise ValueError(f"rule {rule.name!r} must define params and its numba scalar")
    RULES[rule.name] = rule
    return rule


def get_rule(name) -> Rule:
    """The registered rule called ``name`` (or ``name`` itself if it is a ``Rule``)."""
    if isinstance(name, Rule):
        return name
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown requantization rule {name!r}; known: {', '.join(RULES)} "
                         "(add one with intsim.fixedpoint.register)") from None  # fmt: skip


register(MultiplyByQuantizedMultiplier("double", "tensorflow/lite/kernels/internal/common.cc MultiplyByQuantizedMultiplier"))
register(MultiplyByQuantizedMultiplier("single", "common.cc with TFLITE_SINGLE_ROUNDING"))
register(MultiplyByQuantizedMultiplier("double-up", "ruy/kernel_avx2_fma.cc, kernel_avx512.cc; LiteRT "
                                       "tflite/kernels/cpu_backend_gemm_custom_gemv.h (NEON)"))  # fmt: skip
register(MultiplyByQuantizedMultiplierBlocks(8))
register(MultiplyByQuantizedMultiplierBlocks(16))  # optimized_integer_ops::Mean (mean.h)
register(MultiplyByQuantizedMultiplierInt64())
register(FloatRule("float32", "onnxruntime/core/mlas/lib/quantize.cpp MlasRequantizeOutput; XNNPACK "
                   "src/xnnpack/requantization.h (fp32)", float32_scalar, _float32_reference,
                   "rounds once in float32 (float32(acc) * float32(M), ties to even)"))  # fmt: skip
register(FloatRule("float64-onnx", "onnx/reference/ops/op_qlinear_conv.py, op_qlinear_matmul.py",
                   float64_onnx_scalar, _float64_onnx_reference,
                   "rounds once in float64 after adding the zero point (ties to even)"))  # fmt: skip
register(FloatRule("float64-away", "LiteRT tflite/kernels/internal/reference/integer_ops/fully_connected.h",
                   float64_away_scalar, _float64_away_reference,
                   "rounds once in float64 (ties away from zero)"))  # fmt: skip

ROUNDINGS = ("double", "single")  # the MultiplyByQuantizedMultiplier builds
FLOAT_RULES = ("float32", "float64-onnx", "float64-away")
