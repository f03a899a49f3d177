"""The rules over numpy arrays: per-tensor or per-channel parameters along ``axis``, every
``backend`` (``"jit"``, ``"jit-serial"``, or ``"reference"``: the rule's numpy reference).

``requantize``  any registered rule from the real multiplier (what ``intsim.profiles`` calls)
``multiply_by_quantized_multiplier`` / ``multiply_by_quantized_multiplier_int64``
                the MultiplyByQuantizedMultiplier rules from their integer parameters
``requantize_float``        the float rules
``saturating_rounding_doubling_high_mul``, ``rounding_divide_by_pot``   the gemmlowp primitives
"""

from __future__ import annotations

import numpy as np

from intsim._jit import check_backend, helper
from intsim.fixedpoint.multiplier import check_multiplier, check_requant_params, integer_array
from intsim.fixedpoint.primitives import INT32_MAX, INT32_MIN, rdbpot, rounding_divide_by_pot_scalar, srdhm, srdhm_scalar
from intsim.fixedpoint.rules import FLOAT_RULES, ROUNDINGS, IntegerRule, Rule, get_rule


def channel_view(acc: np.ndarray, params: list[np.ndarray], axis):
    """(outer, C, inner) view of ``acc`` and each parameter as a length-C vector."""
    sizes = {p.size for p in params if p.size > 1}
    if not sizes:  # per tensor: every element is its own row, so the rows run in parallel
        return acc.reshape(-1, 1, 1), [p.reshape(-1)[:1] for p in params], acc.shape
    if len(sizes) > 1:
        raise ValueError(f"per-channel parameters disagree in length: {sorted(sizes)}")
    (c,) = sizes
    if acc.ndim == 0:
        raise ValueError("per-channel parameters need an accumulator array with a channel axis")
    axis = (-1 if axis is None else axis) % acc.ndim
    if acc.shape[axis] != c:
        raise ValueError(
            f"per-channel parameters have {c} entries but acc.shape[{axis}] is {acc.shape[axis]}"
        )
    for p in params:
        if p.ndim > 1 and p.size > 1:
            raise ValueError("per-channel parameters must be 1-D; pass axis= for the channel axis")
    outer = int(np.prod(acc.shape[:axis]))
    view = np.ascontiguousarray(acc).reshape(outer, c, -1)
    return view, [np.broadcast_to(p.reshape(-1), (c,)) for p in params], acc.shape


def apply(rule: Rule, acc, p1, p2, zero_point, qmin: int, qmax: int, *, axis=None, backend: str = "jit") -> np.ndarray:
    """``rule`` with parameters ``p1``, ``p2`` (from ``rule.params``) on accumulators ``acc``:
    int32 values in ``[qmin, qmax]``."""
    check_backend(backend)
    limit = rule.acc_limit
    a = integer_array("acc", acc, -limit, limit - 1)
    p1 = np.asarray(p1)
    view, (v1, v2, zv), shape = channel_view(a, [p1, np.asarray(p2), np.asarray(zero_point)], axis)
    v1 = np.ascontiguousarray(v1, np.float64 if p1.dtype.kind == "f" else np.int64)
    v2, zv = np.ascontiguousarray(v2, np.int64), np.ascontiguousarray(zv, np.int64)
    if backend == "reference":
        out = rule.reference(view, v1[:, None], v2[:, None], zv[:, None], qmin, qmax)
        return np.asarray(out).astype(np.int32).reshape(shape)
    out = np.empty(view.shape, np.int32)
    raw = isinstance(rule, IntegerRule) and rule.scales_into_int32 and qmin <= INT32_MIN and qmax >= INT32_MAX
    kernel = rule.scale_kernel if raw and not zv.any() else rule.kernel  # nothing to add or clamp
    kernel(backend, view.size)(view, v1, v2, zv, int(qmin), int(qmax), out)
    return out.reshape(shape)


def requantize(acc, multiplier, zero_point, rule, *, qmin: int, qmax: int, axis=None, backend: str = "jit"):
    """Requantize ``acc`` by ``rule`` (a registered name or a ``Rule``) with real
    ``multiplier`` (float64, per tensor or per channel along ``axis``), ``+ zero_point``,
    clamped to ``[qmin, qmax]``: int32."""
    r = get_rule(rule)
    m, zp = check_requant_params(multiplier, zero_point, qmin, qmax)
    if r.by_channel_position and m.size == 1:  # the rule needs every channel's multiplier
        if axis is None or np.ndim(acc) == 0:
            raise ValueError(f"rule {r.name!r} depends on the channel's position: pass axis= (the channel axis)")
        m = np.full(np.shape(acc)[axis], m.reshape(-1)[0])
    p1, p2 = r.params(m)
    if r.needs_acc_check(p1, p2):
        r.check_acc(acc, p1, p2, m, axis)
    return apply(r, acc, p1, p2, zp, qmin, qmax, axis=axis, backend=backend)


def multiply_by_quantized_multiplier(
    acc, multiplier, shift, *, rounding: str = "double", axis=None, backend: str = "jit"
) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` on int32 accumulators.

    ``multiplier``/``shift`` come from ``quantize_multiplier``: scalars, or 1-D per-channel
    arrays along ``axis`` (default: the last axis).  ``rounding="double"`` is the default
    TFLite/TFLM/CMSIS-NN rule ``RDBPOT(SRDHM(acc * 2**max(shift, 0), multiplier), max(-shift, 0))``;
    ``"single"`` is ``(acc * multiplier + 2**(30 - shift)) >> (31 - shift)`` (multiplier >= 0);
    ``"double-up"`` is ``"double"`` with the last shift's ties toward +inf (ruy, NEON VRSHL).
    Returns int32.
    """
    if rounding not in (*ROUNDINGS, "double-up"):
        raise ValueError(f"rounding must be one of {(*ROUNDINGS, 'double-up')}, got {rounding!r}")
    single = rounding == "single"
    m, s = check_multiplier(multiplier, shift, -31, 30 if single else 31, nonnegative=single)
    return apply(get_rule(rounding), acc, m, s, 0, INT32_MIN, INT32_MAX, axis=axis, backend=backend)


def multiply_by_quantized_multiplier_int64(acc, multiplier, shift, *, axis=None, backend: str = "jit") -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier(int64_t x, ...)`` of the int16x8 kernels:
    ``reduced = round(multiplier / 2**16)`` (``0x7FFF`` from ``0x7FFF0000`` up), then
    ``(acc * reduced + 2**(14 - shift)) >> (15 - shift)``.  ``acc`` must lie in
    ``[-2**47, 2**47)``, ``multiplier >= 0`` and ``-31 <= shift < 8``.  Returns int32."""
    m, s = check_multiplier(multiplier, shift, -31, 7, nonnegative=True)
    return apply(get_rule("int64"), acc, m, s, 0, INT32_MIN, INT32_MAX, axis=axis, backend=backend)


def requantize_float(
    acc, multiplier, zero_point=0, *, qmin: int, qmax: int, rule: str, axis=None, backend: str = "jit",
) -> np.ndarray:  # fmt: skip
    """Requantize int32 accumulators with a float rule (``"float32"``, ``"float64-onnx"``,
    ``"float64-away"``; ``rules``).  ``multiplier`` is the real multiplier ``s_in * s_w /
    s_out`` (float32 for the first two rules, float64 for the last), per tensor or per channel
    along ``axis``; ``zero_point`` likewise.  Returns int32 in ``[qmin, qmax]``."""
    if rule not in FLOAT_RULES:
        raise ValueError(f"rule must be one of {FLOAT_RULES}, got {rule!r}")
    return requantize(acc, multiplier, zero_point, rule, qmin=qmin, qmax=qmax, axis=axis, backend=backend)


class _Primitive(IntegerRule):
    """A gemmlowp primitive as a rule without zero point and clamp: p1 its second operand."""

    def __init__(self, name, scale_reference, scale_scalar):
        self.name, self._ref, self.scale_scalar = name, scale_reference, scale_scalar

    def scale_reference(self, x, p1, p2):
        return self._ref(x, p1)


@helper
def _srdhm_rule(x, b, _):
    return srdhm_scalar(x, b)


@helper
def _rdbpot_rule(x, exponent, _):
    return rounding_divide_by_pot_scalar(x, exponent)


_SRDHM = _Primitive("srdhm", srdhm, _srdhm_rule)
_RDBPOT = _Primitive("rdbpot", rdbpot, _rdbpot_rule)


def saturating_rounding_doubling_high_mul(a, b, *, axis=None, backend: str = "jit") -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul(a, b)`` elementwise on int32 values
    (``b`` scalar or per channel along ``axis``): ``floor((a*b + 2**30) / 2**31)`` with ties
    toward +infinity and ``(INT32_MIN, INT32_MIN) -> INT32_MAX``."""
    bb = integer_array("b", b, INT32_MIN, INT32_MAX)
    return apply(_SRDHM, a, bb, 0, 0, INT32_MIN, INT32_MAX, axis=axis, backend=backend)


def rounding_divide_by_pot(x, exponent, *, axis=None, backend: str = "jit") -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT(x, exponent)``: ``x / 2**exponent`` rounded to nearest,
    ties away from zero, for int32 ``x`` and ``0 <= exponent <= 31``."""
    e = integer_array("exponent", exponent, 0, 31)
    return apply(_RDBPOT, x, e, 0, 0, INT32_MIN, INT32_MAX, axis=axis, backend=backend)
