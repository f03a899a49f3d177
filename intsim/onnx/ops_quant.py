"""Quantized ONNX operators, each reproducing a named target's arithmetic.

Standard domain (ONNX semantics; the profile picks the requantization rule of QLinearConv and
QLinearMatMul): QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, Cast, MatMulInteger,
ConvInteger, QLinearMatMul, QLinearConv.

``com.microsoft`` (the contrib ops onnxruntime's quantizer emits; onnxruntime's CPU kernels are
the only definition, so every profile runs them as onnxruntime does, source named per op):
QGemm, QLinearAdd, QLinearMul, QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat,
QLinearLeakyRelu, QLinearSigmoid.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from intsim import formats, ops
from intsim import profiles as _profiles
from intsim.kernels.gemm import PreparedGemm
from intsim.kernels.geometry import same_pads, windows
from intsim.onnx import mlas
from intsim.onnx.graph import ModelError, elem_dtype
from intsim.onnx.registry import ms_op, op, require, scalar_param
from intsim.quant.affine import dequantize, quantize

F32 = np.float32


def fmt_name(a: np.ndarray) -> str:
    """The intsim format of an array's dtype (``int8``, ``int4``, ``float8_e4m3fn``, ...)."""
    name = np.dtype(a.dtype).name
    if name not in formats.REGISTRY:
        raise ModelError(f"no quantized format for dtype {name}")
    return name


def from_codes(codes: np.ndarray, fmt: str) -> np.ndarray:
    """intsim's results (integer values or float-format codes) as the ONNX element type."""
    f = formats.get(fmt)
    dtype = np.dtype(getattr(ml_dtypes, fmt, None) or f.numpy_dtype) if fmt in (
        "int4", "uint4", "int2", "uint2") else None  # fmt: skip
    if dtype is not None:
        return codes.astype(dtype)
    if isinstance(f, formats.FloatFormat) and fmt not in ("float32", "float16"):
        return codes.view(np.dtype(getattr(ml_dtypes, fmt)))
    return codes


def _real(a):
    """ml_dtypes values (float8 zero points, int4, ...) as float64 or int64, exactly."""
    a = np.asarray(a)
    if a.dtype.itemsize > 1 or a.dtype.name not in formats.REGISTRY:
        return a
    fmt = formats.get(a.dtype.name)
    return a.astype(np.float64) if isinstance(fmt, formats.FloatFormat) else a.astype(np.int64)


def _zero_point_or_default(zp, dtype):
    return np.zeros((), dtype) if zp is None else np.asarray(zp)


# ---- standard domain ----------------------------------------------------------------------------


@op("QuantizeLinear")
def quantize_linear(ctx, node, x, y_scale, y_zero_point=None):
    """ONNX QuantizeLinear (opsets 10-23): ``saturate(round_half_even(x / y_scale) + zp)`` with
    per-tensor, per-axis and blocked scales; integer and float8/float4 outputs."""
    if y_zero_point is not None:
        out_dtype = np.asarray(y_zero_point).dtype
    elif node.attr("output_dtype"):
        out_dtype = elem_dtype(node.attr("output_dtype"))
    else:
        out_dtype = np.dtype(np.uint8)
    fmt = fmt_name(np.empty(0, out_dtype))
    scale = np.asarray(y_scale)
    block = node.attr("block_size", 0) or None
    axis = node.attr("axis", 1) if (scale.size > 1 or block) else None
    zp = 0 if y_zero_point is None else _real(y_zero_point)
    x = np.asarray(x)
    if x.dtype.name == "bfloat16":  # widen exactly
        x = x.astype(np.float32)
    q = quantize(x, scale, zp, dtype=fmt, axis=axis, block_size=block,
                 saturate=bool(node.attr("saturate", 1)), backend=ctx.backend)  # fmt: skip
    return [from_codes(q, fmt)]


@op("DequantizeLinear")
def dequantize_linear(ctx, node, x, x_scale, x_zero_point=None):
    """ONNX DequantizeLinear (opsets 10-23): ``(x - zp) * scale`` in the scale's precision."""
    scale = np.asarray(x_scale)
    require(node, scale.dtype.kind == "f", f"x_scale must be float32 or float16 here, got {scale.dtype}")
    block = node.attr("block_size", 0) or None
    axis = node.attr("axis", 1) if (scale.size > 1 or block) else None
    x = np.asarray(x)
    zp = 0 if x_zero_point is None else _real(x_zero_point)
    fmt = None
    if x.dtype.name in formats.REGISTRY and isinstance(formats.get(x.dtype.name), formats.FloatFormat):
        x, fmt = x.view(np.uint8), x.dtype.name  # float8 / float4 codes
    y = dequantize(x, scale, zp, axis=axis, block_size=block, dtype=scale.dtype, fmt=fmt)
    if node.attr("output_dtype"):
        y = y.astype(elem_dtype(node.attr("output_dtype")))
    return [y]


@op("S8ToU8", domain="intsim.S8ToU8")
def s8_to_u8(ctx, node, x):
    """int8 values + 128 as uint8: onnxruntime's QDQS8ToU8Transformer on a pair (``fuse``)."""
    return [(np.asarray(x).astype(np.int16) + 128).astype(np.uint8)]


@op("U8ToS8", domain="intsim.S8ToU8")
def u8_to_s8(ctx, node, x):
    """The int8 tensor back from a fused kernel's uint8 output (for reports; nothing reads it)."""
    return [(np.asarray(x).astype(np.int16) - 128).astype(np.int8)]


@op("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx, node, x):
    """ONNX DynamicQuantizeLinear to uint8, in float32 as the spec (and onnxruntime) compute
    it: range widened to include 0, ``scale = (max - min) / 255`` (1 when the range is empty),
    ``zp = round_half_even(clip(0 - min / scale, 0, 255))``."""
    x = np.asarray(x, F32)
    require(node, bool(np.isfinite(x).all()), "input holds NaN or infinity")
    hi = F32(max(F32(0), x.max(initial=F32(0))))
    lo = F32(min(F32(0), x.min(initial=F32(0))))
    scale = F32(F32(1) if hi == lo else F32(hi - lo)) / F32(255)
    zp = np.uint8(np.rint(np.clip(F32(0) - lo / scale, F32(0), F32(255))))
    y = quantize(x, F32(scale), zp, dtype="uint8", backend=ctx.backend)
    return [y, np.asarray(F32(scale)), np.asarray(zp)]


_E8M0_ROUND = {"up": "up", "down": "down", "nearest": "nearest_away"}


@op("Cast", "CastLike")
def cast(ctx, node, x, like=None):
    """ONNX Cast: to and from float8 (``saturate``), float4, E8M0 (``round_mode``), int4, int2
    and the IEEE types.  Floats round to nearest even; to 2/4-bit integers values truncate
    toward zero and wrap modulo ``2**bits``, as the ONNX reference (ml_dtypes) converts."""
    to = np.asarray(like).dtype if node.op_type == "CastLike" else elem_dtype(node.attr("to"))
    x = np.asarray(x)
    src = x.astype(np.float64) if x.dtype.kind == "V" else x
    name = to.name
    if name in formats.REGISTRY and isinstance(formats.get(name), formats.FloatFormat) and \
            name not in ("float32", "float16"):  # fmt: skip
        if src.dtype.kind in "iub":
            src = src.astype(np.float64)
        rounding = _E8M0_ROUND[node.attr("round_mode", "up")] if name == "float8_e8m0fnu" else "nearest_even"
        codes = formats.encode(src, name, saturate=bool(node.attr("saturate", 1)), rounding=rounding,
                               nan="raise" if formats.get(name).has_nan else "zero", backend=ctx.backend)  # fmt: skip
        return [from_codes(codes, name)]
    if name in ("int4", "uint4", "int2", "uint2"):  # C conversion, then modulo 2**bits
        f = formats.get(name)
        v = (np.trunc(src) if src.dtype.kind == "f" else src).astype(np.int64)
        return [from_codes(((v - f.min) % (1 << f.bits) + f.min).astype(f.numpy_dtype), name)]
    return [src.astype(to)]


@op("MatMulInteger")
def matmul_integer(ctx, node, A, B, a_zero_point=None, b_zero_point=None):
    """ONNX MatMulInteger: int32 ``(A - a_zp) @ (B - b_zp)``, b_zp per column allowed."""
    return [ops.matmul_integer(A, B, a_zero_point, b_zero_point, backend=ctx.backend,
                               accumulator=ops.profile_accumulator(ctx.profile))]


def _conv_attrs(node):
    return dict(auto_pad=node.attr("auto_pad", "NOTSET"), dilations=node.attr("dilations"),
                group=node.attr("group", 1), kernel_shape=node.attr("kernel_shape"),
                pads=node.attr("pads"), strides=node.attr("strides"))  # fmt: skip


@op("ConvInteger")
def conv_integer(ctx, node, x, w, x_zero_point=None, w_zero_point=None):
    """ONNX ConvInteger (2-D): int32 accumulators, padding with the input zero point."""
    return [ops.conv_integer(x, w, x_zero_point, w_zero_point, backend=ctx.backend,
                             accumulator=ops.profile_accumulator(ctx.profile), **_conv_attrs(node))]


@op("QLinearMatMul")
def qlinear_matmul(ctx, node, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    """ONNX QLinearMatMul by the profile's FC rule (onnxruntime: MLAS float32 requantization)."""
    return [ops.qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp,
                               profile=ctx.profile, backend=ctx.backend)]  # fmt: skip


@op("QLinearConv")
def qlinear_conv(ctx, node, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B=None):
    """ONNX QLinearConv (2-D) by the profile's conv rule, per-channel weights allowed."""
    x_zp = _zero_point_or_default(x_zp, np.asarray(x).dtype)
    w_zp = _zero_point_or_default(w_zp, np.asarray(w).dtype)
    x = np.asarray(x)
    layer = ctx.prepared_layer(node, (x.shape, x.dtype), lambda: ops.prepare_qlinear_conv(
        x.shape, x.dtype, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B, profile=ctx.profile,
        backend=ctx.backend, **_conv_attrs(node)))  # fmt: skip
    if layer is not None:
        return [layer(x)]
    return [ops.qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B,
                             profile=ctx.profile, backend=ctx.backend, **_conv_attrs(node))]  # fmt: skip


# ---- com.microsoft (onnxruntime contrib ops) ----------------------------------------------------


def _range(dtype):
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _mlas_requantize(acc, multiplier, zero_point, dtype):
    """MLAS ``MlasRequantizeOutput``: ``float32(acc) * float32(multiplier)``, round half even,
    clamp, ``+ zero_point`` (the profiles' ``"float32"`` rule)."""
    lo, hi = _range(dtype)
    m = np.asarray(multiplier, F32).astype(np.float64)
    return _profiles.requantize(acc, m, zero_point, "float32", qmin=lo, qmax=hi, axis=-1).astype(dtype)


def _prepared_qgemm(node, a_dtype, alpha, a_scale, B, b_scale, b_zp, C, y_scale, y_zp, profile, backend):
    """QGemm with constant B, C and scales: ``PreparedGemm`` (C, added modulo 2**32 like MLAS's
    int32 add, is the bias) and a ``Requantizer`` with onnxruntime's float32 rule, whose
    multiplier ``float32(float32(s_in * b_scale) / y_scale)`` with ``s_in = alpha * a_scale`` is
    the kernel's scale."""
    gemm = PreparedGemm(np.ascontiguousarray(B.T), np.asarray(b_zp), None if C is None else np.asarray(C).reshape(-1),
                        input_dtype=a_dtype, accumulator=ops.profile_accumulator(profile), backend=backend)  # fmt: skip
    lo, hi = _range(np.asarray(y_zp).dtype)
    s_in = alpha * F32(scalar_param(node, "a_scale", a_scale))
    req = _profiles.Requantizer(_profiles.get("onnxruntime-cpu"), s_in, np.asarray(b_scale, F32).reshape(-1),
                                F32(scalar_param(node, "y_scale", y_scale)), np.asarray(y_zp), qmin=lo, qmax=hi,
                                op="fc", backend=backend)  # fmt: skip
    dtype = np.asarray(y_zp).dtype
    return lambda a, a_zp: req(gemm(a, np.asarray(a_zp))).astype(dtype)


@ms_op("QGemm")
def qgemm(ctx, node, A, a_scale, a_zp, B, b_scale, b_zp, C=None, y_scale=None, y_zp=None):
    """onnxruntime QGemm (contrib_ops/cpu/quantization/quant_gemm.cc): int32 GEMM plus int32
    bias ``C``; output scale ``float32(alpha * a_scale * b_scale[j]) / y_scale`` in float32,
    then ``MlasRequantizeOutput``.  Without ``y_scale`` the output is float32
    ``float32(acc) * scale``."""
    A, B = np.asarray(A), np.asarray(B)
    if node.attr("transA", 0):
        A = A.T
    if node.attr("transB", 0):
        B = B.T
    alpha = F32(node.attr("alpha", 1.0))
    if y_scale is not None and A.ndim == B.ndim == 2 and (C is None or np.size(C) == B.shape[1]):
        layer = ctx.prepared_layer(node, A.dtype, lambda: _prepared_qgemm(
            node, A.dtype, alpha, a_scale, B, b_scale, b_zp, C, y_scale, y_zp, ctx.profile, ctx.backend))  # fmt: skip
        if layer is not None:
            return [layer(A, a_zp)]
    acc = ops.matmul_integer(A, B, np.asarray(a_zp), np.asarray(b_zp), backend=ctx.backend,
                             accumulator=ops.profile_accumulator(ctx.profile))
    if C is not None:
        acc = (acc.astype(np.int64) + np.asarray(C, np.int64)).astype(np.int32)  # MLAS adds in int32
    scale = (alpha * F32(scalar_param(node, "a_scale", a_scale))) * np.asarray(b_scale, F32).reshape(-1)
    if y_scale is None:
        return [acc.astype(F32) * scale.astype(F32)]
    scale = (scale / F32(scalar_param(node, "y_scale", y_scale))).astype(F32)
    return [_mlas_requantize(acc, scale, int(np.asarray(y_zp)), np.asarray(y_zp).dtype)]


def _binary_params(node, a_scale, a_zp, b_scale, b_zp, c_scale, c_zp):
    return (F32(scalar_param(node, "A_scale", a_scale)), int(np.asarray(a_zp)),
            F32(scalar_param(node, "B_scale", b_scale)), int(np.asarray(b_zp)),
            F32(scalar_param(node, "C_scale", c_scale)), int(np.asarray(c_zp)))  # fmt: skip


@ms_op("QLinearAdd")
def qlinear_add(ctx, node, A, a_scale, a_zp, B, b_scale, b_zp, c_scale, c_zp=None):
    """onnxruntime QLinearAdd on x86-64 (``MlasQLinearAddKernelHelper``, the SSE2 branch of
    mlas/lib/qladd.cpp), all float32: ``ra = sa / sc``, ``rb = sb / sc``,
    ``fixed = float(zc) - (ra * za + rb * zb)``, then ``cvtps2dq((fixed + a * ra) + b * rb)``
    (round half even) saturated to the output type; numpy broadcasting."""
    A, B = np.asarray(A), np.asarray(B)
    require(node, A.dtype == B.dtype and A.dtype in (np.int8, np.uint8), f"A and B must both be int8 or uint8, got {A.dtype} and {B.dtype}")
    c_zp = _zero_point_or_default(c_zp, A.dtype)
    sa, za, sb, zb, sc, zc = _binary_params(node, a_scale, a_zp, b_scale, b_zp, c_scale, c_zp)
    ra, rb = F32(sa / sc), F32(sb / sc)
    fixed = F32(F32(zc) - F32(F32(ra * F32(za)) + F32(rb * F32(zb))))
    if B.size == 1:  # IsScalarB: b * rb is folded into the constant first
        fixed = F32(fixed + F32(B.astype(F32).reshape(()) * rb))
        v = fixed + A.astype(F32) * ra
    elif A.size == 1:  # onnxruntime swaps the operands so that B is the scalar
        fixed = F32(fixed + F32(A.astype(F32).reshape(()) * ra))
        v = fixed + B.astype(F32) * rb
    else:
        v = (fixed + A.astype(F32) * ra) + B.astype(F32) * rb
    return [mlas.cvtps2dq_saturate(v, A.dtype)]


@ms_op("QLinearMul")
def qlinear_mul(ctx, node, A, a_scale, a_zp, B, b_scale, b_zp, c_scale, c_zp=None):
    """onnxruntime QLinearMul on x86-64 (``MlasQLinearMulVectorS16``, the SSE2 branch of
    mlas/lib/qlmul.cpp): the exact int32 product ``(a - za) * (b - zb)``, converted to float32,
    times ``ratio = float32(float32(sa * sb) / sc)``, plus ``float32(zc)`` (separate float32
    multiply and add, no FMA), ``cvtps2dq`` (round half even), saturated to the output type.
    The product is commutative, so onnxruntime's swap of a scalar A into the B slot changes
    nothing; numpy broadcasting."""
    A, B = np.asarray(A), np.asarray(B)
    require(node, A.dtype == B.dtype and A.dtype in (np.int8, np.uint8), f"A and B must both be int8 or uint8, got {A.dtype} and {B.dtype}")
    c_zp = _zero_point_or_default(c_zp, A.dtype)
    sa, za, sb, zb, sc, zc = _binary_params(node, a_scale, a_zp, b_scale, b_zp, c_scale, c_zp)
    ratio = F32(F32(sa * sb) / sc)
    product = (A.astype(np.int32) - za) * (B.astype(np.int32) - zb)  # |.| <= 255 * 255: exact
    v = product.astype(F32) * ratio + F32(zc)
    return [mlas.cvtps2dq_saturate(v, A.dtype)]


def _dequant_table_value(x, scale, zp):
    """``x_scale * (int(x) - x_zero_point)`` in float32, as onnxruntime's lookup tables and
    QLinearAveragePool dequantize."""
    return F32(scale) * (np.asarray(x).astype(np.int32) - int(zp)).astype(F32)


def _lookup(ctx, node, X, x_scale, x_zp, y_scale, y_zp, fn):
    """onnxruntime ``QlinearBuildLookupTable`` (qlinear_lookup_table.cc): dequantize all 256
    codes in float32, apply ``fn``, ``MlasQuantizeLinear`` (round half even) to the table."""
    X = np.asarray(X)
    require(node, X.dtype in (np.int8, np.uint8), f"input must be int8 or uint8, got {X.dtype}")
    x_zp = _zero_point_or_default(x_zp, X.dtype)
    y_zp = _zero_point_or_default(y_zp, X.dtype)
    codes = np.arange(256, dtype=np.uint8).view(X.dtype)
    table = fn(_dequant_table_value(codes, scalar_param(node, "X_scale", x_scale), x_zp))
    table = quantize(table.astype(F32), F32(scalar_param(node, "Y_scale", y_scale)), y_zp,
                     dtype=X.dtype.name, backend=ctx.backend)  # fmt: skip
    return table[X.view(np.uint8)]


@ms_op("QLinearLeakyRelu")
def qlinear_leaky_relu(ctx, node, X, x_scale, x_zp, y_scale, y_zp=None):
    """onnxruntime QLinearLeakyRelu: a 256-entry table of ``v >= 0 ? v : alpha * v`` (float32)."""
    alpha = F32(node.attr("alpha", 0.01))
    return [_lookup(ctx, node, X, x_scale, x_zp, y_scale, y_zp, lambda v: np.where(v >= 0, v, alpha * v))]


@ms_op("QLinearSigmoid")
def qlinear_sigmoid(ctx, node, X, x_scale, x_zp, y_scale, y_zp=None):
    """onnxruntime QLinearSigmoid (qlinear_lookup_table.cc): a 256-entry table of
    ``MlasComputeLogistic`` on the dequantized codes, which on x86-64 with FMA3 is
    ``MlasLogisticKernelFma3`` (``intsim.onnx.mlas.logistic``)."""
    return [_lookup(ctx, node, X, x_scale, x_zp, y_scale, y_zp, mlas.logistic)]


@ms_op("QLinearConcat")
def qlinear_concat(ctx, node, y_scale, y_zp, *tuples):
    """onnxruntime QLinearConcat (qlinear_concat.cc): inputs whose scale and zero point equal
    the output's are copied, the others go through an identity lookup table."""
    require(node, len(tuples) % 3 == 0 and tuples, "inputs must be (tensor, scale, zero point) triples")
    parts = []
    for i in range(0, len(tuples), 3):
        x, s, z = tuples[i : i + 3]
        same = F32(s) == F32(y_scale) and int(np.asarray(z)) == int(np.asarray(y_zp))
        parts.append(np.asarray(x) if same else _lookup(ctx, node, x, s, z, y_scale, y_zp, lambda v: v))
    return [np.concatenate(parts, axis=node.attr("axis"))]


@ms_op("QLinearGlobalAveragePool")
def qlinear_global_average_pool(ctx, node, X, x_scale, x_zp, y_scale, y_zp):
    """onnxruntime QLinearGlobalAveragePool (mlas/lib/qlgavgpool.cpp): integer sum over the
    image ``- x_zp * size``, then ``MlasRequantizeOutput`` with the float32 scale
    ``x_scale / (y_scale * float(size))``."""
    X = np.asarray(X)
    require(node, X.ndim >= 3, f"input must have at least 3 dimensions, got {X.shape}")
    last = bool(node.attr("channels_last", 0))
    spatial = tuple(range(1, X.ndim - 1)) if last else tuple(range(2, X.ndim))
    size = int(np.prod([X.shape[d] for d in spatial]))
    xs, ys = F32(scalar_param(node, "x_scale", x_scale)), F32(scalar_param(node, "y_scale", y_scale))
    scale = F32(xs / F32(ys * F32(size)))
    require(node, 2.0**-32 <= scale < 256.0, "x_scale / (y_scale * image size) is outside [2^-32, 256), "
            "which onnxruntime rejects")  # fmt: skip
    acc = X.astype(np.int64).sum(axis=spatial, keepdims=True) - int(np.asarray(x_zp)) * size
    acc = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)
    return [_mlas_requantize(acc, scale, int(np.asarray(y_zp)), X.dtype)]


def pool_geometry(node, spatial_shape, kernel, *, dilated_kernel=False):
    """ONNX pooling (and convolution) output size and begin pads from auto_pad, pads, strides
    and ceil_mode.  ``kernel`` is the effective extent; pools reject dilations, convolutions
    pass their dilated extent with ``dilated_kernel=True``."""
    n = len(spatial_shape)
    strides = list(node.attr("strides") or [1] * n)
    if not dilated_kernel:
        require(node, all(d == 1 for d in node.attr("dilations") or []), "dilated pooling is not supported")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-s // st) for s, st in zip(spatial_shape, strides, strict=True)]
        begin = [same_pads(s, k, st, lower=auto_pad == "SAME_LOWER")[0]
                 for s, k, st in zip(spatial_shape, kernel, strides, strict=True)]  # fmt: skip
        return out, begin, strides
    pads = list(node.attr("pads") or [0] * (2 * n)) if auto_pad == "NOTSET" else [0] * (2 * n)
    rnd = np.ceil if node.attr("ceil_mode", 0) else np.floor
    out = []
    for i in range(n):
        o = int(rnd((spatial_shape[i] + pads[i] + pads[i + n] - kernel[i]) / strides[i])) + 1
        if node.attr("ceil_mode", 0) and (o - 1) * strides[i] >= spatial_shape[i] + pads[i]:
            o -= 1  # the last window must start inside the input or its left padding
        out.append(o)
    return out, pads[:n], strides


@ms_op("QLinearAveragePool")
def qlinear_average_pool(ctx, node, X, x_scale, x_zp, y_scale, y_zp=None):
    """onnxruntime QLinearAveragePool (contrib_ops/cpu/quantization/qlinear_pool.cc): values
    dequantized to float32, summed in float32 in window order (rows, then columns) over the
    positions inside the input, divided by the count (the kernel size with
    ``count_include_pad``), then ``clamp(nearbyintf(y / y_scale + y_zp))``."""
    X = np.asarray(X)
    require(node, X.dtype in (np.int8, np.uint8), f"input must be int8 or uint8, got {X.dtype}")
    last = bool(node.attr("channels_last", 0))
    x = np.moveaxis(X, -1, 1) if last else X
    kernel = list(node.attr("kernel_shape"))
    out, begin, strides = pool_geometry(node, x.shape[2:], kernel)
    deq = _dequant_table_value(x, scalar_param(node, "x_scale", x_scale), _zero_point_or_default(x_zp, X.dtype))
    total = np.zeros(x.shape[:2] + tuple(out), F32)
    count = np.zeros(tuple(out), np.int64)
    for vals, inside in windows(deq, kernel, out, begin, strides, F32(0)):
        total = np.where(inside, total + vals, total).astype(F32)
        count += inside
    if node.attr("count_include_pad", 0):
        count = np.full_like(count, int(np.prod(kernel)))
    avg = (total / count.astype(F32)).astype(F32)
    zp = _zero_point_or_default(y_zp, X.dtype)
    v = avg / F32(scalar_param(node, "y_scale", y_scale)) + F32(int(zp))
    lo, hi = _range(X.dtype)
    y = np.clip(np.rint(v.astype(np.float64)), lo, hi).astype(X.dtype)
    return [np.moveaxis(y, 1, -1) if last else y]
