"""A small CNN on scikit-learn's handwritten digits, trained reproducibly in numpy; its float
ONNX and TFLite files are what the quantization benchmark and tests start from.

``python benchmarks/digits.py`` retrains (seeded; about a minute on two cores) and rewrites
``tests/data/digits/digits_cnn.onnx`` and ``digits_cnn.tflite``.  The data,
``tests/data/digits/digits.csv.gz``, is scikit-learn's copy of the UCI test set (1,797 8x8
images, pixels 0..16, label last), copied unchanged from ``sklearn/datasets/data``.

Network (NCHW in ONNX, NHWC in TFLite), 4,058 parameters, a MobileNet block in miniature:

    x (1x8x8, pixels / 16) -> conv 3x3 (8, SAME) -> relu -> depthwise 3x3 (stride 2, SAME)
    -> relu -> pointwise 1x1 (16) -> relu -> flatten (256) -> fully connected (10) -> logits
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "digits"
ONNX_PATH, TFLITE_PATH = DATA / "digits_cnn.onnx", DATA / "digits_cnn.tflite"
SEED = 0


def load() -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 (N, 1, 8, 8) in [0, 1] and labels as int64."""
    with gzip.open(DATA / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return (table[:, :64] / 16).reshape(-1, 1, 8, 8), table[:, 64].astype(np.int64)


def split(n: int, test: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test indices: the last ``test`` of one permutation are the test set."""
    order = np.random.default_rng(SEED).permutation(n)
    return order[:-test], order[-test:]


# ---- the network in numpy: grouped convolution by im2col, forward and backward ---------------


def _patches(x, k, stride, pad):
    """(N, C, k*k, L) patches and the output size; ``pad`` = (before, after) on both axes."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), pad, pad))
    oh, ow = (h + sum(pad) - k) // stride + 1, (w + sum(pad) - k) // stride + 1
    cols = np.empty((n, c, k * k, oh * ow), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i * k + j] = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride].reshape(n, c, -1)
    return cols, oh, ow


def _unpatch(dcols, shape, k, stride, pad, oh, ow):
    n, c, h, w = shape
    dxp = np.zeros((n, c, h + sum(pad), w + sum(pad)), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += dcols[:, :, i * k + j].reshape(n, c, oh, ow)
    return dxp[:, :, pad[0] : pad[0] + h, pad[0] : pad[0] + w]


class Conv:
    """A grouped 2-D convolution (weights (Cout, Cin/groups, k, k), ONNX's layout) with bias."""

    def __init__(self, rng, cin, cout, k, stride=1, pad=(0, 0), groups=1):
        self.k, self.stride, self.pad, self.groups = k, stride, pad, groups
        fan_in = cin // groups * k * k
        self.w = (rng.normal(0, np.sqrt(2 / fan_in), (cout, cin // groups, k, k))).astype(np.float32)
        self.b = np.zeros(cout, np.float32)

    def forward(self, x):
        cols, oh, ow = _patches(x, self.k, self.stride, self.pad)
        n, c, kk, length = cols.shape
        g = self.groups
        self.cache = (x.shape, cols.reshape(n, g, c // g * kk, length), oh, ow)
        wg = self.w.reshape(g, -1, c // g * kk)
        y = np.einsum("gok,ngkl->ngol", wg, self.cache[1]).reshape(n, -1, oh, ow)
        return y + self.b[None, :, None, None]

    def backward(self, dy):
        shape, cols, oh, ow = self.cache
        n, g = dy.shape[0], self.groups
        dyg = dy.reshape(n, g, -1, oh * ow)
        self.dw = np.einsum("ngol,ngkl->gok", dyg, cols).reshape(self.w.shape)
        self.db = dy.sum(axis=(0, 2, 3))
        dcols = np.einsum("gok,ngol->ngkl", self.w.reshape(g, -1, cols.shape[2]), dyg)
        return _unpatch(dcols.reshape(n, shape[1], self.k * self.k, -1), shape, self.k, self.stride, self.pad, oh, ow)


class Net:
    def __init__(self, seed: int = SEED):
        rng = np.random.default_rng(seed)
        self.conv1 = Conv(rng, 1, 8, 3, pad=(1, 1))
        self.dw = Conv(rng, 8, 8, 3, stride=2, pad=(0, 1), groups=8)  # TFLite's SAME: the extra row and column after
        self.pw = Conv(rng, 8, 16, 1)
        self.fc_w = (rng.normal(0, np.sqrt(1 / 256), (10, 256))).astype(np.float32)
        self.fc_b = np.zeros(10, np.float32)

    def params(self):
        return [self.conv1.w, self.conv1.b, self.dw.w, self.dw.b, self.pw.w, self.pw.b, self.fc_w, self.fc_b]

    def forward(self, x):
        self.h1 = np.maximum(self.conv1.forward(x), 0)
        self.h2 = np.maximum(self.dw.forward(self.h1), 0)
        self.h3 = np.maximum(self.pw.forward(self.h2), 0)
        self.flat = self.h3.reshape(x.shape[0], -1)
        return self.flat @ self.fc_w.T + self.fc_b

    def backward(self, dlogits):
        dfc_w, dfc_b = dlogits.T @ self.flat, dlogits.sum(0)
        d = (dlogits @ self.fc_w).reshape(self.h3.shape) * (self.h3 > 0)
        d = self.pw.backward(d) * (self.h2 > 0)
        d = self.dw.backward(d) * (self.h1 > 0)
        self.conv1.backward(d)
        return [self.conv1.dw, self.conv1.db, self.dw.dw, self.dw.db, self.pw.dw, self.pw.db, dfc_w, dfc_b]


def train(epochs: int = 60, batch: int = 32, lr: float = 3e-3, log=print) -> Net:
    """Adam on cross-entropy over the training split, seeded: the same weights every run."""
    x, y = load()
    train_idx, test_idx = split(len(y))
    net, rng = Net(), np.random.default_rng(SEED + 1)
    params = net.params()
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(train_idx)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits = net.forward(x[idx])
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            grads = net.backward((p / len(idx)).astype(np.float32))
            step += 1
            for i, (param, g) in enumerate(zip(params, grads, strict=True)):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mhat, vhat = m[i] / (1 - 0.9**step), v[i] / (1 - 0.999**step)
                param -= (lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)
        if (epoch + 1) % 10 == 0:
            acc = float(np.mean(net.forward(x[test_idx]).argmax(1) == y[test_idx]))
            log(f"epoch {epoch + 1}: test accuracy {acc:.4f}")
    return net


# ---- export -------------------------------------------------------------------------------------


def to_onnx(net: Net):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in zip(
        ("conv1_w", "conv1_b", "dw_w", "dw_b", "pw_w", "pw_b", "fc_w", "fc_b"), net.params(), strict=True)]  # fmt: skip
    mk = helper.make_node
    nodes = [
        mk("Conv", ["image", "conv1_w", "conv1_b"], ["conv1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        mk("Relu", ["conv1"], ["relu1"], name="relu1"),
        mk("Conv", ["relu1", "dw_w", "dw_b"], ["dw"], name="depthwise", kernel_shape=[3, 3], pads=[0, 0, 1, 1],
           strides=[2, 2], group=8),
        mk("Relu", ["dw"], ["relu2"], name="relu2"),
        mk("Conv", ["relu2", "pw_w", "pw_b"], ["pw"], name="pointwise", kernel_shape=[1, 1]),
        mk("Relu", ["pw"], ["relu3"], name="relu3"),
        mk("Flatten", ["relu3"], ["flat"], name="flatten"),
        mk("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]  # fmt: skip
    graph = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="intsim benchmarks/digits.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def to_tflite(net: Net) -> bytes:
    """The same network as a float32 TFLite model (NHWC, batch 1), written with intsim's builder."""
    from intsim.tflite.builder import OpSpec, TensorSpec, build

    def f32(name, shape, data=None):
        return TensorSpec(name, tuple(shape), "FLOAT32", None if data is None else np.ascontiguousarray(data, np.float32))

    # the FC reads the NHWC flattening (h, w, c); ONNX's Flatten reads (c, h, w)
    fc_w = net.fc_w.reshape(10, 16, 4, 4).transpose(0, 2, 3, 1).reshape(10, 256)
    tensors = [
        f32("image", (1, 8, 8, 1)),
        f32("conv1_w", (8, 3, 3, 1), net.conv1.w.transpose(0, 2, 3, 1)), f32("conv1_b", (8,), net.conv1.b),
        f32("relu1", (1, 8, 8, 8)),
        f32("dw_w", (1, 3, 3, 8), net.dw.w.transpose(1, 2, 3, 0)), f32("dw_b", (8,), net.dw.b),
        f32("relu2", (1, 4, 4, 8)),
        f32("pw_w", (16, 1, 1, 8), net.pw.w.transpose(0, 2, 3, 1)), f32("pw_b", (16,), net.pw.b),
        f32("relu3", (1, 4, 4, 16)),
        TensorSpec("flat_shape", (2,), "INT32", np.array([1, 256], np.int32)), f32("flat", (1, 256)),
        f32("fc_w", (10, 256), fc_w), f32("fc_b", (10,), net.fc_b),
        f32("logits", (1, 10)),
    ]  # fmt: skip
    same, relu = 0, 1  # Padding SAME, ActivationFunctionType RELU
    ops = [
        OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": same, "stride_h": 1, "stride_w": 1, "fused_activation_function": relu}),
        OpSpec("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {"padding": same, "stride_h": 2, "stride_w": 2, "depth_multiplier": 1,
                                                    "fused_activation_function": relu}),
        OpSpec("CONV_2D", [6, 7, 8], [9], {"padding": same, "stride_h": 1, "stride_w": 1, "fused_activation_function": relu}),
        OpSpec("RESHAPE", [9, 10], [11], {}),
        OpSpec("FULLY_CONNECTED", [11, 12, 13], [14], {}),
    ]  # fmt: skip
    return build(tensors, ops, inputs=[0], outputs=[14])


def main() -> None:
    import onnx

    net = train()
    onnx.save(to_onnx(net), ONNX_PATH)
    TFLITE_PATH.write_bytes(to_tflite(net))
    print(f"wrote {ONNX_PATH} and {TFLITE_PATH}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
