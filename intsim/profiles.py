"""Named targets: the bundle of arithmetic rules each deployed runtime applies.

A ``Profile`` says, for each kind of operator, how the real multiplier ``s_in * s_w / s_out`` is
computed and how int32 (or int64) accumulators are requantized, plus the accumulator model and
the rounding of quantize ops.  Rules are named as in ``intsim.fixedpoint``:

requantization  ``"double"`` / ``"single"`` (MultiplyByQuantizedMultiplier), ``"int64"`` (the
                int16x8 reduced-multiplier rule), ``"float32"`` (onnxruntime MLAS, XNNPACK),
                ``"float64-onnx"`` (ONNX reference), ``"float64-away"`` (LiteRT reference FC)
multiplier      ``"float64"``: ``double(s_in) * double(s_w) / double(s_out)``;
                ``"float32-product"``: ``double(float32(s_in * s_w)) / double(s_out)``;
                ``"float32"``: ``float32(float32(s_in * s_w) / s_out)``

``mbqm`` is the MultiplyByQuantizedMultiplier build (``"double"`` or ``"single"``) of the TFLite
operators outside conv, depthwise, transpose conv and fully connected (ADD, SUB, MUL, MEAN,
QUANTIZE, SOFTMAX, LOGISTIC/TANH, LEAKY_RELU, HARD_SWISH): every profile runs every TFLite
operator, the float-rule ones (``xnnpack``, ``onnxruntime-cpu``) included.

Build your own hardware's profile with ``Profile(...)`` or ``custom(base, **changes)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from intsim import fixedpoint as fxp
from intsim._jit import PARALLEL_MIN_WORK
from intsim.quant.affine import check_scale
from intsim.rounding import MODES

REQUANT_RULES = ("double", "single", "int64") + fxp.FLOAT_RULES
MULTIPLIER_RULES = ("float64", "float32-product", "float32")
OVERFLOW = ("wrap", "saturate")
OPS = ("conv", "fc", "int16", "int16-fc")
ACTIVATION_IMPLS = ("lut", "fixed-point")


@dataclass(frozen=True)
class Profile:
    """The arithmetic a target applies.  ``source`` names the code each rule was read from."""

    name: str
    source: str
    requant: str  # conv, depthwise conv and every other MBQM-based op
    multiplier: str
    fc_requant: str  # FullyConnected / MatMul / Gemm
    fc_multiplier: str
    int16_requant: str = "int64"  # int16 activations x int8 weights, int64 accumulators
    int16_fc_requant: str = "int64"  # int16x8 FullyConnected
    activation_impl: str = "lut"  # TFLite int8 LOGISTIC/TANH: float-built table or gemmlowp fixed point
    mbqm: str = "double"  # the MultiplyByQuantizedMultiplier build of TFLite's other operators
    accumulator_bits: int = 32
    accumulator_overflow: str = "wrap"
    int16_pairs: bool = False  # uint8 x int8 products summed in saturating int16 pairs (x86 vpmaddubsw)
    quantize_rounding: str = "nearest_even"  # QuantizeLinear / QUANTIZE and activation bounds

    def __post_init__(self):
        for field, value, allowed in (
            ("requant", self.requant, REQUANT_RULES), ("fc_requant", self.fc_requant, REQUANT_RULES),
            ("int16_requant", self.int16_requant, REQUANT_RULES),
            ("int16_fc_requant", self.int16_fc_requant, REQUANT_RULES),
            ("activation_impl", self.activation_impl, ACTIVATION_IMPLS),
            ("mbqm", self.mbqm, fxp.ROUNDINGS),
            ("multiplier", self.multiplier, MULTIPLIER_RULES),
            ("fc_multiplier", self.fc_multiplier, MULTIPLIER_RULES),
            ("accumulator_overflow", self.accumulator_overflow, OVERFLOW),
            ("quantize_rounding", self.quantize_rounding, tuple(MODES)),
        ):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"profile {self.name!r}: {field} must be one of {allowed}, got {value!r}")
        if not 8 <= self.accumulator_bits <= 64:
            raise ValueError(f"profile {self.name!r}: accumulator_bits must be in [8, 64]")
        if self.int16_pairs and (self.accumulator_bits, self.accumulator_overflow) != (32, "wrap"):
            raise ValueError(f"profile {self.name!r}: int16_pairs needs the 32-bit wrapping accumulator")

    def rules(self, op: str) -> tuple[str, str]:
        """(requantization rule, multiplier rule) for ``op`` in ``"conv"``, ``"fc"``, ``"int16"``
        (int16x8 conv), ``"int16-fc"`` (int16x8 FullyConnected)."""
        if op == "conv":
            return self.requant, self.multiplier
        if op == "fc":
            return self.fc_requant, self.fc_multiplier
        if op == "int16":
            return self.int16_requant, "float64"
        if op == "int16-fc":
            return self.int16_fc_requant, "float64"
        raise ValueError(f"op must be one of {OPS}, got {op!r}")

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
        rule, _ = self.rules(op)
        m = self.real_multiplier(s_in, s_w, s_out, op)
        return requantize(acc, m, zero_point, rule, qmin=qmin, qmax=qmax, axis=axis, backend=backend)


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


def requantize(acc, multiplier, zero_point, rule: str, *, qmin: int, qmax: int, axis=None, backend="jit"):
    """Apply requantization ``rule`` with real ``multiplier`` (float64, per tensor or channel)."""
    if rule in fxp.FLOAT_RULES:
        return fxp.requantize_float(
            acc, multiplier, zero_point, qmin=qmin, qmax=qmax, rule=rule, axis=axis, backend=backend
        )
    if rule != "int64" and rule not in fxp.ROUNDINGS:
        raise ValueError(f"requantization rule must be one of {REQUANT_RULES}, got {rule!r}")
    q, shift = fxp.quantize_multiplier(np.asarray(multiplier, np.float64), single_rounding=rule == "single")
    fxp.check_layer_multiplier(multiplier, shift, rule)
    if rule == "int64":
        scaled = fxp.multiply_by_quantized_multiplier_int64(acc, q, shift, axis=axis, backend=backend)
    else:
        if rule == "single":
            fxp.check_single_rounding_range(acc, q, shift, multiplier, axis)
        scaled = fxp.multiply_by_quantized_multiplier(acc, q, shift, rounding=rule, axis=axis, backend=backend)
    zp = np.asarray(zero_point, dtype=np.int64)
    if zp.size > 1:
        dims = [1] * scaled.ndim
        dims[(axis if axis is not None else -1) % scaled.ndim] = zp.size
        zp = zp.reshape(dims)
    return np.clip(scaled.astype(np.int64) + zp, qmin, qmax).astype(np.int32)


class Requantizer:
    """``Profile.requantize`` with the scales, output zero point, clamp and op fixed (a model's
    layer): the multiplier is derived, checked and, for the fixed-point rules, quantized once.
    ``r(acc)`` takes int32 accumulators whose last axis is the channel axis (NHWC, (M, N)) and
    returns exactly ``profile.requantize(acc, ..., axis=-1)`` (which it calls for other inputs
    and for ``backend="reference"``)."""

    def __init__(self, profile: Profile, s_in, s_w, s_out, zero_point, *, qmin: int, qmax: int,
                 op: str = "conv", backend: str = "jit"):  # fmt: skip
        self.profile, self.args = profile, (s_in, s_w, s_out, zero_point)
        self.qmin, self.qmax, self.op, self.backend = int(qmin), int(qmax), op, backend
        self.rule, _ = profile.rules(op)
        m, zp = fxp.check_requant_params(profile.real_multiplier(s_in, s_w, s_out, op), zero_point, qmin, qmax)
        m, zp = m.reshape(-1), zp.reshape(-1)
        self.channels = max(m.size, zp.size)
        if {m.size, zp.size} - {1, self.channels}:
            raise ValueError(f"per-channel parameters disagree in length: {m.size} and {zp.size}")
        self.zp = np.ascontiguousarray(np.broadcast_to(zp.astype(np.int64), (self.channels,)))
        m = np.ascontiguousarray(np.broadcast_to(m, (self.channels,)))
        self._repeat_cache = (0, None, None)
        self._holds_cache: dict = {}
        # the accumulators the rule accepts: int32, or [-2**47, 2**47) held in int64 for "int64"
        self.acc_limit = 1 << 47 if self.rule == "int64" else 1 << 31
        self.real = m
        self.single_check = False  # single rounding with a left shift: results may leave int32
        self.kernel = None  # None: the general path (the reference backend)
        if backend == "reference":
            pass
        elif self.rule in fxp.FLOAT_RULES:
            self.kernel, self.p1, self.p2 = fxp.float_requant_kernel(backend), m, self.zp
            self.small_kernel = fxp.float_requant_kernel(backend, work=0)
        else:
            q, shift = fxp.quantize_multiplier(m, single_rounding=self.rule == "single")
            fxp.check_layer_multiplier(m, shift, self.rule)
            fxp.check_quantized_multiplier(q, shift, self.rule)
            self.kernel = fxp.mbqm_kernel(self.rule, backend)
            self.small_kernel = fxp.mbqm_kernel(self.rule, backend, work=0)
            self.p1, self.p2 = np.asarray(q, np.int64).reshape(-1), np.asarray(shift, np.int64).reshape(-1)
            self.single_check = self.rule == "single" and bool(np.any(self.p2 > 0))

    def _kernel_takes(self, acc) -> bool:
        """int32 accumulators, or int64 ones (int16x8) within ``acc_limit``; the general path
        reports the others with its error."""
        if acc.dtype == np.int32:
            return True
        return acc.dtype == np.int64 and (acc.size == 0 or (-self.acc_limit <= acc.min() and acc.max() < self.acc_limit))

    def _holds(self, dtype) -> bool:
        """Whether integer ``dtype`` holds [qmin, qmax] (kept per dtype: np.iinfo costs 2 us)."""
        ok = self._holds_cache.get(dtype)
        if ok is None:
            ok = dtype.kind in "iu" and np.iinfo(dtype).min <= self.qmin and np.iinfo(dtype).max >= self.qmax
            self._holds_cache[dtype] = ok
        return ok

    def _repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The per-tensor parameters repeated ``n`` times (kept for the last ``n`` asked)."""
        if self._repeat_cache[0] != n:
            self._repeat_cache = (n, np.repeat(self.p1, n), np.repeat(self.p2, n))
        return self._repeat_cache[1], self._repeat_cache[2]

    def __call__(self, acc, out=None) -> np.ndarray:
        """The requantized values as int32, or written into ``out`` (C-contiguous, ``acc``'s
        shape, an integer dtype holding ``[qmin, qmax]``, e.g. the layer's output type) and
        returned: the float rules' kernel then stores the final values without a cast pass."""
        acc = np.asarray(acc)
        if out is not None and (out.shape != acc.shape or not out.flags.c_contiguous or not self._holds(out.dtype)):
            raise ValueError(f"out must be a C-contiguous integer array of shape {acc.shape} holding "
                             f"[{self.qmin}, {self.qmax}], got {out.dtype} {out.shape}")  # fmt: skip
        result = np.empty(acc.shape, np.int32) if out is None else out
        c = self.channels
        if (self.kernel is None or (c > 1 and acc.shape[-1] != c) or not self._kernel_takes(acc)):
            result[...] = self.profile.requantize(acc, *self.args, qmin=self.qmin, qmax=self.qmax, op=self.op,
                                                  axis=-1, backend=self.backend)  # fmt: skip
            return result
        p1, p2 = self.p1, self.p2
        if c == 1 and acc.ndim and acc.shape[-1] > 1:  # per tensor: repeat the parameters along
            c = acc.shape[-1]  # the last axis, whose loop vectorizes
            p1, p2 = self._repeated(c)
        view = np.ascontiguousarray(acc).reshape(-1, c, 1)
        kernel = self.kernel if view.size >= PARALLEL_MIN_WORK else self.small_kernel
        if self.rule in fxp.FLOAT_RULES:  # clamps and adds the zero point: stores final values
            kernel(view, p1, p2, self.qmin, self.qmax, fxp.FLOAT_RULES.index(self.rule), result.reshape(view.shape))
            return result
        if self.single_check:
            fxp.check_single_rounding_range(acc, self.p1, self.p2, self.real, -1)
        scaled = np.empty(view.shape, np.int32)
        kernel(view, p1, p2, scaled)
        result[...] = np.clip(scaled.reshape(-1, c).astype(np.int64) + self.zp, self.qmin, self.qmax).reshape(acc.shape)
        return result


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
            requant="double", multiplier="float64", fc_requant="float64-away",
            fc_multiplier="float64", int16_fc_requant="float64-away", quantize_rounding="nearest_away",
        ),
        Profile(
            "tflm",
            "TFLite Micro reference kernels = CMSIS-NN default (tensorflow/tflite-micro "
            "tensorflow/lite/kernels/internal/common.cc, reference/integer_ops/*.h): MBQM double "
            "rounding everywhere; FullyConnected multiplier from a float32 product; int8 "
            "LOGISTIC/TANH in gemmlowp fixed point",
            requant="double", multiplier="float64", fc_requant="double",
            fc_multiplier="float32-product", quantize_rounding="nearest_away",
            activation_impl="fixed-point",
        ),
        Profile(
            "tflm-single-rounding",
            "TFLite Micro built with TFLITE_SINGLE_ROUNDING (tensorflow/lite/kernels/internal/common.cc, "
            "quantization_util.cc) = CMSIS-NN with CMSIS_NN_USE_SINGLE_ROUNDING: "
            "(acc * qm + 2**(30 - shift)) >> (31 - shift)",
            requant="single", multiplier="float64", fc_requant="single",
            fc_multiplier="float32-product", quantize_rounding="nearest_away",
            activation_impl="fixed-point", mbqm="single",
        ),
        Profile(
            "onnxruntime-cpu",
            "onnxruntime CPU EP, MLAS MlasRequantizeOutput (onnxruntime/core/mlas/lib/quantize.cpp; "
            "qlinearconv.cc, quantize_linear_matmul.cc): float32(acc) * float32(s_x*s_w/s_y), "
            "round half even, clamp, + zero point",
            requant="float32", multiplier="float32", fc_requant="float32", fc_multiplier="float32",
        ),
        Profile(
            "onnxruntime-cpu-avx2",
            "onnxruntime CPU EP on an x86 CPU without VNNI (AVX2 or AVX512BW): as onnxruntime-cpu, "
            "but uint8 x int8 GEMMs and convolutions use vpmaddubsw (onnxruntime/core/mlas/lib/"
            "qgemm_kernel_avx2.cpp), whose adjacent product pairs saturate to int16 "
            "(intsim.kernels.pairs); the depthwise kernel does not",
            requant="float32", multiplier="float32", fc_requant="float32", fc_multiplier="float32",
            int16_pairs=True,
        ),
        Profile(
            "onnx-reference",
            "the onnx package's reference evaluator (onnx/reference/ops/op_qlinear_*.py): "
            "rint(float64(acc) * float32(s_a*s_b/s_y) + zero point), clip",
            requant="float64-onnx", multiplier="float32", fc_requant="float64-onnx",
            fc_multiplier="float32",
        ),
        Profile(
            "xnnpack",
            "XNNPACK signed int8 kernels (google/XNNPACK src/xnnpack/requantization.h, fp32 "
            "variant), LiteRT's default CPU delegate: lrintf(float32(acc) * scale), clamp, + zp",
            requant="float32", multiplier="float32", fc_requant="float32", fc_multiplier="float32",
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


def custom(base, name: str, **changes) -> Profile:
    """A new profile: ``base`` (a name or Profile) with ``changes`` (e.g. accumulator_bits=24)."""
    return replace(get(base), name=name, source=f"custom, from {get(base).name}", **changes)
