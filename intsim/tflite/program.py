"""Whole-model programs: a small TFLite model run as one compiled call.

The op-by-op interpreter (``interpreter.run``) spends some 20-40 us of Python per operator on
checks, dispatch and array allocation.  On models of a few thousand multiply-adds that is all of
its time: hello_world (three FULLY_CONNECTED of at most 16 x 16) took 90 us where the LiteRT
reference interpreter's whole set-invoke-get takes 4 us.  A *program* is the model compiled once
into rows of integers (one row per operator: opcode, arena offsets, sizes, zero points,
multipliers, clamps) over one int64 arena holding every activation tensor; one numba call copies
the inputs in, runs the rows and writes the outputs.

Which models: every operator in ``PROGRAM_OPS`` with static shapes, at most ``MAX_MACS``
multiply-adds in all (larger layers belong to the packed VNNI GEMM of the op path), the
profile's default accumulator (int32 wrapping; int64 for int16x8), and ADD/SUB inputs of equal
shape.  ``program_for`` says why a model does not qualify; ``run`` then takes the op path.

Arithmetic: each row applies the rule of the op-path kernel it stands for, with the same scalar
helpers and parameters derived by the same functions:

* FULLY_CONNECTED: ``sum_k (x - zp_x) * (w - zp_w) + bias`` (int32 wrapping for int8 inputs,
  int64 for int16x8, as ``kernels.accumulator``), then the profile's rule for ``"fc"`` /
  ``"int16-fc"`` (``Profile.rules``), from the layer's ``Requantizer.lower()``: the scalar of
  each built-in rule (``fixedpoint.rules``); a profile naming another rule runs op by op.
* ADD / SUB: ``tflite.add.quantized_add_scalar`` with ``kernels_elementwise``'s
  parameters.
* RESHAPE / SQUEEZE: a copy.

The program's reference is the op path: tests assert program == op path (jit) == op path
(``backend="reference"``, Python ints) == the LiteRT reference interpreter.
"""

from __future__ import annotations

import math

import numpy as np
from numba import literal_unroll

from intsim import fixedpoint as fxp
from intsim.fixedpoint import rules
from intsim._jit import entry_point, helper, sequential
from intsim.tflite.add import quantized_add_scalar
from intsim.tflite.context import Context, ModelError, reported
from intsim.tflite.kernels_elementwise import _add_sub_params
from intsim.tflite.kernels_nn import fc_parts
from intsim.tflite.kernels_shape import _same_quantization

PROGRAM_OPS = ("FULLY_CONNECTED", "ADD", "SUB", "RESHAPE", "SQUEEZE")
MAX_MACS = 1 << 20

_FC, _ADD, _COPY = 0, 1, 2
_WIDTH = 20  # fields per row
# the rules a program applies, by code (a profile naming another rule runs op by op)
_RULES = ("float32", "float64-onnx", "float64-away", "double", "single", "int64", "double-up")


# ---- the compiled program ------------------------------------------------------------------------


@helper
def _requant(acc, rule, p, u, units, ci, cf, zo, lo, hi):
    if rule <= 2:
        m = cf[p + u]
        if rule == 0:
            return rules.float32_scalar(acc, m, 0, zo, lo, hi)
        if rule == 1:
            return rules.float64_onnx_scalar(acc, m, 0, zo, lo, hi)
        return rules.float64_away_scalar(acc, m, 0, zo, lo, hi)
    q, e = ci[p + u], ci[p + units + u]
    if rule == 3:
        v = rules.mbqm_double_scalar(acc, q, e)
    elif rule == 4:
        v = rules.mbqm_single_scalar(acc, q, e)
    elif rule == 5:
        v = rules.mbqm_int64_scalar(acc, q, e)
    else:
        v = rules.mbqm_double_up_scalar(acc, q, e)
    return min(max(v + zo, lo), hi)


@helper
def _fully_connected(row, ci, cf, arena):
    """Returns False when an int16x8 accumulator leaves its requantization rule's range."""
    x_off, y_off, batch, depth, units, w_off, x_zp, b_off = row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]
    rule, p, zo, lo, hi, limit = row[9], row[10], row[11], row[12], row[13], row[14]
    for b in range(batch):
        x = arena[x_off + b * depth : x_off + (b + 1) * depth]  # slices: indices LLVM sees are >= 0
        for u in range(units):
            w = ci[w_off + u * depth : w_off + (u + 1) * depth]
            acc = np.int64(0)
            for k in range(depth):
                acc += (x[k] - x_zp) * w[k]
            if b_off >= 0:
                acc += ci[b_off + u]
            if limit:  # int16x8: int64 accumulators, within the requantization rule's range
                if acc < -limit or acc >= limit:
                    return False
            else:
                acc = fxp.wrap_int32(acc)
            arena[y_off + b * units + u] = _requant(acc, rule, p, u, units, ci, cf, zo, lo, hi)
    return True


@helper
def _add(row, arena):
    x1, x2, y, n, z1, z2, left_shift = row[1], row[2], row[3], row[4], row[5], row[6], row[7]
    q1, e1, q2, e2, qo, eo, zo, lo, hi = row[8], row[9], row[10], row[11], row[12], row[13], row[14], row[15], row[16]
    subtract, single = row[17] != 0, row[18] != 0
    a, b, out = arena[x1 : x1 + n], arena[x2 : x2 + n], arena[y : y + n]  # slices: indices LLVM sees are >= 0
    for i in range(n):
        out[i] = quantized_add_scalar(a[i], b[i], z1, z2, left_shift, q1, e1, q2, e2, qo, eo, zo, lo, hi, subtract,
                                      single)  # fmt: skip


_HEADER = 8  # code[0:8]: rows, arena size, inputs, outputs, then where rows, offsets, arena init, constants start


@sequential
def _run(code, cf, xs, ys):
    """The program ``code`` (``Program.code``) on inputs ``xs``, writing outputs ``ys``: inputs
    into the arena, every row, the arena into ``ys``.  Returns 0, or 1 + the index of the row
    whose accumulator left the representable range."""
    n_rows, size = code[0], code[1]
    rows, offsets, init, ci = code[2], code[3], code[4], code[5]
    arena = code[init : init + size].copy()
    consts = code[ci:]
    k = 0
    for x in literal_unroll(xs):
        dst = arena[code[offsets + k] :][: x.size]  # a slice: indices LLVM sees are >= 0
        for i in range(x.size):
            dst[i] = x[i]
        k += 1
    for r in range(n_rows):
        row = code[rows + r * _WIDTH : rows + (r + 1) * _WIDTH]
        opcode = row[0]
        if opcode == _FC:
            if not _fully_connected(row, consts, cf, arena):
                return r + 1
        elif opcode == _ADD:
            _add(row, arena)
        else:
            n = row[3]
            arena[row[2] : row[2] + n] = arena[row[1] : row[1] + n]
    for y in literal_unroll(ys):
        src = arena[code[offsets + k] :][: y.size]
        for i in range(y.size):
            y[i] = src[i]
        k += 1
    return 0


# ---- building a program from a model -------------------------------------------------------------


class NotEligible(Exception):
    """The model cannot run as a program (the message says why); the op path runs it."""


class Program:
    """A model compiled for one profile: ``program(inputs)`` returns ``run``'s outputs."""

    def __init__(self, model, profile):
        self.model, self.profile = model, profile
        ctx = Context(model, profile, {}, "jit")
        self._slots: dict[int, int] = {}
        self._size = 0
        self._consts_i: list[np.ndarray] = []
        self._ci_size = 0
        self._consts_f: list[np.ndarray] = []
        self._cf_size = 0
        self._init: list[tuple[int, np.ndarray]] = []
        self._rows: list[int] = []
        if not model.inputs or not model.outputs:
            raise NotEligible("the model has no inputs or no outputs")
        if profile.delegate:
            raise NotEligible(f"profile {profile.name!r} splits the model between its delegate and LiteRT's kernels")
        for t in model.input_details():
            self._check_activation(t)
            self._slot(t.index)
        macs = 0
        for op in model.operators:
            if op.op not in PROGRAM_OPS:
                raise NotEligible(f"{op.describe()} is not one of the program's operators {PROGRAM_OPS}")
            with reported(model, op):  # the op path's checks fail here as they do there
                if op.op == "FULLY_CONNECTED":
                    macs += self._fully_connected(ctx, op)
                elif op.op in ("ADD", "SUB"):
                    self._add(ctx, op)
                else:
                    self._copy(ctx, op)
            if macs > MAX_MACS:
                raise NotEligible(f"more than {MAX_MACS} multiply-adds (the op path's GEMM is faster)")
        for t in model.output_details():
            if t.index not in self._slots or t.data is not None:
                raise NotEligible(f"output {t.describe()} is not computed by an operator")
        init = np.zeros(self._size, np.int64)
        for off, data in self._init:
            init[off : off + data.size] = data.reshape(-1)
        rows = np.array(self._rows, np.int64)
        offsets = np.array([self._slots[i] for i in (*model.inputs, *model.outputs)], np.int64)
        parts = [rows, offsets, init, *self._consts_i]
        starts = np.cumsum([_HEADER] + [a.size for a in parts[:3]])
        header = [rows.size // _WIDTH, self._size, *starts, 0, 0]
        self.code = np.concatenate([np.array(header, np.int64), *parts])  # one array: one argument to unbox
        self.cf = np.concatenate([np.zeros(0, np.float64), *self._consts_f])
        self.inputs = [(t.dtype, t.shape) for t in model.input_details()]
        self.outputs = [(t.dtype, t.shape, math.prod(t.shape)) for t in model.output_details()]
        self._single_output = len(self.outputs) == 1
        self._out_dtype, self._out_shape, self._out_size = self.outputs[0]
        self._call = None

    # -- layout --

    def _check_activation(self, t):
        if t.dtype not in (np.int8, np.int16) or any(d < 1 for d in t.shape) or not t.shape:
            raise NotEligible(f"{t.describe()} is not an int8/int16 tensor of static shape")

    def _slot(self, index: int) -> int:
        """The arena offset of tensor ``index``; constants used as activations are copied in."""
        if index not in self._slots:
            t = self.model.tensors[index]
            self._slots[index] = self._size
            if t.data is not None:
                self._init.append((self._size, np.asarray(t.data, np.int64)))
            self._size += math.prod(t.shape)
        return self._slots[index]

    def _const_i(self, values) -> int:
        a = np.ascontiguousarray(values, np.int64).reshape(-1)
        self._consts_i.append(a)
        self._ci_size += a.size
        return self._ci_size - a.size

    def _const_f(self, values) -> int:
        a = np.ascontiguousarray(values, np.float64).reshape(-1)
        self._consts_f.append(a)
        self._cf_size += a.size
        return self._cf_size - a.size

    def _row(self, *fields):
        self._rows.extend([*fields, *([0] * (_WIDTH - len(fields)))])

    def _out(self, op):
        t = self.model.tensors[op.outputs[0]]
        self._check_activation(t)
        if op.outputs[0] in self._slots:
            raise NotEligible(f"{op.describe()} writes a tensor written before")
        return t, self._slot(op.outputs[0])

    def _in(self, op, k):
        t = self.model.tensors[op.inputs[k]]
        self._check_activation(t)
        return t, self._slot(op.inputs[k])

    # -- operators --

    def _fully_connected(self, ctx, op) -> int:
        """A row from the op path's own prepared layer: its checks, its requantizer's rule and
        parameters."""
        xt, x_off = self._in(op, 0)
        w, bias, _, filter_zp, layer = fc_parts(ctx, op, math.prod(xt.shape), xt.dtype)
        ot, y_off = self._out(op)
        if layer is None:
            raise NotEligible(f"{op.describe()}: the filter and bias are not constant")
        units, depth = w.shape
        batch = math.prod(xt.shape) // depth
        if math.prod(ot.shape) != batch * units:
            raise ModelError(f"{op.describe()}: output {ot.describe()} does not hold {batch} x {units} values")
        wide = xt.dtype == np.int16
        if not wide and (self.profile.accumulator_bits, self.profile.accumulator_overflow) != (32, "wrap"):
            raise NotEligible(f"profile {self.profile.name!r} models a {self.profile.accumulator_bits}-bit accumulator")
        low = layer.requantize.lower()
        if low.rule.name not in _RULES or fxp.get_rule(low.rule.name) is not low.rule:
            raise NotEligible(f"{op.describe()}: programs apply the built-in rules only, not {low.rule.name!r}")
        if low.rule.name in fxp.FLOAT_RULES:
            p = self._const_f(np.broadcast_to(low.p1, (units,)))
        else:
            p = self._const_i(np.concatenate([np.broadcast_to(low.p1, (units,)), np.broadcast_to(low.p2, (units,))]))
        if np.any(low.zero_point != low.zero_point[0]):
            raise NotEligible(f"{op.describe()}: per-channel output zero points")
        w_off = self._const_i(w.astype(np.int64) - filter_zp)
        b_off = -1 if bias is None else self._const_i(np.broadcast_to(np.asarray(bias, np.int64), (units,)))
        self._row(_FC, x_off, y_off, batch, depth, units, w_off, layer.input_zero_point, b_off,
                  _RULES.index(low.rule.name), p, int(low.zero_point[0]), low.qmin, low.qmax,
                  low.acc_limit if wide else 0)  # fmt: skip
        return batch * depth * units

    def _add(self, ctx, op):
        _, params = _add_sub_params(ctx, op)
        if "xnnpack" in params or "optimized" in params:
            raise NotEligible(f"{op.describe()}: the program's ADD/SUB is TFLite's reference kernel, not the profile's")
        t1, x1 = self._in(op, 0)
        t2, x2 = self._in(op, 1)
        ot, y = self._out(op)
        if not t1.shape == t2.shape == ot.shape:
            raise NotEligible(f"{op.describe()} broadcasts {t1.shape} and {t2.shape} (the op path does)")
        (q1, qa, qo), (e1, ea, eo) = params["multipliers"], params["shifts"]
        self._row(_ADD, x1, x2, y, math.prod(ot.shape), *params["zero_points"], params["left_shift"], q1, e1, qa,
                  ea, qo, eo, params["output_zero_point"], *params["clamp"], int(params["subtract"]),
                  int(params["rounding"] == "single"))  # fmt: skip

    def _copy(self, ctx, op):
        it, x = self._in(op, 0)
        ot, y = self._out(op)
        _same_quantization(op, [it], ot)
        if math.prod(it.shape) != math.prod(ot.shape):
            raise ModelError(f"{op.describe()}: cannot reshape {it.describe()} to {ot.describe()}")
        self._row(_COPY, x, y, math.prod(ot.shape))

    # -- running --

    def __call__(self, inputs) -> list[np.ndarray]:
        # straight-line checks for one or two array inputs (a call costs about 2 us in all)
        xs = (inputs,) if type(inputs) is np.ndarray else inputs
        n = len(self.inputs)
        if (type(xs) is list or type(xs) is tuple) and len(xs) == n and n <= 2:
            x, (dtype, shape) = xs[0], self.inputs[0]
            if type(x) is np.ndarray and x.dtype == dtype and x.shape == shape:
                if n == 1:
                    xs = (x.reshape(-1),)
                else:
                    x2, (dtype, shape) = xs[1], self.inputs[1]
                    xs = ((x.reshape(-1), x2.reshape(-1)) if type(x2) is np.ndarray and x2.dtype == dtype
                          and x2.shape == shape else self._flat_inputs(inputs))  # fmt: skip
            else:
                xs = self._flat_inputs(inputs)
        else:
            xs = self._flat_inputs(inputs)
        if self._single_output:
            ys = (np.empty(self._out_size, self._out_dtype),)
        else:
            ys = tuple(np.empty(size, dtype) for dtype, _, size in self.outputs)
        if self._call is None:  # the program's one signature: the model's input dtypes, flat
            self._call = entry_point(_run, self.code, self.cf, xs, ys)
        status = self._call(self.code, self.cf, xs, ys)
        if status:
            self._raise_overflow(status)
        if self._single_output:
            return [ys[0].reshape(self._out_shape)]
        return [y.reshape(shape) for y, (_, shape, _) in zip(ys, self.outputs, strict=True)]

    def _flat_inputs(self, inputs) -> tuple:
        """``inputs`` flattened (1-D, C-contiguous; a copy only of a non-contiguous input) in the
        model's order, after the checks of ``Model.bind_inputs``, which runs, with its
        errors, whenever the quick check does not pass.  Flat inputs and outputs give the
        program one compiled specialization whatever the shapes."""
        xs = (inputs,) if type(inputs) is np.ndarray else inputs
        if type(xs) in (list, tuple) and len(xs) == len(self.inputs):
            flat = []
            for x, (dtype, shape) in zip(xs, self.inputs, strict=True):
                if type(x) is not np.ndarray or x.dtype != dtype or x.shape != shape:
                    break
                flat.append(x.reshape(-1))
            else:
                return tuple(flat)

        values = self.model.bind_inputs(inputs)  # the general binding and its errors
        return tuple(values[i].reshape(-1) for i in self.model.inputs)

    def _raise_overflow(self, status: int):
        op = self.model.operators[status - 1]
        raise ModelError(f"{self.model.source}: {op.describe()}: an int16x8 accumulator left the range its "
                         f"requantization rule ({self.profile.rules('int16-fc')[0]}) accepts")  # fmt: skip


def program_for(model, profile) -> Program | str:
    """The model's program for ``profile`` (built once, kept on the model), or the reason it
    has none."""
    key = ("program", profile)  # the Profile itself: custom ones may share a name
    if key not in model.prepared:
        try:
            model.prepared[key] = Program(model, profile)
        except NotEligible as e:
            model.prepared[key] = f"{model.source}: {e}"
    return model.prepared[key]
