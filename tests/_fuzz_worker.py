"""Worker of ``test_fuzz_models``: runs corrupted models through intsim and then the peer, in a
process of its own (a corrupted model may crash the peer's C++).

``python _fuzz_worker.py KIND SEED COUNT START`` writes one line per case:
``<i> intsim <ok|error> <message>`` before the peer runs, then ``<i> peer <ok|error|differs>``.
A process that dies after a case's ``intsim`` line died in the peer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TFLITE = HERE / "data" / "models" / "tflite" / "hello_world_int8.tflite"


def corruptions(data: bytes, seed: int, count: int):
    """``count`` seeded corruptions of ``data``: byte flips, random bytes, truncations, splices."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        b = bytearray(data)
        kind = rng.integers(4)
        if kind == 0:  # flip bits in a few bytes
            for i in rng.integers(0, len(b), rng.integers(1, 5)):
                b[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # overwrite a few bytes with extremes
            for i in rng.integers(0, len(b), rng.integers(1, 4)):
                b[i] = int(rng.choice([0, 0x7F, 0x80, 0xFF]))
        elif kind == 2:  # truncate
            b = b[: int(rng.integers(0, len(b)))]
        else:  # duplicate a slice somewhere else
            i, j = sorted(int(v) for v in rng.integers(0, len(b), 2))
            k = int(rng.integers(0, len(b)))
            b[k:k] = b[i:j][:64]
        yield bytes(b)


def _tflite_case(data: bytes):
    import intsim.tflite as itf

    model = itf.load(data)
    xs = model.random_inputs(np.random.default_rng(0))
    return xs, itf.run(model, xs, profile="tflite-reference", whole_model=False)


def _tflite_peer(data: bytes, xs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    ip = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ip.allocate_tensors()
    for d, x in zip(ip.get_input_details(), xs, strict=True):
        ip.set_tensor(d["index"], x)
    ip.invoke()
    return [ip.get_tensor(d["index"]) for d in ip.get_output_details()]


def _onnx_model() -> bytes:
    from intsim.onnx import examples

    return examples.quantize(examples.mlp(features=16, hidden=8, classes=4, batch=1), fmt="qoperator").SerializeToString()


def _onnx_case(data: bytes):
    from intsim import profiles
    from intsim.onnx import load, run

    graph = load(data)
    rng = np.random.default_rng(0)
    feeds = {v.name: rng.normal(size=[d or 1 for d in v.shape]).astype(v.dtype) for v in graph.inputs}
    result = run(graph, feeds, profile=profiles.onnxruntime_cpu())
    return feeds, [result[v.name] for v in graph.outputs]


def _onnx_peer(data: bytes, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def main(kind: str, seed: int, count: int, start: int) -> None:
    from intsim.onnx import ModelError as OnnxModelError
    from intsim.tflite import ModelError as TfliteModelError

    if kind == "tflite":
        base, case, peer = TFLITE.read_bytes(), _tflite_case, _tflite_peer
    else:
        base, case, peer = _onnx_model(), _onnx_case, _onnx_peer
    for i, data in enumerate(corruptions(base, seed, count)):
        if i < start:
            continue
        try:
            inputs, got = case(data)
        except (TfliteModelError, OnnxModelError) as e:
            print(f"{i} intsim error {str(e)[:120]!r}", flush=True)
            continue
        print(f"{i} intsim ok", flush=True)
        try:
            want = peer(data, inputs)
        except Exception as e:  # the peer refuses what intsim ran: reported, judged by the test
            print(f"{i} peer error {type(e).__name__}", flush=True)
            continue
        same = len(got) == len(want) and all(
            np.asarray(g).dtype == np.asarray(w).dtype and np.array_equal(g, w, equal_nan=True)
            for g, w in zip(got, want, strict=True))  # fmt: skip
        print(f"{i} peer {'ok' if same else 'differs'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
