"""SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM: the streaming operators, with state kept in variable
tensors across runs.

The state lives in the model's variable tensors (``Model.state``): each run reads it from
``ctx.values`` and writes it back with ``Context.assign``, as the interpreters keep it between
``Invoke`` calls.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from intsim import fixedpoint as fxp
from intsim import profiles as _profiles
from intsim.fixedpoint import gemmlowp as g
from intsim.tflite import sigmoid_lut
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


# ---- UNIDIRECTIONAL_SEQUENCE_LSTM ------------------------------------------------------------------

GATES = ("input", "forget", "cell", "output")
INPUT_WEIGHTS = {g: 1 + k for k, g in enumerate(GATES)}  # lstm_shared.h tensor positions
RECURRENT_WEIGHTS = {g: 5 + k for k, g in enumerate(GATES)}
PEEPHOLE = (9, 10, 11)
BIASES = {g: 12 + k for k, g in enumerate(GATES)}
PROJECTION = (16, 17)
OUTPUT_STATE, CELL_STATE = 18, 19
LAYER_NORM = (20, 21, 22, 23)
GATE_SCALE = 2.0**-12  # the gates' pre-activations are Q3.12 (no layer normalization)


@dataclass(frozen=True)
class LstmParams:
    """What an integer LSTM's constant tensors and scales give, as one runtime derives it."""

    w: np.ndarray  # [4, N, I] int64: input weights, gates in GATES order
    r: np.ndarray  # [4, N, N] int64: recurrent weights
    bias: np.ndarray  # [4, N] int64
    q_in: np.ndarray  # [4] input FC multipliers and shifts (QuantizeMultiplier)
    e_in: np.ndarray
    q_rec: np.ndarray  # [4] recurrent FC multipliers and shifts
    e_rec: np.ndarray
    zp_x: int  # input zero point
    zp_h: int  # output state zero point (the recurrent FC's input)
    cell_power: int  # log2 of the cell state's scale
    clip: int  # quantized cell clip, 0 for none
    hidden: tuple[int, int, int]  # (q, shift, zero point) of output gate x tanh(cell) -> int8
    forget_cell: tuple[int, int]  # TFLite Micro's MulElementwise multipliers (2**-15 and 2**-30 / s_c)
    input_gate_cell: tuple[int, int]


def _log2(op, scale, what: str, tflm: bool) -> int:
    """``CheckedLog2``: round(log2(scale)) in float32; LiteRT requires a power of two (within
    1e-3), TFLite Micro ignores the check."""
    v = f32(np.log(f32(scale))) * f32(1 / np.log(f32(2)))
    p = int(np.round(v))
    if not tflm and not abs(float(v) - p) < 1e-3:
        raise ModelError(f"{op.describe()}: the {what} scale {float(scale)} is not a power of two, which LiteRT's "
                         "integer LSTM requires")  # fmt: skip
    return p


def lstm_params(ctx, op) -> LstmParams:
    """LiteRT ``unidirectional_sequence_lstm.cc`` (``PopulateQuantizedLstmParams8x8_16``) or
    TFLite Micro ``unidirectional_sequence_lstm.cc`` / ``lstm_eval_common.cc``
    (``CreateGateParams``, ``CreateInterGateMulParams``), by ``ctx.profile.kernels``."""
    tflm = ctx.profile.kernels == "tflm"
    tx, th, tc = ctx.in_tensor(op, 0), ctx.in_tensor(op, OUTPUT_STATE), ctx.in_tensor(op, CELL_STATE)
    s_x, zp_x = qparams(tx, op)
    s_h, zp_h = qparams(th, op)
    s_c, _ = qparams(tc, op)

    def weights(k):
        t = ctx.in_tensor(op, k)
        if t.data is None or t.dtype != np.int8 or t.scale.size != 1 or (t.zero_point.size and t.zero_point[0]):
            raise ModelError(f"{op.describe()}: {t.describe()} must be constant int8 weights quantized per tensor "
                             "with zero point 0")  # fmt: skip
        return t.data.astype(np.int64), f32(t.scale[0])

    w, r, q_in, e_in, q_rec, e_rec, bias = [], [], [], [], [], [], []
    for gate in GATES:
        (wg, sw), (rg, sr) = weights(INPUT_WEIGHTS[gate]), weights(RECURRENT_WEIGHTS[gate])
        b = ctx.input(op, BIASES[gate], required=False)
        w.append(wg)
        r.append(rg)
        bias.append(np.zeros(wg.shape[0], np.int64) if b is None else np.asarray(b, np.int64))
        for s_in, qs, es in ((s_x, q_in, e_in), (s_h, q_rec, e_rec)):  # both: the float32 product, / 2**-12
            q, e = fxp.quantize_multiplier(float(f32(s_in * (sw if qs is q_in else sr))) / GATE_SCALE)
            qs.append(q)
            es.append(e)
    cell_power = _log2(op, s_c, "cell state", tflm)
    clip_option = f32(op.options.get("cell_clip", 0.0))
    if clip_option > 0:
        ratio = float(clip_option) / float(s_c) if tflm else float(f32(clip_option / s_c))  # double vs float division
        clip = int(min(max(ratio, -32768.0), 32767.0))  # the int16 cast truncates
    else:
        clip = 0
    if tflm:  # the hidden state's quantization is the output state tensor's; multipliers in double
        s_hidden, zp_hidden = float(s_h), zp_h
        hidden = float(2.0**-15) * float(2.0**-15) / s_hidden
    else:  # intermediate 4 (effective_hidden_scale_intermediate); the scale stored in a float
        if len(op.intermediates) != 5:
            raise ModelError(f"{op.describe()}: LiteRT's integer LSTM needs 5 intermediate tensors, the model has "
                             f"{len(op.intermediates)}")  # fmt: skip
        s4, zp_hidden = qparams(ctx.tensor(op.intermediates[4]), op)
        hidden = float(f32(2.0**-15 / float(s4) * 2.0**-15))
    q_h, e_h = fxp.quantize_multiplier(hidden)
    return LstmParams(np.stack(w), np.stack(r), np.stack(bias), np.array(q_in), np.array(e_in), np.array(q_rec),
                      np.array(e_rec), zp_x, zp_h, cell_power, clip, (q_h, e_h, zp_hidden),
                      fxp.quantize_multiplier(2.0**-15 * float(s_c) / float(s_c)),
                      fxp.quantize_multiplier(2.0**-15 * 2.0**-15 / float(s_c)))  # fmt: skip


def _check_lstm(ctx, op):
    o = op.options
    if len(op.inputs) != 24:
        raise ModelError(f"{op.describe()}: needs 24 inputs (the 20-input form is not supported), has {len(op.inputs)}")
    missing = [k for k in (0, *INPUT_WEIGHTS.values(), *RECURRENT_WEIGHTS.values(), OUTPUT_STATE, CELL_STATE)
               if op.inputs[k] < 0]  # fmt: skip
    if missing:
        raise ModelError(f"{op.describe()}: inputs {missing} are missing (CIFG, without an input gate, is not supported)")
    present = [name for name, ks in (("peephole weights", PEEPHOLE), ("a projection", PROJECTION),
                                     ("layer normalization", LAYER_NORM)) if any(op.inputs[k] >= 0 for k in ks)]  # fmt: skip
    if present:
        raise ModelError(f"{op.describe()}: an integer LSTM with {' and '.join(present)} is not supported yet")
    tx, th, tc, ty = ctx.in_tensor(op, 0), ctx.in_tensor(op, OUTPUT_STATE), ctx.in_tensor(op, CELL_STATE), ctx.out_tensor(op)
    if (tx.dtype, th.dtype, tc.dtype, ty.dtype) != (np.int8, np.int8, np.int16, np.int8):
        raise ModelError(f"{op.describe()}: the integer LSTM modelled takes int8 input, output and output state and an "
                         f"int16 cell state (got {tx.dtype}, {ty.dtype}, {th.dtype}, {tc.dtype})")  # fmt: skip
    if not (th.is_variable and tc.is_variable):
        raise ModelError(f"{op.describe()}: its output and cell states must be variable tensors")
    if tx.data is not None or len(tx.shape) != 3:
        raise ModelError(f"{op.describe()}: the input must be a 3-D activation, got {tx.describe()}")
    if o.get("fused_activation_function", 0) != 4:
        ctx.refuse(op, tflm="a cell-gate activation other than TANH (lstm_eval.h asserts)")
    if o.get("diagonal_recurrent_tensors", False):
        raise ModelError(f"{op.describe()}: diagonal recurrent weights are not supported")


def _gates_mbqm(ctx, op, acc, q, e):
    """MBQM of int32 accumulators ``[..., 4, N]`` by each gate's multiplier (the profile's build)."""
    return fxp.multiply_by_quantized_multiplier(fxp.wrap32(acc), q, e, rounding=ctx.rounding(op), axis=-2,
                                                backend=ctx.backend).astype(np.int64)  # fmt: skip


def _clamp16(v):
    return np.clip(v, -32768, 32767)


@kernel("UNIDIRECTIONAL_SEQUENCE_LSTM")
def unidirectional_sequence_lstm(ctx, op):
    """The integer (8x8_16) LSTM of LiteRT (``tflite/kernels/lstm_eval.cc``
    ``EvalInteger8x8_16`` with ``portable_tensor_utils.cc``, the functions x86 builds call) or
    TFLite Micro (``micro/kernels/lstm_eval.h``), by ``ctx.profile.kernels``.  Per time step,
    batches side by side, state carried in the variable tensors 18 (int8 h) and 19 (int16 c):

    * gates i, f, c, o: ``MBQM(W x + b)`` and ``MBQM(R h)`` (int32 sums, zero points folded,
      Q3.12 results); TFLite Micro clamps each to int16 before the saturating add, LiteRT adds
      the recurrent part unclamped;
    * sigmoid (i, f, o) and tanh (c): gemmlowp ``logistic``/``tanh`` on int16 F3 in LiteRT, the
      ``sigmoid_table_uint16`` interpolation in TFLite Micro (``sigmoid_lut``);
    * ``c = f*c >> 15``, ``+ i*g >> (30 + log2 s_c)`` saturated, clipped: LiteRT one
      ``RoundingDivideByPOT`` each; TFLite Micro ``MulElementwise`` (MBQM by 2**-15 and
      2**-30 / s_c: two roundings) clamped to int16;
    * ``h = clamp8(MBQM(o * tanh(c), 2**-30 / s_h) + zp_h)``, tanh on the cell's Q(15+p) format;
      the multiplier from a float in LiteRT (intermediate 4's scale), from doubles in TFLite Micro
      (the output state's scale).

    Peephole, projection, layer normalization, CIFG and int16 activations are refused."""
    _check_lstm(ctx, op)
    p = ctx.once(("lstm", op.index), lambda: lstm_params(ctx, op))
    tflm = ctx.profile.kernels == "tflm"
    time_major = bool(op.options.get("time_major", False))
    x = ctx.input(op, 0).astype(np.int64)
    xs = x if time_major else x.transpose(1, 0, 2)  # [T, B, I]
    h = ctx.input(op, OUTPUT_STATE).astype(np.int64).reshape(xs.shape[1], -1)  # [B, N]
    c = ctx.input(op, CELL_STATE).astype(np.int64).reshape(h.shape)
    if p.w.shape[2] != xs.shape[2] or p.r.shape[1:] != (h.shape[1], h.shape[1]):
        raise ModelError(f"{op.describe()}: weights {p.w.shape[1:]} and {p.r.shape[1:]} do not fit input {x.shape} "
                         f"and state {h.shape}")  # fmt: skip
    # the input part of every gate, for every step at once (it does not depend on the state)
    pre_in = _clamp16(_gates_mbqm(ctx, op, np.einsum("tbi,gni->tbgn", xs - p.zp_x, p.w) + p.bias, p.q_in, p.e_in))
    if tflm:
        sigmoid = lambda v: sigmoid_lut.sigmoid_int16(v, backend=ctx.backend).astype(np.int64)  # noqa: E731
        tanh_gate = lambda v: sigmoid_lut.tanh_int16(v, 3, 0, backend=ctx.backend).astype(np.int64)  # noqa: E731
        shift = (15 + p.cell_power) - 3
        tanh_cell = lambda v: sigmoid_lut.tanh_int16(v, *((3, -shift) if shift < 0 else (0, shift)),  # noqa: E731
                                                     backend=ctx.backend).astype(np.int64)  # fmt: skip
    else:
        if not 0 <= 15 + p.cell_power <= 6:
            raise ModelError(f"{op.describe()}: cell state scale 2**{p.cell_power}: LiteRT's ApplyTanh takes "
                             "2**-15 to 2**-9 only")  # fmt: skip
        sigmoid = lambda v: gemmlowp16("logistic", 3, v, ctx.backend)  # noqa: E731
        tanh_gate = lambda v: gemmlowp16("tanh", 3, v, ctx.backend)  # noqa: E731
        tanh_cell = lambda v: gemmlowp16("tanh", 15 + p.cell_power, v, ctx.backend)  # noqa: E731
    q_h, e_h, zp_hidden = p.hidden
    out = np.empty((xs.shape[0], *h.shape), np.int64)
    for t in range(xs.shape[0]):
        rec = _gates_mbqm(ctx, op, np.einsum("bn,gmn->bgm", h - p.zp_h, p.r), p.q_rec, p.e_rec)
        pre = _clamp16(pre_in[t] + _clamp16(rec)) if tflm else _clamp16(fxp.wrap32(pre_in[t] + rec))
        i, f, z, o = sigmoid(pre[:, 0]), sigmoid(pre[:, 1]), tanh_gate(pre[:, 2]), sigmoid(pre[:, 3])
        if tflm:
            c = _clamp16(ctx.mbqm_raw(op, f * c, *p.forget_cell))
            c = _clamp16(c + _clamp16(ctx.mbqm_raw(op, i * z, *p.input_gate_cell)))
        else:
            c = g.wrap16(g.rdbpot(f * c, 15))  # static_cast<int16_t>
            c = _clamp16(c + g.wrap16(g.rdbpot(i * z, 30 + p.cell_power)))
        if p.clip:
            c = np.clip(c, -p.clip, p.clip)
        h = np.clip(ctx.mbqm_raw(op, o * tanh_cell(c), q_h, e_h) + zp_hidden, -128, 127)
        out[t] = h
    ctx.assign(op, OUTPUT_STATE, h.astype(np.int8))
    ctx.assign(op, CELL_STATE, c.astype(np.int16))
    return [(out if time_major else out.transpose(1, 0, 2)).astype(np.int8)]


@functools.lru_cache(maxsize=16)
def _gemmlowp16_table(kind: str, integer_bits: int) -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int64)
    t = (g.logistic if kind == "logistic" else g.tanh)(x, integer_bits, 16)
    t.flags.writeable = False
    return t


def gemmlowp16(kind: str, integer_bits: int, v, backend: str) -> np.ndarray:
    """gemmlowp ``logistic`` / ``tanh`` of int16 ``FixedPoint<int16, integer_bits>`` raw values
    (LiteRT ``PortableApplySigmoid`` / ``PortableApplyTanh``): computed (``backend="reference"``)
    or looked up in the 65536 results."""
    if backend == "reference":
        return (g.logistic if kind == "logistic" else g.tanh)(v, integer_bits, 16)
    return _gemmlowp16_table(kind, integer_bits)[np.asarray(v, np.int64) + 32768]
