"""Float and shape operators a quantized CNN or MLP needs, with ONNX semantics in numpy.

Shape ops (Reshape, Flatten, Transpose, Concat, Squeeze, Unsqueeze, Gather, Shape, Identity,
Constant, MaxPool, Relu, Clip) are exact on any dtype, integers included.  Float arithmetic
(Conv, Gemm, MatMul, Add, Mul, AveragePool, GlobalAveragePool, Softmax) runs in the inputs'
precision; its summation order is numpy's, so it can differ from another runtime's float
kernel in the last bit, which is why QDQ models run their quantized ops as integer kernels
unless asked to run the graph literally (``qdq="float"``).
"""

from __future__ import annotations

import numpy as np

from intsim.onnx import mlas
from intsim.onnx.graph import ModelError
from intsim.kernels.geometry import windows
from intsim.onnx.ops_quant import pool_geometry
from intsim.onnx.registry import op, require


def _axes(node, axes_input, ndim):
    axes = node.attr("axes") if axes_input is None else [int(a) for a in np.asarray(axes_input).reshape(-1)]
    return None if axes is None else [a % ndim for a in axes]


@op("Identity")
def identity(ctx, node, x):
    return [np.asarray(x)]


@op("Constant")
def constant(ctx, node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            v = node.attrs[key]
            dtype = np.float32 if "float" in key else np.int64 if "int" in key else None
            return [np.asarray(v, dtype) if dtype else np.asarray(v)]
    raise ModelError(f"{node.label()}: Constant without a supported value attribute")


@op("Shape")
def shape(ctx, node, x):
    s = np.asarray(np.shape(x), np.int64)
    return [s[node.attr("start", 0) : node.attr("end", None)]]


@op("Reshape")
def reshape(ctx, node, x, shape):
    x = np.asarray(x)
    target = [int(v) for v in np.asarray(shape).reshape(-1)]
    if not node.attr("allowzero", 0):
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return [x.reshape(target)]


@op("Flatten")
def flatten(ctx, node, x):
    x = np.asarray(x)
    axis = node.attr("axis", 1) % (x.ndim or 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@op("Transpose")
def transpose(ctx, node, x):
    return [np.transpose(x, node.attr("perm"))]


@op("Squeeze")
def squeeze(ctx, node, x, axes=None):
    x = np.asarray(x)
    ax = _axes(node, axes, x.ndim)
    return [np.squeeze(x, axis=None if ax is None else tuple(ax))]


@op("Unsqueeze")
def unsqueeze(ctx, node, x, axes=None):
    x = np.asarray(x)
    raw = node.attr("axes") if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    ndim = x.ndim + len(raw)
    for a in sorted(a % ndim for a in raw):
        x = np.expand_dims(x, a)
    return [x]


@op("Concat")
def concat(ctx, node, *xs):
    return [np.concatenate([np.asarray(x) for x in xs], axis=node.attr("axis"))]


@op("Gather")
def gather(ctx, node, x, indices):
    x = np.asarray(x)
    axis = node.attr("axis", 0)
    idx = np.asarray(indices)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return [np.take(x, idx, axis=axis)]


def _trunc_div(a, b):
    """Integer Div as C (and ONNX) define it: the quotient truncated toward zero."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _binary(fn):
    def run(ctx, node, a, b):
        a, b = np.asarray(a), np.asarray(b)
        require(node, a.dtype == b.dtype, f"input types differ: {a.dtype} and {b.dtype}")
        return [fn(a, b).astype(a.dtype)]

    return run


op("Add")(_binary(np.add))
op("Sub")(_binary(np.subtract))
op("Mul")(_binary(np.multiply))
op("Div")(_binary(lambda a, b: _trunc_div(a, b) if a.dtype.kind in "iu" else a / b))
op("Min")(_binary(np.minimum))
op("Max")(_binary(np.maximum))


@op("Relu")
def relu(ctx, node, x):
    x = np.asarray(x)
    return [np.maximum(x, np.zeros((), x.dtype))]


@op("LeakyRelu")
def leaky_relu(ctx, node, x):
    x = np.asarray(x)
    alpha = np.asarray(node.attr("alpha", 0.01), x.dtype)
    return [np.where(x >= 0, x, alpha * x)]


@op("Sigmoid")
def sigmoid(ctx, node, x):
    """onnxruntime's float Sigmoid is ``MlasComputeLogistic`` (``mlas.logistic``) under the
    onnxruntime profile; otherwise ``1 / (1 + exp(-x))`` as the ONNX reference computes it."""
    x = np.asarray(x)
    if ctx.profile.name.startswith("onnxruntime") and x.dtype == np.float32:
        return [mlas.logistic(x)]
    return [(1 / (1 + np.exp(-x))).astype(x.dtype)]


@op("Clip")
def clip(ctx, node, x, lo=None, hi=None):
    x = np.asarray(x)
    lo = node.attr("min") if lo is None and "min" in node.attrs else lo
    hi = node.attr("max") if hi is None and "max" in node.attrs else hi
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, x.dtype))
    return [x]


@op("Round")
def round_(ctx, node, x):
    return [np.rint(x)]


@op("ReduceMin", "ReduceMax")
def reduce_minmax(ctx, node, x, axes=None):
    x = np.asarray(x)
    ax = _axes(node, axes, x.ndim)
    fn = np.min if node.op_type == "ReduceMin" else np.max
    return [fn(x, axis=None if ax is None else tuple(ax), keepdims=bool(node.attr("keepdims", 1)))]


@op("Softmax")
def softmax(ctx, node, x):
    x = np.asarray(x)
    axis = node.attr("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)]


@op("MatMul")
def matmul(ctx, node, a, b):
    return [np.matmul(a, b)]


@op("Gemm")
def gemm(ctx, node, A, B, C=None):
    A, B = np.asarray(A), np.asarray(B)
    A = A.T if node.attr("transA", 0) else A
    B = B.T if node.attr("transB", 0) else B
    y = np.asarray(node.attr("alpha", 1.0), A.dtype) * (A @ B)
    if C is not None:
        y = y + np.asarray(node.attr("beta", 1.0), A.dtype) * np.asarray(C)
    return [y.astype(A.dtype)]


@op("Conv")
def conv(ctx, node, x, w, b=None):
    """Float 2-D convolution (NCHW, OIHW), groups, strides, pads, dilations."""
    x, w = np.asarray(x), np.asarray(w)
    require(node, x.ndim == 4 and w.ndim == 4, f"only 2-D convolution; got {x.shape} and {w.shape}")
    group = node.attr("group", 1)
    kernel = list(w.shape[2:])
    dil = list(node.attr("dilations") or [1, 1])
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    out, begin, strides = pool_geometry(node, x.shape[2:], eff, dilated_kernel=True)
    cin_g, cout = w.shape[1], w.shape[0]
    require(node, x.shape[1] == cin_g * group and cout % group == 0,
            f"input channels {x.shape[1]} do not match weights {w.shape} with group={group}")  # fmt: skip
    cols = []
    for vals, _ in windows(x, eff, out, begin, strides, 0):
        cols.append(vals)
    taps = [i for i, off in enumerate(np.ndindex(*eff)) if all(o % d == 0 for o, d in zip(off, dil))]
    patches = np.stack([cols[i] for i in taps], axis=2)  # N, C, K, OH, OW
    n = x.shape[0]
    patches = patches.reshape(n, group, cin_g, len(taps), *out)
    wg = w.reshape(group, cout // group, cin_g, len(taps))
    y = np.einsum("ngckhw,gock->ngohw", patches, wg).reshape(n, cout, *out)
    if b is not None:
        y = y + np.asarray(b).reshape(1, -1, 1, 1)
    return [y.astype(x.dtype)]


@op("MaxPool")
def max_pool(ctx, node, x):
    """MaxPool over any ordered dtype (int8/uint8 in quantized graphs); padding never wins."""
    x = np.asarray(x)
    require(node, len(node.outputs) == 1 or not node.outputs[1], "MaxPool's Indices output is not supported")
    kernel = list(node.attr("kernel_shape"))
    out, begin, strides = pool_geometry(node, x.shape[2:], kernel)
    low = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    y = None
    for vals, _ in windows(x, kernel, out, begin, strides, low):
        y = vals if y is None else np.maximum(y, vals)
    return [y.astype(x.dtype)]


@op("AveragePool")
def average_pool(ctx, node, x):
    x = np.asarray(x)
    kernel = list(node.attr("kernel_shape"))
    out, begin, strides = pool_geometry(node, x.shape[2:], kernel)
    total = np.zeros(x.shape[:2] + tuple(out), x.dtype)
    count = np.zeros(tuple(out), np.int64)
    for vals, inside in windows(x, kernel, out, begin, strides, 0):
        total = total + vals
        count += inside
    if node.attr("count_include_pad", 0):
        count = np.full_like(count, int(np.prod(kernel)))
    return [(total / count).astype(x.dtype)]


@op("GlobalAveragePool")
def global_average_pool(ctx, node, x):
    x = np.asarray(x)
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype)]
