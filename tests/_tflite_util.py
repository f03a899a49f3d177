"""Single-op TFLite models (written with ``intsim.tflite.builder``) and the LiteRT reference
interpreter (``OpResolverType.BUILTIN_REF``) as the peer."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from intsim.tflite.builder import OpSpec, TensorSpec, build

T = TensorSpec


def single_op(op: str, inputs: list, outputs: list, options: dict | None = None, version: int = 1) -> bytes:
    """A model of one operator; tensors without data (and not variables) are the graph inputs
    (``None`` = omitted)."""
    tensors = [t for t in inputs if t is not None] + list(outputs)
    index = {id(t): i for i, t in enumerate(tensors)}
    ins = [index[id(t)] if t is not None else -1 for t in inputs]
    graph_inputs = [index[id(t)] for t in inputs if t is not None and t.data is None and not t.variable]
    outs = [index[id(t)] for t in outputs]
    return build(tensors, [OpSpec(op, ins, outs, options or {}, version)], graph_inputs, outs)


# each LiteRT mode and the intsim profile that models it
MODES = {
    "tflite-reference": OpResolverType.BUILTIN_REF,
    "litert-builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "litert": OpResolverType.AUTO,  # the default Interpreter(): XNNPACK where its delegate takes the node
}


def reference(model: bytes, inputs: list) -> list[np.ndarray]:
    """Outputs of the LiteRT reference kernels."""
    return interpret(model, inputs, "tflite-reference")


def micro(model: bytes, preserve: bool = False):
    """The TFLite Micro runtime (the ``tflite-micro`` package), ``preserve`` keeping every tensor."""
    from tflite_micro import runtime

    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    return runtime.Interpreter.from_bytes(model, arena_size=16 << 20, intrepreter_config=config)  # the models' tensors fit


def micro_tensor(ip, model, index: int) -> np.ndarray:
    """Tensor ``index`` of a preserving TFLite Micro interpreter (``GetTensor`` past the last
    tensor crashes the process: the index is checked first)."""
    if not 0 <= index < len(model.tensors):
        raise IndexError(f"tensor {index} of {len(model.tensors)}")
    return ip.GetTensor(index, 0)["tensor_data"]


def interpret(model: bytes, inputs: list, profile: str) -> list[np.ndarray]:
    """Outputs of LiteRT in the mode ``profile`` models (``MODES``), or of the TFLite Micro
    runtime for ``"tflm"``."""
    if profile == "tflm":
        ip = micro(model)
        for k, x in enumerate(inputs):
            ip.set_input(x, k)
        ip.invoke()
        return [ip.get_output(k).copy() for k in range(len(_outputs(model)))]
    ip = Interpreter(model_content=model, experimental_op_resolver_type=MODES[profile])
    ip.allocate_tensors()
    for d, x in zip(ip.get_input_details(), inputs, strict=True):
        ip.set_tensor(d["index"], x)
    ip.invoke()
    return [ip.get_tensor(d["index"]).copy() for d in ip.get_output_details()]


def random_int(rng, shape, dtype):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64)
    # edge-heavy: a few extremes in every tensor
    flat = x.reshape(-1)
    if flat.size >= 4:
        flat[:2] = info.min, info.max
    return x.astype(dtype)


# the whole models every LiteRT mode is checked against, layer by layer
MODELS = ("hello_world_int8", "micro_speech_quantized", "keyword_scrambled", "micro_speech_lstm", "mnist_lstm_int8",
          "dtln_noise_suppression", "example_cnn", "example_mobilenet", "example_mobile_block")  # fmt: skip
# models only TFLite Micro runs: LiteRT 2.3 corrupts its heap on int8 SVDF state, and refuses
# person_detect's bias quantized along axis 3 of a 1-D tensor
TFLM_MODELS = (*MODELS, "keyword_scrambled_8bit", "person_detect")


def model_bytes(name: str, models_dir) -> bytes:
    """One of ``MODELS``: a shared model from tests/data/models/tflite, or a builder network."""
    from intsim.tflite.builder import example_cnn, example_mobile_block, example_mobilenet

    examples = {"example_cnn": lambda: example_cnn(seed=7), "example_mobilenet": lambda: example_mobilenet(seed=3, size=32),
                "example_mobile_block": lambda: example_mobile_block(seed=1)}  # fmt: skip
    return examples[name]() if name in examples else (models_dir / "tflite" / f"{name}.tflite").read_bytes()


def assert_every_layer(data: bytes, profile: str, seed: int, draws: int = 4) -> None:
    """Every operator's output under ``profile`` equals LiteRT's in the mode it models (or the
    TFLite Micro runtime's for ``"tflm"``), on random inputs (intermediates read with
    ``experimental_preserve_all_tensors`` / ``kPreserveAllTensors``).  A model with state
    (variable tensors) runs 3x the draws as consecutive calls, its state compared after each."""
    import warnings

    import intsim.tflite as itf

    m = itf.load(data)
    if profile == "tflm":
        ip = micro(data, preserve=True)
        run, read = (lambda x: (ip.set_input(x, 0), ip.invoke())), (lambda t: micro_tensor(ip, m, t.index))
    else:
        with warnings.catch_warnings():  # LiteRT warns that the option is for debugging
            warnings.simplefilter("ignore")
            ip = Interpreter(model_content=data, experimental_op_resolver_type=MODES[profile],
                             experimental_preserve_all_tensors=True)  # fmt: skip
        ip.allocate_tensors()
        run = lambda x: (ip.set_tensor(ip.get_input_details()[0]["index"], x), ip.invoke())  # noqa: E731
        read = lambda t: ip.get_tensor(t.index)  # noqa: E731
    rng = np.random.default_rng(seed)
    variables = [t for t in m.tensors if t.is_variable]
    for step in range(draws * 3 if variables else draws):
        x = random_int(rng, m.input_details()[0].shape, m.input_details()[0].dtype)
        run(x)
        _, tensors = itf.run(m, x, profile=profile, return_intermediates=True)
        for t in [m.tensors[k] for op in m.operators for k in op.outputs] + variables:
            np.testing.assert_array_equal(tensors[t.name], read(t).reshape(t.shape), err_msg=f"{profile}: step {step}, {t.describe()}")


def _outputs(model: bytes) -> list:
    import intsim.tflite as itf

    return itf.parse(model).outputs
