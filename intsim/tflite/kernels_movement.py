"""SPLIT, SPLIT_V, PACK, UNPACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH, BROADCAST_TO,
SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, MIRROR_PAD, TILE, REVERSE_V2, GATHER_ND, EMBEDDING_LOOKUP,
DYNAMIC_UPDATE_SLICE: integers moved, never changed.

As in ``kernels_shape``, every input and output must share one quantization: LiteRT's and TFLite
Micro's kernels copy the raw integers (``split.cc``, ``split_v.cc``, ``pack.cc``, ``unpack.cc``,
``gather.cc``, ``depth_to_space.cc``, ``space_to_depth.cc``, ``broadcast_to.cc``), which would
change the real values were the quantizations to differ, so such models are refused.
"""

from __future__ import annotations

import numpy as np

from intsim.tflite.context import kernel
from intsim.tflite.kernels_shape import _same_quantization
from intsim.tflite.model import ModelError


def _axis(op, value, rank: int, what: str = "axis") -> int:
    a = int(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size == 1 else None
    if a is None or not -rank <= a < rank:
        raise ModelError(f"{op.describe()}: {what} {np.asarray(value).tolist()} outside a rank-{rank} tensor")
    return a % rank


def _outputs_like(ctx, op, ins):
    _same_quantization(op, [ctx.in_tensor(op, k) for k in ins], ctx.out_tensor(op))
    for k in range(1, len(op.outputs)):
        _same_quantization(op, [ctx.out_tensor(op, 0)], ctx.out_tensor(op, k))


@kernel("SPLIT")
def split(ctx, op):
    """``split.cc``: inputs (axis, x); ``num_splits`` equal parts along the axis."""
    x = ctx.input(op, 1)
    _outputs_like(ctx, op, [1])
    axis = _axis(op, ctx.input(op, 0), x.ndim)
    n = int(op.options.get("num_splits", len(op.outputs)))
    if n != len(op.outputs) or n <= 0 or x.shape[axis] % n:
        raise ModelError(f"{op.describe()}: cannot split axis {axis} of shape {x.shape} into {n} parts "
                         f"for {len(op.outputs)} outputs")  # fmt: skip
    return np.split(x, n, axis=axis)


@kernel("SPLIT_V")
def split_v(ctx, op):
    """``split_v.cc``: inputs (x, size_splits, axis); one size may be -1 (the rest)."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    axis = _axis(op, ctx.input(op, 2), x.ndim)
    sizes = [int(s) for s in np.asarray(ctx.input(op, 1)).reshape(-1)]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    if len(sizes) != len(op.outputs) or any(s < 0 for s in sizes) or sum(sizes) != x.shape[axis]:
        raise ModelError(f"{op.describe()}: size_splits {np.asarray(ctx.input(op, 1)).tolist()} do not split "
                         f"axis {axis} of shape {x.shape} into {len(op.outputs)} outputs")  # fmt: skip
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@kernel("PACK")
def pack(ctx, op):
    """``pack.cc``: ``values_count`` tensors of one shape stacked along a new ``axis``."""
    xs = [ctx.input(op, k) for k in range(len(op.inputs))]
    _outputs_like(ctx, op, range(len(op.inputs)))
    if op.options.get("values_count", len(xs)) != len(xs) or len({x.shape for x in xs}) != 1:
        raise ModelError(f"{op.describe()}: needs {op.options.get('values_count')} inputs of one shape, "
                         f"got shapes {[x.shape for x in xs]}")  # fmt: skip
    axis = _axis(op, op.options.get("axis", 0), xs[0].ndim + 1)
    return [np.stack(xs, axis=axis)]


@kernel("UNPACK")
def unpack(ctx, op):
    """``unpack.cc``: ``num`` tensors taken along ``axis``, which disappears."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    axis = _axis(op, op.options.get("axis", 0), x.ndim)
    if x.shape[axis] != len(op.outputs) or op.options.get("num", len(op.outputs)) != len(op.outputs):
        raise ModelError(f"{op.describe()}: axis {axis} of shape {x.shape} does not unpack into "
                         f"{len(op.outputs)} outputs")  # fmt: skip
    return [np.ascontiguousarray(np.take(x, i, axis=axis)) for i in range(x.shape[axis])]


@kernel("GATHER")
def gather(ctx, op):
    """``gather.cc`` (``reference_ops::Gather``): ``params`` indexed along ``axis`` by
    ``indices`` (int32 or int64), the first ``batch_dims`` axes shared.  An index outside
    ``[0, dim)`` is an error in both runtimes, and here.  TFLite Micro takes int8 (or float32)
    values and int32 indices only."""
    x, idx = ctx.input(op, 0), np.asarray(ctx.input(op, 1))
    _outputs_like(ctx, op, [0])
    if idx.dtype not in (np.int32, np.int64):
        raise ModelError(f"{op.describe()}: indices must be int32 or int64, got {idx.dtype}")
    if x.dtype.kind in "iu" and x.dtype != np.int8 or idx.dtype != np.int32:
        ctx.refuse(op, tflm=f"{x.dtype} values with {idx.dtype} indices (micro/kernels/gather.cc: int8 or float32 "
                            "values, int32 indices)")  # fmt: skip
    axis = _axis(op, op.options.get("axis", 0), x.ndim)
    batch = int(op.options.get("batch_dims", 0))
    batch += idx.ndim if batch < 0 else 0
    if not 0 <= batch <= min(axis, idx.ndim) or x.shape[:batch] != idx.shape[:batch]:
        raise ModelError(f"{op.describe()}: batch_dims {op.options.get('batch_dims')} for params {x.shape} and "
                         f"indices {idx.shape}")  # fmt: skip
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[axis]):
        raise ModelError(f"{op.describe()}: an index lies outside [0, {x.shape[axis]}) "
                         f"(values {int(idx.min())}..{int(idx.max())})")  # fmt: skip
    outer = int(np.prod(x.shape[:batch], dtype=np.int64))
    xb = x.reshape((outer,) + x.shape[batch:])
    ib = idx.reshape((outer,) + idx.shape[batch:])
    parts = [np.take(xb[i], ib[i], axis=axis - batch) for i in range(outer)]
    out_shape = x.shape[:axis] + idx.shape[batch:] + x.shape[axis + 1 :]
    return [np.stack(parts).reshape(out_shape) if parts else np.zeros(out_shape, x.dtype)]


def _block(op, x):
    b = int(op.options.get("block_size", 0))
    if x.ndim != 4 or b < 1:
        raise ModelError(f"{op.describe()}: needs a 4-D NHWC input and block_size >= 1, got {x.shape}, {b}")
    return b


@kernel("DEPTH_TO_SPACE")
def depth_to_space(ctx, op):
    """``reference_ops::DepthToSpace``: ``out[n, h*b + i, w*b + j, c] = in[n, h, w, (i*b + j)*C + c]``."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    b = _block(op, x)
    n, h, w, d = x.shape
    if d % (b * b):
        raise ModelError(f"{op.describe()}: depth {d} is not a multiple of block_size^2 = {b * b}")
    c = d // (b * b)
    y = x.reshape(n, h, w, b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(y.reshape(n, h * b, w * b, c))]


@kernel("SPACE_TO_DEPTH")
def space_to_depth(ctx, op):
    """``reference_ops::SpaceToDepth``, the inverse of DEPTH_TO_SPACE."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    b = _block(op, x)
    n, h, w, c = x.shape
    if h % b or w % b:
        raise ModelError(f"{op.describe()}: height {h} and width {w} must be multiples of block_size {b}")
    y = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(y.reshape(n, h // b, w // b, b * b * c))]


@kernel("BROADCAST_TO")
def broadcast_to(ctx, op):
    """``broadcast_to.cc``: ``x`` repeated to ``shape`` by numpy's (TFLite's) broadcasting rule."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    shape = tuple(int(d) for d in np.asarray(ctx.input(op, 1)).reshape(-1))
    try:
        return [np.ascontiguousarray(np.broadcast_to(x, shape))]
    except ValueError:
        raise ModelError(f"{op.describe()}: shape {x.shape} does not broadcast to {shape}") from None


def _nhwc(op, x):
    if x.ndim not in (3, 4):
        raise ModelError(f"{op.describe()}: needs a 3-D (NHC) or 4-D (NHWC) input, got {x.shape}")
    return x if x.ndim == 4 else x[:, :, None, :]


def _int_values(op, ctx, k, n):
    v = np.asarray(ctx.input(op, k)).astype(np.int64).reshape(-1)
    if v.size != n:
        raise ModelError(f"{op.describe()}: input {k} needs {n} values, got {v.tolist()}")
    return v


@kernel("SPACE_TO_BATCH_ND")
def space_to_batch_nd(ctx, op):
    """``reference_ops::SpaceToBatchND``: H and W padded (LiteRT pads with the output zero point;
    TFLite Micro with an unset value: refused when any padding is not 0), then blocks of
    ``block_shape`` moved into the batch, ``out[(by * bw + bx) * N + n, h, w] = in[n, h * bh +
    by, w * bw + bx]``."""
    x0 = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    x = _nhwc(op, x0)
    spatial = 2 if x0.ndim == 4 else 1
    block = _int_values(op, ctx, 1, spatial)
    pads = _int_values(op, ctx, 2, 2 * spatial).reshape(spatial, 2)
    if np.any(block < 1) or np.any(pads < 0):
        raise ModelError(f"{op.describe()}: block_shape {block.tolist()} and paddings {pads.tolist()} must be positive")
    bh, bw = (int(block[0]), int(block[1]) if spatial == 2 else 1)
    (pt, pb), (pl, pr) = pads[0], (pads[1] if spatial == 2 else (0, 0))
    if pads.any():
        ctx.refuse(op, tflm="padding (space_to_batch_nd.cc never sets the pad value)")
    out = ctx.out_tensor(op)
    fill = int(out.zero_point[0]) if out.quantized and out.zero_point.size else 0
    p = np.pad(x, [(0, 0), (pt, pb), (pl, pr), (0, 0)], constant_values=fill)
    n, h, w, c = p.shape
    if h % bh or w % bw:
        raise ModelError(f"{op.describe()}: padded size {h}x{w} is not a multiple of the block {bh}x{bw}")
    y = p.reshape(n, h // bh, bh, w // bw, bw, c).transpose(2, 4, 0, 1, 3, 5).reshape(bh * bw * n, h // bh, w // bw, c)
    return [np.ascontiguousarray(y if x0.ndim == 4 else y[:, :, 0, :])]


@kernel("BATCH_TO_SPACE_ND")
def batch_to_space_nd(ctx, op):
    """``reference_ops::BatchToSpaceND``: the inverse of SPACE_TO_BATCH_ND, then ``crops``."""
    x0 = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    x = _nhwc(op, x0)
    spatial = 2 if x0.ndim == 4 else 1
    block = _int_values(op, ctx, 1, spatial)
    crops = _int_values(op, ctx, 2, 2 * spatial).reshape(spatial, 2)
    bh, bw = (int(block[0]), int(block[1]) if spatial == 2 else 1)
    b, h, w, c = x.shape
    if np.any(block < 1) or b % (bh * bw) or np.any(crops < 0):
        raise ModelError(f"{op.describe()}: batch {b} does not split into blocks {block.tolist()} (crops {crops.tolist()})")
    n = b // (bh * bw)
    y = x.reshape(bh, bw, n, h, w, c).transpose(2, 3, 0, 4, 1, 5).reshape(n, h * bh, w * bw, c)
    (ct, cb), (cl, cr) = crops[0], (crops[1] if spatial == 2 else (0, 0))
    if ct + cb > h * bh or cl + cr > w * bw:
        raise ModelError(f"{op.describe()}: crops {crops.tolist()} exceed the output {h * bh}x{w * bw}")
    y = y[:, ct : h * bh - cb, cl : w * bw - cr]
    return [np.ascontiguousarray(y if x0.ndim == 4 else y[:, :, 0, :])]


@kernel("MIRROR_PAD")
def mirror_pad(ctx, op):
    """``mirror_pad.cc``: REFLECT (mode 0, the border not repeated) or SYMMETRIC (mode 1, the
    border repeated) padding, ``paddings`` int32 or int64 of shape (rank, 2)."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    pads = np.asarray(ctx.input(op, 1)).astype(np.int64)
    mode = int(op.options.get("mode", 0))
    if x.dtype == np.int16:
        ctx.refuse(op, tflm="int16 MIRROR_PAD (mirror_pad.cc: float32 and int8 only)")
    if pads.shape != (x.ndim, 2) or np.any(pads < 0) or mode not in (0, 1):
        raise ModelError(f"{op.describe()}: paddings {pads.tolist()} (mode {mode}) for rank {x.ndim}")
    limit = np.array(x.shape) - (1 if mode == 0 else 0)
    if np.any(pads > limit[:, None]):
        raise ModelError(f"{op.describe()}: paddings {pads.tolist()} exceed what mode {mode} can mirror in {x.shape}")
    return [np.pad(x, pads.tolist(), mode="reflect" if mode == 0 else "symmetric")]


@kernel("TILE")
def tile(ctx, op):
    """``tile.cc`` (LiteRT only): ``x`` repeated ``multiples`` times along each axis."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    ctx.refuse(op, tflm="TILE (TFLite Micro has no TILE kernel)")
    m = np.asarray(ctx.input(op, 1)).astype(np.int64).reshape(-1)
    if m.size != x.ndim or np.any(m < 0):
        raise ModelError(f"{op.describe()}: multiples {m.tolist()} for rank {x.ndim}")
    return [np.tile(x, m.tolist())]


@kernel("REVERSE_V2")
def reverse_v2(ctx, op):
    """``reverse.cc``: ``x`` reversed along the given axes, which both runtimes require to be
    contiguous."""
    x = ctx.input(op, 0)
    _outputs_like(ctx, op, [0])
    axes = [int(a) for a in np.asarray(ctx.input(op, 1)).reshape(-1)]
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise ModelError(f"{op.describe()}: axes {axes} outside a rank-{x.ndim} tensor")
    ordered = sorted(a % x.ndim for a in axes)
    if ordered and ordered != list(range(ordered[0], ordered[0] + len(ordered))):
        raise ModelError(f"{op.describe()}: axes {axes} are not contiguous, which LiteRT's and TFLite Micro's kernels refuse")
    return [np.ascontiguousarray(np.flip(x, axis=tuple(a % x.ndim for a in axes)))]


@kernel("GATHER_ND")
def gather_nd(ctx, op):
    """``gather_nd.cc``: ``params`` indexed by the last axis of ``indices`` (int32; int64 in
    LiteRT too); an index outside its axis is an error in both runtimes."""
    x, idx = ctx.input(op, 0), np.asarray(ctx.input(op, 1))
    _outputs_like(ctx, op, [0])
    if idx.dtype not in (np.int32, np.int64) or idx.ndim < 1 or idx.shape[-1] > x.ndim:
        raise ModelError(f"{op.describe()}: indices {idx.dtype}{list(idx.shape)} for params of rank {x.ndim}")
    if idx.dtype != np.int32 or x.dtype != np.int8:
        ctx.refuse(op, tflm=f"{x.dtype} params with {idx.dtype} indices (gather_nd.cc: int8 or float32, int32)")
    depth = idx.shape[-1]
    flat = idx.reshape(-1, depth).astype(np.int64)
    if flat.size and (np.any(flat < 0) or np.any(flat >= np.array(x.shape[:depth]))):
        raise ModelError(f"{op.describe()}: an index lies outside params of shape {x.shape}")
    picked = x[tuple(flat.T)] if depth else np.broadcast_to(x, (flat.shape[0], *x.shape))
    return [np.ascontiguousarray(picked.reshape(idx.shape[:-1] + x.shape[depth:]))]


@kernel("EMBEDDING_LOOKUP")
def embedding_lookup(ctx, op):
    """``embedding_lookup.cc``: rows of ``value`` picked by the int32 ``lookup`` (inputs: lookup,
    value); an id outside the table is an error in both runtimes."""
    ids, table = np.asarray(ctx.input(op, 0)), ctx.input(op, 1)
    if ids.dtype != np.int32 or ids.ndim != 1:
        raise ModelError(f"{op.describe()}: the lookup must be 1-D int32, got {ids.dtype}{list(ids.shape)}")
    out = ctx.out_tensor(op)
    if out.dtype != table.dtype:
        raise ModelError(f"{op.describe()}: {out.describe()} must be {table.dtype} (hybrid lookups are not modelled)")
    _same_quantization(op, [ctx.in_tensor(op, 1)], out)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ModelError(f"{op.describe()}: an id lies outside the {table.shape[0]} rows")
    return [np.ascontiguousarray(table[ids.astype(np.int64)])]


@kernel("DYNAMIC_UPDATE_SLICE")
def dynamic_update_slice(ctx, op):
    """``dynamic_update_slice.cc``: ``operand`` with ``update`` written at ``start``, each start
    clamped to ``[0, dim - update_dim]``."""
    x, upd = ctx.input(op, 0), ctx.input(op, 1)
    start = np.asarray(ctx.input(op, 2)).astype(np.int64).reshape(-1)
    _same_quantization(op, [ctx.in_tensor(op, 0), ctx.in_tensor(op, 1)], ctx.out_tensor(op))
    if upd.ndim != x.ndim or start.size != x.ndim or any(u > d for u, d in zip(upd.shape, x.shape, strict=True)):
        raise ModelError(f"{op.describe()}: update {upd.shape} and start {start.tolist()} for operand {x.shape}")
    s = [int(min(max(0, b), d - u)) for b, d, u in zip(start, x.shape, upd.shape, strict=True)]
    y = x.copy()
    y[tuple(slice(b, b + u) for b, u in zip(s, upd.shape, strict=True))] = upd
    return [y]
