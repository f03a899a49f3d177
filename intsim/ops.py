"""Operators over the integer kernels, shaped as ONNX and TFLite define them.

ONNX (argument order and meaning of the operators, NCHW / OIHW, plus ``profile=``):
``matmul_integer``, ``conv_integer``, ``qlinear_matmul``, ``qlinear_conv``.

TFLite (NHWC input, OHWI filters, TFLite quantization parameters, fused activation):
``fully_connected``, ``conv2d``, ``depthwise_conv2d``.  int16 activations with int8 weights
(int16x8) accumulate in int64 with int64 bias and requantize by the profile's ``int16`` rule.

Every op takes ``backend=`` (``"jit"``, ``"jit-serial"``, ``"reference"``) and an accumulator
model (default: the profile's; int32 wrapping for every named target).  Ops that requantize
return the output array; ``*_integer`` ops return int32 accumulators.  Pass
``return_report=True`` to get ``(output, OverflowReport)``.

One route per layer: ``prepare_fully_connected``, ``prepare_conv2d`` and ``prepare_qlinear_conv``
build a ``PreparedLayer`` (weights packed, multipliers derived, accumulator path decided, once);
the op functions with constant-shaped weights are ``prepare_*(...).run(x, return_report)``, and
both frontends run the same layers.  Matrix products whose right operand is an input
(``matmul_integer``, ``qlinear_matmul``) accumulate directly.  The layers are frontend-neutral
(NHWC, padding resolved, a ``profiles.Requantizer`` passed in); each frontend's conventions
(layout, ``auto_pad``, activation ranges, bias types) are in ``intsim.onnx.conventions`` and
``intsim.tflite.conventions``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from intsim import profiles as _profiles
from intsim.kernels.accumulator import INT32, INT64, Accumulator
from intsim.kernels.conv import PreparedConv
from intsim.kernels.gemm import PackedWeights, PreparedGemm, accumulate_matmul
from intsim.kernels.layout import nchw_to_nhwc, nhwc_to_nchw
from intsim.onnx.conventions import NCHWLayer, check_zero_point_dtype, nchw_report, output_dtype
from intsim.onnx.conventions import check_conv as check_onnx_conv
from intsim.onnx.conventions import padding as onnx_padding
from intsim.quant.affine import check_scale
from intsim.tflite.conventions import ACTIVATIONS as ACTIVATIONS  # re-exported: ops.ACTIVATIONS
from intsim.tflite.conventions import activation_range, check_activations, check_bias


def profile_accumulator(profile, accumulator=None, wide: bool = False) -> Accumulator:
    """``accumulator`` if given, else int64 for int16x8 (``wide``), else ``profile``'s."""
    if accumulator is not None:
        return accumulator
    if wide:
        return INT64
    p = _profiles.get(profile)
    if (p.accumulator_bits, p.accumulator_overflow, p.int16_pairs) == (32, "wrap", False):
        return INT32
    return Accumulator(p.accumulator_bits, p.accumulator_overflow, p.int16_pairs)




def _finish(out, report, return_report):
    return (out, report) if return_report else out


def _int_value(name, v, dtype=None) -> int:
    a = np.asarray(v)
    if a.size != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be one integer, got {v!r}")
    value = int(a.reshape(()))
    if dtype is not None and not np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
        raise ValueError(f"{name}={value} does not fit {np.dtype(dtype)}")
    return value


def _without_pairs(accumulator: Accumulator) -> Accumulator:
    return replace(accumulator, int16_pairs=False) if accumulator.int16_pairs else accumulator


# ---- ONNX ---------------------------------------------------------------------------------------


def _batched_matmul(a, b, fn):
    """numpy matmul broadcasting over leading dimensions, calling ``fn(a2d, b2d)`` per matrix."""
    a = np.asarray(a)
    if isinstance(b, PackedWeights):  # constant weights packed once: plain 2-D products
        if a.ndim < 2:
            raise ValueError("packed weights take a 2-D (or batched) left operand")
        r, rep = fn(a.reshape(-1, a.shape[-1]), b)
        return r.reshape(a.shape[:-1] + (b.shape[1],)), rep
    b = np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul operands must have at least one dimension")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if squeeze_a else a
    b2 = b[:, None] if squeeze_b else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a_b = np.broadcast_to(a2, batch + a2.shape[-2:])
    b_b = np.broadcast_to(b2, batch + b2.shape[-2:])
    results, reports = [], []
    for idx in np.ndindex(*batch):
        r, rep = fn(a_b[idx], b_b[idx])
        results.append(r)
        reports.append(rep)
    out = np.stack(results).reshape(batch + results[0].shape) if batch else results[0]
    if squeeze_a:
        out = out[..., 0, :]
    if squeeze_b:
        out = out[..., 0]
    report = reports[0]
    if len(reports) > 1:
        report.count = sum(r.count for r in reports)
        report.total = sum(r.total for r in reports)
        report.mask = None if report.count == 0 else np.stack(
            [r.mask if r.mask is not None else np.zeros(results[0].shape, bool) for r in reports]
        ).reshape(batch + results[0].shape)  # fmt: skip
    return out, report


def matmul_integer(
    A, B, a_zero_point=None, b_zero_point=None, *, accumulator=None, backend="jit", return_report=False
):
    """ONNX MatMulInteger: int32 ``(A - a_zero_point) @ (B - b_zero_point)``, wrapping in 32 bits.
    ``b_zero_point`` may be per column (the last axis of B).  ``B`` may be
    ``intsim.kernels.pack_weights(B)``, packed once for many calls."""
    check_zero_point_dtype("a_zero_point", a_zero_point, A)
    check_zero_point_dtype("b_zero_point", b_zero_point, B)
    za = 0 if a_zero_point is None else np.asarray(a_zero_point)
    if np.size(za) > 1:
        raise ValueError("per-row a_zero_point is not supported; pass one zero point for A")
    zb = 0 if b_zero_point is None else np.asarray(b_zero_point)
    acc_model = accumulator or INT32
    out, report = _batched_matmul(
        A, B, lambda a, b: accumulate_matmul(a, b, za, zb, accumulator=acc_model, backend=backend)
    )
    return _finish(out, report, return_report)


def _check_qlinear_conv(x_dtype, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, B) -> None:
    _check_scales(x_scale=x_scale, w_scale=w_scale, y_scale=y_scale)
    check_zero_point_dtype("x_zero_point", x_zero_point, np.zeros(0, x_dtype))
    check_zero_point_dtype("w_zero_point", w_zero_point, w)
    if B is not None and np.asarray(B).dtype != np.int32:
        raise ValueError(f"QLinearConv bias B must be int32, got {np.asarray(B).dtype}")


def _onnx_prepared_conv(x_shape, x_dtype, w, w_zp, bias, auto_pad, dilations, group, kernel_shape, pads,
                        strides, accumulator, backend) -> PreparedConv:  # fmt: skip
    """The NHWC layer of an ONNX 2-D convolution (NCHW input of ``x_shape``, OIHW weights)."""
    w = check_onnx_conv(x_shape, w, kernel_shape, auto_pad)
    n, c, h, w_ = x_shape
    return PreparedConv(
        np.transpose(w, (0, 2, 3, 1)), w_zp, bias, input_shape=(n, h, w_, c), input_dtype=x_dtype,
        strides=strides or (1, 1), dilations=dilations or (1, 1), padding=onnx_padding(auto_pad, pads),
        groups=group, accumulator=accumulator, backend=backend,
    )  # fmt: skip


def conv_integer(
    x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET", dilations=None, group=1,
    kernel_shape=None, pads=None, strides=None, accumulator=None, backend="jit", return_report=False,
):  # fmt: skip
    """ONNX ConvInteger (2-D): int32 accumulators, NCHW, padding with the input zero point.
    onnxruntime's kernel (``conv_integer.cc``) is exact for uint8 x int8 on every CPU, so an
    accumulator's ``int16_pairs`` does not act here (checked against onnxruntime 1.32, AVX2)."""
    check_zero_point_dtype("x_zero_point", x_zero_point, x)
    check_zero_point_dtype("w_zero_point", w_zero_point, w)
    x = np.asarray(x)
    conv = _onnx_prepared_conv(x.shape, x.dtype, w, 0 if w_zero_point is None else w_zero_point, None, auto_pad,
                               dilations, group, kernel_shape, pads, strides, _without_pairs(accumulator or INT32),
                               backend)  # fmt: skip
    acc, report = conv.accumulate(nchw_to_nhwc(x, backend=backend), 0 if x_zero_point is None else x_zero_point)
    return _finish(nhwc_to_nchw(acc, backend=backend), nchw_report(report), return_report)


def _requantize(acc, s_in, s_w, s_out, zp_out, out_dtype, profile, op, axis, backend, clamp=None):
    info = np.iinfo(out_dtype)
    qmin, qmax = (info.min, info.max) if clamp is None else clamp
    return _profiles.get(profile).requantize(
        acc, s_in, s_w, s_out, zp_out, qmin=qmin, qmax=qmax, op=op, axis=axis, backend=backend
    ).astype(out_dtype)


def _check_scales(**scales):
    for name, s in scales.items():
        check_scale(s, name)


def qlinear_matmul(
    a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *,
    profile="onnxruntime-cpu", accumulator=None, backend="jit", return_report=False,
):  # fmt: skip
    """ONNX QLinearMatMul: ``requantize((a - a_zp) @ (b - b_zp))`` by ``profile``'s FC rule.
    ``b_scale``/``b_zero_point`` may be per column; the output has ``y_zero_point``'s dtype."""
    _check_scales(a_scale=a_scale, b_scale=b_scale, y_scale=y_scale)
    check_zero_point_dtype("a_zero_point", a_zero_point, a)
    check_zero_point_dtype("b_zero_point", b_zero_point, b)
    out_dtype = output_dtype(y_zero_point)
    acc, report = matmul_integer(
        a, b, a_zero_point, b_zero_point, accumulator=profile_accumulator(profile, accumulator, False),
        backend=backend, return_report=True,
    )  # fmt: skip
    y = _requantize(acc, a_scale, np.asarray(b_scale).reshape(-1), y_scale, y_zero_point, out_dtype,
                    profile, "fc", -1, backend)  # fmt: skip
    return _finish(y, report, return_report)


def qlinear_conv(
    x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
    auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None,
    profile="onnxruntime-cpu", accumulator=None, backend="jit", return_report=False,
):  # fmt: skip
    """ONNX QLinearConv (2-D, NCHW): int32 accumulators plus int32 bias ``B``, requantized by
    ``profile``'s conv rule with per-output-channel ``w_scale`` allowed.  The same layer as
    ``prepare_qlinear_conv(...)(x)``."""
    x = np.asarray(x)
    layer = prepare_qlinear_conv(x.shape, x.dtype, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
                                 y_zero_point, B, auto_pad=auto_pad, dilations=dilations, group=group,
                                 kernel_shape=kernel_shape, pads=pads, strides=strides, profile=profile,
                                 accumulator=accumulator, backend=backend)  # fmt: skip
    return layer.run(x, return_report)


# ---- TFLite -------------------------------------------------------------------------------------


def fully_connected(
    input, filter, bias=None, *, input_scale, input_zero_point=0, filter_scale,
    filter_zero_point=0, output_scale, output_zero_point=0, activation="none", output_dtype=None,
    profile="tflite-reference", accumulator=None, backend="jit", return_report=False,
):  # fmt: skip
    """TFLite FULLY_CONNECTED: ``input`` (batch, depth), ``filter`` (units, depth), ``bias``
    (units).  ``filter_scale`` per tensor or per unit."""
    x, _, _ = check_activations(input, input_zero_point, output_zero_point, output_dtype)
    w = np.asarray(filter)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input depth {x.shape[-1:]} does not match the filter's {w.shape}")
    layer = prepare_fully_connected(
        w, bias, input_dtype=x.dtype, input_scale=input_scale, input_zero_point=input_zero_point,
        filter_scale=filter_scale, filter_zero_point=filter_zero_point, output_scale=output_scale,
        output_zero_point=output_zero_point, activation=activation, output_dtype=output_dtype, profile=profile,
        accumulator=accumulator, backend=backend,
    )  # fmt: skip
    return layer.run(x, return_report)


def conv2d(
    input, filter, bias=None, *, strides=(1, 1), padding="SAME", dilations=(1, 1), input_scale,
    input_zero_point=0, filter_scale, output_scale, output_zero_point=0, activation="none",
    output_dtype=None, profile="tflite-reference", accumulator=None, backend="jit", return_report=False,
):  # fmt: skip
    """TFLite CONV_2D: ``input`` NHWC, ``filter`` OHWI (grouped when I < Cin), symmetric
    per-channel int8 filters, ``bias`` per output channel."""
    return _conv2d(input, filter, bias, strides, padding, dilations, input_scale, input_zero_point, filter_scale,
                   output_scale, output_zero_point, activation, output_dtype, profile, accumulator, backend,
                   return_report, "conv")  # fmt: skip


def _conv2d(input, filter, bias, strides, padding, dilations, input_scale, input_zero_point, filter_scale,
            output_scale, output_zero_point, activation, output_dtype, profile, accumulator, backend, return_report,
            op_class):  # fmt: skip
    x, _, _ = check_activations(input, input_zero_point, output_zero_point, output_dtype)
    w = np.asarray(filter)
    if w.ndim != 4 or x.ndim != 4:
        raise ValueError(f"conv2d takes NHWC input and OHWI filters, got {x.shape} and {w.shape}")
    if x.shape[3] % w.shape[3]:
        raise ValueError(f"input channels {x.shape[3]} are not a multiple of the filter's {w.shape[3]}")
    layer = _prepare_conv(
        w, bias, x.shape, x.dtype, strides, padding, dilations, input_scale, input_zero_point, filter_scale,
        output_scale, output_zero_point, activation, output_dtype, profile, accumulator, backend, op_class,
    )  # fmt: skip
    return layer.run(x, return_report)


def depthwise_conv2d(
    input, filter, bias=None, *, depth_multiplier=1, strides=(1, 1), padding="SAME", dilations=(1, 1),
    input_scale, input_zero_point=0, filter_scale, output_scale, output_zero_point=0,
    activation="none", output_dtype=None, profile="tflite-reference", accumulator=None,
    backend="jit", return_report=False,
):  # fmt: skip
    """TFLite DEPTHWISE_CONV_2D: ``filter`` (1, KH, KW, Cin * depth_multiplier); output channel
    ``o`` reads input channel ``o // depth_multiplier``."""
    x = np.asarray(input)
    w = np.asarray(filter)
    if w.ndim != 4 or w.shape[0] != 1:
        raise ValueError(f"depthwise filters are (1, KH, KW, Cout), got {w.shape}")
    if x.ndim != 4 or w.shape[3] != x.shape[3] * depth_multiplier:
        raise ValueError(
            f"filter channels {w.shape[3]} != input channels {x.shape[-1]} x depth_multiplier {depth_multiplier}"
        )
    ohwi = np.ascontiguousarray(np.transpose(w, (3, 1, 2, 0)))  # (Cout, KH, KW, 1)
    return _conv2d(x, ohwi, bias, strides, padding, dilations, input_scale, input_zero_point, filter_scale,
                   output_scale, output_zero_point, activation, output_dtype, profile, accumulator, backend,
                   return_report, "depthwise")  # fmt: skip


# ---- prepared layers (constant weights, many calls) ----------------------------------------------


class PreparedLayer:
    """A layer whose weights and quantization parameters are fixed: the weights packed, the
    multipliers derived and every static check done once (``intsim.kernels.PreparedGemm`` /
    ``PreparedConv``, ``intsim.profiles.Requantizer``).  The op functions are
    ``prepare_*(...).run(x, return_report)``: one route per layer.  Frontend-neutral: NHWC (or
    (M, K)) activations, padding resolved, the requantizer passed in; ``out_shape`` None for
    convolutions, ``(units,)`` for fully connected layers (the input's leading axes kept)."""

    def __init__(self, accumulate, requantize, input_zero_point: int, out_dtype, out_shape):
        self.accumulate, self.requantize = accumulate, requantize
        self.input_zero_point, self.out_dtype, self.out_shape = input_zero_point, np.dtype(out_dtype), out_shape

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x)
        acc = self.accumulate(x if self.out_shape is None else x.reshape(-1, x.shape[-1]), self.input_zero_point)
        y = self.requantize(acc, out=np.empty(acc.shape, self.out_dtype))
        return y if self.out_shape is None else y.reshape(x.shape[:-1] + self.out_shape)

    def run(self, x, return_report: bool = False):
        """``self(x)``, or with ``return_report=True`` ``(output, OverflowReport)`` (what the op
        functions return)."""
        if not return_report:
            return self(x)
        x = np.asarray(x)
        acc, report = self.accumulate.accumulate(
            x if self.out_shape is None else x.reshape(-1, x.shape[-1]), self.input_zero_point)  # fmt: skip
        y = self.requantize(acc, out=np.empty(acc.shape, self.out_dtype))
        return (y if self.out_shape is None else y.reshape(x.shape[:-1] + self.out_shape)), report


def _prepared_requantizer(profile, op, input_scale, filter_scale, output_scale, output_zero_point,
                          activation, out_dtype, backend, channels):  # fmt: skip
    _check_scales(input_scale=input_scale, filter_scale=filter_scale, output_scale=output_scale)
    info = np.iinfo(out_dtype)
    lo, hi = activation_range(activation, output_scale, int(output_zero_point), info.min, info.max)
    return _profiles.Requantizer(
        _profiles.get(profile), input_scale, np.asarray(filter_scale).reshape(-1), output_scale,
        np.asarray(output_zero_point), qmin=lo, qmax=hi, op=op, backend=backend, channels=channels,
    )  # fmt: skip


def prepare_fully_connected(
    filter, bias=None, *, input_dtype, input_scale, input_zero_point=0, filter_scale, filter_zero_point=0,
    output_scale, output_zero_point=0, activation="none", output_dtype=None, profile="tflite-reference",
    accumulator=None, backend="jit",
) -> PreparedLayer:  # fmt: skip
    """``fully_connected`` with everything but the input fixed: ``prepare_fully_connected(filter,
    ...)(input)`` equals ``fully_connected(input, filter, ...)``."""
    x_dtype = np.dtype(input_dtype)
    x0 = np.zeros((0,), x_dtype)  # the common checks need an array of the input's dtype
    _, int16x8, out_dtype = check_activations(x0, input_zero_point, output_zero_point, output_dtype)
    w = np.asarray(filter)
    if w.ndim != 2:
        raise ValueError(f"filter must be 2-D (units, depth), got {w.shape}")
    gemm = PreparedGemm(w, filter_zero_point, check_bias(bias, int16x8), input_dtype=x_dtype,
                        accumulator=profile_accumulator(profile, accumulator, int16x8), backend=backend)  # fmt: skip
    req = _prepared_requantizer(profile, "int16-fc" if int16x8 else "fc", input_scale, filter_scale, output_scale,
                                output_zero_point, activation, out_dtype, backend, w.shape[0])  # fmt: skip
    return PreparedLayer(gemm, req, _int_value("input_zero_point", input_zero_point, x_dtype), out_dtype, (w.shape[0],))


def prepare_conv2d(
    filter, bias=None, *, input_shape, input_dtype, strides=(1, 1), padding="SAME", dilations=(1, 1),
    input_scale, input_zero_point=0, filter_scale, output_scale, output_zero_point=0, activation="none",
    output_dtype=None, profile="tflite-reference", accumulator=None, backend="jit", depth_multiplier=None,
) -> PreparedLayer:  # fmt: skip
    """``conv2d`` (or, with ``depth_multiplier``, ``depthwise_conv2d`` and its (1, KH, KW, Cout)
    filter) for inputs of ``input_shape``: ``prepare_conv2d(filter, ...)(input)`` equals
    ``conv2d(input, filter, ...)``."""
    w = np.asarray(filter)
    if depth_multiplier is not None:
        if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] != input_shape[3] * depth_multiplier:
            raise ValueError(f"depthwise filters are (1, KH, KW, Cin x depth_multiplier), got {w.shape}")
        w = np.ascontiguousarray(np.transpose(w, (3, 1, 2, 0)))
    if w.ndim != 4 or len(input_shape) != 4 or input_shape[3] % w.shape[3]:
        raise ValueError(f"conv2d takes NHWC input and OHWI filters, got {tuple(input_shape)} and {w.shape}")
    return _prepare_conv(w, bias, input_shape, input_dtype, strides, padding, dilations, input_scale,
                         input_zero_point, filter_scale, output_scale, output_zero_point, activation, output_dtype,
                         profile, accumulator, backend, "conv" if depth_multiplier is None else "depthwise")  # fmt: skip


def _prepare_conv(w, bias, input_shape, input_dtype, strides, padding, dilations, input_scale, input_zero_point,
                  filter_scale, output_scale, output_zero_point, activation, output_dtype, profile, accumulator,
                  backend, op_class) -> PreparedLayer:  # fmt: skip
    """A TFLite conv layer from OHWI filters (``op_class`` "conv" or "depthwise")."""
    x_dtype = np.dtype(input_dtype)
    _, int16x8, out_dtype = check_activations(np.zeros((0,), x_dtype), input_zero_point, output_zero_point, output_dtype)
    conv = PreparedConv(
        w, 0, check_bias(bias, int16x8), input_shape=input_shape, input_dtype=x_dtype, strides=strides,
        dilations=dilations, padding=padding, groups=input_shape[3] // w.shape[3],
        accumulator=profile_accumulator(profile, accumulator, int16x8), backend=backend,
    )  # fmt: skip
    req = _prepared_requantizer(profile, "int16" if int16x8 else op_class, input_scale, filter_scale, output_scale,
                                output_zero_point, activation, out_dtype, backend, w.shape[0])  # fmt: skip
    return PreparedLayer(conv, req, _int_value("input_zero_point", input_zero_point, x_dtype), out_dtype, None)


def prepare_qlinear_conv(
    x_shape, x_dtype, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
    auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None,
    profile="onnxruntime-cpu", accumulator=None, backend="jit",
) -> NCHWLayer:  # fmt: skip
    """``qlinear_conv`` with everything but ``x`` (NCHW, of ``x_shape``) fixed: the returned
    layer maps ``x`` to exactly ``qlinear_conv(x, x_scale, ...)``."""
    x_dtype = np.dtype(x_dtype)
    _check_qlinear_conv(x_dtype, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, B)
    conv = _onnx_prepared_conv(tuple(x_shape), x_dtype, w, w_zero_point if w_zero_point is not None else 0, B,
                               auto_pad, dilations, group, kernel_shape, pads, strides,
                               profile_accumulator(profile, accumulator, False), backend)  # fmt: skip
    out_dtype = output_dtype(y_zero_point)
    info = np.iinfo(out_dtype)
    req = _profiles.Requantizer(_profiles.get(profile), x_scale, np.asarray(w_scale).reshape(-1), y_scale,
                                np.asarray(y_zero_point), qmin=info.min, qmax=info.max, op="conv", backend=backend,
                                channels=w.shape[0])  # fmt: skip
    x_zp = _int_value("x_zero_point", 0 if x_zero_point is None else x_zero_point, x_dtype)
    return NCHWLayer(PreparedLayer(conv, req, x_zp, out_dtype, None), backend)
