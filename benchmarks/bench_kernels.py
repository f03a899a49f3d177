"""Integer GEMM and convolution: intsim (exact) against numpy, onnxruntime and torch (if
installed), measured in the same run.

Run: ``python benchmarks/run.py kernels``.
"""

from __future__ import annotations

import numba
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from benchmarks._timing import best_time, best_times, table
from intsim import formats, ops, profiles
from intsim.kernels import pack_weights
from intsim.kernels.layout import swap_last_two

try:  # optional peer
    import torch
except ImportError:  # torch is not a dependency; the table says when it was absent
    torch = None


def _session(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "bench", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = numba.get_num_threads()
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _vi(name, arr):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))


def ort_matmul_integer(a, b):
    s = _session(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], [_vi("A", a)],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, None)], [numpy_helper.from_array(b, "B")],
    )  # fmt: skip
    return lambda: s.run(None, {"A": a})[0]


def gops(ops_count, seconds):
    return ops_count / seconds / 1e9


def gemm_rows():
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in ((1024, 1024, 1024), (64, 4096, 4096)):
        count = 2 * m * n * k
        a8 = rng.integers(-128, 128, (m, k)).astype(np.int8)
        au = (a8.astype(np.int16) + 128).astype(np.uint8)
        b8 = rng.integers(-128, 128, (k, n)).astype(np.int8)
        want = ops.matmul_integer(a8, b8)
        peers = {}
        packed = pack_weights(b8)  # onnxruntime pre-packs its constant B at session creation too
        assert np.array_equal(ops.matmul_integer(a8, packed), want)
        t_unpacked = best_time(lambda: ops.matmul_integer(a8, b8))
        t_serial = best_time(lambda: ops.matmul_integer(a8, packed, backend="jit-serial"), repeat=3)
        np_t = best_time(lambda: a8.astype(np.int32) @ b8.astype(np.int32), repeat=1, warmup=0)
        for name, (a, b) in {"onnxruntime u8s8": (au, b8), "onnxruntime s8s8": (a8, b8)}.items():
            fn = ort_matmul_integer(a, b)
            if name.endswith("s8s8"):
                assert np.array_equal(fn(), want), "onnxruntime disagrees"
            peers[name] = best_time(fn)
        if torch is not None and hasattr(torch, "_int_mm"):
            ta, tb = torch.from_numpy(a8), torch.from_numpy(b8)
            peers["torch._int_mm"] = best_time(lambda: torch._int_mm(ta, tb))
        # int4: 4-bit packed weights, unpacked and sign-extended per call (included in the time)
        b4 = rng.integers(-8, 8, (k, n)).astype(np.int8)
        packed_bytes = formats.pack(formats.encode(b4.astype(np.float64), "int4"), 4)

        def unpack_int4():
            return formats.unpack_values(packed_bytes, "int4", k * n).reshape(k, n)  # values travel as int8

        packed4 = pack_weights(unpack_int4())  # once, as a model loader does
        assert np.array_equal(ops.matmul_integer(a8, packed4), ops.matmul_integer(a8, b4))
        # int8 and int4 pre-packed timed in turn, so that the int4 / int8 ratio is not the machine's mood
        both = best_times({"int8": lambda: ops.matmul_integer(a8, packed), "int4": lambda: ops.matmul_integer(a8, packed4)})
        t, t4 = both["int8"], both["int4"]
        t4_call = best_time(lambda: ops.matmul_integer(a8, unpack_int4()))
        fastest = min(peers.values())
        shape = f"{m}x{k}x{n}"
        rows.append([f"int8 GEMM {shape}, B packed per call", f"{gops(count, t_unpacked):.0f}", "", "", "",
                     f"{fastest / t_unpacked:.2f}", f"{np_t / t_unpacked:.0f}"])  # fmt: skip
        rows.append([f"int8 GEMM {shape}", f"{gops(count, t):.0f}", f"{gops(count, t_serial):.0f}",
                     f"{gops(count, np_t):.2f}", " ".join(f"{p}={gops(count, v):.0f}" for p, v in peers.items()),
                     f"{fastest / t:.2f}", f"{np_t / t:.0f}"])  # fmt: skip
        rows.append([f"int4 GEMM {shape}", f"{gops(count, t4):.0f}", "", "", "", f"{fastest / t4:.2f}", f"{np_t / t4:.0f}"])
        rows.append([f"int4 GEMM {shape}, B unpacked per call", f"{gops(count, t4_call):.0f}", "", "", "",
                     f"{fastest / t4_call:.2f}", f"{np_t / t4_call:.0f}"])  # fmt: skip
    return rows


ORT = profiles.onnxruntime_cpu()  # uint8 x int8 products saturate in int16 pairs on x86 without VNNI


def conv_rows():
    rng = np.random.default_rng(1)
    rows = []
    cases = [("conv 1x64x56x56, 64x3x3 pad 1", (1, 64, 56, 56), (64, 64, 3, 3), 1),
             ("conv 1x256x14x14, 256x3x3 pad 1", (1, 256, 14, 14), (256, 256, 3, 3), 1),
             ("depthwise 1x128x56x56, 3x3 pad 1", (1, 128, 56, 56), (128, 1, 3, 3), 128)]  # fmt: skip
    for label, xs, ws, group in cases:
        x = rng.integers(0, 256, xs).astype(np.uint8)
        w = rng.integers(-128, 128, ws).astype(np.int8)
        bias = rng.integers(-1000, 1000, ws[0]).astype(np.int32)
        attrs = dict(group=group, pads=[1, 1, 1, 1])
        q_args = (x, np.float32(0.02), np.uint8(128), w, np.float32(0.01), np.int8(0), np.float32(0.5), np.uint8(120), bias)
        count = 2 * xs[0] * ws[0] * xs[2] * xs[3] * ws[1] * ws[2] * ws[3]
        qlinear = _session(
            [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"], **attrs)],
            [_vi("x", x)], [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
            [numpy_helper.from_array(np.asarray(v), n) for n, v in
             zip(["xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], q_args[1:], strict=True)],
        )  # fmt: skip
        conv_int = _session(
            [helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], **attrs)], [_vi("x", x)],
            [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.uint8(128), "xz")],
        )  # fmt: skip
        ours = ops.qlinear_conv(*q_args, profile=ORT, **attrs)
        assert np.array_equal(ours, qlinear.run(None, {"x": x})[0]), "QLinearConv disagrees"
        # constant weights packed once, as the onnxruntime session does at creation
        layer = ops.prepare_qlinear_conv(x.shape, x.dtype, *q_args[1:], profile=ORT, **attrs)
        assert np.array_equal(layer(x), ours)
        t_layer = best_time(lambda: layer(x))
        t = best_time(lambda: ops.qlinear_conv(*q_args, profile=ORT, **attrs))
        t_int = best_time(lambda: ops.conv_integer(x, w, np.uint8(128), **attrs))
        t_q = best_time(lambda: qlinear.run(None, {"x": x}))
        t_ci = best_time(lambda: conv_int.run(None, {"x": x}))
        rows.append([label, f"{gops(count, t_layer):.0f}", f"{gops(count, t):.0f}", f"{gops(count, t_int):.0f}",
                     f"{gops(count, t_q):.0f}", f"{gops(count, t_ci):.0f}", f"{t_q / t_layer:.2f}",
                     f"{t_ci / t_int:.2f}"])  # fmt: skip
    return rows


def layout_rows():
    """The transposes behind NCHW <-> NHWC (the depthwise layer's input and output) and behind
    packing B (4096 x 4096): intsim.kernels.layout against numpy's copy of the swapped view."""
    rng = np.random.default_rng(2)
    rows = []
    for shape in ((1, 128, 3136), (1, 3136, 128), (4096, 4096)):
        a = rng.integers(-128, 128, shape).astype(np.int8)
        assert np.array_equal(swap_last_two(a), np.swapaxes(a, -1, -2))
        # timed one after another, not interleaved: a parallel kernel called between serial work
        # stalls now and then for milliseconds on this machine (the worker threads' wake-up)
        t = {"intsim": best_time(lambda a=a: swap_last_two(a), repeat=20),
             "serial": best_time(lambda a=a: swap_last_two(a, backend="jit-serial")),
             "numpy": best_time(lambda a=a: np.ascontiguousarray(np.swapaxes(a, -1, -2)))}  # fmt: skip
        rows.append([f"int8 {'x'.join(map(str, shape))}", f"{t['intsim'] * 1e3:.3f}", f"{t['serial'] * 1e3:.3f}",
                     f"{t['numpy'] * 1e3:.3f}", f"{t['numpy'] / t['intsim']:.1f}x"])  # fmt: skip
    return rows


def run() -> str:
    threads = numba.get_num_threads()
    out = [f"integer GEMM (GOPS = 2*M*N*K / s), {threads} threads; torch: {'present' if torch else 'not installed'}"]
    out.append(table(["case", "intsim", "intsim serial", "numpy int32", "peers", "intsim / fastest peer",
                      "intsim / numpy"], gemm_rows()))  # fmt: skip
    out.append("")
    out.append(f"integer convolution (GOPS), requantized by the {ORT} profile (onnxruntime on this CPU), bit-exact to onnxruntime")
    out.append(table(["case", "intsim prepared QLinearConv", "intsim qlinear_conv (one call)", "intsim conv_integer",
                      "onnxruntime QLinearConv", "onnxruntime ConvInteger", "prepared / QLinearConv",
                      "conv_integer / ConvInteger"], conv_rows()))  # fmt: skip
    out.append("")
    out.append("swap the last two axes (ms, best of 10)")
    out.append(table(["case", "intsim", "intsim serial", "numpy", "numpy / intsim"], layout_rows()))
    return "\n".join(out)


if __name__ == "__main__":
    print(run())
