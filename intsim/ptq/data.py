"""Calibration data: checked against the model's inputs and handed out batch by batch.

``calibration_data`` is any of

* a path to a ``.npz`` file (arrays by input name; a one-input model takes its only array) or a
  ``.npy`` file (a one-input model);
* an array (a one-input model) or a dict of arrays by input name; axis 0 holds the samples, each
  shaped as the model's input without its batch axis;
* an iterable of such dicts, each one batch, that can be iterated again (a list), or a function
  returning a fresh iterator of them each time it is called (a generator function streams data
  that never fits in memory): the quantizers read the data twice, ranges first, then clips (and
  the ONNX one its first batch once more, for onnxruntime's quantizer).

Every batch is checked: a missing or unknown input, a non-float dtype, a sample shape that
differs from the model's, NaN or inf, and an empty data set each raise ``ValueError`` naming the
input.  Batches hold at most ``batch_size`` samples; a model whose batch axis is fixed to ``n``
takes exactly ``n`` per batch, and the last ``len % n`` samples of each array are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple  # the model's input shape; None (or a name) for a free axis


def _load_file(path: Path, specs: list[InputSpec]) -> dict:
    if not path.exists():
        raise ValueError(f"calibration data: no such file {str(path)!r}")
    if path.suffix == ".npy":
        if len(specs) != 1:
            raise ValueError(f"calibration data: {path.name} holds one array but the model has "
                             f"{len(specs)} inputs; give an .npz with arrays named "
                             f"{', '.join(s.name for s in specs)}")  # fmt: skip
        return {specs[0].name: np.load(path, allow_pickle=False)}
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"calibration data: {path.name} is not a readable .npz file ({e})") from None
    if len(specs) == 1 and len(arrays) == 1:
        return {specs[0].name: next(iter(arrays.values()))}
    return arrays


def _check(batch: dict, specs: list[InputSpec], where: str) -> dict:
    names = {s.name for s in specs}
    unknown = sorted(set(batch) - names)
    if unknown:
        raise ValueError(f"calibration data{where}: no model input named {unknown[0]!r} "
                         f"(the inputs are {', '.join(sorted(names))})")  # fmt: skip
    out = {}
    for spec in specs:
        if spec.name not in batch:
            raise ValueError(f"calibration data{where}: input {spec.name!r} is missing")
        a = np.asarray(batch[spec.name])
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"calibration data{where}: input {spec.name!r} has dtype {a.dtype}; "
                             "the float model takes float32 values")  # fmt: skip
        want = tuple(d if isinstance(d, int) and d > 0 else None for d in spec.shape[1:])
        got = a.shape[1:]
        if a.ndim != len(spec.shape) or any(w is not None and w != g for w, g in zip(want, got, strict=True)):
            shown = "x".join("?" if d is None else str(d) for d in want)
            raise ValueError(f"calibration data{where}: input {spec.name!r} has shape {a.shape}; "
                             f"expected (samples, {shown.replace('x', ', ')})")  # fmt: skip
        if not np.all(np.isfinite(a)):
            raise ValueError(f"calibration data{where}: input {spec.name!r} holds NaN or inf")
        out[spec.name] = a.astype(np.float32, copy=False)
    sizes = {v.shape[0] for v in out.values()}
    if len(sizes) > 1:
        raise ValueError(f"calibration data{where}: the inputs hold different sample counts {sorted(sizes)}")
    return out


def batches(specs: list[InputSpec], data, batch_size: int = 256) -> Iterator[dict]:
    """Checked float32 batches of ``data`` for a model with inputs ``specs`` (module docstring)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    fixed = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int) and s.shape[0] > 0}
    if len(fixed) > 1:
        raise ValueError(f"the model's inputs fix different batch sizes {sorted(fixed)}")
    step = next(iter(fixed)) if fixed else batch_size
    whole = step if fixed else 1  # a fixed batch axis takes whole batches only
    if isinstance(data, (str, Path)):
        data = _load_file(Path(data), specs)
    if isinstance(data, np.ndarray):
        if len(specs) != 1:
            raise ValueError(f"calibration data: one array given but the model has {len(specs)} inputs "
                             f"({', '.join(s.name for s in specs)}); give a dict by input name")  # fmt: skip
        data = {specs[0].name: data}
    if callable(data):
        data = data()
    elif not isinstance(data, dict) and iter(data) is data:
        raise ValueError("calibration data is a one-shot iterator, but it is read twice (ranges, then clips): "
                         "pass a list, or a function returning a new iterator")  # fmt: skip
    chunks: Iterable[dict] = [data] if isinstance(data, dict) else data
    seen = 0
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise ValueError(f"calibration data: batch {i} is a {type(chunk).__name__}, not a dict of arrays by input name")
        chunk = _check(chunk, specs, "" if isinstance(data, dict) else f" (batch {i})")
        n = next(iter(chunk.values())).shape[0]
        for start in range(0, n - n % whole, step):
            seen += 1
            yield {k: v[start : start + step] for k, v in chunk.items()}
    if not seen:
        raise ValueError("calibration data holds no sample" + (f" (the model's batch axis is fixed to {step})"
                                                                 if whole > 1 else ""))  # fmt: skip

