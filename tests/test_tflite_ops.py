"""Every TFLite operator intsim runs, as a single-op model written with the schema's builder,
against the LiteRT reference kernels (BUILTIN_REF), bit for bit, on random edge-heavy inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _tflite_util import T, interpret, random_int, reference, single_op
from conftest import ALL_BACKENDS

import intsim.tflite as itf

I8, I16 = "INT8", "INT16"
NP = {I8: np.int8, I16: np.int16}


def _w(rng, shape, lo=-127, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def _bias(rng, n, int16x8=False, bound=5000):
    return rng.integers(-bound, bound, size=n).astype(np.int64 if int16x8 else np.int32)


def _act(kind, shape, scale, zp=0, data=None):
    return T("x", shape, kind, data=data, scale=scale, zero_point=zp)


# Each case: (rng) -> model bytes.  Inputs are drawn from the model's input tensors.


def conv(rng, kind=I8, stride=2, padding=0, act=3, dilation=1, groups=1):
    cin = 6
    x = T("x", (1, 9, 10, cin), kind, scale=0.05, zero_point=-3 if kind == I8 else 0)
    w = T("w", (8, 3, 3, cin // groups), I8, data=_w(rng, (8, 3, 3, cin // groups)),
          scale=rng.uniform(0.002, 0.02, 8), zero_point=np.zeros(8, np.int64))  # fmt: skip
    b = T("b", (8,), "INT64" if kind == I16 else "INT32", data=_bias(rng, 8, kind == I16))
    oh = {0: (9 + stride - 1) // stride, 1: (9 - (3 - 1) * dilation - 1) // stride + 1}[padding]
    ow = {0: (10 + stride - 1) // stride, 1: (10 - (3 - 1) * dilation - 1) // stride + 1}[padding]
    y = T("y", (1, oh, ow, 8), kind, scale=0.07, zero_point=5 if kind == I8 else 0)
    return single_op("CONV_2D", [x, w, b], [y], dict(padding=padding, stride_h=stride, stride_w=stride,
                     fused_activation_function=act, dilation_h_factor=dilation, dilation_w_factor=dilation))  # fmt: skip


def depthwise(rng, kind=I8, mult=2):
    x = T("x", (1, 7, 8, 3), kind, scale=0.04, zero_point=10 if kind == I8 else 0)
    c = 3 * mult
    w = T("w", (1, 3, 3, c), I8, data=_w(rng, (1, 3, 3, c)), scale=rng.uniform(0.005, 0.03, c),
          zero_point=np.zeros(c, np.int64), quantized_dimension=3)  # fmt: skip
    b = T("b", (c,), "INT64" if kind == I16 else "INT32", data=_bias(rng, c, kind == I16))
    y = T("y", (1, 7, 8, c), kind, scale=0.03, zero_point=-7 if kind == I8 else 0)
    return single_op("DEPTHWISE_CONV_2D", [x, w, b], [y], dict(padding=0, stride_h=1, stride_w=1,
                     depth_multiplier=mult, fused_activation_function=1))  # fmt: skip


def fully_connected(rng, kind=I8, per_channel=False, int4=False, act=0):
    units, depth = 7, 20
    x = T("x", (3, depth), kind, scale=0.03, zero_point=4 if kind == I8 else 0)
    lo, hi = (-7, 7) if int4 else (-127, 127)
    scale = rng.uniform(0.01, 0.05, units) if per_channel else 0.02
    zp = np.zeros(units, np.int64) if per_channel else 0
    w = T("w", (units, depth), "INT4" if int4 else I8, data=_w(rng, (units, depth), lo, hi), scale=scale, zero_point=zp)
    b = T("b", (units,), "INT64" if kind == I16 else "INT32", data=_bias(rng, units, kind == I16))
    y = T("y", (3, units), kind, scale=0.09, zero_point=-2 if kind == I8 else 0)
    return single_op("FULLY_CONNECTED", [x, w, b], [y], dict(fused_activation_function=act))


def transpose_conv(rng, stride=2, padding=0):
    x = T("x", (1, 4, 5, 3), I8, scale=0.05, zero_point=2)
    oh, ow = (8, 10) if padding == 0 else (9, 11)
    shape = T("shape", (4,), "INT32", data=np.array([1, oh, ow, 4], np.int32))
    w = T("w", (4, 3, 3, 3), I8, data=_w(rng, (4, 3, 3, 3)), scale=rng.uniform(0.005, 0.02, 4),
          zero_point=np.zeros(4, np.int64))  # fmt: skip
    y = T("y", (1, oh, ow, 4), I8, scale=0.04, zero_point=-1)
    return single_op("TRANSPOSE_CONV", [shape, w, x], [y], dict(padding=padding, stride_h=stride, stride_w=stride))


def binary(rng, op, kind=I8, broadcast=False, act=0, scales=(0.02, 0.05, 0.04)):
    zps = (3, -20, 7) if kind == I8 else (0, 0, 0)
    a = _act(kind, (2, 3, 4, 5), scales[0], zps[0])
    b = T("b", (1, 1, 4, 5) if broadcast else (2, 3, 4, 5), kind, scale=scales[1], zero_point=zps[1])
    y = T("y", (2, 3, 4, 5), kind, scale=scales[2], zero_point=zps[2])
    opts = dict(fused_activation_function=act)
    if op in ("ADD", "SUB") and kind == I16:
        opts["pot_scale_int16"] = False
    return single_op(op, [a, b], [y], opts)


def unary(op, kind=I8, in_q=(0.05, -10), out_q=(0.04, 3), options=None, shape=(2, 5, 6)):
    x = _act(kind, shape, *in_q)
    y = T("y", shape, kind, scale=out_q[0], zero_point=out_q[1])
    return single_op(op, [x], [y], options)


def mean(rng, kind=I8, axes=(1, 2), keep=True, op="MEAN", out_scale=0.011):
    zp_in, zp_out = (-5, 9) if kind == I8 else (0, 0)
    x = _act(kind, (2, 5, 7, 3), 0.03, zp_in)
    ax = T("axes", (len(axes),), "INT32", data=np.array(axes, np.int32))
    shape = [d for i, d in enumerate((2, 5, 7, 3)) if i not in axes or keep]
    if keep:
        shape = [1 if i in axes else d for i, d in enumerate((2, 5, 7, 3))]
    y = T("y", tuple(shape), kind, scale=out_scale, zero_point=zp_out)
    return single_op(op, [x, ax], [y], dict(keep_dims=keep))


def pool(op, kind=I8, padding=0, act=0):
    x = _act(kind, (1, 9, 10, 4), 0.05, -4 if kind == I8 else 0)
    oh, ow = (5, 5) if padding == 0 else (4, 4)
    y = T("y", (1, oh, ow, 4), kind, scale=0.05, zero_point=-4 if kind == I8 else 0)
    return single_op(op, [x], [y], dict(padding=padding, stride_h=2, stride_w=2, filter_height=3,
                                        filter_width=3, fused_activation_function=act))  # fmt: skip


def softmax(kind=I8, beta=1.0, in_scale=0.1):
    x = _act(kind, (3, 10), in_scale, 11 if kind == I8 else 0)
    y = T("y", (3, 10), kind, scale=1 / 256 if kind == I8 else 1 / 32768, zero_point=-128 if kind == I8 else 0)
    return single_op("SOFTMAX", [x], [y], dict(beta=beta))


def shape_op(rng, op):
    q = dict(scale=0.05, zero_point=-3)
    if op == "RESHAPE":
        x = T("x", (2, 3, 4), I8, **q)
        s = T("s", (2,), "INT32", data=np.array([4, 6], np.int32))
        return single_op(op, [x, s], [T("y", (4, 6), I8, **q)], dict(new_shape=[4, 6]))
    if op == "TRANSPOSE":
        x = T("x", (2, 3, 4), I8, **q)
        p = T("p", (3,), "INT32", data=np.array([2, 0, 1], np.int32))
        return single_op(op, [x, p], [T("y", (4, 2, 3), I8, **q)])
    if op == "SQUEEZE":
        x = T("x", (1, 3, 1, 4), I8, **q)
        return single_op(op, [x], [T("y", (3, 4), I8, **q)], dict(squeeze_dims=[0, 2]))
    if op in ("PAD", "PADV2"):
        x = T("x", (1, 3, 4, 2), I8, **q)
        p = T("p", (4, 2), "INT32", data=np.array([[0, 0], [1, 2], [2, 0], [0, 1]], np.int32))
        ins = [x, p] + ([T("v", (1,), I8, data=np.array([17], np.int8), **q)] if op == "PADV2" else [])
        return single_op(op, ins, [T("y", (1, 6, 6, 3), I8, **q)])
    if op == "CONCATENATION":
        a, b = T("a", (2, 3, 4), I8, **q), T("b", (2, 5, 4), I8, **q)
        return single_op(op, [a, b], [T("y", (2, 8, 4), I8, **q)], dict(axis=1, fused_activation_function=0))
    if op == "EXPAND_DIMS":
        x = T("x", (3, 4), I8, **q)
        return single_op(op, [x, T("axis", (1,), "INT32", data=np.array([-2], np.int32))], [T("y", (3, 1, 4), I8, **q)])
    if op == "SLICE":
        x = T("x", (3, 8, 9), I8, **q)
        begin = T("begin", (3,), "INT32", data=np.array([1, 2, 0], np.int32))
        size = T("size", (3,), "INT32", data=np.array([2, -1, 5], np.int32))
        return single_op(op, [x, begin, size], [T("y", (2, 6, 5), I8, **q)])
    if op == "SLICE_4D":
        x = T("x", (1, 3, 8, 9), I8, **q)
        begin = T("begin", (4,), "INT32", data=np.array([0, 1, 2, 0], np.int32))
        size = T("size", (4,), "INT32", data=np.array([1, 2, 6, 5], np.int32))
        return single_op("SLICE", [x, begin, size], [T("y", (1, 2, 6, 5), I8, **q)])
    if op in ("MAXIMUM", "MINIMUM"):
        a, b = T("a", (2, 3, 4), I8, **q), T("b", (1, 3, 1), I8, **q)
        return single_op(op, [a, b], [T("y", (2, 3, 4), I8, **q)])
    if op == "STRIDED_SLICE":
        x = T("x", (3, 8, 9), I8, **q)
        begin = T("begin", (3,), "INT32", data=np.array([1, -7, 8], np.int32))
        end = T("end", (3,), "INT32", data=np.array([2, 7, 0], np.int32))
        strides = T("strides", (3,), "INT32", data=np.array([1, 2, -3], np.int32))
        return single_op(op, [x, begin, end, strides], [T("y", (3, 3), I8, **q)],
                         dict(shrink_axis_mask=1, begin_mask=0, end_mask=0))  # fmt: skip
    raise AssertionError(op)


def movement_op(rng, op, kind=I8):
    """The operators of kernels_movement and kernels_tensor, one case each."""
    q = dict(scale=0.05, zero_point=-3 if kind == I8 else 0)

    def i32(name, values):
        return T(name, (len(values),) if np.ndim(values) else (), "INT32", data=np.array(values, np.int32))

    if op == "SPLIT":
        x = T("x", (2, 6, 3), kind, **q)
        return single_op(op, [i32("axis", [1]), x], [T(f"y{k}", (2, 2, 3), kind, **q) for k in range(3)],
                         dict(num_splits=3))  # fmt: skip
    if op == "SPLIT_V":
        x = T("x", (2, 7, 3), kind, **q)
        return single_op(op, [x, i32("sizes", [2, -1, 1]), i32("axis", [-2])],
                         [T(f"y{k}", (2, n, 3), kind, **q) for k, n in enumerate((2, 4, 1))], dict(num_splits=3))
    if op == "PACK":
        xs = [T(f"x{k}", (3, 4), kind, **q) for k in range(3)]
        return single_op(op, xs, [T("y", (3, 3, 4), kind, **q)], dict(values_count=3, axis=1))
    if op == "UNPACK":
        x = T("x", (3, 2, 4), kind, **q)
        return single_op(op, [x], [T(f"y{k}", (3, 4), kind, **q) for k in range(2)], dict(num=2, axis=1))
    if op == "GATHER":
        x = T("x", (3, 5, 4), kind, **q)
        idx = T("i", (2, 3), "INT32", data=np.array([[4, 0, 2], [2, 2, 1]], np.int32))
        return single_op(op, [x, idx], [T("y", (3, 2, 3, 4), kind, **q)], dict(axis=1, batch_dims=0))
    if op == "GATHER_BATCH":
        x = T("x", (3, 5, 4), kind, **q)
        idx = T("i", (3, 2), "INT64", data=np.array([[4, 0], [2, 2], [1, 3]], np.int64))
        return single_op("GATHER", [x, idx], [T("y", (3, 2, 4), kind, **q)], dict(axis=1, batch_dims=1))
    if op == "DEPTH_TO_SPACE":
        x = T("x", (1, 2, 3, 8), kind, **q)
        return single_op(op, [x], [T("y", (1, 4, 6, 2), kind, **q)], dict(block_size=2))
    if op == "SPACE_TO_DEPTH":
        x = T("x", (1, 4, 6, 2), kind, **q)
        return single_op(op, [x], [T("y", (1, 2, 3, 8), kind, **q)], dict(block_size=2))
    if op == "BROADCAST_TO":
        x = T("x", (3, 1), kind, **q)
        return single_op(op, [x, i32("shape", [2, 3, 4])], [T("y", (2, 3, 4), kind, **q)], version=2)  # LiteRT: 2 and up
    if op == "SHAPE":
        return single_op(op, [T("x", (2, 3, 4), kind, **q)], [T("y", (3,), "INT32")], dict(out_type=2))
    if op == "FILL":
        v = T("v", (), kind, data=np.array(-77, NP[kind]), **q)
        return single_op(op, [i32("dims", [2, 3]), v], [T("y", (2, 3), kind, **q)])
    if op == "ZEROS_LIKE":
        return single_op(op, [T("x", (2, 3, 4), kind, **q)], [T("y", (2, 3, 4), kind, **q)])
    if op in ("ARG_MAX", "ARG_MIN"):
        x = T("x", (3, 7, 4), kind, **q)
        return single_op(op, [x, i32("axis", [1])], [T("y", (3, 4), "INT32")], dict(output_type=2))
    if op == "SPACE_TO_BATCH_ND":
        x = T("x", (2, 4, 6, 3), kind, **q)
        return single_op(op, [x, i32("block", [2, 3]), T("p", (2, 2), "INT32", data=np.array([[0, 2], [1, 2]], np.int32))],
                         [T("y", (12, 3, 3, 3), kind, **q)])  # fmt: skip
    if op == "SPACE_TO_BATCH_ND_NO_PAD":
        x = T("x", (2, 4, 6, 3), kind, **q)
        return single_op("SPACE_TO_BATCH_ND", [x, i32("block", [2, 3]), T("p", (2, 2), "INT32", data=np.zeros((2, 2), np.int32))],
                         [T("y", (12, 2, 2, 3), kind, **q)])  # fmt: skip
    if op == "BATCH_TO_SPACE_ND":
        x = T("x", (12, 3, 3, 3), kind, **q)
        return single_op(op, [x, i32("block", [2, 3]), T("c", (2, 2), "INT32", data=np.array([[0, 2], [1, 2]], np.int32))],
                         [T("y", (2, 4, 6, 3), kind, **q)])  # fmt: skip
    if op in ("MIRROR_PAD", "MIRROR_PAD_SYMMETRIC"):
        x = T("x", (2, 4, 5), kind, **q)
        p = T("p", (3, 2), "INT32", data=np.array([[0, 1], [2, 3], [4, 1]], np.int32))
        return single_op("MIRROR_PAD", [x, p], [T("y", (3, 9, 10), kind, **q)], dict(mode=int(op.endswith("SYMMETRIC"))))
    if op == "TILE":
        return single_op(op, [T("x", (2, 3), kind, **q), i32("m", [2, 3])], [T("y", (4, 9), kind, **q)])
    if op == "REVERSE_V2":
        return single_op(op, [T("x", (2, 3, 4), kind, **q), i32("axes", [2, 1])], [T("y", (2, 3, 4), kind, **q)])
    if op == "REVERSE_V2_GAP":  # axes that are not contiguous: refused by both runtimes
        return single_op("REVERSE_V2", [T("x", (2, 3, 4), kind, **q), i32("axes", [0, 2])], [T("y", (2, 3, 4), kind, **q)])
    if op == "GATHER_ND":
        idx = T("i", (2, 2, 2), "INT32", data=np.array([[[0, 4], [2, 1]], [[1, 1], [2, 0]]], np.int32))
        return single_op(op, [T("x", (3, 5, 4), kind, **q), idx], [T("y", (2, 2, 4), kind, **q)])
    if op == "EMBEDDING_LOOKUP":
        table = T("table", (6, 5), kind, data=random_int(rng, (6, 5), NP[kind]), **q)
        return single_op(op, [T("ids", (4,), "INT32", data=np.array([5, 0, 2, 2], np.int32)), table],
                         [T("y", (4, 5), kind, **q)])  # fmt: skip
    if op == "DYNAMIC_UPDATE_SLICE":
        start = T("s", (3,), "INT32", data=np.array([1, -2, 3], np.int32))  # clamped to [1, 0, 2]
        return single_op(op, [T("x", (3, 5, 4), kind, **q), T("u", (2, 3, 2), kind, **q), start],
                         [T("y", (3, 5, 4), kind, **q)])  # fmt: skip
    if op in ("REDUCE_MAX", "REDUCE_MIN"):
        x = T("x", (3, 7, 4), kind, **q)
        return single_op(op, [x, i32("axes", [0, 2])], [T("y", (1, 7, 1), kind, **q)], dict(keep_dims=True))
    raise AssertionError(op)


def svdf(rng, state=I16, rank=2, act=1, time_bits=10):
    """SVDF: batch 2, 10 inputs, 8 filters of memory 5, rank 2 (4 units); weights_time of
    ``time_bits`` bits (the converter keeps 10; 16 makes the int32 time sums wrap)."""
    s_in, s_wf, s_wt, s_state = 0.05, 0.004, 0.0021, 0.013 if state == I16 else 0.4
    x = T("x", (2, 10), I8, scale=s_in, zero_point=-7)
    wf = T("wf", (8, 10), I8, data=_w(rng, (8, 10)), scale=s_wf, zero_point=0)
    lim = (1 << (time_bits - 1)) - 1
    wt = T("wt", (8, 5), state, data=rng.integers(-lim, lim + 1, (8, 5)).astype(NP[state]), scale=s_wt, zero_point=0)
    b = T("b", (8 // rank,), "INT32", data=_bias(rng, 8 // rank, bound=20000), scale=np.float32(s_state) * np.float32(s_wt))
    st = T("state", (2, 40), state, scale=s_state, zero_point=0 if state == I16 else 9, variable=True)
    y = T("y", (2, 8 // rank), I8, scale=0.03, zero_point=-128)
    return single_op("SVDF", [x, wf, wt, b, st], [y], dict(rank=rank, fused_activation_function=act))


def lstm(rng, batch=2, steps=5, units=4, time_major=False, clip=10.0, act=4, saturate=False, wide=False,
         layer_norm=False, projection=0, cifg=False, proj_clip=0.0, peephole=None):
    """UNIDIRECTIONAL_SEQUENCE_LSTM as the converter writes an int8 one (intermediates: four
    empty float32 tensors, int16 ones with ``layer_norm``, and the hidden state's quantization).
    ``saturate``: the input part of the forget gate saturates low (bias -2e6) while its recurrent
    part saturates high (weights 127, the other gates' biases +2e6 drive h up): TFLite Micro
    clamps the recurrent part alone before the sum (forget ~ 0.5), LiteRT does not (forget ~ 1).
    ``wide``: 16x8 (int16 activations, int64 biases; TFLite Micro only).  ``layer_norm``,
    ``projection`` (its size), ``cifg`` (no input gate): LiteRT only, as the converter quantizes
    them (layer norm weights int16 with biases in ``ln_scale / 1024``, the projection bias in
    ``s_wp * s_hidden``); ``peephole``: the int16 cell-to-gate weights' scale (0.125 makes the
    multiplier 2**-2 and its ties frequent)."""
    from intsim.tflite.builder import OpSpec, build

    n_in, s_x, s_h, s_c = 6, (2.0**-10 if wide else 0.05), (2.0**-12 if wide else 1 / 128), 2.0**-11
    act_type, h_zp, bias_type = (I16, 0, "INT64") if wide else (I8, -1, "INT32")
    n_out = projection or units
    s_hidden, zp_hidden = (0.006, 5) if projection else (s_h, h_zp)
    shape = (steps, batch) if time_major else (batch, steps)
    t, index = [], {}

    def add(key, spec):
        index[key] = len(t)
        t.append(spec)

    add("x", T("x", (*shape, n_in), act_type, scale=s_x, zero_point=0 if wide else -3))
    gates = [g for g in ("i", "f", "c", "o") if not (cifg and g == "i")]
    w_scale, ln_scale = {}, {g: float(np.float32(2.0 / 32767 * rng.uniform(0.9, 1.1))) for g in gates}
    for g in gates:
        w_scale[g] = rng.uniform(0.003, 0.03)
        add("w" + g, T(f"w_{g}", (units, n_in), I8, data=_w(rng, (units, n_in)), scale=w_scale[g]))
    for g in gates:
        r = np.full((units, n_out), 127, np.int8) if saturate and g == "f" else _w(rng, (units, n_out))
        add("r" + g, T(f"r_{g}", (units, n_out), I8, data=r, scale=0.03 if saturate else rng.uniform(0.003, 0.03)))
    for g in gates:
        b = np.full(units, -2_000_000 if g == "f" else 2_000_000, np.int32) if saturate else _bias(rng, units, bound=3000)
        scale = ln_scale[g] / 1024 if layer_norm else np.float32(s_x) * np.float32(w_scale[g])
        add("b" + g, T(f"b_{g}", (units,), bias_type, data=b.astype(np.int64 if wide else np.int32), scale=scale))
    if projection:
        s_wp = 0.02
        add("wp", T("w_proj", (n_out, units), I8, data=_w(rng, (n_out, units)), scale=s_wp))
        add("bp", T("b_proj", (n_out,), "INT32", data=_bias(rng, n_out, bound=2000), scale=np.float32(s_wp * s_hidden)))
    if peephole:
        for g in gates:
            if g != "c":
                add("p" + g, T(f"p_{g}", (units,), I16, data=rng.integers(-32767, 32768, units).astype(np.int16),
                               scale=peephole))  # fmt: skip
    add("h", T("h", (batch, n_out), act_type, scale=s_h, zero_point=h_zp, variable=True))
    add("c", T("c", (batch, units), I16, scale=s_c, zero_point=0, variable=True))
    if layer_norm:
        for g in gates:
            add("ln" + g, T(f"ln_{g}", (units,), I16, data=rng.integers(8000, 32768, units).astype(np.int16),
                            scale=ln_scale[g]))  # fmt: skip
    for k in range(4):
        add(f"inter{k}", T(f"inter{k}", (0,), I16, scale=float(rng.uniform(1e-4, 1e-3)), zero_point=0) if layer_norm
            else T(f"inter{k}", (0,), "FLOAT32"))  # fmt: skip
    add("hidden", T("hidden", (0,), act_type, scale=s_hidden, zero_point=zp_hidden))
    add("y", T("y", (*shape, n_out), act_type, scale=s_h, zero_point=h_zp))
    k = lambda key: index.get(key, -1)  # noqa: E731
    ins = [0, *[k("w" + g) for g in "ifco"], *[k("r" + g) for g in "ifco"], *[k("p" + g) for g in "ifo"],
           *[k("b" + g) for g in "ifco"],
           k("wp"), k("bp"), k("h"), k("c"), *[k("ln" + g) for g in "ifco"]]  # fmt: skip
    options = dict(fused_activation_function=act, cell_clip=clip, proj_clip=proj_clip, time_major=time_major)
    op = OpSpec("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [index["y"]], options,
                intermediates=[index[f"inter{j}"] for j in range(4)] + [index["hidden"]])  # fmt: skip
    return build(t, [op], inputs=[0], outputs=[index["y"]])


def arithmetic(rng, op, kind=I8, broadcast=False, scales=(0.05, 0.02, 0.1), act=0):
    """DIV, SQUARED_DIFFERENCE, PRELU (alpha a constant per channel), RSQRT."""
    zps = (-5, 3, 10) if kind == I8 else (0, 0, 0)
    a = T("a", (2, 3, 4, 5), kind, scale=scales[0], zero_point=zps[0])
    y = T("y", (2, 3, 4, 5), kind, scale=scales[2], zero_point=zps[2])
    if op == "RSQRT":  # zero point -128: no input below it (negative values are an error in both runtimes)
        return single_op(op, [T("a", (2, 3, 4, 5), kind, scale=scales[0], zero_point=-128)], [y])
    if op == "PRELU":
        alpha = T("alpha", (1, 1, 5), I8, data=rng.integers(-128, 128, (1, 1, 5)).astype(np.int8), scale=scales[1],
                  zero_point=zps[1] if kind == I8 else 0)  # fmt: skip
        return single_op(op, [a, alpha], [y])
    shape = (1, 1, 4, 5) if broadcast else (2, 3, 4, 5)
    if op == "DIV":  # a constant divisor, none equal to its zero point (an error in LiteRT, undefined in TFLite Micro)
        info = np.iinfo(NP[kind])
        d = rng.integers(info.min, int(info.max) + 1, shape)
        d[d == zps[1]] += 1
        d.reshape(-1)[:2] = info.min, info.max
        b = T("b", shape, kind, data=d.astype(NP[kind]), scale=scales[1], zero_point=zps[1])
        return single_op(op, [a, b], [y], dict(fused_activation_function=act))
    b = T("b", shape, kind, scale=scales[1], zero_point=zps[1])
    return single_op(op, [a, b], [y])


def resize(op, kind=I8, size=(7, 11), align=False, half=False):
    x = T("x", (2, 4, 5, 3), kind, scale=0.05, zero_point=-3 if kind == I8 else 0)
    s = T("size", (2,), "INT32", data=np.array(size, np.int32))
    y = T("y", (2, *size, 3), kind, scale=0.05, zero_point=-3 if kind == I8 else 0)
    return single_op(op, [x, s], [y], dict(align_corners=align, half_pixel_centers=half))


def comparison(op, kind=I8, broadcast=False, scales=(0.05, 0.03)):
    a = T("a", (2, 3, 4), kind, scale=scales[0], zero_point=-3 if kind == I8 else 0)
    b = T("b", (1, 1, 4) if broadcast else (2, 3, 4), kind, scale=scales[1], zero_point=7 if kind == I8 else 0)
    return single_op(op, [a, b], [T("y", (2, 3, 4), "BOOL")])


def select_v2(kind=I8):
    q = dict(scale=0.05, zero_point=-3 if kind == I8 else 0)
    c = T("c", (2, 1, 4), "BOOL")
    return single_op("SELECT_V2", [c, T("x", (2, 3, 4), kind, **q), T("z", (1, 3, 1), kind, **q)],
                     [T("y", (2, 3, 4), kind, **q)])  # fmt: skip


def batch_matmul(rng, kind=I8, adj_x=False, adj_y=False, rhs_zp=0, constant_rhs=False):
    """[2, 1, 5, 7] x [3, 7, 4] (batch axes broadcast), ``adj_*`` stored transposed."""
    lhs_shape, rhs_shape = (2, 1, 7, 5) if adj_x else (2, 1, 5, 7), (3, 4, 7) if adj_y else (3, 7, 4)
    a = T("a", lhs_shape, kind, scale=0.05, zero_point=-4 if kind == I8 else 0)
    data = _w(rng, rhs_shape) if constant_rhs else None
    b = T("b", rhs_shape, kind, data=data, scale=0.02, zero_point=rhs_zp)
    y = T("y", (2, 3, 5, 4), kind, scale=0.3 if kind == I8 else 0.004, zero_point=3 if kind == I8 else 0)
    return single_op("BATCH_MATMUL", [a, b], [y], dict(adj_x=adj_x, adj_y=adj_y))


def cast(kind_in, kind_out):
    return single_op("CAST", [T("x", (4, 50), kind_in)], [T("y", (4, 50), kind_out)])


def quantize_float():
    x = T("x", (4, 50), "FLOAT32")
    return single_op("QUANTIZE", [x], [T("y", (4, 50), I8, scale=0.037, zero_point=-6)])


ZP = {I8: -6, "UINT8": 130}  # zero points of 8-bit tensors (others 0)


def requantize(kind_in=I8, kind_out=I8, in_scale=0.037, out_scale=0.05):
    x = T("x", (4, 50), kind_in, scale=in_scale, zero_point=ZP.get(kind_in, 0))
    return single_op("QUANTIZE", [x], [T("y", (4, 50), kind_out, scale=out_scale, zero_point=ZP.get(kind_out, 0) + 10)])


def quantize_float_to(kind):
    return single_op("QUANTIZE", [T("x", (4, 50), "FLOAT32")], [T("y", (4, 50), kind, scale=0.037, zero_point=ZP.get(kind, 0))])


def dequantize(kind=I8):
    x = T("x", (4, 50), kind, scale=0.037, zero_point=ZP.get(kind, 0))
    return single_op("DEQUANTIZE", [x], [T("y", (4, 50), "FLOAT32")])


CASES = {
    "conv_int8_same_s2_relu6": lambda r: conv(r),
    "conv_int8_valid_dilated": lambda r: conv(r, stride=1, padding=1, act=0, dilation=2),
    "conv_int8_grouped": lambda r: conv(r, stride=1, groups=2, act=1),
    "conv_int16x8": lambda r: conv(r, kind=I16, act=0),
    "depthwise_int8_mult2": lambda r: depthwise(r),
    "depthwise_int16x8": lambda r: depthwise(r, kind=I16, mult=1),
    "fc_int8_per_tensor_relu": lambda r: fully_connected(r, act=1),
    "fc_int8_per_channel": lambda r: fully_connected(r, per_channel=True),
    "fc_int4_weights": lambda r: fully_connected(r, int4=True),
    "fc_int16x8": lambda r: fully_connected(r, kind=I16),
    "transpose_conv_same": lambda r: transpose_conv(r),
    "transpose_conv_valid": lambda r: transpose_conv(r, padding=1),
    "add_int8": lambda r: binary(r, "ADD"),
    "add_int8_broadcast_relu": lambda r: binary(r, "ADD", broadcast=True, act=1),
    "add_int16": lambda r: binary(r, "ADD", kind=I16, scales=(0.0007, 0.0011, 0.0013)),
    "sub_int8": lambda r: binary(r, "SUB"),
    "sub_int16": lambda r: binary(r, "SUB", kind=I16, scales=(0.0007, 0.0011, 0.0013)),
    "mul_int8": lambda r: binary(r, "MUL", scales=(0.02, 0.05, 0.004)),
    "mul_int8_broadcast_relu6": lambda r: binary(r, "MUL", broadcast=True, act=3, scales=(0.02, 0.05, 0.01)),
    "mul_int16": lambda r: binary(r, "MUL", kind=I16, scales=(0.0007, 0.0011, 0.0013)),
    "mean_int8_hw_keepdims": lambda r: mean(r),
    "mean_int8_axis3": lambda r: mean(r, axes=(3,), keep=False),
    "mean_int16_hw": lambda r: mean(r, kind=I16),
    "sum_int8_hw": lambda r: mean(r, op="SUM", out_scale=0.3),
    "sum_int8_axis3": lambda r: mean(r, axes=(3,), keep=False, op="SUM", out_scale=0.07),
    "sum_int16": lambda r: mean(r, kind=I16, axes=(0, 2), op="SUM", out_scale=0.2),
    "avg_pool_int8_same_relu": lambda r: pool("AVERAGE_POOL_2D", act=1),
    "avg_pool_int8_valid": lambda r: pool("AVERAGE_POOL_2D", padding=1),
    "avg_pool_int16": lambda r: pool("AVERAGE_POOL_2D", kind=I16),
    "max_pool_int8_same": lambda r: pool("MAX_POOL_2D"),
    "max_pool_int16_valid": lambda r: pool("MAX_POOL_2D", kind=I16, padding=1),
    "softmax_int8": lambda r: softmax(),
    "softmax_int8_beta_half": lambda r: softmax(beta=0.5, in_scale=0.3),
    "softmax_int16": lambda r: softmax(kind=I16, in_scale=0.0005),
    "softmax_int8_to_int16": lambda r: single_op("SOFTMAX", [_act(I8, (40, 13), 0.05, 3)],
                                                 [T("y", (40, 13), I16, scale=1 / 65536, zero_point=-32768)], dict(beta=1.0)),
    "log_softmax_int8": lambda r: unary("LOG_SOFTMAX", in_q=(0.1, 11), out_q=(16 / 256, 127), shape=(3, 40)),
    "log_softmax_int8_fine_scale": lambda r: unary("LOG_SOFTMAX", in_q=(0.003, -50), out_q=(16 / 256, 127), shape=(2, 3, 300)),
    "logistic_int8": lambda r: unary("LOGISTIC", out_q=(1 / 256, -128)),
    "tanh_int8": lambda r: unary("TANH", out_q=(1 / 128, 0)),
    "logistic_int16_pot": lambda r: unary("LOGISTIC", kind=I16, in_q=(2**-12, 0), out_q=(2**-15, 0)),
    "logistic_int16": lambda r: unary("LOGISTIC", kind=I16, in_q=(0.0007, 0), out_q=(2**-15, 0)),
    "tanh_int16_pot": lambda r: unary("TANH", kind=I16, in_q=(2**-11, 0), out_q=(2**-15, 0)),
    "tanh_int16": lambda r: unary("TANH", kind=I16, in_q=(0.00031, 0), out_q=(2**-15, 0)),
    "relu_int8": lambda r: unary("RELU"),
    "relu6_int8": lambda r: unary("RELU6", in_q=(0.05, -10), out_q=(6 / 255, -128)),
    "relu_int16": lambda r: unary("RELU", kind=I16, in_q=(0.001, 0), out_q=(0.0007, 0)),
    "leaky_relu_int8": lambda r: unary("LEAKY_RELU", options=dict(alpha=0.1)),
    "leaky_relu_int8_negative_alpha": lambda r: unary("LEAKY_RELU", options=dict(alpha=-0.3)),
    "leaky_relu_int16": lambda r: unary("LEAKY_RELU", kind=I16, in_q=(0.001, 0), out_q=(0.0007, 0), options=dict(alpha=0.2)),
    "hard_swish_int8": lambda r: unary("HARD_SWISH", in_q=(0.04, 5), out_q=(0.03, -20)),
    "exp_int8": lambda r: unary("EXP", in_q=(0.02, 30), out_q=(0.05, -120)),
    "exp_int8_overflowing": lambda r: unary("EXP", in_q=(1.0, 0), out_q=(0.05, 0)),  # exp(127) is inf in float32
    "abs_int8": lambda r: unary("ABS", in_q=(0.05, -10), out_q=(0.03, -128)),
    "abs_int8_same_scale": lambda r: unary("ABS", in_q=(0.05, 7), out_q=(0.05, -100)),
    "abs_int16": lambda r: unary("ABS", kind=I16, in_q=(0.001, 0), out_q=(0.0007, 0)),
    **{f"cumsum_int8{'_exclusive' * e}{'_reverse' * r}": (lambda e, r: lambda _: single_op(
        "CUMSUM", [T("x", (3, 6, 4), I8, scale=0.05, zero_point=-9), T("axis", (1,), "INT32", data=np.array([1], np.int32))],
        [T("y", (3, 6, 4), I8, scale=0.2, zero_point=5)], dict(exclusive=bool(e), reverse=bool(r))))(e, r)
       for e in (0, 1) for r in (0, 1)},
    "l2_normalization_int8": lambda r: unary("L2_NORMALIZATION", in_q=(0.05, -3), out_q=(1 / 128, 0), shape=(2, 5, 24)),
    "add_n_int8": lambda r: single_op("ADD_N", [T(f"x{k}", (2, 3, 5), I8, scale=0.05, zero_point=-9) for k in range(3)],
                                      [T("y", (2, 3, 5), I8, scale=0.1, zero_point=4)]),
    "log_int8": lambda r: unary("LOG", in_q=(0.05, -100), out_q=(0.03, 20)),
    "elu_int8": lambda r: unary("ELU", in_q=(0.04, 5), out_q=(0.03, -20)),
    # x / s_out past int32: LiteRT's tables saturate (127), TFLite Micro's ELU table converts as x86 does (-128)
    "elu_int8_past_int32": lambda r: unary("ELU", in_q=(1e6, 0), out_q=(1e-3, 0)),
    "gelu_int8": lambda r: unary("GELU", in_q=(0.04, 5), out_q=(0.03, -20), options=dict(approximate=False)),
    "gelu_int8_approximate": lambda r: unary("GELU", in_q=(0.05, -3), out_q=(0.02, -60), options=dict(approximate=True)),
    "hard_swish_int8_wide_input": lambda r: unary("HARD_SWISH", in_q=(0.3, -2), out_q=(0.2, -100)),
    "quantize_float_to_int8": lambda r: quantize_float(),
    "requantize_int8": lambda r: requantize(),
    "requantize_int16_to_int8": lambda r: requantize(I16, I8),
    "requantize_int16_to_int32": lambda r: requantize(I16, "INT32"),
    "requantize_int32_to_int16": lambda r: requantize("INT32", I16, in_scale=3e-6),
    "requantize_int32_to_int8": lambda r: requantize("INT32", I8, in_scale=2e-7),
    "dequantize_int8": lambda r: dequantize(),
    "dequantize_int16": lambda r: dequantize(I16),
    "dequantize_uint8": lambda r: dequantize("UINT8"),
    "quantize_float_to_int16": lambda r: quantize_float_to(I16),
    "quantize_float_to_uint8": lambda r: quantize_float_to("UINT8"),
    "requantize_int8_to_int16": lambda r: requantize(I8, I16, out_scale=0.0007),
    "requantize_int8_to_int32": lambda r: requantize(I8, "INT32", out_scale=1e-5),
    "requantize_uint8_to_int8": lambda r: requantize("UINT8", I8),
    "requantize_int8_to_uint8": lambda r: requantize(I8, "UINT8"),
    "requantize_uint8_to_uint8": lambda r: requantize("UINT8", "UINT8"),
    "requantize_uint8_to_int16": lambda r: requantize("UINT8", I16, out_scale=0.0007),
    **{f"{op.lower()}_int8": (lambda o: lambda r: shape_op(r, o))(op)
       for op in ("RESHAPE", "TRANSPOSE", "SQUEEZE", "PAD", "PADV2", "CONCATENATION", "STRIDED_SLICE", "EXPAND_DIMS",
                  "SLICE", "MAXIMUM", "MINIMUM")},
    "slice_int8_4d_sizes_given": lambda r: shape_op(r, "SLICE_4D"),
    **{f"{op.lower()}_int8": (lambda o: lambda r: movement_op(r, o))(op)
       for op in ("SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "BROADCAST_TO",
                  "SHAPE", "FILL", "ZEROS_LIKE", "ARG_MAX", "ARG_MIN", "REDUCE_MAX", "REDUCE_MIN", "SPACE_TO_BATCH_ND",
                  "SPACE_TO_BATCH_ND_NO_PAD", "BATCH_TO_SPACE_ND", "MIRROR_PAD", "MIRROR_PAD_SYMMETRIC", "TILE",
                  "REVERSE_V2", "REVERSE_V2_GAP", "GATHER_ND", "EMBEDDING_LOOKUP", "DYNAMIC_UPDATE_SLICE")},
    "gather_int8_batch_dims": lambda r: movement_op(r, "GATHER_BATCH"),
    **{f"{op.lower()}_int16": (lambda o: lambda r: movement_op(r, o, I16))(op)
       for op in ("SPLIT", "PACK", "GATHER", "REDUCE_MAX", "BROADCAST_TO", "REVERSE_V2", "MIRROR_PAD",
                  "DYNAMIC_UPDATE_SLICE")},
    "svdf_int16_state": lambda r: svdf(r),
    "svdf_int16_state_rank1_wrapping_time_sums": lambda r: svdf(r, rank=1, time_bits=16),
    "svdf_int8_state": lambda r: svdf(r, state=I8),  # TFLite Micro only
    "svdf_no_activation": lambda r: svdf(r, act=0),  # LiteRT requires RELU
    "lstm_int8": lambda r: lstm(r),
    "lstm_int8_time_major_no_clip": lambda r: lstm(r, time_major=True, clip=0.0, batch=3),
    "lstm_int8_saturating_gates": lambda r: lstm(r, saturate=True, clip=3.0),
    "lstm_int8_relu_cell_gate": lambda r: lstm(r, act=1),  # LiteRT ignores it (tanh); TFLite Micro asserts
    "lstm_int16x8": lambda r: lstm(r, wide=True, steps=6, units=7),
    "lstm_int8_layer_norm": lambda r: lstm(r, layer_norm=True),
    "lstm_int8_layer_norm_time_major": lambda r: lstm(r, layer_norm=True, time_major=True, units=5, steps=8),
    "lstm_int8_projection": lambda r: lstm(r, projection=3, units=5),
    "lstm_int8_projection_clip": lambda r: lstm(r, projection=6, units=5, proj_clip=0.3),
    "lstm_int8_cifg": lambda r: lstm(r, cifg=True),
    "lstm_int8_negative_cell_clip": lambda r: lstm(r, clip=-1.0),  # LiteRT refuses it; TFLite Micro: no clip
    "lstm_int8_peephole": lambda r: lstm(r, peephole=2.3e-5),
    "lstm_int8_peephole_ties": lambda r: lstm(r, peephole=0.125, units=20, steps=8),  # 16 NEON lanes, 4 scalar
    "lstm_int8_peephole_projection": lambda r: lstm(r, peephole=0.125, units=18, projection=12, batch=1, steps=6),
    "lstm_int8_layer_norm_projection_cifg": lambda r: lstm(r, layer_norm=True, projection=3, cifg=True, steps=7),
    "lstm_int16x8_time_major": lambda r: lstm(r, wide=True, time_major=True, batch=3),
    "div_int8": lambda r: arithmetic(r, "DIV"),
    "div_int8_broadcast_relu": lambda r: arithmetic(r, "DIV", broadcast=True, act=1),
    "div_int16": lambda r: arithmetic(r, "DIV", kind=I16, scales=(0.001, 0.0005, 0.002)),
    "squared_difference_int8": lambda r: arithmetic(r, "SQUARED_DIFFERENCE", scales=(0.05, 0.02, 0.5)),
    "squared_difference_int8_broadcast": lambda r: arithmetic(r, "SQUARED_DIFFERENCE", broadcast=True,
                                                             scales=(0.02, 0.03, 0.1)),
    "squared_difference_int16": lambda r: arithmetic(r, "SQUARED_DIFFERENCE", kind=I16, scales=(0.001, 0.002, 0.01)),
    "squared_difference_int8_output_multiplier_above_1": lambda r: arithmetic(r, "SQUARED_DIFFERENCE",
                                                                             scales=(0.5, 0.4, 1e-5)),
    "rsqrt_int8": lambda r: arithmetic(r, "RSQRT", scales=(0.05, 0, 0.02)),
    "prelu_int8": lambda r: arithmetic(r, "PRELU", scales=(0.05, 0.01, 0.04)),
    "prelu_int16": lambda r: arithmetic(r, "PRELU", kind=I16, scales=(0.001, 0.01, 0.0008)),
    "resize_nearest_int8": lambda r: resize("RESIZE_NEAREST_NEIGHBOR"),
    "resize_nearest_int8_align_corners": lambda r: resize("RESIZE_NEAREST_NEIGHBOR", size=(9, 3), align=True),
    "resize_nearest_int16_half_pixel": lambda r: resize("RESIZE_NEAREST_NEIGHBOR", kind=I16, size=(3, 13), half=True),
    # LiteRT's optimized kernel indexes in 16-bit fixed point, one lower than the float floor at places
    "resize_nearest_int8_upsample_26": lambda r: resize("RESIZE_NEAREST_NEIGHBOR", size=(82, 22)),
    "resize_nearest_int8_align_corners_83": lambda r: resize("RESIZE_NEAREST_NEIGHBOR", size=(83, 9), align=True),
    "resize_bilinear_int8": lambda r: resize("RESIZE_BILINEAR"),
    "resize_bilinear_int8_align_corners": lambda r: resize("RESIZE_BILINEAR", size=(9, 3), align=True),
    "resize_bilinear_int8_half_pixel": lambda r: resize("RESIZE_BILINEAR", size=(3, 13), half=True),
    "resize_bilinear_int16": lambda r: resize("RESIZE_BILINEAR", kind=I16, size=(6, 10)),
    **{f"{op.lower()}_int8": (lambda o: lambda r: comparison(o))(op)
       for op in ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL")},
    "less_int8_broadcast_same_scale": lambda r: comparison("LESS", broadcast=True, scales=(0.05, 0.05)),
    "equal_int16": lambda r: comparison("EQUAL", kind=I16, scales=(0.001, 0.0007)),
    "greater_int16_raw": lambda r: comparison("GREATER", kind=I16, scales=(0.001, 0.0007)),
    "select_v2_int8": lambda r: select_v2(),
    "select_v2_int16": lambda r: select_v2(I16),
    "logical_and": lambda r: single_op("LOGICAL_AND", [T("a", (2, 3), "BOOL"), T("b", (1, 3), "BOOL")], [T("y", (2, 3), "BOOL")]),
    "logical_or": lambda r: single_op("LOGICAL_OR", [T("a", (2, 3), "BOOL"), T("b", (2, 3), "BOOL")], [T("y", (2, 3), "BOOL")]),
    "logical_not": lambda r: single_op("LOGICAL_NOT", [T("a", (2, 3), "BOOL")], [T("y", (2, 3), "BOOL")]),
    "batch_matmul_int8": lambda r: batch_matmul(r),
    "batch_matmul_int8_adj_rhs_zero_point": lambda r: batch_matmul(r, adj_x=True, adj_y=True, rhs_zp=5),
    "batch_matmul_int8_constant_rhs": lambda r: batch_matmul(r, adj_y=True, constant_rhs=True),
    "batch_matmul_int16": lambda r: batch_matmul(r, kind=I16),
    "cast_int8_to_int32": lambda r: cast(I8, "INT32"),
    "cast_int16_to_int8": lambda r: cast(I16, I8),
    "cast_int8_to_float": lambda r: cast(I8, "FLOAT32"),
    "cast_int32_to_int16": lambda r: cast("INT32", I16),
    "cast_float_to_int8": lambda r: cast("FLOAT32", I8),  # saturation; NaN: see test_cast_nan
    "cast_float_to_int64": lambda r: cast("FLOAT32", "INT64"),
    "cast_int8_to_uint8": lambda r: cast(I8, "UINT8"),  # sizes > 0: the default interpreter's XNNPACK takes it
}  # fmt: skip


def _inputs(model, rng):
    out = []
    for t in model.input_details():
        if t.dtype == np.bool_:
            out.append(rng.integers(0, 2, size=t.shape).astype(bool))
        elif t.dtype == np.float32:
            x = rng.normal(0, 3, size=t.shape).astype(np.float32)
            x.reshape(-1)[:4] = [0.5 * 0.037, -1.5 * 0.037, 1e6, -1e6]  # ties and saturation
            out.append(x)
        else:
            out.append(random_int(rng, t.shape, t.dtype))
    return out


# cases one runtime's kernels refuse (the profile that models it must refuse them too):
# "tflite-reference" for LiteRT's kernels in every mode, "builtin-ref" for BUILTIN_REF alone
REFUSED = {
    "zeros_like_int8": {"tflite-reference"},  # LiteRT: int32, int64, float32 only
    "gather_int8_batch_dims": {"tflm"},  # its int64 indices
    "gather_int16": {"tflm"},
    "reduce_max_int16": {"tflm"},
    "requantize_int8_to_int32": {"tflite-reference"},
    "cast_int8_to_uint8": {"tflm"},
    "svdf_no_activation": {"tflite-reference"},
    "lstm_int8_relu_cell_gate": {"tflm"},
    "lstm_int16x8": {"tflite-reference"},  # LiteRT takes only an int8 input as integer
    "lstm_int8_negative_cell_clip": {"tflite-reference"},
    **dict.fromkeys(("lstm_int8_layer_norm", "lstm_int8_layer_norm_time_major", "lstm_int8_projection",
                     "lstm_int8_projection_clip", "lstm_int8_cifg", "lstm_int8_layer_norm_projection_cifg",
                     "lstm_int8_peephole", "lstm_int8_peephole_ties", "lstm_int8_peephole_projection"), {"tflm"}),
    "lstm_int16x8_time_major": {"tflite-reference"},
    "quantize_float_to_uint8": {"tflm"},  # TFLite Micro: uint8 only to or from int8
    "requantize_uint8_to_uint8": {"tflm"},
    "requantize_uint8_to_int16": {"tflm"},
    "svdf_int8_state": {"tflite-reference"},
    "div_int16": {"tflm"},
    "space_to_batch_nd_int8": {"tflm"},  # TFLite Micro pads with an unset value
    "tile_int8": {"tflm"},
    "add_n_int8": {"tflite-reference"},
    **dict.fromkeys(("cumsum_int8", "cumsum_int8_exclusive", "cumsum_int8_reverse", "cumsum_int8_exclusive_reverse"),
                    {"tflite-reference"}),
    "reverse_v2_gap_int8": {"tflm", "tflite-reference"},
    "mirror_pad_int16": {"tflm"},
    "equal_int16": {"tflm"},
    "greater_int16_raw": {"tflm"},
    "resize_bilinear_int16": {"tflm"},
    "exp_int8": {"tflm"},
    "exp_int8_overflowing": {"tflm"},
    "cast_float_to_int64": {"tflm"},
    "log_int8": {"tflm"},
    "gelu_int8": {"tflm"},
    "gelu_int8_approximate": {"tflm"},
    "elu_int8": {"builtin-ref"},
    "elu_int8_past_int32": {"builtin-ref"},  # BUILTIN_REF has no ELU: checked against the two other LiteRT modes
    "squared_difference_int16": {"tflite-reference"},
    "squared_difference_int8_output_multiplier_above_1": {"tflite-reference"},
}
# cases TFLite Micro is not given: it aborts (TFLITE_ASSERT_FALSE) or reads unset memory
UNSAFE_IN_TFLM = {"lstm_int8_relu_cell_gate", "greater_int16_raw", "space_to_batch_nd_int8"}
# cases whose arithmetic in LiteRT's optimized kernels and XNNPACK is not modelled yet: those
# profiles raise a clear error (the reference kernel's is, under tflite-reference and tflm)
NOT_MODELLED = {c: {"tflite-reference"} for c in ("sum_int8_hw", "sum_int8_axis3", "sum_int16")}  # BUILTIN_REF's SUM bug


def _not_modelled(model, xs, profile):
    with pytest.raises(itf.ModelError, match="not modelled"):
        itf.run(model, xs, profile=profile, reset_state=True)


# cases LiteRT must not be given: its kernel corrupts the heap (and may abort the test process)
UNSAFE_IN_LITERT = {"svdf_int8_state", "squared_difference_int8_output_multiplier_above_1"}  # TFLITE_CHECK aborts


def _refused(data, model, xs, profile, case=None):
    """The runtime ``profile`` models and intsim both refuse the model (LiteRT is not run on
    ``UNSAFE_IN_LITERT`` cases, TFLite Micro on ``UNSAFE_IN_TFLM`` ones)."""
    if case not in (UNSAFE_IN_TFLM if profile == "tflm" else UNSAFE_IN_LITERT):
        with pytest.raises((RuntimeError, ValueError)):
            interpret(data, xs, profile)
    with pytest.raises(itf.ModelError, match="cannot run it|refuse"):
        itf.run(model, xs, reset_state=True, profile=profile)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_litert_reference(case, backend):
    rng = np.random.default_rng(sum(map(ord, case)))
    data = CASES[case](rng)
    model = itf.load(data)
    assert len(model.operators) == 1 and model.operators[0].op in itf.supported_ops()  # parsed: its one operator
    if REFUSED.get(case, set()) & {"tflite-reference", "builtin-ref"}:
        return _refused(data, model, _inputs(model, rng), "tflite-reference", case)
    if "tflite-reference" in NOT_MODELLED.get(case, ()):
        reference(data, _inputs(model, rng))  # LiteRT runs it
        return _not_modelled(model, _inputs(model, rng), "tflite-reference")
    for _ in range(12 if backend == "jit" else 3):  # the Python-int reference is slow: fewer draws
        xs = _inputs(model, rng)
        want = reference(data, xs)
        for whole_model in (None, False):  # the whole-model program where the op has one, and op by op
            got = itf.run(model, xs, reset_state=True, profile="tflite-reference", whole_model=whole_model, backend=backend)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and g.shape == w.shape
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_tflite_micro(case):
    """The ``tflm`` profile against the TFLite Micro runtime itself (``tflite-micro``), every
    backend on the first draw."""
    rng = np.random.default_rng(sum(map(ord, case)) + 5)
    data = CASES[case](rng)
    model = itf.load(data)
    if "tflm" in REFUSED.get(case, ()):
        return _refused(data, model, _inputs(model, rng), "tflm", case)
    for draw in range(4):
        xs = _inputs(model, rng)
        want = interpret(data, xs, "tflm")
        for backend in ALL_BACKENDS if draw == 0 else ("jit",):
            for g, w in zip(itf.run(model, xs, reset_state=True, profile="tflm", backend=backend), want, strict=True):
                np.testing.assert_array_equal(g, w.reshape(g.shape), err_msg=backend)


def test_tflite_micro_and_litert_reference_differ_where_the_profiles_say():
    """RELU6 in TFLite Micro clamps in the input's quantization; MUL's multiplier is double there,
    float32 in LiteRT; the LSTM's gates (table sigmoid vs gemmlowp's) and its saturating sums;
    DIV's exact ties (s1 / (s2 s_out) = 25: every odd numerator over 20): one case each where
    the two runtimes (and the two profiles) disagree."""
    relu6 = unary("RELU6", in_q=(0.05, -10), out_q=(6 / 255, -128))
    # scales whose two multiplier derivations quantize differently, and every pair of int8 inputs
    mul = single_op("MUL", [T("a", (256, 256), I8, scale=0.05556532368063927, zero_point=0),
                            T("b", (256, 256), I8, scale=0.1286262571811676, zero_point=0)],
                    [T("y", (256, 256), I8, scale=0.40395599603652954, zero_point=0)])  # fmt: skip
    grid = np.arange(-128, 128, dtype=np.int8)
    rng = np.random.default_rng(1)
    divide = single_op("DIV", [T("a", (2, 256), I8, scale=0.05, zero_point=0),
                               T("b", (2, 1), I8, data=np.array([[20], [-20]], np.int8), scale=0.02, zero_point=0)],
                       [T("y", (2, 256), I8, scale=0.1, zero_point=0)], dict(fused_activation_function=0))  # fmt: skip
    for data in (relu6, mul, lstm(rng, units=16, steps=10), lstm(rng, saturate=True), divide):
        model = itf.load(data)
        departs = 0
        for _ in range(2):
            xs = [np.repeat(grid, 256).reshape(256, 256), np.tile(grid, (256, 1))] if data is mul else _inputs(model, rng)
            tflm, ref = interpret(data, xs, "tflm")[0], reference(data, xs)[0]
            np.testing.assert_array_equal(itf.run(model, xs, reset_state=True, profile="tflm")[0], tflm.reshape(ref.shape))
            np.testing.assert_array_equal(itf.run(model, xs, reset_state=True, profile="tflite-reference")[0], ref)
            departs += int(np.count_nonzero(tflm.reshape(ref.shape) != ref))
        assert departs, model.operators[0].op


STATEFUL = {"tflm": ("svdf_int16_state", "svdf_int8_state", "lstm_int8", "lstm_int8_saturating_gates", "lstm_int16x8"),
            "tflite-reference": ("svdf_int16_state", "lstm_int8", "lstm_int8_saturating_gates")}


@pytest.mark.parametrize("profile", sorted(STATEFUL))
def test_state_persists_across_runs_and_resets(profile):
    """One interpreter invoked again and again: outputs and state tensors equal intsim's runs
    after each call, and again after both reset their state."""
    import warnings

    from _tflite_util import MODES, micro, micro_tensor
    from ai_edge_litert.interpreter import Interpreter

    for case in STATEFUL[profile]:
        rng = np.random.default_rng(len(case))
        data = CASES[case](rng)
        model = itf.load(data)
        variables = [t for t in model.tensors if t.is_variable]
        if profile == "tflm":
            ip = micro(data, preserve=True)
            invoke = lambda x: (ip.set_input(x, 0), ip.invoke())  # noqa: E731
            read, reset = (lambda t: micro_tensor(ip, model, t.index)), ip.reset
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ip = Interpreter(model_content=data, experimental_op_resolver_type=MODES[profile],
                                 experimental_preserve_all_tensors=True)  # fmt: skip
            ip.allocate_tensors()
            invoke = lambda x: (ip.set_tensor(model.inputs[0], x), ip.invoke())  # noqa: E731
            read, reset = (lambda t: ip.get_tensor(t.index)), ip.reset_all_variables
        for call in range(6):
            if call == 4:
                reset()
                model.reset_state()
            (x,) = _inputs(model, rng)
            invoke(x)
            (got,), values = itf.run(model, x, profile=profile, return_intermediates=True)
            out = model.tensors[model.outputs[0]]
            np.testing.assert_array_equal(got, read(out).reshape(got.shape), err_msg=f"{case}, call {call}")
            for t in variables:
                np.testing.assert_array_equal(values[t.name], read(t).reshape(t.shape), err_msg=f"{case}, {t.name}")


def test_cast_nan():
    """A float NaN cast to int8: LiteRT's SafeCast gives 127, the TFLite Micro runtime 0."""
    data = cast("FLOAT32", I8)
    model = itf.load(data)
    x = np.full((4, 50), np.nan, np.float32)
    x[0, :4] = [np.inf, -np.inf, 2.9, -2.9]
    for profile, nan in (("tflite-reference", 127), ("tflm", 0)):
        (want,) = interpret(data, [x], profile)
        (got,) = itf.run(model, [x], reset_state=True, profile=profile)
        np.testing.assert_array_equal(got, want.reshape(got.shape))
        assert got[1, 0] == nan and list(got[0, :4]) == [127, -128, 2, -2]


def test_every_registered_op_is_covered():
    covered = {itf.load(CASES[c](np.random.default_rng(0))).operators[0].op for c in CASES}
    assert covered == set(itf.supported_ops()) - {"RELU_N1_TO_1"}


# operators whose arithmetic the profile's conv/FC rules or quantize rounding decide, and those
# it runs by XNNPACK's own arithmetic (int8 ADD/SUB/MUL/QUANTIZE/LEAKY_RELU/MEAN: tests/test_litert_default.py)
RULED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "QUANTIZE", "BATCH_MATMUL"}
XNNPACK_OWN = {"ADD", "SUB", "MUL", "QUANTIZE", "LEAKY_RELU", "MEAN", "ELU", "RESIZE_BILINEAR",
               "RESIZE_NEAREST_NEIGHBOR"}  # (the nearest: LiteRT's optimized indexing, which it falls back to)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_op_runs_under_a_float_rule_profile(case):
    """``xnnpack`` (float32 requantization) runs every operator: the program equals the op path,
    and operators its rules do not touch equal the reference profile's output."""
    rng = np.random.default_rng(sum(map(ord, case)) + 1)
    model = itf.load(CASES[case](rng))
    if "xnnpack" in NOT_MODELLED.get(case, ()):
        return _not_modelled(model, _inputs(model, rng), "xnnpack")
    if "tflite-reference" in REFUSED.get(case, ()):  # LiteRT's refusal holds in every LiteRT profile
        with pytest.raises(itf.ModelError, match="cannot run it|refuse"):
            itf.run(model, _inputs(model, rng), reset_state=True, profile="xnnpack")
        return
    for _ in range(3):
        xs = _inputs(model, rng)
        got = itf.run(model, xs, reset_state=True, profile="xnnpack", whole_model=False)
        np.testing.assert_array_equal(itf.run(model, xs, reset_state=True, profile="xnnpack")[0], got[0])
        op = model.operators[0]
        own = op.op in XNNPACK_OWN and model.tensors[op.inputs[0]].dtype == np.int8
        if op.op not in RULED and not own and "tflite-reference" not in NOT_MODELLED.get(case, ()):
            np.testing.assert_array_equal(got[0], itf.run(model, xs, reset_state=True, profile="tflite-reference")[0])


def test_int16_logistic_and_tanh_on_every_input():
    """All 65536 int16 inputs: the table interpolation (BUILTIN_REF, the TFLite Micro runtime)
    and gemmlowp's int16 fixed point (LiteRT's optimized kernels on power-of-two scales), against
    the runtimes; the LSTM's gates use the same functions."""
    x = np.arange(-32768, 32768, dtype=np.int16).reshape(256, 256)
    for op in ("LOGISTIC", "TANH"):
        for s_in in (2.0**-12, 2.0**-11, 0.0007):
            data = unary(op, kind=I16, in_q=(s_in, 0), out_q=(2.0**-15, 0), shape=(256, 256))
            model = itf.load(data)
            for profile in ("tflite-reference", "litert-builtin", "tflm"):
                (want,) = interpret(data, [x], profile)
                (got,) = itf.run(model, [x], profile=profile)
                np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=f"{op} {s_in} {profile}")
