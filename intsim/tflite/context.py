"""What every TFLite kernel shares: the registry, the execution context and the small rules
(activation ranges, MultiplyByQuantizedMultiplier as the profile builds it, padding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim import fixedpoint as fxp
from intsim import frontend
from intsim import profiles as _profiles
from intsim.kernels.geometry import output_size, resolve_padding
from intsim.tflite.conventions import activation_range
from intsim.tflite.model import Model, ModelError, Operator, Tensor

KERNELS = frontend.Registry("TFLite operator")  # BuiltinOperator name -> fn(ctx, op) -> outputs

# the operators that quantize their own multipliers, by profile operator class (profiles.OP_CLASSES)
OWN_MULTIPLIER_CLASS = {
    "ADD": "add", "SUB": "add", "MUL": "mul", "MEAN": "mean", "SUM": "mean", "SOFTMAX": "softmax", "QUANTIZE": "quantize",
    "SVDF": "recurrent", "UNIDIRECTIONAL_SEQUENCE_LSTM": "recurrent",
    **dict.fromkeys(("DIV", "SQUARED_DIFFERENCE", "RSQRT", "PRELU", "RESIZE_BILINEAR", "EQUAL", "NOT_EQUAL", "LESS",
                     "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "BATCH_MATMUL", "ABS", "ADD_N", "L2_NORMALIZATION", "CUMSUM"), "arithmetic"),
    **dict.fromkeys(("LOGISTIC", "TANH", "LEAKY_RELU", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1"), "activation"),
}  # fmt: skip

# schema.fbs ActivationFunctionType
ACTIVATION = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
PADDING = {0: "SAME", 1: "VALID"}


kernel = KERNELS.register  # @kernel("ADD", "SUB"): fn(ctx, op) -> list of output arrays


def reported(model: Model, op: Operator):
    """Errors of ``op``'s kernel (or of compiling it into a program) as ``ModelError`` naming the
    model and the operator."""
    return frontend.reported(ModelError, f"{model.source}: {op.describe()}")


@dataclass
class Context:
    model: Model
    profile: _profiles.Profile
    values: dict
    backend: str = "jit"

    def rounding(self, op: Operator) -> str:
        """The MultiplyByQuantizedMultiplier build (``"double"`` or ``"single"``) the profile
        gives ``op``'s operator class (``OWN_MULTIPLIER_CLASS``); a profile whose rule for that
        class is another kind raises, naming the operator and the profile."""
        return self.profile.mbqm(OWN_MULTIPLIER_CLASS[op.op], op.describe())

    @property
    def tflm(self) -> bool:
        """TFLite Micro kernels (fixed-point LOGISTIC/TANH) rather than LiteRT's reference ones."""
        return self.profile.activation_impl == "fixed-point"

    def refuse(self, op: Operator, litert: str | None = None, tflm: str | None = None) -> None:
        """Raise ``ModelError`` where the runtime the profile models refuses ``op``: the reason
        ``tflm`` under TFLite Micro's kernels (``Profile.kernels == "tflm"``), ``litert`` under
        LiteRT's."""
        why = tflm if self.profile.kernels == "tflm" else litert
        if why:
            runtime = "TFLite Micro" if self.profile.kernels == "tflm" else "LiteRT"
            raise ModelError(f"{op.describe()}: {why}: {runtime} cannot run it (profile {self.profile.name!r})")

    def tensor(self, index: int) -> Tensor:
        return self.model.tensors[index]

    def once(self, key, build):
        """``build()`` for ``key`` under this run's profile and backend, computed on first use and
        kept on the model (``frontend.prepared``): for what depends on the model's constant
        tensors and options only (checks, multipliers, prepared layers)."""
        return frontend.prepared(self.model.prepared, key, self.profile, self.backend, build)

    def input(self, op: Operator, k: int, required: bool = True):
        """The value of ``op``'s ``k``-th input (``None`` for an omitted optional input)."""
        if k >= len(op.inputs) or op.inputs[k] < 0:
            if required:
                raise ModelError(f"{op.describe()}: input {k} is missing")
            return None
        i = op.inputs[k]
        if i in self.values:
            return self.values[i]
        t = self.tensor(i)
        if t.data is None:
            raise ModelError(f"{op.describe()}: {t.describe()} has no value (not computed and not constant)")
        return t.data

    def assign(self, op: Operator, k: int, value: np.ndarray) -> None:
        """Write ``value`` into ``op``'s ``k``-th input, a variable (state) tensor."""
        t = self.in_tensor(op, k)
        if not t.is_variable:
            raise ModelError(f"{op.describe()}: input {k}, {t.describe()}, must be a variable (state) tensor")
        self.values[t.index] = np.asarray(value).astype(t.dtype, copy=False).reshape(t.shape)

    def in_tensor(self, op: Operator, k: int) -> Tensor:
        return self.tensor(op.inputs[k])

    def out_tensor(self, op: Operator, k: int = 0) -> Tensor:
        return self.tensor(op.outputs[k])

    def mbqm(self, op: Operator, x, real_multiplier: float) -> np.ndarray:
        """``MultiplyByQuantizedMultiplier(x, QuantizeMultiplier(real))`` (int32 variant) in the
        build ``op`` takes (``rounding``)."""
        rounding = self.rounding(op)
        q, shift = fxp.quantize_multiplier(float(real_multiplier), single_rounding=rounding == "single")
        return self._mbqm(x, q, shift, rounding)

    def mbqm_raw(self, op: Operator, x, q: int, shift: int) -> np.ndarray:
        """``MultiplyByQuantizedMultiplier(x, q, shift)`` in the build ``op`` takes."""
        return self._mbqm(x, q, shift, self.rounding(op))

    def _mbqm(self, x, q, shift, rounding) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        out = fxp.multiply_by_quantized_multiplier(x.reshape(-1), q, shift, rounding=rounding, backend=self.backend)
        return out.astype(np.int64).reshape(x.shape)


def qparams(t: Tensor, op: Operator | None = None) -> tuple[np.float32, int]:
    """Per-tensor (scale, zero point) of an activation tensor."""
    if t.checked_qparams is not None:
        return t.checked_qparams
    where = f"{op.describe()}: " if op is not None else ""
    if not t.quantized:
        raise ModelError(f"{where}{t.describe()} has no quantization parameters")
    if t.scale.size != 1:
        raise ModelError(f"{where}{t.describe()} must be quantized per tensor, has {t.scale.size} scales")
    scale = np.float32(t.scale[0])
    if not np.isfinite(scale) or scale <= 0:
        raise ModelError(f"{where}{t.describe()} has scale {scale}; scales must be finite and positive")
    t.checked_qparams = (scale, int(t.zero_point[0]))
    return t.checked_qparams


def broadcast(op: Operator, a, b) -> list[np.ndarray]:
    """``a`` and ``b`` as int64 arrays of their broadcast shape (TFLite's binary operators)."""
    try:
        return np.broadcast_arrays(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64))
    except ValueError:
        raise ModelError(f"{op.describe()}: input shapes {np.shape(a)} and {np.shape(b)} do not broadcast") from None


def checked_log2(scale) -> tuple[int, bool]:
    """``CheckedLog2`` (``kernel_util.cc``): ``round(log(x) / log(2))`` in float32, and whether
    the scale is a power of two (the fraction below 1e-3)."""
    v = np.float32(np.log(np.float32(scale))) * np.float32(1 / np.log(np.float32(2)))
    p = int(np.sign(v) * np.floor(abs(v) + 0.5))  # std::round: half away from zero
    return p, abs(float(v) - p) < 1e-3


def type_range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def act_range(op: Operator, out: Tensor) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` for the op's fused activation."""
    lo, hi = type_range(out.dtype)
    scale, zp = qparams(out, op)
    return activation_range(activation_name(op), scale, zp, lo, hi)


def activation_name(op: Operator) -> str:
    """The op's fused activation as ``intsim.ops`` names it."""
    code = op.options.get("fused_activation_function", 0)
    if code not in ACTIVATION:
        raise ModelError(f"{op.describe()}: fused activation {code} is not supported (only NONE, RELU, RELU_N1_TO_1, RELU6)")
    return ACTIVATION[code]


def check_types(op: Operator, tensors, allowed) -> np.dtype:
    """All ``tensors`` share one dtype from ``allowed``; returns it."""
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or next(iter(dtypes)) not in [np.dtype(a) for a in allowed]:
        names = ", ".join(t.describe() for t in tensors)
        raise ModelError(f"{op.describe()}: unsupported types ({names}); supported: {[np.dtype(a).name for a in allowed]}")
    return next(iter(dtypes))


def padding_name(op: Operator) -> str:
    code = op.options.get("padding", 0)
    if code not in PADDING:
        raise ModelError(f"{op.describe()}: padding {code} is not supported")
    return PADDING[code]


def geometry(op: Operator, in_hw, kernel_hw, strides) -> tuple[tuple[int, int], tuple[int, int]]:
    """TFLite ``ComputePaddingHeightWidth`` (dilation 1): ((out_h, out_w), (pad_top, pad_left)),
    by the shared rules of ``kernels.geometry``."""
    top, left, bottom, right = resolve_padding(padding_name(op), in_hw, kernel_hw, strides, (1, 1))
    out = tuple(output_size(n, k, s, 1, before, after) for n, k, s, before, after
                in zip(in_hw, kernel_hw, strides, (top, left), (bottom, right), strict=True))  # fmt: skip
    return out, (top, left)
