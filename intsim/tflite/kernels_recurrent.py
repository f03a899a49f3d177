"""SVDF: a streaming operator, with state kept in a variable tensor across runs (the LSTM is in
``tflite.lstm``).

The state lives in the model's variable tensors (``Model.state``): each run reads it from
``ctx.values`` and writes it back with ``Context.assign``, as the interpreters keep it between
``Invoke`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intsim import fixedpoint as fxp
from intsim import profiles as _profiles
from intsim.tflite.context import kernel, qparams, type_range
from intsim.tflite.model import ModelError

f32 = np.float32


def _scale(op, t) -> np.float32:
    if t.scale.size < 1 or not np.isfinite(t.scale[0]) or t.scale[0] <= 0:
        raise ModelError(f"{op.describe()}: {t.describe()} needs a positive scale")
    return f32(t.scale[0])


@kernel("SVDF")
def svdf(ctx, op):
    """Integer SVDF: LiteRT ``tflite/kernels/svdf.cc`` with ``internal/reference/svdf.h``
    (``EvalIntegerSVDF``), TFLite Micro ``micro/kernels/svdf_common.cc``
    (``EvalIntegerSvdfReference``).  Inputs: int8 ``x`` [B, I], int8 ``weights_feature`` [F, I],
    ``weights_time`` [F, M] (int16; int8 in TFLite Micro), int32 ``bias`` [U], the variable
    ``state`` [B, F*M] of weights_time's type; U = F / rank.  Per run:

    1. the flat state moves left by one element;
    2. ``state[b, f, M-1] = clamp(MBQM(sum_i wf[f,i] * (x[b,i] - zp_x), s_x*s_wf/s_state))``
       (int32 sum) to the state type; TFLite Micro then adds the state's zero point, wrapping
       in the state type, where LiteRT ignores that zero point;
    3. ``t[b, f] = sum_m wt[f,m] * (state[b,f,m] - zp_state)``, an int32 sum (it wraps);
    4. ``y = clamp(MBQM(sum_r t[b, u*rank + r] + bias[u], s_state*s_wt/s_out) + zp_y, -128, 127)``
       (int32, wrapping).

    The effective scales come from the profile's ``recurrent`` class: float32 products in
    LiteRT (svdf.cc), double in the tflite-micro runtime (0.dev20261023; its 90b983c source
    had float32).  Neither runtime applies the fused activation (LiteRT requires RELU and
    ignores it; TFLite Micro ignores it); TFLite Micro requires a bias whose scale is within
    1e-5 of ``s_state * s_wt``."""
    p = ctx.once(("svdf", op.index), lambda: _svdf_params(ctx, op))
    x, state = ctx.input(op, 0), ctx.input(op, 4)
    b, (f, m) = x.shape[0], p.wt.shape
    if x.shape != (b, p.wf.shape[1]) or state.size != b * f * m:
        raise ModelError(f"{op.describe()}: input {x.shape} and state {state.shape} do not fit weights_feature "
                         f"{p.wf.shape} and weights_time {p.wt.shape}")  # fmt: skip
    flat = state.reshape(-1).astype(np.int64)
    flat = np.concatenate([flat[1:], flat[-1:]]).reshape(b, f, m)  # std::copy(state + 1, end, state)
    dot = fxp.wrap32((x.astype(np.int64) - p.zp_x) @ p.wf.T)  # [B, F]
    lo, hi = type_range(p.state_dtype)
    newest = np.clip(ctx.mbqm_raw(op, dot, *p.feature), lo, hi) + p.zp_state
    flat[:, :, m - 1] = newest.astype(p.state_dtype)  # TFLite Micro adds the zero point after the clamp: it wraps
    t = fxp.wrap32(np.einsum("bfm,fm->bf", flat - p.zp_state, p.wt))
    acc = fxp.wrap32(t.reshape(b, f // p.rank, p.rank).sum(axis=2) + p.bias)
    y = np.clip(ctx.mbqm_raw(op, acc, *p.time) + p.zp_y, -128, 127)
    ctx.assign(op, 4, flat.astype(p.state_dtype).reshape(state.shape))
    return [y.astype(np.int8)]


@dataclass(frozen=True)
class SvdfParams:
    wf: np.ndarray  # [F, I] int64
    wt: np.ndarray  # [F, M] int64
    bias: np.ndarray  # [U] int64 (zeros without a bias)
    rank: int
    zp_x: int
    zp_state: int  # 0 in LiteRT, which ignores it
    zp_y: int
    feature: tuple[int, int]  # QuantizeMultiplier(s_x * s_wf / s_state)
    time: tuple[int, int]  # QuantizeMultiplier(s_state * s_wt / s_y)
    state_dtype: np.dtype


def _svdf_params(ctx, op) -> SvdfParams:
    """SVDF's checks and constants, once per model and profile (svdf.cc Prepare, svdf_common.cc
    PrepareSvdf)."""
    wf, wt = ctx.input(op, 1), ctx.input(op, 2)
    bias = ctx.input(op, 3, required=False)
    tx, twf, twt, ts = (ctx.in_tensor(op, k) for k in (0, 1, 2, 4))
    ty = ctx.out_tensor(op)
    tflm = ctx.profile.kernels == "tflm"
    if tx.dtype != np.int8 or twf.dtype != np.int8 or ty.dtype != np.int8:
        raise ModelError(f"{op.describe()}: integer SVDF takes int8 input, weights_feature and output "
                         f"(got {tx.dtype}, {twf.dtype}, {ty.dtype}); float and hybrid SVDF are not modelled")  # fmt: skip
    if twt.dtype not in (np.int16, np.int8) or ts.dtype != twt.dtype:
        raise ModelError(f"{op.describe()}: weights_time and state must both be int16 (or int8), got "
                         f"{twt.dtype} and {ts.dtype}")  # fmt: skip
    if twt.dtype == np.int8:
        ctx.refuse(op, litert="int8 weights_time and state (svdf.cc reads them as int16: LiteRT 2.3 corrupts memory)")
    if not ts.is_variable:
        raise ModelError(f"{op.describe()}: its state, {ts.describe()}, is not a variable tensor")
    if len(ts.shape) != 2 or len(tx.shape) != 2 or ts.shape[0] != tx.shape[0]:
        raise ModelError(f"{op.describe()}: the state {ts.describe()} must be [batch, filters * memory] for input "
                         f"{tx.describe()}")  # fmt: skip
    if twf.data is None or twt.data is None:
        raise ModelError(f"{op.describe()}: weights_feature and weights_time must be constant")
    rank = int(op.options.get("rank", 0))
    (f, i), (f2, _) = wf.shape, wt.shape
    if rank <= 0 or f % rank or f2 != f or len(tx.shape) != 2 or tx.shape[1] != i or ty.shape[-1] != f // rank:
        raise ModelError(f"{op.describe()}: rank {rank}, input {list(tx.shape)}, weights_feature {wf.shape}, "
                         f"weights_time {wt.shape} and output {list(ty.shape)} do not fit together")  # fmt: skip
    if op.options.get("fused_activation_function", 0) != 1:
        ctx.refuse(op, litert="a fused activation other than RELU (svdf.cc requires RELU for int8)")
    s_x, zp_x = qparams(tx, op)
    s_y, zp_y = qparams(ty, op)
    s_wf, s_wt, s_state = _scale(op, twf), _scale(op, twt), _scale(op, ts)
    if bias is None:
        ctx.refuse(op, tflm="no bias (svdf_common.cc reads the bias's scale)")
    elif ctx.in_tensor(op, 3).dtype != np.int32 or np.shape(bias) != (f // rank,):
        raise ModelError(f"{op.describe()}: the bias, {ctx.in_tensor(op, 3).describe()}, must be int32 of {f // rank} "
                         "values (one per unit)")  # fmt: skip
    elif tflm and not abs(float(_scale(op, ctx.in_tensor(op, 3))) - float(f32(s_state * s_wt))) < 1e-5:
        ctx.refuse(op, tflm="a bias scale more than 1e-5 from s_state * s_wt")
    derivation = ctx.profile.rules("recurrent")[1]
    single = ctx.rounding(op) == "single"
    feature, time = (fxp.quantize_multiplier(float(_profiles.real_multiplier(a, w, o, derivation).reshape(-1)[0]),
                                             single_rounding=single)
                     for a, w, o in ((s_x, s_wf, s_state), (s_state, s_wt, s_y)))  # fmt: skip
    zp_state = int(ts.zero_point[0]) if tflm and ts.zero_point.size else 0
    bias = np.zeros(f // rank, np.int64) if bias is None else np.asarray(bias, np.int64)
    return SvdfParams(wf.astype(np.int64), wt.astype(np.int64), bias, rank, zp_x, zp_state, zp_y, feature, time,
                      ts.dtype)  # fmt: skip
