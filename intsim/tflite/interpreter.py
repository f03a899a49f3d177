"""Load, run and compare TFLite models."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from intsim import profiles as _profiles
from intsim.tflite import delegate
from intsim.tflite import kernels_activation, kernels_elementwise, kernels_movement, kernels_nn, kernels_shape  # noqa: F401
from intsim.tflite import kernels_arithmetic, kernels_lut, kernels_recurrent, kernels_resize, kernels_tensor  # noqa: F401
from intsim.tflite import kernels_compare, lstm  # noqa: F401
from intsim.tflite.context import KERNELS, Context, reported
from intsim.tflite.model import Model, ModelError, Operator, parse
from intsim.tflite.program import Program, program_for

TFLITE_PROFILES = ("tflite-reference", "tflm", "tflm-single-rounding")  # the TFLite targets modelled
_PROGRAM = "program by run() arguments"  # Model.prepared key: (this, profile argument, backend)


def supported_ops() -> list[str]:
    return sorted(KERNELS)


def load(model) -> Model:
    """Parse a ``.tflite`` file (path or bytes) and check that intsim has a kernel for every
    operator; an unsupported one raises ``ModelError`` naming the op and its index."""
    m = model if isinstance(model, Model) else parse(model)
    if m.prepared.get("loaded"):
        return m
    missing = [f"{op.describe()}" for op in m.operators if op.op not in KERNELS]
    if missing:
        raise ModelError(f"{m.source}: unsupported operator(s): {', '.join(missing)}; "
                         f"intsim supports {', '.join(supported_ops())}")  # fmt: skip
    m.prepared["loaded"] = True
    return m


def litert_quantization_error(m: Model) -> str | None:
    """What LiteRT's ``InterpreterBuilder::ParseQuantization`` (``tflite/core/interpreter_builder.cc``)
    rejects in a model TFLite Micro runs: a per-channel ``quantized_dimension`` outside the
    tensor's rank, or a scale count neither 1 nor that axis's size."""
    for t in m.tensors:
        n, q = t.scale.size, t.quantized_dimension
        if n == 0 or not t.shape:
            continue
        if not 0 <= q < len(t.shape):
            return f"{t.describe()} has quantized_dimension {q}, outside [0, {len(t.shape)})"
        if n != 1 and n != t.shape[q]:
            return f"{t.describe()} has {n} scales along axis {q} of size {t.shape[q]}"
    return None


def execute(ctx: Context, op: Operator) -> list[np.ndarray]:
    """Run one operator on ``ctx.values``; checks the results against the model's tensors.  A
    profile with a delegate runs the nodes the delegate takes by the delegate's profile."""
    with reported(ctx.model, op):
        if ctx.profile.delegate:
            profile = delegate.node_profile(ctx.model, op, ctx.profile)
            ctx = ctx if profile is ctx.profile else replace(ctx, profile=profile)
        outs = KERNELS[op.op](ctx, op)
    for k, y in zip(op.outputs, outs, strict=True):
        t = ctx.tensor(k)
        if t.dtype is not None and y.dtype != t.dtype:
            raise ModelError(f"{op.describe()}: produced {y.dtype} for {t.describe()}")
        if t.shape and y.shape != t.shape:
            if y.size != math.prod(t.shape):
                raise ModelError(f"{op.describe()}: produced shape {y.shape} for {t.describe()}")
            y = y.reshape(t.shape)
        ctx.values[k] = y
    return outs


def run(model, inputs, *, profile="tflite-reference", return_intermediates: bool = False, backend: str = "jit",
        whole_model: bool | None = None, reset_state: bool = False):  # fmt: skip
    """Run a TFLite model the way ``profile``'s kernels do.

    ``inputs``: one array, a list in the model's input order, or a dict by input name; dtypes and
    shapes must match the model's inputs exactly.  Returns the list of outputs, or
    ``(outputs, intermediates)`` with every computed tensor by name.

    State: a model's variable tensors (the state of UNIDIRECTIONAL_SEQUENCE_LSTM and SVDF) start
    at zero and keep their values from one ``run`` to the next, as in the interpreters, separately
    per profile and backend; ``reset_state=True`` starts this run from zero (a fresh
    interpreter's first ``Invoke``), ``model.reset_state()`` starts every profile's over.

    ``whole_model``: small models of a few operator kinds run as one compiled call
    (``intsim.tflite.program``, same results) under the jit backends when no intermediates are
    asked for; ``None`` does so where the model qualifies, ``False`` always runs operator by
    operator, ``True`` requires the program and raises the reason a model does not qualify.
    """
    if type(model) is Model and whole_model is not False and not return_intermediates:
        prog = model.prepared.get((_PROGRAM, profile, backend))  # a program run before with these arguments
        if prog is not None:
            return prog(inputs)
    m = load(model)
    p = _profiles.get(profile)  # any profile: each operator by the rule its table gives its class
    if p.kernels != "tflm":
        if "litert quantization" not in m.prepared:
            m.prepared["litert quantization"] = litert_quantization_error(m)
        why = m.prepared["litert quantization"]
        if why:
            raise ModelError(f"{m.source}: {why}: LiteRT's interpreter refuses the model (profile {p.name!r}; "
                             "TFLite Micro runs it)")  # fmt: skip
    if whole_model is not False:
        if backend in ("jit", "jit-serial") and not return_intermediates:
            prog = program_for(m, p)
            if isinstance(prog, Program):
                m.prepared[(_PROGRAM, profile, backend)] = prog
                return prog(inputs)
            if whole_model:
                raise ModelError(prog)
        elif whole_model:
            raise ValueError("whole_model=True needs backend 'jit' or 'jit-serial' and no intermediates")
    values = m.bind_inputs(inputs)
    state = (None if reset_state else m.state.get((p, backend))) or m.initial_state()
    ctx = Context(m, p, {**values, **{i: v.copy() for i, v in state.items()}}, backend)
    for op in m.operators:
        execute(ctx, op)
    missing = [m.tensors[i].describe() for i in m.outputs if i not in ctx.values]
    if missing:
        raise ModelError(f"{m.source}: output(s) never computed: {', '.join(missing)}")
    if state:  # after a complete run only (a failed one leaves the state as it was); copies, so
        m.state[(p, backend)] = {i: ctx.values[i].copy() for i in state}  # returned arrays stay the caller's
    outputs = [ctx.values[i] for i in m.outputs]
    if return_intermediates:
        return outputs, {m.tensors[i].name: v for i, v in ctx.values.items()}
    return outputs
