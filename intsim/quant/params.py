"""``QuantParams``: scale, zero point and granularity, and the converters' range-to-parameter rules.

``from_range(min, max, dtype, symmetric=..., convention=...)`` reproduces how a converter turns a
calibrated clipping range into parameters:

``convention="onnxruntime"``  ``onnxruntime.quantization.quant_utils.compute_scale_zp``:
    the range is widened to hold 0 (and made symmetric on request); ``scale = (rmax - rmin) /
    (qmax - qmin)`` in float64; ``zero_point = round_half_even(qmin - rmin / scale)`` with that
    float64 scale (``round((qmin + qmax) / 2)`` when symmetric); the scale is then stored as
    float32; a scale below float32's smallest normal becomes ``(1.0, 0)``.  Symmetric int8/int16
    use the narrow ranges [-127, 127] / [-32767, 32767].
``convention="tflite"``  tensorflow/lite/tools/optimize ``GetAsymmetricQuantizationParams``
    (float32 arithmetic: ``scale = (max - min) / (qmax - qmin)``, ``zero_point`` from
    ``qmin - min / scale`` clamped to the range, else rounded half away from zero) and
    ``GetSymmetricQuantizationParams`` (``scale = max(|min|, |max|) / qmax`` of the narrow
    range, zero point 0: int8 weights use 127, int16 activations 32767).

Both take per-channel ``min``/``max`` arrays (with ``axis=``) and compute elementwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim.formats.spec import IntFormat
from intsim.rounding import round_half_away
from intsim.quant.affine import resolve_format, check_scale, check_zero_point, dequantize, quantize

CONVENTIONS = ("onnxruntime", "tflite")


@dataclass(frozen=True, eq=False)
class QuantParams:
    """Immutable affine quantization parameters, ready for ``quantize``/``dequantize``."""

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str = "int8"
    axis: int | None = None
    block_size: int | None = None
    narrow_range: bool = False
    symmetric: bool = False

    def __post_init__(self):
        fmt = resolve_format(self.dtype)
        scale = check_scale(self.scale).astype(np.float32, copy=True)
        zero_point = check_zero_point(self.zero_point, fmt, self.narrow_range).copy()
        if zero_point.size not in (1, scale.size):
            raise ValueError(
                f"zero_point has {zero_point.size} values but scale has {scale.size}"
            )
        if scale.size > 1 and self.axis is None:
            raise ValueError("per-channel or blocked parameters need axis=")
        if self.symmetric and isinstance(fmt, IntFormat) and fmt.signed and np.any(zero_point != 0):
            raise ValueError("symmetric parameters of a signed format must have zero_point 0")
        scale.flags.writeable = False
        zero_point.flags.writeable = False
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)
        object.__setattr__(self, "dtype", fmt.name)

    def quantize(self, x, **kwargs) -> np.ndarray:
        return quantize(
            x, self.scale, self.zero_point, dtype=self.dtype, axis=self.axis,
            block_size=self.block_size, narrow_range=self.narrow_range, **kwargs,
        )  # fmt: skip

    def dequantize(self, q, **kwargs) -> np.ndarray:
        zp = self.zero_point if isinstance(resolve_format(self.dtype), IntFormat) else 0
        return dequantize(
            q, self.scale, zp, axis=self.axis, block_size=self.block_size,
            fmt=self.dtype, **kwargs,
        )  # fmt: skip

    @classmethod
    def from_range(
        cls,
        min,
        max,
        dtype="int8",
        *,
        symmetric: bool = False,
        narrow_range: bool | None = None,
        convention: str = "onnxruntime",
        axis: int | None = None,
    ) -> QuantParams:
        """Parameters for the clipping range ``[min, max]`` (float32 values; arrays for per
        channel along ``axis``).  ``narrow_range`` defaults to ``symmetric`` for signed formats,
        as both converters do; see the module docstring for each ``convention``."""
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        fmt = resolve_format(dtype)
        if not isinstance(fmt, IntFormat):
            raise ValueError(f"from_range builds integer parameters; {fmt.name} is not an integer format")
        rmin = np.asarray(min, dtype=np.float32)
        rmax = np.asarray(max, dtype=np.float32)
        if not (np.all(np.isfinite(rmin)) and np.all(np.isfinite(rmax))):
            raise ValueError("min and max must be finite")
        if np.any(rmin > rmax):
            raise ValueError("min must not exceed max")
        if narrow_range is None:
            narrow_range = symmetric and fmt.signed
        qmin = fmt.min + 1 if (narrow_range and fmt.signed) else fmt.min
        qmax = fmt.max
        if convention == "onnxruntime":
            scale, zero_point = _onnxruntime_rule(rmin, rmax, qmin, qmax, symmetric)
        else:
            scale, zero_point = _tflite_rule(rmin, rmax, qmin, qmax, symmetric)
        if np.ndim(scale) > 0 and axis is None:
            raise ValueError("per-channel min/max need axis=")
        return cls(
            scale, zero_point, fmt.name, axis=axis if np.ndim(scale) > 0 else None,
            narrow_range=narrow_range, symmetric=symmetric,
        )  # fmt: skip


def _onnxruntime_rule(rmin, rmax, qmin, qmax, symmetric):
    rmin = np.minimum(rmin, np.float32(0))
    rmax = np.maximum(rmax, np.float32(0))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    scale64 = (rmax.astype(np.float64) - rmin.astype(np.float64)) / (float(qmax) - float(qmin))
    if symmetric:
        zp = np.full(scale64.shape, np.round((qmin + qmax) / 2.0))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = np.round(qmin - rmin.astype(np.float64) / scale64)
    degenerate = scale64 < np.finfo(np.float32).tiny
    scale = np.where(degenerate, np.float32(1.0), scale64.astype(np.float32))
    zp = np.where(degenerate, 0, zp).astype(np.int64)
    return scale, zp


def _tflite_rule(rmin, rmax, qmin, qmax, symmetric):
    f32 = np.float32
    rmin = np.minimum(rmin, f32(0))
    rmax = np.maximum(rmax, f32(0))
    if symmetric:
        scale = (np.maximum(np.abs(rmax), np.abs(rmin)) / f32(qmax)).astype(f32)
        zp = np.zeros(scale.shape, np.int64)
    else:
        qmin_f, qmax_f = f32(qmin), f32(qmax)
        scale = ((rmax - rmin) / (qmax_f - qmin_f)).astype(f32)
        with np.errstate(divide="ignore", invalid="ignore"):
            from_min = np.where(scale != 0, qmin_f - rmin / scale, qmin_f).astype(f32)
        zp = np.where(
            from_min < qmin_f, qmin, np.where(from_min > qmax_f, qmax, round_half_away(from_min))
        ).astype(np.int64)
    if np.any(scale == 0):
        raise ValueError(
            "the range [0, 0] gives scale 0 under the TFLite convention, which no kernel can use; "
            "widen the range or use convention='onnxruntime' (which substitutes scale 1.0)"
        )
    return scale, zp
