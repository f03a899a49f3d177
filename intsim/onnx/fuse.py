"""QDQ groups rewritten into the integer operators onnxruntime's QDQ transformer runs.

A QDQ model says ``DequantizeLinear -> float op -> QuantizeLinear``; onnxruntime (graph
optimization level >= basic, onnxruntime/core/optimizer/qdq_transformer) replaces each such
group with an integer kernel.  ``fuse`` applies the same rewrites, so that ``qdq="fused"``
runs what onnxruntime runs:

=================================  ============================================
float op inside DQ ... Q           integer operator run instead
=================================  ============================================
Conv (DQ bias int32 allowed)       QLinearConv
MatMul                             QLinearMatMul
Gemm (beta = 1)                    com.microsoft QGemm
Add, Mul                           com.microsoft QLinearAdd, QLinearMul
AveragePool, GlobalAveragePool     com.microsoft QLinearAveragePool, ...GlobalAveragePool
LeakyRelu, Sigmoid                 com.microsoft QLinearLeakyRelu, QLinearSigmoid
Concat                             com.microsoft QLinearConcat
MaxPool, Reshape, Flatten,         the same op on the quantized tensor (the DQ/Q pair is
Transpose, Squeeze, Unsqueeze      dropped when both have the same scale and zero point)
=================================  ============================================

Before fusing, onnxruntime on x86 (``qdq_s8_to_u8.cc``, ``QDQS8ToU8Transformer``, enabled where
``QDQIsInt8Allowed()`` is false) turns every int8 QuantizeLinear -> DequantizeLinear pair into
uint8 (both zero points + 128) when the QuantizeLinear feeds that one DequantizeLinear and no
graph output, and the DequantizeLinear feeds at most one node (a DequantizeLinear read by several
nodes is first duplicated, ``EnsureUniqueDQForNodeUnit``, and the pair no longer matches).  The
values are the same shifted by 128, but the fused kernels then multiply uint8 by int8, which on
AVX2 without VNNI sums int16 pairs with saturation (profile ``onnxruntime-cpu-avx2``): measured on
int8-activation models from ``intsim.ptq``, 90% of the logits differ without this step.  intsim
keeps the int8 tensor (so reports still name it) and adds ``intsim.S8ToU8`` feeding the
DequantizeLinear the uint8 copy.  A lone DequantizeLinear of an int8 constant stays int8 in
onnxruntime 1.32 (measured: an Add of a uint8 activation and such a constant runs in float
there), so a group mixing the two runs as written here too.

Not modelled (onnxruntime 1.32, found by fuzzing): a MatMul or Gemm on DequantizeLinear inputs
whose output is not quantized (a float op such as a Relu onnxruntime keeps follows it) runs in
onnxruntime as MatMulIntegerToFloat or a float-output QGemm, whose uint8 x int8 pairs saturate
on AVX2; intsim runs the float operator and says so in the fusion notes.  onnxruntime's
quantizer and ``intsim.ptq`` never write that pattern (a Relu folds into its producer).

A group is fused only when every float input comes from a DequantizeLinear of an 8-bit
tensor with per-tensor parameters (weights of Conv/MatMul/Gemm may be per channel), the op's
output feeds exactly one QuantizeLinear and nothing else, and that output is not a graph
output.  Anything else runs as written, in float.

The fused operator takes a bias as int32 with scale ``x_scale * w_scale`` and zero point 0,
and the bias DequantizeLinear's own parameters are dropped.  onnxruntime (1.32, the peer in
the tests; ``qdq_selectors.cc`` ``ConvNodeGroupSelector``, PR 28229) fuses a Conv only when
its bias DQ has zero point 0 and, channel by channel, ``|b_scale - x_scale * w_scale| <=
1e-6 + 0.01 * x_scale * w_scale`` (the tolerance measured against onnxruntime 1.32); a Conv
outside that runs as written.  It checks nothing of the kind for Gemm: a Gemm whose bias DQ
departs is still fused there, and so here, with a note saying that the result then differs
from the graph as written (``qdq="float"`` runs it so).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from intsim.onnx.graph import MS_DOMAIN, Graph, Node

INT8 = (np.dtype(np.int8), np.dtype(np.uint8))
DROP = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"}
UNARY = {"AveragePool": "QLinearAveragePool", "GlobalAveragePool": "QLinearGlobalAveragePool",
         "LeakyRelu": "QLinearLeakyRelu", "Sigmoid": "QLinearSigmoid"}  # fmt: skip
BINARY = {"Add": "QLinearAdd", "Mul": "QLinearMul"}


class _Index:
    def __init__(self, graph: Graph, nodes):
        self.graph = graph
        self.producer = {o: n for n in nodes for o in n.outputs if o}
        self.consumers: dict[str, list[Node]] = {}
        for n in nodes:
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n)
        self.graph_outputs = {v.name for v in graph.outputs}
        self.converted: dict[str, tuple] = {}  # QuantizeLinear output -> (uint8 copy, its zero point)

    def const(self, name):
        return self.graph.initializers.get(name)

    def dq(self, name, per_channel_ok=False):
        """The DequantizeLinear node producing ``name``, if it is a fusable one."""
        n = self.producer.get(name)
        if n is None or n.op_type != "DequantizeLinear" or n.domain not in ("", "ai.onnx"):
            return None
        if len(n.inputs) < 3 or not n.inputs[2] or n.attr("block_size", 0):
            return None
        scale, zp = self.const(n.inputs[1]), self.const(n.inputs[2])
        if scale is None or zp is None:
            return None
        if scale.size != 1 and not per_channel_ok:
            return None
        if zp.dtype not in INT8 and not (zp.dtype == np.int32 and per_channel_ok == "bias"):
            return None
        return n

    def q_after(self, node):
        """The single QuantizeLinear consuming ``node``'s only output."""
        out = node.outputs[0]
        users = self.consumers.get(out, [])
        if len(node.outputs) != 1 or out in self.graph_outputs or len(users) != 1:
            return None
        q = users[0]
        if q.op_type != "QuantizeLinear" or len(q.inputs) < 3 or not q.inputs[2]:
            return None
        scale, zp = self.const(q.inputs[1]), self.const(q.inputs[2])
        if scale is None or zp is None or scale.size != 1 or zp.dtype not in INT8:
            return None
        return q


def _triple(dq):
    return list(dq.inputs[:3])


def _bias_departs(ix: _Index, x: Node, w: Node, b: Node) -> bool:
    """Whether the bias DQ ``b`` has a zero point other than 0, or a scale outside onnxruntime's
    tolerance of ``x_scale * w_scale`` (see the module docstring), per output channel."""
    if np.any(ix.const(b.inputs[2]) != 0):
        return True
    xs, ws, bs = (ix.const(d.inputs[1]).astype(np.float32).reshape(-1) for d in (x, w, b))
    want = xs * ws
    if bs.size not in (1, want.size) and want.size != 1:
        return True
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(bs - want) <= np.float32(1e-6) + np.float32(0.01) * np.abs(want)  # NaN: False
    return not bool(np.all(close))


def _rewrite(ix: _Index, node: Node):
    """(new node, removed Q node, warning) for a fusable group, else None."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return None
    q = ix.q_after(node) if node.outputs else None
    if q is None:
        return None
    yq = list(q.inputs[1:3])

    # the type onnxruntime's selector sees: uint8 where the pair after this group was converted
    out_type = np.dtype(np.uint8) if q.outputs[0] in ix.converted else ix.const(q.inputs[2]).dtype

    def mixed(*dqs):  # onnxruntime's selectors need one 8-bit type across the group's activations
        return any(ix.const(d.inputs[2]).dtype != out_type for d in dqs)

    y = q.outputs[0]
    if y in ix.converted:  # the fused kernel writes the uint8 tensor onnxruntime's kernel writes
        y, zp_u8 = ix.converted[y]
        yq = [yq[0], zp_u8]

    def make(op_type, inputs, attrs=None, domain="", warning=""):
        return Node(node.index, op_type, domain, node.name, inputs, [y], dict(attrs or node.attrs)), q, warning

    if op == "Conv":
        x, w = ix.dq(node.inputs[0]), ix.dq(node.inputs[1], per_channel_ok=True)
        b = ix.dq(node.inputs[2], per_channel_ok="bias") if len(node.inputs) > 2 and node.inputs[2] else None
        if not x or not w or (len(node.inputs) > 2 and node.inputs[2] and not b) or mixed(x):
            return None
        if out_type == np.int8:  # ConvNodeGroupSelector: int8 activations not allowed on x86
            return None
        if b and _bias_departs(ix, x, w, b):
            return None
        inputs = _triple(x) + _triple(w) + yq + ([b.inputs[0]] if b else [])
        return make("QLinearConv", inputs)
    if op == "MatMul":
        a, b = ix.dq(node.inputs[0]), ix.dq(node.inputs[1], per_channel_ok=True)
        if not a or not b or mixed(a) or out_type == np.int8:  # MatMul's selector: no int8 activations on x86
            return None
        return make("QLinearMatMul", _triple(a) + _triple(b) + yq, {})
    if op == "Gemm":
        a, b = ix.dq(node.inputs[0]), ix.dq(node.inputs[1], per_channel_ok=True)
        c = ix.dq(node.inputs[2], per_channel_ok="bias") if len(node.inputs) > 2 and node.inputs[2] else None
        if not a or not b or (len(node.inputs) > 2 and node.inputs[2] and not c) or node.attr("beta", 1.0) != 1.0 or mixed(a):
            return None
        attrs = {k: node.attrs[k] for k in ("alpha", "transA", "transB") if k in node.attrs}
        warning = " (its bias DequantizeLinear's scale or zero point departs from a_scale * b_scale " \
            "and 0, which QGemm drops: onnxruntime's result differs from the graph as written)"
        return make("QGemm", _triple(a) + _triple(b) + [c.inputs[0] if c else ""] + yq, attrs, MS_DOMAIN,
                    warning if c and _bias_departs(ix, a, b, c) else "")
    if op in BINARY:
        a, b = ix.dq(node.inputs[0]), ix.dq(node.inputs[1])
        if not a or not b or mixed(a, b):
            return None
        return make(BINARY[op], _triple(a) + _triple(b) + yq, {}, MS_DOMAIN)
    if op in UNARY:
        x = ix.dq(node.inputs[0])
        if not x or mixed(x):
            return None
        return make(UNARY[op], _triple(x) + yq, None, MS_DOMAIN)
    if op == "Concat":
        dqs = [ix.dq(i) for i in node.inputs]
        if not all(dqs) or mixed(*dqs):
            return None
        return make("QLinearConcat", yq + [t for d in dqs for t in _triple(d)], None, MS_DOMAIN)
    if op in DROP:
        x = ix.dq(node.inputs[0])
        if not x:
            return None
        # against the output pair as onnxruntime sees it (uint8 where converted)
        same = all(np.array_equal(ix.const(a), ix.const(b)) and ix.const(a).dtype == ix.const(b).dtype
                   for a, b in zip(x.inputs[1:3], yq))  # fmt: skip
        if not same or mixed(x):
            return None
        return make(op, [x.inputs[0]] + node.inputs[1:])
    return None


S8_TO_U8 = "intsim.S8ToU8"  # domain of the internal shift node


def _drop_activation_before_q(graph: Graph, nodes: list[Node]) -> tuple[list[Node], list[str]]:
    """onnxruntime's ReluQuantFusion and ClipQuantFusion (``qdq_transformer/relu_quantizelinear.cc``,
    ``clip_quantizelinear.cc``): a Relu read only by a QuantizeLinear whose zero point is its type's
    minimum, or a Clip whose [min, max] covers the QuantizeLinear's range ``scale * (qmin - zp)`` ..
    ``scale * (qmax - zp)`` (float32, within FLT_EPSILON), is removed: the QuantizeLinear's own
    saturation does its work, and the op before it may then fuse."""
    ix = _Index(graph, nodes)
    drop, notes = set(), []
    for node in nodes:
        if node.op_type not in ("Relu", "Clip") or node.domain not in ("", "ai.onnx"):
            continue
        users = ix.consumers.get(node.outputs[0], [])
        if node.outputs[0] in ix.graph_outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            continue
        q = users[0]
        scale, zp = (ix.const(q.inputs[i]) if len(q.inputs) > i and q.inputs[i] else None for i in (1, 2))
        if scale is None or zp is None or scale.size != 1 or zp.size != 1 or zp.dtype not in INT8:
            continue
        info, z = np.iinfo(zp.dtype), int(zp.reshape(()))
        if node.op_type == "Relu":
            if z != info.min:
                continue
        else:
            bounds = []
            for i, key, default in ((1, "min", -np.inf), (2, "max", np.inf)):
                name = node.inputs[i] if len(node.inputs) > i else ""
                value = ix.const(name) if name else np.float32(node.attr(key, default))
                if value is None:
                    break
                bounds.append(np.float32(value.reshape(()) if isinstance(value, np.ndarray) else value))
            if len(bounds) != 2:
                continue
            s32 = np.float32(scale.reshape(()))
            lower, upper = s32 * np.float32(info.min - z), s32 * np.float32(info.max - z)
            eps = np.finfo(np.float32).eps
            if eps < bounds[0] - lower or eps < upper - bounds[1]:
                continue
        q.inputs = [node.inputs[0]] + q.inputs[1:]
        drop.add(id(node))
        notes.append(f"{node.label()}: removed before {q.label()}, as onnxruntime's {node.op_type}QuantFusion")
    return [n for n in nodes if id(n) not in drop], notes


def _s8_to_u8(graph: Graph, nodes: list[Node]) -> tuple[list[Node], list[str], dict]:
    """onnxruntime's int8 -> uint8 QDQ pair conversion (module docstring)."""
    ix = _Index(graph, nodes)
    out, notes, converted = [], [], {}
    for node in nodes:
        out.append(node)
        if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx") or len(node.inputs) < 3:
            continue
        y = node.outputs[0]
        users = ix.consumers.get(y, [])
        if y in ix.graph_outputs or len(users) != 1 or users[0].op_type != "DequantizeLinear" or len(users[0].inputs) < 3:
            continue
        dq = users[0]
        dq_out = dq.outputs[0]
        n_dq_users = len(ix.consumers.get(dq_out, []))
        if n_dq_users > 1 or (n_dq_users and dq_out in ix.graph_outputs):
            continue
        zq, zdq = ix.const(node.inputs[2]), ix.const(dq.inputs[2])
        if zq is None or zdq is None or zq.size != 1 or zdq.size != 1 or zq.dtype != np.int8 or zdq.dtype != np.int8:
            continue
        if int(zq.reshape(())) != int(zdq.reshape(())):
            continue
        zp_name, shifted = f"{y}_s8_to_u8_zero_point", f"{y}_s8_to_u8"
        graph.initializers[zp_name] = np.array(int(zq.reshape(())) + 128, np.uint8).reshape(zdq.shape)
        out.append(Node(node.index, "S8ToU8", S8_TO_U8, f"{node.name}_s8_to_u8", [y], [shifted]))
        dq.inputs = [shifted, dq.inputs[1], zp_name] + dq.inputs[3:]
        converted[y] = (shifted, zp_name)
        notes.append(f"{node.label()} -> {dq.label()}: int8 pair run as uint8 (zero point + 128), as onnxruntime's "
                     "QDQS8ToU8Transformer")  # fmt: skip
    graph.__dict__.pop("constants", None)  # new zero-point initializers
    return out, notes, converted


def _float_output_group(ix: _Index, node: Node) -> bool:
    """A MatMul or Gemm on 8-bit DequantizeLinear inputs whose output is not quantized (found
    by fuzzing against onnxruntime 1.32: it fuses these into float-output integer kernels)."""
    if node.op_type not in ("MatMul", "Gemm") or node.domain not in ("", "ai.onnx"):
        return False
    return bool(ix.dq(node.inputs[0])) and bool(ix.dq(node.inputs[1], per_channel_ok=True))


def fuse(graph: Graph) -> tuple[list[Node], list[str]]:
    """The nodes to run with QDQ groups fused, and one line describing each fusion."""
    nodes, dropped = _drop_activation_before_q(graph, [replace(n, inputs=list(n.inputs)) for n in graph.nodes])
    nodes, converted, pairs = _s8_to_u8(graph, nodes)
    ix = _Index(graph, nodes)
    ix.converted = pairs
    replaced, removed, notes = {}, set(), []
    for node in nodes:
        r = _rewrite(ix, node)
        if r is None:
            if _float_output_group(ix, node):
                notes.append(f"{node.label()}: DequantizeLinear inputs and a float output: onnxruntime runs "
                             f"{'MatMulIntegerToFloat' if node.op_type == 'MatMul' else 'QGemm with a float output'} "
                             "here (its uint8 x int8 pairs saturate on AVX2), intsim the float operator: NOT "
                             "modelled, the results can differ")  # fmt: skip
            continue
        new, q, warning = r
        replaced[node.index] = new
        removed.add(id(q))
        notes.append(f"{node.label()}: DequantizeLinear -> {node.op_type} -> QuantizeLinear run as {new.op_type}{warning}")
    out = [replaced.get(n.index, n) if n.domain != S8_TO_U8 else n for n in nodes if id(n) not in removed]
    produced = {o for n in out for o in n.outputs}
    for i, n in enumerate(out):
        if n.op_type == "S8ToU8" and n.inputs[0] not in produced:
            # the group before the pair was fused and writes the uint8 copy: keep the int8 tensor for reports
            out[i] = Node(n.index, "U8ToS8", S8_TO_U8, n.name, [n.outputs[0]], [n.inputs[0]])
    return _prune(graph, out), dropped + converted + notes


def _prune(graph: Graph, nodes: list[Node]) -> list[Node]:
    """Drop nodes whose outputs nobody reads (the DequantizeLinear nodes a fusion bypassed)."""
    needed = {v.name for v in graph.outputs}
    keep = []
    for n in reversed(nodes):
        if any(o in needed for o in n.outputs) or n.op_type == "U8ToS8":  # reports read the int8 tensor
            keep.append(n)
            needed.update(i for i in n.inputs if i)
    return keep[::-1]
