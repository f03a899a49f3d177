"""SVDF: a streaming operator, with state kept in a variable tensor across runs (the LSTM is in
``tflite.lstm``).

The state lives in the model's variable tensors (``Model.state``): each run reads it from
``ctx.values`` and writes it back with ``Context.assign``, as the interpreters keep it between
``Invoke`` calls.
"""

from __future__ import annotations

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
    x, wf, wt = ctx.input(op, 0), ctx.input(op, 1), ctx.input(op, 2)
    bias = ctx.input(op, 3, required=False)
    state = ctx.input(op, 4)
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
    rank = int(op.options.get("rank", 0))
    (b, i), (f, m) = x.shape, wt.shape
    if rank <= 0 or f % rank or wf.shape != (f, i) or state.size != b * f * m or ty.shape[-1] != f // rank:
        raise ModelError(f"{op.describe()}: rank {rank}, input {x.shape}, weights_feature {wf.shape}, weights_time "
                         f"{wt.shape}, state {state.shape} and output {ty.shape} do not fit together")  # fmt: skip
    units = f // rank
    if op.options.get("fused_activation_function", 0) != 1:
        ctx.refuse(op, litert="a fused activation other than RELU (svdf.cc requires RELU for int8)")
    s_x, zp_x = qparams(tx, op)
    s_y, zp_y = qparams(ty, op)
    s_wf, s_wt, s_state = _scale(op, twf), _scale(op, twt), _scale(op, ts)
    zp_state = int(ts.zero_point[0]) if tflm and ts.zero_point.size else 0
    if bias is None:
        ctx.refuse(op, tflm="no bias (svdf_common.cc reads the bias's scale)")
    elif tflm and not abs(float(_scale(op, ctx.in_tensor(op, 3))) - float(f32(s_state * s_wt))) < 1e-5:
        ctx.refuse(op, tflm="a bias scale more than 1e-5 from s_state * s_wt")
    derivation = ctx.profile.rules("recurrent")[1]
    m1, m2 = (float(_profiles.real_multiplier(a, w, o, derivation).reshape(-1)[0])
              for a, w, o in ((s_x, s_wf, s_state), (s_state, s_wt, s_y)))  # fmt: skip

    flat = state.reshape(-1).astype(np.int64)
    flat = np.concatenate([flat[1:], flat[-1:]]).reshape(b, f, m)  # std::copy(state + 1, end, state)
    dot = fxp.wrap32((x.astype(np.int64) - zp_x) @ wf.astype(np.int64).T)  # [B, F]
    lo, hi = type_range(ts.dtype)
    newest = np.clip(ctx.mbqm(op, dot, m1), lo, hi) + zp_state
    flat[:, :, m - 1] = newest.astype(ts.dtype)  # TFLite Micro adds the zero point after the clamp: it wraps
    t = fxp.wrap32(np.einsum("bfm,fm->bf", flat - zp_state, wt.astype(np.int64)))
    acc = fxp.wrap32(t.reshape(b, units, rank).sum(axis=2) + (0 if bias is None else bias.astype(np.int64)))
    y = np.clip(ctx.mbqm(op, acc, m2) + zp_y, -128, 127)
    ctx.assign(op, 4, flat.astype(ts.dtype).reshape(state.shape))
    return [y.astype(np.int8)]
