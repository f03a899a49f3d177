"""UNIDIRECTIONAL_SEQUENCE_LSTM, integer (8x8_16: int8 activations and weights, int16 cell
state; and TFLite Micro's 16x8: int16 activations, int64 biases), as LiteRT and TFLite Micro
compute it, with its state in the variable tensors 18 (h) and
19 (c) kept across runs (``Model.state``).

The input part of every gate is computed for all time steps at once (numpy); the recurrence
runs step by step: ``_recurrence`` (numba, parallel over batches) under the jit backends, the
plain numpy loop in ``unidirectional_sequence_lstm`` under ``backend="reference"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from intsim import fixedpoint as fxp
from intsim import profiles as _profiles
from intsim._jit import helper
from intsim._jit import kernel as jit_kernel
from intsim.fixedpoint import gemmlowp as g
from intsim.fixedpoint import mbqm_double_scalar, mbqm_int64_scalar, mbqm_single_scalar, rounding_divide_by_pot_scalar
from intsim.fixedpoint import wrap_int32
from intsim.tflite import int16_activations
from intsim.tflite.context import checked_log2, kernel, qparams
from intsim.tflite.model import ModelError

f32 = np.float32


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
    cifg: bool = False  # no input gate: i = 1 - f (LiteRT)
    # LiteRT's layer normalization: (weights [4, N], raw gate biases [4, N], q [4], shift [4], guard [4])
    layer_norm: tuple | None = None
    # LiteRT's projection: (weights [P, N], effective bias [P], q, shift, output zero point, clip)
    projection: tuple | None = None
    # LiteRT's peephole: {gate index: (int16 weights [N], q, shift)} for the input, forget, output gates
    peephole: dict | None = None


def _log2(op, scale, what: str, tflm: bool) -> int:
    """``CheckedLog2``: round(log2(scale)) in float32; LiteRT requires a power of two (within
    1e-3), TFLite Micro ignores the check."""
    p, exact = checked_log2(scale)
    if not tflm and not exact:
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

    def weights(k, like=None):
        if op.inputs[k] < 0 and like is not None:  # CIFG: no input gate (its weights computed, then unused)
            return np.zeros_like(weights(like)[0]), weights(like)[1]
        t = ctx.in_tensor(op, k)
        if t.data is None or t.dtype != np.int8 or t.scale.size != 1 or (t.zero_point.size and t.zero_point[0]):
            raise ModelError(f"{op.describe()}: {t.describe()} must be constant int8 weights quantized per tensor "
                             "with zero point 0")  # fmt: skip
        return t.data.astype(np.int64), f32(t.scale[0])

    # the gates' multipliers s_in * s_w / 2**-12: the profile's "recurrent" derivation (float32
    # products in LiteRT's lstm.cc, double in the tflite-micro runtime, measured on mnist_lstm_int8)
    derivation = ctx.profile.rules("recurrent")[1]
    single = ctx.rounding(op) == "single"
    cifg = op.inputs[INPUT_WEIGHTS["input"]] < 0
    layer_norm = op.inputs[LAYER_NORM[1]] >= 0  # LiteRT: layer normalization iff the forget gate's weights exist
    gate_scales = [GATE_SCALE] * 4  # the gates' pre-activation scales: Q3.12, or the intermediates' with LN
    if layer_norm:
        for k in range(4):
            t = ctx.tensor(op.intermediates[k]) if k < len(op.intermediates) else None
            if t is None or not t.quantized:
                raise ModelError(f"{op.describe()}: layer normalization with unquantized intermediate {k}: LiteRT's "
                                 "Prepare fails silently and every output is 0; refused")  # fmt: skip
            gate_scales[k] = float(qparams(t, op)[0])
    w, r, q_in, e_in, q_rec, e_rec, bias = [], [], [], [], [], [], []
    for k, gate in enumerate(GATES):
        (wg, sw) = weights(INPUT_WEIGHTS[gate], like=INPUT_WEIGHTS["forget"])
        (rg, sr) = weights(RECURRENT_WEIGHTS[gate], like=RECURRENT_WEIGHTS["forget"])
        b = ctx.input(op, BIASES[gate], required=False)
        if b is not None and np.shape(b) != (wg.shape[0],):
            raise ModelError(f"{op.describe()}: the {gate} gate's bias has shape {np.shape(b)}, not ({wg.shape[0]},)")
        w.append(wg)
        r.append(rg)
        bias.append(np.zeros(wg.shape[0], np.int64) if b is None else np.asarray(b, np.int64))
        for s_in, s_w, qs, es in ((s_x, sw, q_in, e_in), (s_h, sr, q_rec, e_rec)):
            real = _profiles.real_multiplier(s_in, s_w, gate_scales[k], derivation).reshape(-1)[0]
            q, e = fxp.quantize_multiplier(float(real), single_rounding=single)
            qs.append(q)
            es.append(e)
    cell_power = _log2(op, s_c, "cell state", tflm)
    clip_option = f32(op.options.get("cell_clip", 0.0))
    if clip_option < 0 or f32(op.options.get("proj_clip", 0.0)) < 0:
        ctx.refuse(op, litert="a negative cell_clip or proj_clip (unidirectional_sequence_lstm.cc requires >= 0)")
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
    q_h, e_h = fxp.quantize_multiplier(hidden, single_rounding=single)
    ln = None
    if layer_norm:  # PopulateQuantizedLstmParams8x8_16: the gate bias moves into the normalization
        ln_w, ln_q, ln_e, guard = [], [], [], []
        for k in LAYER_NORM:
            t = ctx.in_tensor(op, k) if op.inputs[k] >= 0 else ctx.in_tensor(op, LAYER_NORM[1])  # CIFG: unused
            if t.data is None or t.dtype != np.int16 or t.scale.size != 1:
                raise ModelError(f"{op.describe()}: layer norm weights {t.describe()} must be constant int16")
            q, e = fxp.quantize_multiplier(float(t.scale[0]), single_rounding=single)
            ln_w.append(t.data.astype(np.int64).reshape(-1))
            ln_q.append(q)
            ln_e.append(e)
            guard.append(max(1, int(f32(f32(10000) * f32(t.scale[0])))))  # (int32)(10000 * scale)
        ln = (np.stack(ln_w), np.stack(bias), np.array(ln_q), np.array(ln_e), np.array(guard))
        bias = [np.zeros_like(b) for b in bias]
    projection = None
    if op.inputs[PROJECTION[0]] >= 0:
        wp, s_wp = weights(PROJECTION[0])
        bp = ctx.input(op, PROJECTION[1], required=False)
        s4 = float(qparams(ctx.tensor(op.intermediates[4]), op)[0])
        q_p, e_p = fxp.quantize_multiplier(float(f32(f32(s_wp * f32(s4)) / f32(s_h))), single_rounding=single)
        eff_bias = (np.zeros(wp.shape[0], np.int64) if bp is None else np.asarray(bp, np.int64)) + zp_hidden * wp.sum(1)
        proj_clip = f32(op.options.get("proj_clip", 0.0))
        s_out = qparams(ctx.out_tensor(op), op)[0]
        qpc = int(min(max(float(f32(proj_clip / s_out)), -128.0), 127.0)) if proj_clip > 0 else 0
        projection = (wp, eff_bias, q_p, e_p, zp_h, qpc)
    peephole = None
    if any(op.inputs[k] >= 0 for k in PEEPHOLE):  # cell-to-gate weights of the input (unless CIFG), forget, output gates
        peephole = {}
        for gate_index, k in zip((0, 1, 3), PEEPHOLE, strict=True):
            if op.inputs[k] < 0:
                continue
            t = ctx.in_tensor(op, k)
            if t.data is None or t.dtype != np.int16 or t.scale.size != 1:
                raise ModelError(f"{op.describe()}: peephole weights {t.describe()} must be constant int16")
            eff = float(f32(2.0**cell_power * float(t.scale[0]) / gate_scales[gate_index]))  # double, kept in a float
            peephole[gate_index] = (t.data.astype(np.int64).reshape(-1), *fxp.quantize_multiplier(eff, single_rounding=single))
    return LstmParams(np.stack(w), np.stack(r), np.stack(bias), np.array(q_in), np.array(e_in), np.array(q_rec),
                      np.array(e_rec), zp_x, zp_h, cell_power, clip, (q_h, e_h, zp_hidden),
                      fxp.quantize_multiplier(2.0**-15 * float(s_c) / float(s_c), single_rounding=single),
                      fxp.quantize_multiplier(2.0**-15 * 2.0**-15 / float(s_c), single_rounding=single),
                      cifg, ln, projection, peephole)  # fmt: skip


def _check_lstm(ctx, op):
    o = op.options
    if len(op.inputs) != 24:
        raise ModelError(f"{op.describe()}: needs 24 inputs (the 20-input form is not supported), has {len(op.inputs)}")
    missing = [k for k in (0, *INPUT_WEIGHTS.values(), *RECURRENT_WEIGHTS.values(), OUTPUT_STATE, CELL_STATE)
               if op.inputs[k] < 0]  # fmt: skip
    present = [name for name, ks in (("peephole weights", PEEPHOLE), ("a projection", PROJECTION),
                                     ("layer normalization", LAYER_NORM)) if any(op.inputs[k] >= 0 for k in ks)]  # fmt: skip
    if missing == [INPUT_WEIGHTS["input"], RECURRENT_WEIGHTS["input"]]:
        present.append("CIFG (no input gate)")
    elif missing:
        raise ModelError(f"{op.describe()}: inputs {missing} are missing")
    if present:
        what = " and ".join(present)
        ctx.refuse(op, tflm=f"an integer LSTM with {what} (micro/kernels/lstm_eval.cc ValidateTensorStatus)")
    n_cell, n_out = ctx.in_tensor(op, CELL_STATE).shape[-1], ctx.in_tensor(op, OUTPUT_STATE).shape[-1]
    if any(op.inputs[k] >= 0 for k in PEEPHOLE) and (n_out > n_cell or (n_out != n_cell and o.get("time_major", False)
                                                                         and ctx.in_tensor(op, 0).shape[1] > 1)):  # fmt: skip
        raise ModelError(f"{op.describe()}: peephole weights with {n_out} outputs for {n_cell} cells: LiteRT's kernel "
                         "reads past its buffers there (the peephole length is the output's)")  # fmt: skip
    tx, th, tc, ty = ctx.in_tensor(op, 0), ctx.in_tensor(op, OUTPUT_STATE), ctx.in_tensor(op, CELL_STATE), ctx.out_tensor(op)
    wide = tx.dtype == np.int16
    if (tx.dtype, th.dtype, ty.dtype) not in ((np.int8,) * 3, (np.int16,) * 3) or tc.dtype != np.int16:
        raise ModelError(f"{op.describe()}: the integer LSTM takes int8 (8x8_16) or int16 (16x8) input, output and "
                         f"output state and an int16 cell state (got {tx.dtype}, {ty.dtype}, {th.dtype}, {tc.dtype})")  # fmt: skip
    if wide:
        ctx.refuse(op, litert="int16 activations (16x8: unidirectional_sequence_lstm.cc takes only an int8 input "
                              "as integer and fails at Prepare)")  # fmt: skip
    bias_type = np.int64 if wide else np.int32
    for gate, k in BIASES.items():
        t = ctx.in_tensor(op, k) if op.inputs[k] >= 0 else None
        if t is not None and t.dtype != bias_type:
            raise ModelError(f"{op.describe()}: the {gate} gate's bias, {t.describe()}, must be "
                             f"{np.dtype(bias_type).name} with {tx.dtype} activations (TFLite Micro reads it as such "
                             "unchecked)")  # fmt: skip
    if not (th.is_variable and tc.is_variable):
        raise ModelError(f"{op.describe()}: its output and cell states must be variable tensors")
    if tx.data is not None or len(tx.shape) != 3:
        raise ModelError(f"{op.describe()}: the input must be a 3-D activation, got {tx.describe()}")
    if o.get("fused_activation_function", 0) != 4:
        ctx.refuse(op, tflm="a cell-gate activation other than TANH (lstm_eval.h asserts)")
    if o.get("diagonal_recurrent_tensors", False):
        raise ModelError(f"{op.describe()}: diagonal recurrent weights are not supported")


def _gates_mbqm(ctx, op, acc, q, e, wide: bool):
    """MBQM of the accumulators ``[..., 4, N]`` by each gate's multiplier: int32 sums and the
    profile's build (8x8_16), or int64 sums and the int64 MultiplyByQuantizedMultiplier
    (16x8, ``reference_integer_ops::FullyConnected<int16, int64>``)."""
    if wide:
        return fxp.multiply_by_quantized_multiplier_int64(acc, q, e, axis=-2, backend=ctx.backend).astype(np.int64)
    return fxp.multiply_by_quantized_multiplier(fxp.wrap32(acc), q, e, rounding=ctx.rounding(op), axis=-2,
                                                backend=ctx.backend).astype(np.int64)  # fmt: skip


def _input_part(x, w) -> np.ndarray:
    """``sum_i x[t, b, i] * w[g, n, i]`` as [T, B, 4, N] int64: a float64 product (BLAS), exact
    while every sum stays below 2**53 (int8 weights times 17-bit 16x8 inputs: up to 2**29
    inputs), else integer ``einsum``."""
    if x.shape[-1] < 1 << 29:
        y = x.reshape(-1, x.shape[-1]).astype(np.float64) @ w.reshape(-1, w.shape[-1]).T.astype(np.float64)
        return y.astype(np.int64).reshape(*x.shape[:2], *w.shape[:2])
    return np.einsum("tbi,gni->tbgn", x, w)


def _peephole(ctx, op, pre, c, weights, q: int, shift: int, n_out: int) -> np.ndarray:
    """LiteRT's peephole term, ``pre[v] = clamp16(pre[v] + MBQM(w[v] * c[v]))``: x86 builds run
    ``NeonVectorBatchVectorCwiseProductAccumulate`` (NEON_2_SSE), whose blocks of 16 round the last
    shift's ties up (``MultiplyByQuantizedMultiplier4Rows``) and whose tail rounds as the scalar
    MBQM; its length is the output's (``n_out``), not the cell count (upstream), so cells past it
    get no peephole."""
    out = pre.copy()
    simd = (n_out // 16) * 16
    prod = fxp.wrap32(weights[None, :n_out] * c[:, :n_out])
    for lo, hi, rounding in ((0, simd, "double-up"), (simd, n_out, ctx.rounding(op))):
        if hi > lo:
            part = fxp.multiply_by_quantized_multiplier(np.ascontiguousarray(prod[:, lo:hi]), q, shift, rounding=rounding,
                                                        backend=ctx.backend)  # fmt: skip
            out[:, lo:hi] = _clamp16(pre[:, lo:hi] + part.astype(np.int64))
    return out


def _layer_norm(ctx, op, v, params, gate: int) -> np.ndarray:
    """``PortableApplyLayerNorm`` (``reference/portable_tensor_utils.cc``) of one gate's int16
    pre-activations ``v`` [B, N]: integer mean and variance (``(1 << 20) / n`` truncated), the
    inverse square root by ``GetInvSqrtQuantizedMultiplierExp`` (the variance guard below 1),
    ``MBQM(1024 v - mean)``, times the int16 weight plus the raw gate bias in int32, divided by
    1024 rounding half away from zero, ``MBQM(., ln_scale, shift + 12)``, clamped: Q3.12."""
    weights, biases, q, e, guard = params
    n = v.shape[1]
    total = v.sum(axis=1)
    mean = np.sign(total * 1024) * (np.abs(total * 1024) // n)  # C division truncates
    variance = (v * v).sum(axis=1) * ((1 << 20) // n) - mean * mean
    variance2 = np.sign(variance) * (np.abs(variance) >> 20)
    out = np.empty_like(v)
    for b in range(v.shape[0]):
        var = int(variance2[b]) if variance2[b] >= 1 else int(guard[gate])
        inv_q, inv_e = g.inv_sqrt_quantized_multiplier(var)
        rescaled = ctx.mbqm_raw(op, fxp.wrap32(1024 * v[b] - mean[b]), inv_q, inv_e).astype(np.int64)
        val3 = fxp.wrap32(rescaled * weights[gate] + biases[gate])
        val4 = np.sign(val3) * ((np.abs(val3) + 512) // 1024)
        out[b] = _clamp16(ctx.mbqm_raw(op, fxp.wrap32(val4), int(q[gate]), int(e[gate]) + 12))
    return out


def _clamp16(v):
    return np.clip(v, -32768, 32767)


@kernel("UNIDIRECTIONAL_SEQUENCE_LSTM")
def unidirectional_sequence_lstm(ctx, op):
    """The integer (8x8_16) LSTM of LiteRT (``tflite/kernels/lstm_eval.cc``
    ``EvalInteger8x8_16`` with ``portable_tensor_utils.cc``, the functions x86 builds call) or
    TFLite Micro (``micro/kernels/lstm_eval.h``), by ``ctx.profile.kernels``.  Per time step,
    batches side by side, state carried in the variable tensors 18 (int8 h) and 19 (int16 c):

    * gates i, f, c, o: ``MBQM(W x + b)`` and ``MBQM(R h)`` (int32 sums, zero points folded,
      Q3.12 results; multipliers ``s_in * s_w / 2**-12`` from float32 products in LiteRT, from
      doubles in the tflite-micro runtime); TFLite Micro clamps each to int16 before the
      saturating add, LiteRT adds the recurrent part unclamped;
    * sigmoid (i, f, o) and tanh (c): gemmlowp ``logistic``/``tanh`` on int16 F3 in LiteRT, the
      ``sigmoid_table_uint16`` interpolation in TFLite Micro (``int16_activations``);
    * ``c = f*c >> 15``, ``+ i*g >> (30 + log2 s_c)`` saturated, clipped: LiteRT one
      ``RoundingDivideByPOT`` each; TFLite Micro ``MulElementwise`` (MBQM by 2**-15 and
      2**-30 / s_c: two roundings) clamped to int16;
    * ``h = clamp8(MBQM(o * tanh(c), 2**-30 / s_h) + zp_h)``, tanh on the cell's Q(15+p) format;
      the multiplier from a float in LiteRT (intermediate 4's scale), from doubles in TFLite Micro
      (the output state's scale).

    16x8 (TFLite Micro only; LiteRT fails at Prepare): int16 activations, int64 biases, int64
    sums and the int64 MultiplyByQuantizedMultiplier in the gates, an int16 hidden state.
    Peephole weights, projection, layer normalization and CIFG, which TFLite Micro refuses, as
    LiteRT computes them (``_peephole``, ``_layer_norm``, the projection after the hidden
    state's CwiseMul, ``i = 32767 - f``)."""
    _check_lstm(ctx, op)
    p = ctx.once(("lstm", op.index), lambda: lstm_params(ctx, op))
    tflm = ctx.profile.kernels == "tflm"
    time_major = bool(op.options.get("time_major", False))
    x = ctx.input(op, 0)
    xs = (x if time_major else x.transpose(1, 0, 2)).astype(np.int64)  # [T, B, I]
    h = ctx.input(op, OUTPUT_STATE).astype(np.int64).reshape(xs.shape[1], -1)  # [B, P] (P = N without projection)
    c = ctx.input(op, CELL_STATE).astype(np.int64).reshape(xs.shape[1], -1)  # [B, N]
    n_out = c.shape[1] if p.projection is None else p.projection[0].shape[0]
    if p.w.shape[2] != xs.shape[2] or p.r.shape[1:] != (c.shape[1], h.shape[1]) or h.shape[1] != n_out:
        raise ModelError(f"{op.describe()}: weights {p.w.shape[1:]} and {p.r.shape[1:]} do not fit input {x.shape} "
                         f"and states {h.shape}, {c.shape}")  # fmt: skip
    # the input part of every gate, for every step at once (it does not depend on the state)
    wide = x.dtype == np.int16  # ctx.input's dtype before the int64 cast below
    pre_in = _clamp16(_gates_mbqm(ctx, op, _input_part(xs - p.zp_x, p.w) + p.bias, p.q_in, p.e_in, wide))
    if tflm:
        sigmoid = lambda v: int16_activations.sigmoid_int16(v, backend=ctx.backend).astype(np.int64)  # noqa: E731
        tanh_gate = lambda v: int16_activations.tanh_int16(v, 3, 0, backend=ctx.backend).astype(np.int64)  # noqa: E731
        shift = (15 + p.cell_power) - 3
        tanh_cell = lambda v: int16_activations.tanh_int16(v, *((3, -shift) if shift < 0 else (0, shift)),  # noqa: E731
                                                     backend=ctx.backend).astype(np.int64)  # fmt: skip
    else:
        if not 0 <= 15 + p.cell_power <= 6:
            raise ModelError(f"{op.describe()}: cell state scale 2**{p.cell_power}: LiteRT's ApplyTanh takes "
                             "2**-15 to 2**-9 only")  # fmt: skip
        sigmoid = lambda v: int16_activations.gemmlowp16("logistic", 3, v, ctx.backend)  # noqa: E731
        tanh_gate = lambda v: int16_activations.gemmlowp16("tanh", 3, v, ctx.backend)  # noqa: E731
        tanh_cell = lambda v: int16_activations.gemmlowp16("tanh", 15 + p.cell_power, v, ctx.backend)  # noqa: E731
    q_h, e_h, zp_hidden = p.hidden
    h_lo, h_hi = (-32768, 32767) if wide else (-128, 127)
    out = np.empty((xs.shape[0], *h.shape), np.int64)  # [T, B, P]
    compiled = ctx.backend != "reference" and not p.cifg and p.layer_norm is None and p.projection is None \
        and p.peephole is None
    if compiled:
        tables = ctx.once(("lstm tables", op.index), lambda: [np.ascontiguousarray(f(np.arange(-32768, 32768)), np.int64)
                                                               for f in (sigmoid, tanh_gate, tanh_cell)])  # fmt: skip
        h, c = h.copy(), c.copy()
        work = xs.shape[0] * h.size * 4 * h.shape[1]
        _recurrence.build(ctx.backend, work)(
            pre_in, p.r, p.zp_h, p.q_rec, p.e_rec, h, c, *tables, tflm, wide, ctx.rounding(op) == "single", *p.forget_cell,
            *p.input_gate_cell, 30 + p.cell_power, p.clip, q_h, e_h, zp_hidden, h_lo, h_hi, out)  # fmt: skip
    for t in range(0 if compiled else xs.shape[0]):
        rec = _gates_mbqm(ctx, op, np.einsum("bn,gmn->bgm", h - p.zp_h, p.r), p.q_rec, p.e_rec, wide)
        pre = _clamp16(pre_in[t] + _clamp16(rec)) if tflm else _clamp16(fxp.wrap32(pre_in[t] + rec))
        for k in (0, 1):  # the input and forget gates' peepholes see the old cell state
            if p.peephole and k in p.peephole:
                pre[:, k] = _peephole(ctx, op, pre[:, k], c, *p.peephole[k], h.shape[1])
        if p.layer_norm is not None:
            pre[:, :3] = np.stack([_layer_norm(ctx, op, pre[:, k], p.layer_norm, k) for k in range(3)], axis=1)
        f, z = sigmoid(pre[:, 1]), tanh_gate(pre[:, 2])
        i = 32767 - f if p.cifg else sigmoid(pre[:, 0])  # PortableSub1Vector: "1" is 32767
        if tflm:
            c = _clamp16(ctx.mbqm_raw(op, f * c, *p.forget_cell))
            c = _clamp16(c + _clamp16(ctx.mbqm_raw(op, i * z, *p.input_gate_cell)))
        else:
            c = g.wrap16(g.rdbpot(f * c, 15))  # static_cast<int16_t>
            c = _clamp16(c + g.wrap16(g.rdbpot(i * z, 30 + p.cell_power)))
        if p.clip:
            c = np.clip(c, -p.clip, p.clip)
        if p.peephole and 3 in p.peephole:  # the output gate's peephole sees the new cell state
            pre[:, 3] = _peephole(ctx, op, pre[:, 3], c, *p.peephole[3], h.shape[1])
        if p.layer_norm is not None:
            pre[:, 3] = _layer_norm(ctx, op, pre[:, 3], p.layer_norm, 3)
        o = sigmoid(pre[:, 3])
        if p.projection is None:
            h = np.clip(ctx.mbqm_raw(op, o * tanh_cell(c), q_h, e_h) + zp_hidden, h_lo, h_hi)
        else:  # CwiseMul to int8 with -hidden_zp, the projection FC (its bias folds +hidden_zp), the clip
            wp, eff_bias, q_p, e_p, zp_out, qpc = p.projection
            hidden = np.clip(ctx.mbqm_raw(op, o * tanh_cell(c), q_h, e_h) - zp_hidden, -128, 127)
            y = np.clip(ctx.mbqm_raw(op, fxp.wrap32(hidden @ wp.T + eff_bias), q_p, e_p) + zp_out, -128, 127)
            h = np.clip(y, -qpc, qpc) if qpc else y
        out[t] = h
    ctx.assign(op, OUTPUT_STATE, h)
    ctx.assign(op, CELL_STATE, c.astype(np.int16))
    return [(out if time_major else out.transpose(1, 0, 2)).astype(x.dtype)]


@helper
def _mbqm(x, q, e, single):
    return mbqm_single_scalar(x, q, e) if single else mbqm_double_scalar(x, q, e)


@helper
def _clamp16_scalar(v):
    return min(max(v, -32768), 32767)


@jit_kernel
def _recurrence(pre_in, r, zp_h, q_rec, e_rec, h, c, sigmoid, tanh_gate, tanh_cell, tflm, wide, single, q_fc, e_fc,
                q_ig, e_ig, cell_shift, clip, q_h, e_h, zp_hidden, h_lo, h_hi, out):  # fmt: skip
    """The numpy loop of ``unidirectional_sequence_lstm`` compiled, batches in parallel: for each
    step ``t``, the recurrent part of the four gates from the old ``h`` (``pre_in[t]`` holds the
    input part), the activations by table (int16 -> int16, indexed by ``v + 32768``), the cell
    update and ``h``.  ``h`` and ``c`` ([B, N]) are updated in place; ``out`` [T, B, N]."""
    steps, batch, _, units = pre_in.shape
    for b in prange(batch):
        pre = np.empty((4, units), np.int64)
        for t in range(steps):
            for gate in range(4):
                for u in range(units):
                    acc = np.int64(0)
                    for k in range(units):
                        acc += r[gate, u, k] * (h[b, k] - zp_h)
                    if wide:  # 16x8: int64 sums, the int64 MultiplyByQuantizedMultiplier
                        v = mbqm_int64_scalar(acc, q_rec[gate], e_rec[gate])
                    else:
                        v = _mbqm(wrap_int32(acc), q_rec[gate], e_rec[gate], single)
                    if tflm:  # each part clamped to int16, then the saturating add
                        pre[gate, u] = _clamp16_scalar(pre_in[t, b, gate, u] + _clamp16_scalar(v))
                    else:  # the recurrent part added to the int16 input part in int32
                        pre[gate, u] = _clamp16_scalar(wrap_int32(pre_in[t, b, gate, u] + v))
            for u in range(units):
                i = sigmoid[pre[0, u] + 32768]
                f = sigmoid[pre[1, u] + 32768]
                z = tanh_gate[pre[2, u] + 32768]
                o = sigmoid[pre[3, u] + 32768]
                cu = c[b, u]
                if tflm:
                    cu = _clamp16_scalar(_mbqm(f * cu, q_fc, e_fc, single))
                    cu = _clamp16_scalar(cu + _clamp16_scalar(_mbqm(i * z, q_ig, e_ig, single)))
                else:
                    cu = ((rounding_divide_by_pot_scalar(f * cu, 15) + 32768) & 0xFFFF) - 32768
                    cu = _clamp16_scalar(cu + ((rounding_divide_by_pot_scalar(i * z, cell_shift) + 32768) & 0xFFFF) - 32768)
                if clip > 0:
                    cu = min(max(cu, -clip), clip)
                c[b, u] = cu
                out[t, b, u] = min(max(_mbqm(o * tanh_cell[cu + 32768], q_h, e_h, single) + zp_hidden, h_lo), h_hi)
            for u in range(units):
                h[b, u] = out[t, b, u]
