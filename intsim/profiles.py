"""Named targets: the table of arithmetic rules each deployed runtime applies.

A ``Profile`` maps each operator class to a requantization rule (``intsim.fixedpoint.rules``:
``"double"``, ``"single"``, ``"int64"``, ``"float32"``, ``"float64-onnx"``, ``"float64-away"``,
or one you register) and the derivation of its real multiplier ``s_in * s_w / s_out``:

multiplier  ``"float64"``: ``double(s_in) * double(s_w) / double(s_out)``;
            ``"float32-product"``: ``double(float32(s_in * s_w)) / double(s_out)``;
            ``"float32"``: ``float32(float32(s_in * s_w) / s_out)``

Operator classes (``OP_CLASSES``): the layers with weights (``conv``, ``depthwise``,
``transpose-conv``, ``fc``, and
their int16x8 forms ``int16``, ``int16-fc``), which take any rule, and the TFLite operators that
quantize their own multipliers (``add``, ``mul``, ``mean``, ``softmax``, ``activation``,
``quantize``), which take a MultiplyByQuantizedMultiplier build (``"double"`` or ``"single"``).
Besides the table: the accumulator model, whether uint8 x int8 products are summed in saturating
int16 pairs, the int8 LOGISTIC/TANH implementation, whose kernels run the operators with
arithmetic of their own (``kernels``: LiteRT's reference or optimized kernels, or XNNPACK's),
whether LiteRT's XNNPACK delegate takes the nodes it accepts (``delegate``), and the rounding of
quantize ops.

Build your own hardware's profile with ``custom(base, name, rules={...}, **changes)``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from intsim import fixedpoint as fxp
from intsim._jit import PARALLEL_MIN_WORK
from intsim._jit import check_backend as fxp_check_backend
from intsim.quant.affine import check_scale
from intsim.rounding import MODES

MULTIPLIER_RULES = ("float64", "float32-product", "float32")
OVERFLOW = ("wrap", "saturate")
ACTIVATION_IMPLS = ("lut", "fixed-point")
KERNELS = ("reference", "optimized", "xnnpack", "tflm")
DELEGATES = ("", "xnnpack")
OP_CLASSES = {
    "conv": "Conv2D, ONNX QLinearConv",
    "depthwise": "DEPTHWISE_CONV_2D",
    "transpose-conv": "TRANSPOSE_CONV",
    "fc": "FULLY_CONNECTED, ONNX QLinearMatMul, QGemm",
    "int16": "int16x8 Conv2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV",
    "int16-fc": "int16x8 FULLY_CONNECTED",
    "add": "ADD, SUB",
    "mul": "MUL",
    "mean": "MEAN",
    "softmax": "SOFTMAX",
    "activation": "LOGISTIC, TANH, LEAKY_RELU, HARD_SWISH",
    "quantize": "QUANTIZE between integer types",
    "recurrent": "SVDF, UNIDIRECTIONAL_SEQUENCE_LSTM (their effective scales, the LSTM's gate multipliers)",
    "arithmetic": "DIV, SQUARED_DIFFERENCE, RSQRT, PRELU, BATCH_MATMUL, quantized comparisons (and "
                  "RESIZE_BILINEAR's rounding)",
}
OWN_MULTIPLIER = ("add", "mul", "mean", "softmax", "activation", "quantize", "recurrent", "arithmetic")


def table(conv, fc, *, int16=("int64", "float64"), int16_fc=("int64", "float64"), mbqm="double",
          mul_multiplier="float32", recurrent_multiplier="float32") -> dict:  # fmt: skip
    """A full rule table: ``conv`` also for depthwise and transpose convolutions, ``mbqm`` for
    every operator that quantizes its own multipliers; MUL's multiplier ``s1 * s2 / s_out`` as
    LiteRT's mul.cc derives it (float32) and SVDF's effective scales as LiteRT's svdf.cc does
    (float32) unless ``mul_multiplier`` / ``recurrent_multiplier`` say otherwise."""
    return {"conv": conv, "depthwise": conv, "transpose-conv": conv, "fc": fc, "int16": int16, "int16-fc": int16_fc,
            **{c: (mbqm, "float64") for c in OWN_MULTIPLIER}, "mul": (mbqm, mul_multiplier),
            "recurrent": (mbqm, recurrent_multiplier)}  # fmt: skip


@dataclass(frozen=True)
class Profile:
    """The arithmetic a target applies.  ``source`` names the code each rule was read from;
    ``rules`` maps operator classes to ``(rule, multiplier derivation)`` (a mapping in, kept as
    a sorted tuple so that profiles hash)."""

    name: str
    source: str
    rules_table: Mapping = field(default_factory=dict)
    activation_impl: str = "lut"  # TFLite int8 LOGISTIC/TANH: float-built table or gemmlowp fixed point
    # whose arithmetic the operators with their own (ADD/SUB/MUL, QUANTIZE, DEQUANTIZE, MEAN, RELU6) follow:
    # LiteRT's reference kernels (by the table), its optimized kernels, XNNPACK where LiteRT's delegate takes
    # them, or TFLite Micro's
    kernels: str = "reference"
    # "xnnpack": the nodes LiteRT's XNNPACK delegate takes run profile ``xnnpack`` (intsim.tflite.delegate)
    delegate: str = ""
    accumulator_bits: int = 32
    accumulator_overflow: str = "wrap"
    int16_pairs: bool = False  # uint8 x int8 products summed in saturating int16 pairs (x86 vpmaddubsw)
    quantize_rounding: str = "nearest_even"  # QuantizeLinear / QUANTIZE and activation bounds
    # the Rule objects of rules_table, resolved at construction: a profile keeps the rules it was
    # built with (and compares unequal to one built after a rule was registered again)
    resolved: tuple = field(init=False, repr=False)

    def __post_init__(self):
        entries = (self.rules_table.items() if isinstance(self.rules_table, Mapping)
                   else ((op, (rule, m)) for op, rule, m in self.rules_table))  # the rows, as dataclasses.replace passes them
        rows = tuple(sorted((str(op), *map(str, pair)) for op, *pair in ((k, *v) for k, v in entries)))
        object.__setattr__(self, "rules_table", rows)
        resolved = []
        for op, rule, multiplier in rows:
            if op not in OP_CLASSES:
                raise ValueError(f"profile {self.name!r}: unknown operator class {op!r}; classes: {', '.join(OP_CLASSES)}")
            try:
                resolved.append(fxp.get_rule(rule))
            except ValueError as e:
                raise ValueError(f"profile {self.name!r}, {op!r}: {e}") from None
            if multiplier not in MULTIPLIER_RULES:
                raise ValueError(f"profile {self.name!r}, {op!r}: multiplier must be one of {MULTIPLIER_RULES}, "
                                 f"got {multiplier!r}")  # fmt: skip
        for field_, value, allowed in (
            ("activation_impl", self.activation_impl, ACTIVATION_IMPLS),
            ("kernels", self.kernels, KERNELS),
            ("delegate", self.delegate, DELEGATES),
            ("accumulator_overflow", self.accumulator_overflow, OVERFLOW),
            ("quantize_rounding", self.quantize_rounding, tuple(MODES)),
        ):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"profile {self.name!r}: {field_} must be one of {allowed}, got {value!r}")
        object.__setattr__(self, "resolved", tuple(resolved))
        if not 8 <= self.accumulator_bits <= 64:
            raise ValueError(f"profile {self.name!r}: accumulator_bits must be in [8, 64]")
        if self.int16_pairs and (self.accumulator_bits, self.accumulator_overflow) != (32, "wrap"):
            raise ValueError(f"profile {self.name!r}: int16_pairs needs the 32-bit wrapping accumulator")

    @property
    def table(self) -> dict[str, tuple[str, str]]:
        """The rule table as a dict: operator class -> (rule, multiplier derivation)."""
        return {op: (rule, m) for op, rule, m in self.rules_table}

    def rules(self, op: str) -> tuple[str, str]:
        """(requantization rule, multiplier derivation) for operator class ``op``."""
        for o, rule, multiplier in self.rules_table:
            if o == op:
                return rule, multiplier
        raise ValueError(f"profile {self.name!r} has no rule for operator class {op!r} ({OP_CLASSES.get(op, 'unknown')}); "
                         f"its classes: {', '.join(o for o, _, _ in self.rules_table)}")  # fmt: skip

    def rule(self, op: str) -> fxp.Rule:
        """The ``fixedpoint.Rule`` object of operator class ``op`` (as registered when this
        profile was built)."""
        self.rules(op)  # raises for a class the table lacks
        return next(r for (o, _, _), r in zip(self.rules_table, self.resolved, strict=True) if o == op)

    def mbqm(self, op: str, operator: str) -> str:
        """The MultiplyByQuantizedMultiplier build (``"double"`` / ``"single"``) of operator class
        ``op``, for ``operator``, which quantizes its own multipliers."""
        rule, _ = self.rules(op)
        if rule not in fxp.ROUNDINGS:
            raise ValueError(f"{operator} quantizes its own multipliers and needs a MultiplyByQuantizedMultiplier "
                             f"rule ({' or '.join(fxp.ROUNDINGS)}); profile {self.name!r} gives {rule!r} for "
                             f"operator class {op!r}")  # fmt: skip
        return rule

    def real_multiplier(self, s_in, s_w, s_out, op: str = "conv") -> np.ndarray:
        """The multiplier as this target computes it from float32 scales (float64 array)."""
        _, rule = self.rules(op)
        return real_multiplier(s_in, s_w, s_out, rule)

    def requantize(
        self, acc, s_in, s_w, s_out, zero_point, *, qmin: int, qmax: int, op: str = "conv",
        axis=None, backend: str = "jit",
    ) -> np.ndarray:  # fmt: skip
        """Accumulators to output values in ``[qmin, qmax]``: the multiplier derivation and
        requantization rule of ``op``, then ``+ zero_point`` and the clamp."""
        m = self.real_multiplier(s_in, s_w, s_out, op)
        return requantize(acc, m, zero_point, self.rule(op), qmin=qmin, qmax=qmax, axis=axis, backend=backend)


def real_multiplier(s_in, s_w, s_out, rule: str) -> np.ndarray:
    """``s_in * s_w / s_out`` by ``rule`` (see the module docstring), from float32 scales, each
    finite and positive."""
    f32 = np.float32
    a, w, o = (check_scale(s, name).astype(f32) for s, name in ((s_in, "s_in"), (s_w, "s_w"), (s_out, "s_out")))
    if rule == "float64":
        return a.astype(np.float64) * w.astype(np.float64) / o.astype(np.float64)
    if rule == "float32-product":
        return (a * w).astype(f32).astype(np.float64) / o.astype(np.float64)
    if rule == "float32":
        return ((a * w).astype(f32) / o).astype(f32).astype(np.float64)
    raise ValueError(f"multiplier rule must be one of {MULTIPLIER_RULES}, got {rule!r}")


def requantize(acc, multiplier, zero_point, rule, *, qmin: int, qmax: int, axis=None, backend="jit"):
    """Apply requantization ``rule`` (a registered name or a ``fixedpoint.Rule``) with real
    ``multiplier`` (float64, per tensor or channel), ``+ zero_point``, clamped: int32."""
    return fxp.requantize(acc, multiplier, zero_point, rule, qmin=qmin, qmax=qmax, axis=axis, backend=backend)


@dataclass(frozen=True)
class Lowered:
    """A requantizer's arithmetic as plain values, for code that compiles a layer into a larger
    program (``intsim.tflite.program``): ``rule`` applied with per-channel ``p1``, ``p2`` and
    ``zero_point`` (each of length ``channels``), clamped to ``[qmin, qmax]``, on accumulators
    in ``[-acc_limit, acc_limit)``."""

    rule: fxp.Rule
    p1: np.ndarray
    p2: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    acc_limit: int
    channels: int


class Requantizer:
    """``Profile.requantize`` with the scales, output zero point, clamp and op fixed (a model's
    layer): the multiplier is derived, checked and turned into the rule's parameters once.
    ``r(acc)`` takes int32 accumulators (int64 within the rule's ``acc_limit`` for int16x8)
    whose last axis is the channel axis (NHWC, (M, N)) and returns exactly
    ``profile.requantize(acc, ..., axis=-1)`` (which it calls for other inputs).  ``channels``,
    the layer's output channel count, is needed where the rule depends on a channel's position
    (``Rule.by_channel_position``) and the scales are per tensor."""

    def __init__(self, profile: Profile, s_in, s_w, s_out, zero_point, *, qmin: int, qmax: int,
                 op: str = "conv", backend: str = "jit", channels: int | None = None):  # fmt: skip
        self.profile, self.args = profile, (s_in, s_w, s_out, zero_point)
        self.qmin, self.qmax, self.op, self.backend = int(qmin), int(qmax), op, fxp_check_backend(backend)
        self.rule = profile.rule(op)
        m, zp = fxp.check_requant_params(profile.real_multiplier(s_in, s_w, s_out, op), zero_point, qmin, qmax)
        m, zp = m.reshape(-1), zp.reshape(-1)
        if self.rule.by_channel_position and m.size == 1:
            if channels is None:
                raise ValueError(f"rule {self.rule.name!r} of operator class {op!r} depends on the channel's "
                                 "position: pass the layer's channel count (channels=)")  # fmt: skip
            m = np.full(channels, m[0])
        self.channels = max(m.size, zp.size)
        if {m.size, zp.size} - {1, self.channels}:
            raise ValueError(f"per-channel parameters disagree in length: {m.size} and {zp.size}")
        self._zp = np.ascontiguousarray(np.broadcast_to(zp.astype(np.int64), (self.channels,)))
        self._real = np.ascontiguousarray(np.broadcast_to(m, (self.channels,)))
        p1, p2 = self.rule.params(self._real)
        self._p1, self._p2 = np.ascontiguousarray(p1), np.ascontiguousarray(p2, dtype=np.int64)
        self._acc_check = self.rule.needs_acc_check(self._p1, self._p2)
        self._repeat_cache = (0, None, None, None)
        self._holds_cache: dict = {}
        self._kernels = None if backend == "reference" else (self.rule.kernel(backend), self.rule.kernel(backend, 0))

    def lower(self) -> Lowered:
        """The arithmetic as plain values (``Lowered``)."""
        return Lowered(self.rule, self._p1, self._p2, self._zp, self.qmin, self.qmax, self.rule.acc_limit,
                       self.channels)  # fmt: skip

    def _kernel_takes(self, acc) -> bool:
        """int32 accumulators, or int64 ones (int16x8) within the rule's ``acc_limit``; the
        general path reports the others with its error."""
        if acc.dtype == np.int32:
            return True
        limit = self.rule.acc_limit
        return acc.dtype == np.int64 and (acc.size == 0 or (-limit <= acc.min() and acc.max() < limit))

    def _holds(self, dtype) -> bool:
        """Whether integer ``dtype`` holds [qmin, qmax] (kept per dtype: np.iinfo costs 2 us)."""
        ok = self._holds_cache.get(dtype)
        if ok is None:
            ok = dtype.kind in "iu" and np.iinfo(dtype).min <= self.qmin and np.iinfo(dtype).max >= self.qmax
            self._holds_cache[dtype] = ok
        return ok

    def _repeated(self, n: int):
        """The per-tensor parameters repeated ``n`` times (kept for the last ``n`` asked)."""
        if self._repeat_cache[0] != n:
            self._repeat_cache = (n, np.repeat(self._p1, n), np.repeat(self._p2, n), np.repeat(self._zp, n))
        return self._repeat_cache[1:]

    def __call__(self, acc, out=None) -> np.ndarray:
        """The requantized values as int32, or written into ``out`` (C-contiguous, ``acc``'s
        shape, an integer dtype holding ``[qmin, qmax]``, e.g. the layer's output type) and
        returned: the kernel stores the final values without a cast pass."""
        acc = np.asarray(acc)
        if out is not None and (out.shape != acc.shape or not out.flags.c_contiguous or not self._holds(out.dtype)):
            raise ValueError(f"out must be a C-contiguous integer array of shape {acc.shape} holding "
                             f"[{self.qmin}, {self.qmax}], got {out.dtype} {out.shape}")  # fmt: skip
        result = np.empty(acc.shape, np.int32) if out is None else out
        c = self.channels
        if self._kernels is None or (c > 1 and acc.shape[-1] != c) or not self._kernel_takes(acc):
            result[...] = self.profile.requantize(acc, *self.args, qmin=self.qmin, qmax=self.qmax, op=self.op,
                                                  axis=-1, backend=self.backend)  # fmt: skip
            return result
        if self._acc_check:
            self.rule.check_acc(acc, self._p1, self._p2, self._real, -1)
        p1, p2, zp = self._p1, self._p2, self._zp
        if c == 1 and acc.ndim and acc.shape[-1] > 1:  # per tensor: repeat the parameters along
            c = acc.shape[-1]  # the last axis, whose loop vectorizes
            p1, p2, zp = self._repeated(c)
        view = np.ascontiguousarray(acc).reshape(-1, c, 1)
        kernel = self._kernels[0] if view.size >= PARALLEL_MIN_WORK else self._kernels[1]
        kernel(view, p1, p2, zp, self.qmin, self.qmax, result.reshape(view.shape))
        return result


# LiteRT's optimized kernels on x86-64: ruy's GEMM for conv and FC, optimized_ops::Quantize after
# the depthwise and transpose convolutions
LITERT_OPTIMIZED = table(("double-up", "float64"), ("double-up", "float64"), int16_fc=("float64-away", "float64")) | {
    "depthwise": ("double-up8", "float64"), "transpose-conv": ("double-up8", "float64")}

PROFILES = {
    p.name: p
    for p in (
        Profile(
            "tflite-reference",
            "LiteRT BUILTIN_REF kernels (google-ai-edge/LiteRT tflite/kernels/internal/reference/*.h, "
            "common.cc): "
            "MBQM double rounding for conv/depthwise/add/mul; FullyConnected (int8 and int16x8) "
            "requantizes in float64 with half-away rounding since LiteRT commit 9213607 (2025); "
            "int8 LOGISTIC/TANH use float-built 256-entry tables (LUTPopulate); QUANTIZE rounds "
            "half away from zero",
            table(("double", "float64"), ("float64-away", "float64"), int16_fc=("float64-away", "float64")),
            quantize_rounding="nearest_away",
        ),
        Profile(
            "litert-builtin",
            "LiteRT's optimized builtin kernels (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES; "
            "google-ai-edge/LiteRT tflite/kernels/internal/optimized/): int8 CONV_2D and "
            "FULLY_CONNECTED by ruy's x86 kernels (ruy/kernel_avx2_fma.cc: SRDHM, then a rounding "
            "shift with ties toward +inf), int8 DEPTHWISE_CONV_2D by optimized_ops::Quantize "
            "(optimized_ops.h: that rounding in channels of whole blocks of 8, MultiplyByQuantized"
            "Multiplier in the rest), TRANSPOSE_CONV likewise; int8 ADD and MUL, QUANTIZE, DEQUANTIZE, int8 "
            "MEAN over H and W and int16 LEAKY_RELU by their optimized kernels (intsim.tflite.optimized); the other "
            "operators as BUILTIN_REF. "
            "Measured against ai-edge-litert 2.3 on x86-64 (one thread, the Interpreter's default)",
            LITERT_OPTIMIZED,
            quantize_rounding="nearest_away", kernels="optimized",
        ),
        Profile(
            "litert",
            "LiteRT's default Interpreter() (OpResolverType.AUTO): the nodes its XNNPACK delegate takes "
            "(tflite/delegates/xnnpack/xnnpack_delegate.cc, as intsim.tflite.delegate models it) by "
            "XNNPACK's arithmetic (profile xnnpack), the others by LiteRT's optimized builtin kernels "
            "(as litert-builtin). Measured against ai-edge-litert 2.3 on x86-64",
            LITERT_OPTIMIZED,
            quantize_rounding="nearest_away", kernels="optimized", delegate="xnnpack",
        ),
        Profile(
            "tflm",
            "TFLite Micro reference kernels = CMSIS-NN default (tensorflow/tflite-micro "
            "tensorflow/lite/kernels/internal/common.cc, reference/integer_ops/*.h): MBQM double "
            "rounding everywhere; FullyConnected multiplier from a float32 product; MUL's multiplier in "
            "double (micro/kernels/mul_common.cc), SVDF's effective scales and the LSTM's gate multipliers "
            "too (the tflite-micro 0.dev20261023 runtime); RELU6 clamps in the input's quantization "
            "(micro/kernels/activations_common.cc); int8 LOGISTIC/TANH in gemmlowp fixed point",
            table(("double", "float64"), ("double", "float32-product"), mul_multiplier="float64",
                  recurrent_multiplier="float64"),
            quantize_rounding="nearest_away", kernels="tflm",
            activation_impl="fixed-point",
        ),
        Profile(
            "tflm-single-rounding",
            "TFLite Micro built with TFLITE_SINGLE_ROUNDING (tensorflow/lite/kernels/internal/common.cc, "
            "quantization_util.cc) = CMSIS-NN with CMSIS_NN_USE_SINGLE_ROUNDING: "
            "(acc * qm + 2**(30 - shift)) >> (31 - shift)",
            table(("single", "float64"), ("single", "float32-product"), mbqm="single", mul_multiplier="float64",
                  recurrent_multiplier="float64"),
            kernels="tflm",
            quantize_rounding="nearest_away", activation_impl="fixed-point",
        ),
        Profile(
            "onnxruntime-cpu",
            "onnxruntime CPU EP, MLAS MlasRequantizeOutput (onnxruntime/core/mlas/lib/quantize.cpp; "
            "qlinearconv.cc, quantize_linear_matmul.cc): float32(acc) * float32(s_x*s_w/s_y), "
            "round half even, clamp, + zero point",
            table(("float32", "float32"), ("float32", "float32")),
        ),
        Profile(
            "onnxruntime-cpu-avx2",
            "onnxruntime CPU EP on an x86 CPU without VNNI (AVX2 or AVX512BW): as onnxruntime-cpu, "
            "but uint8 x int8 GEMMs and convolutions use vpmaddubsw (onnxruntime/core/mlas/lib/"
            "qgemm_kernel_avx2.cpp), whose adjacent product pairs saturate to int16 "
            "(intsim.kernels.pairs); the depthwise kernel does not",
            table(("float32", "float32"), ("float32", "float32")), int16_pairs=True,
        ),
        Profile(
            "onnx-reference",
            "the onnx package's reference evaluator (onnx/reference/ops/op_qlinear_*.py): "
            "rint(float64(acc) * float32(s_a*s_b/s_y) + zero point), clip",
            table(("float64-onnx", "float32"), ("float64-onnx", "float32")),
        ),
        Profile(
            "xnnpack",
            "XNNPACK signed int8 kernels, LiteRT's default CPU delegate: conv, depthwise and fully "
            "connected by lrintf(float32(acc) * scale), clamp, + zp (google/XNNPACK "
            "src/xnnpack/requantization.h, fp32 variant); int8 ADD/SUB by XNNPACK's qs8 add "
            "(src/microparams-init.c xnn_init_qs8_add_minmax_scalar_params, src/qs8-vadd); int8 MUL by "
            "the fp32 rule on the int32 product (src/qs8-vmul); int8 QUANTIZE by qs8-vcvt's Q8 multiplier "
            "(src/qs8-vcvt); int8 LEAKY_RELU (qs8-vlrelu), MEAN (reduce-nd) and QUANTIZE from float32 "
            "(f32-qs8-vcvt); each where LiteRT's delegate takes it (intsim.tflite.xnnpack); the "
            "other operators as LiteRT's reference kernels",
            table(("float32", "float32"), ("float32", "float32")), kernels="xnnpack",
        ),
    )
}


def get(profile) -> Profile:
    """The profile called ``profile`` (or ``profile`` itself if it is a ``Profile``)."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except (KeyError, TypeError):
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}") from None


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The x86 feature flags of this CPU (``/proc/cpuinfo``, read once; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def onnxruntime_cpu(flags=None) -> str:
    """The profile of onnxruntime's CPU EP on this machine, as MLAS dispatches its uint8 x int8
    kernels (``platform.cpp``): ``"onnxruntime-cpu-avx2"`` on x86 with AVX2 but neither
    AVX512-VNNI nor AVX-VNNI (or AMX), ``"onnxruntime-cpu"`` elsewhere.  Measured on an AVX2
    CPU against onnxruntime 1.32; the AVX512BW-without-VNNI case follows MLAS's source (its
    AVX512 core kernel also uses vpmaddubsw), not a measurement."""
    flags = cpu_flags() if flags is None else flags
    vnni = {"avx512_vnni", "avx_vnni", "amx_int8"} & flags
    return "onnxruntime-cpu-avx2" if "avx2" in flags and not vnni else "onnxruntime-cpu"


def custom(base, name: str, rules: Mapping | None = None, **changes) -> Profile:
    """A new profile: ``base`` (a name or Profile) with the rule table entries ``rules``
    (operator class -> (rule, multiplier derivation)) replaced and field ``changes`` (e.g.
    ``accumulator_bits=24``)."""
    base = get(base)
    return replace(base, name=name, source=f"custom, from {base.name}", rules_table={**base.table, **(rules or {})},
                   **changes)  # fmt: skip
