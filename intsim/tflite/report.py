"""Why two targets give different numbers: per layer and per pair of profiles, over real inputs.

For each pair of profiles ``(a, b)`` and each operator, summed over every input sample:

* ``differ``: output elements that differ when each profile runs the whole model;
* ``max_lsb``: the largest difference;
* ``originate``: elements that differ when ``b``'s kernel is given ``a``'s inputs to the layer
  (the disagreement this layer adds);
* ``arrive``: elements that differ end to end but not in isolation (carried from earlier layers);
* ``why``: the rule difference that explains ``originate``, read from the two profiles' tables
  (``intsim.profiles``): the requantization rule of the operator's class and how each rounds, the
  multiplier derivation, the accumulator, the LOGISTIC/TANH implementation, the quantize
  rounding.

Then per pair: the model's output elements that differ and the first layer where the pair
departs.  ``Divergence.text()`` prints it; ``Divergence.to_dict()`` is its JSON form.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from intsim import profiles as _profiles
from intsim.tflite import delegate
from intsim.tflite.context import OWN_MULTIPLIER_CLASS, Context
from intsim.tflite.interpreter import execute, load
from intsim.tflite.model import Operator

# the operators each Profile.kernels value computes otherwise than LiteRT's reference kernels
_KERNEL_OPS = {"reference": ("SUM", "ELU"),
               "optimized": ("ADD", "MUL", "QUANTIZE", "DEQUANTIZE", "MEAN", "SUM", "LEAKY_RELU", "LOGISTIC", "TANH",
                             "ELU", "LOG_SOFTMAX"),
               "xnnpack": ("ADD", "SUB", "MUL", "QUANTIZE", "MEAN", "SUM", "LEAKY_RELU", "ELU", "BATCH_MATMUL"),
               "tflm": ("RELU6", "UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF", "DIV", "ELU", "PRELU", "CAST")}  # fmt: skip
# what differs in TFLite Micro's kernel from LiteRT's, where it has one of its own
_TFLM_NOTES = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "gate sigmoid/tanh by table interpolation (TFLite Micro) vs gemmlowp int16 fixed "
                                    "point (LiteRT), the cell update rounded twice, each gate part clamped alone",
    "SVDF": "the state's zero point added after the clamp (TFLite Micro) vs ignored (LiteRT)",
    "DIV": "exact ties rounded away from zero (TFLite Micro)",
    "RELU6": "the clamp in the input's quantization (TFLite Micro)",
    "ELU": "exp(x) - 1 (TFLite Micro) vs expm1(x) (LiteRT)",
}
# the operators whose multiplier derivation is their class's (the others derive theirs in one way)
_DERIVED_BY_CLASS = ("MUL", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM")
_WEIGHT_CLASS = {"CONV_2D": "conv", "TRANSPOSE_CONV": "transpose-conv", "DEPTHWISE_CONV_2D": "depthwise",
                 "FULLY_CONNECTED": "fc"}  # fmt: skip


@dataclass
class LayerDivergence:
    index: int
    op: str
    tensor: str
    elements: int  # output elements, summed over the samples
    differ: int
    max_lsb: int
    originate: int
    arrive: int
    why: str


@dataclass
class PairDivergence:
    a: str
    b: str
    layers: list[LayerDivergence] = field(default_factory=list)
    output_elements: int = 0
    output_differ: int = 0
    first_layer: int | None = None  # index of the first operator whose output differs

    def summary(self) -> str:
        where = "never" if self.first_layer is None else f"first at operator {self.first_layer}"
        return f"{self.a} vs {self.b}: {self.output_differ}/{self.output_elements} output elements differ; departs {where}"


@dataclass
class Divergence:
    model: str
    profiles: list[str]
    samples: int
    pairs: list[PairDivergence]

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [f"{self.model}: {self.samples} input sample(s), profiles {', '.join(self.profiles)}"]
        for pair in self.pairs:
            lines.append(f"\n{pair.a} vs {pair.b}, per layer (elements that differ, max LSB, how many originate "
                         "in the layer and arrive from earlier ones):")  # fmt: skip
            for d in pair.layers:
                lines.append(f"  {d.index:3d} {d.op:<18} {d.differ:6d}/{d.elements:<7d} max {d.max_lsb} LSB  "
                             f"{d.originate} originate, {d.arrive} arrive" + (f"  {d.why}" if d.originate else ""))  # fmt: skip
        lines.append("\nsummary:")
        lines += ["  " + pair.summary() for pair in self.pairs]
        return "\n".join(lines)


def op_class(op: Operator, input_dtype) -> str | None:
    """The profile operator class of ``op`` (``profiles.OP_CLASSES``), None for operators
    without a requantization rule (RESHAPE, MAX_POOL_2D, ...)."""
    if op.op in _WEIGHT_CLASS:
        c = _WEIGHT_CLASS[op.op]
        return ("int16-fc" if c == "fc" else "int16") if np.dtype(input_dtype) == np.int16 else c
    return OWN_MULTIPLIER_CLASS.get(op.op)


def explain(op: Operator, input_dtype, pa: _profiles.Profile, pb: _profiles.Profile, model=None) -> str:
    """The differences between ``pa`` and ``pb`` that bear on ``op`` (one line); given the
    model, a profile with a delegate is read as the profile that runs ``op``."""
    if model is not None:
        pa, pb = (_as_run(model, op, p) for p in (pa, pb))
    parts = []
    cls = op_class(op, input_dtype)
    if cls is not None:
        (ra, ma), (rb, mb) = _rules(pa, cls), _rules(pb, cls)
        if ra != rb:
            parts.append(f"{pa.name} {_summary(ra)}; {pb.name} {_summary(rb)}")
        if ma != mb and (op.op in _WEIGHT_CLASS or op.op in _DERIVED_BY_CLASS):
            what = "s_in*s_w/s_out " if op.op in _WEIGHT_CLASS else "s1*s2/s_out " if op.op == "MUL" else ""
            parts.append(f"multiplier {what}in {ma} ({pa.name}) vs {mb} ({pb.name})")
    if op.op in _WEIGHT_CLASS:
        acc_a = (pa.accumulator_bits, pa.accumulator_overflow, pa.int16_pairs)
        acc_b = (pb.accumulator_bits, pb.accumulator_overflow, pb.int16_pairs)
        if acc_a != acc_b:
            parts.append(f"accumulator {acc_a} vs {acc_b} (bits, overflow, int16 pairs)")
    if pa.kernels != pb.kernels and op.op in _KERNEL_OPS[pa.kernels] + _KERNEL_OPS[pb.kernels]:
        note = _TFLM_NOTES.get(op.op) if "tflm" in (pa.kernels, pb.kernels) else None
        parts.append(f"{pa.name} runs the {pa.kernels} kernel, {pb.name} the {pb.kernels} one" + (f": {note}" if note else ""))
    if op.op in ("LOGISTIC", "TANH") and pa.activation_impl != pb.activation_impl:
        parts.append(f"{pa.name} uses a {pa.activation_impl} implementation, {pb.name} a {pb.activation_impl} one")
    if op.op == "QUANTIZE" and pa.quantize_rounding != pb.quantize_rounding:
        parts.append(f"float inputs round {pa.quantize_rounding} ({pa.name}) vs {pb.quantize_rounding} ({pb.name})")
    return f"{op.op}: " + ("; ".join(parts) if parts else "the same rules in both profiles")


def _as_run(model, op: Operator, p: _profiles.Profile) -> _profiles.Profile:
    node = delegate.node_profile(model, op, p)
    return p if node is p else replace(node, name=f"{p.name} ({node.name})")


def _rules(p: _profiles.Profile, cls: str):
    try:
        return p.rules(cls)
    except ValueError:
        return None, None


def _summary(rule) -> str:
    if rule is None:
        return "has no rule for it"
    from intsim import fixedpoint

    return fixedpoint.get_rule(rule).summary


def _lockstep(m, inputs, pa, pb, backend: str):
    """Both profiles through the model side by side on one input, and ``pb``'s kernel on
    ``pa``'s inputs to each layer: ``(rows, a, b)``, one row ``(op, output tensor, a, b, b
    isolated)`` per integer output, and the two contexts (their values hold every tensor).  Each
    input starts from the initial state (variable tensors at zero)."""
    a = Context(m, pa, {**m.bind_inputs(inputs), **m.initial_state()}, backend)
    b = Context(m, pb, dict(a.values), backend)
    rows = []
    for op in m.operators:
        isolated = Context(m, pb, dict(a.values), backend)
        ya, yb, yi = execute(a, op), execute(b, op), execute(isolated, op)
        rows += [(op, k, out_a, out_b, out_i) for k, out_a, out_b, out_i in zip(op.outputs, ya, yb, yi, strict=True)
                 if out_a.dtype.kind in "iu"]  # fmt: skip
    return rows, a, b


@dataclass
class LayerDiff:
    """Where two profiles disagree on one operator's output, on one input."""

    index: int
    op: str
    tensor: str
    elements: int
    differ: int  # elements that differ when each profile runs the whole model
    max_lsb: int
    locations: list = field(default_factory=list)  # first few differing indices
    originate: int = 0  # elements that differ when both profiles get the same (first profile's) inputs

    def line(self) -> str:
        where = ", ".join(str(tuple(int(v) for v in loc)) for loc in self.locations)
        return (f"{self.index:3d} {self.op:<18} {self.differ:6d}/{self.elements:<7d} max {self.max_lsb} LSB"
                f"  ({self.originate} originate here){'  at ' + where if where else ''}")  # fmt: skip


def diff(model, inputs, profiles=("tflm", "tflite-reference"), *, max_locations: int = 5, backend: str = "jit"):
    """Per-layer disagreement between two profiles on one input: for every operator, how many
    output elements differ between the two end-to-end runs, by how many LSB at most, where, and
    how many originate in the layer (``divergence`` does this over many samples and pairs)."""
    m = load(model)
    pa, pb = (_profiles.get(p) for p in profiles)
    rows = []
    for op, k, out_a, out_b, out_i in _lockstep(m, inputs, pa, pb, backend)[0]:
        d = np.abs(out_a.astype(np.int64) - out_b.astype(np.int64))
        locs = np.argwhere(d != 0)[:max_locations]
        rows.append(LayerDiff(op.index, op.op, m.tensors[k].name, d.size, int(np.count_nonzero(d)),
                              int(d.max(initial=0)), [tuple(v) for v in locs], int(np.count_nonzero(out_a != out_i))))  # fmt: skip
    return rows


def divergence(model, samples, profiles, *, backend: str = "jit") -> Divergence:
    """The report (module docstring) of ``model`` on ``samples`` (a list of inputs, each as
    ``run`` takes them) under ``profiles`` (two or more names or ``Profile`` objects): every
    pair, in the given order."""
    m = load(model)
    ps = [_profiles.get(p) for p in profiles]
    if len(ps) < 2:
        raise ValueError("the divergence report needs two or more profiles")
    samples = list(samples)
    if not samples:
        raise ValueError("the divergence report needs at least one input sample")
    pairs = []
    for pa, pb in itertools.combinations(ps, 2):
        stats = {}
        out_differ = out_elements = 0
        for x in samples:
            rows, a, b = _lockstep(m, x, pa, pb, backend)
            for op, k, out_a, out_b, out_i in rows:
                d = np.abs(out_a.astype(np.int64) - out_b.astype(np.int64))
                differs, originates = d != 0, out_a != out_i
                data = op.inputs[2] if op.op == "TRANSPOSE_CONV" else op.inputs[0] if op.inputs else -1
                dtype = m.tensors[data].dtype if data >= 0 else None
                s = stats.setdefault((op.index, k), [op, dtype, 0, 0, 0, 0, 0])
                s[2] += d.size
                s[3] += int(np.count_nonzero(differs))
                s[4] = max(s[4], int(d.max(initial=0)))
                s[5] += int(np.count_nonzero(originates))
                s[6] += int(np.count_nonzero(differs & ~originates))
            for k in m.outputs:
                out_elements += a.values[k].size
                out_differ += int(np.count_nonzero(a.values[k] != b.values[k]))
        pair = PairDivergence(pa.name, pb.name, output_elements=out_elements, output_differ=out_differ)
        for (index, k), (op, dtype, elements, differ, max_lsb, originate, arrive) in stats.items():
            why = explain(op, dtype, pa, pb, m) if originate else ""
            pair.layers.append(LayerDivergence(index, op.op, m.tensors[k].name, elements, differ, max_lsb, originate,
                                               arrive, why))  # fmt: skip
            if differ and pair.first_layer is None:
                pair.first_layer = index
        pairs.append(pair)
    return Divergence(m.source, [p.name for p in ps], len(samples), pairs)


def samples_from_file(model, path) -> list:
    """Input samples for ``model`` from a ``.npy`` file (one input: an array of the input's
    shape, or a stack of them along a new first axis) or a ``.npz`` file (arrays by input name,
    each of the input's shape or a stack of equally many)."""
    m = load(model)
    details = m.input_details()
    path = str(path)
    if path.endswith(".npz"):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        missing = [t.name for t in details if t.name not in arrays]
        if missing:
            raise ValueError(f"{path}: no array for input(s) {missing}; it holds {sorted(arrays)}")
    elif path.endswith(".npy"):
        if len(details) != 1:
            raise ValueError(f"{path}: a .npy file feeds a one-input model; this one takes "
                             f"{[t.name for t in details]} (use .npz)")  # fmt: skip
        arrays = {details[0].name: np.load(path)}
    else:
        raise ValueError(f"{path}: inputs must be a .npy or .npz file")
    stacks = {}
    for t in details:
        a = arrays[t.name]
        if a.shape == tuple(t.shape):
            a = a[None]
        elif a.shape[1:] != tuple(t.shape):
            raise ValueError(f"{path}: input {t.name!r} must have shape {tuple(t.shape)} or (samples, "
                             f"{', '.join(map(str, t.shape))}), got {a.shape}")  # fmt: skip
        if a.dtype != t.dtype:
            raise ValueError(f"{path}: input {t.name!r} must be {t.dtype}, got {a.dtype}")
        stacks[t.name] = a
    counts = {a.shape[0] for a in stacks.values()}
    if len(counts) != 1:
        raise ValueError(f"{path}: the inputs hold different numbers of samples: {sorted(counts)}")
    return [{name: a[i] for name, a in stacks.items()} for i in range(counts.pop())]
