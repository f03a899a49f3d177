"""Seeded, bounded fuzzing: corrupted .tflite and .onnx files never crash or hang intsim, and
each gives a clear ModelError or the result the peer (LiteRT BUILTIN_REF, onnxruntime) gives.

The cases run in a worker process (``_fuzz_worker.py``), intsim first and then the peer, so that
a crash is attributed: a worker dying after a case's intsim line died in the peer's C++."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CASES = 150
TIMEOUT = 240  # seconds for all cases of one kind; one case takes milliseconds


def _run(kind: str, seed: int) -> tuple[dict, list[int]]:
    """Outcome per case (``"intsim error"``, ``"ok"``, ``"peer error"``, ``"peer crash"``,
    ``"peer cannot decode a name"``, ``"differs"``) and the cases where the worker died inside
    intsim."""
    outcome, intsim_crashes, start = {}, [], 0
    while start < CASES:
        proc = subprocess.run([sys.executable, str(HERE / "_fuzz_worker.py"), kind, str(seed), str(CASES), str(start)],
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=HERE)  # fmt: skip
        last = start - 1
        for line in proc.stdout.splitlines():
            i, who, what, detail = (line.split(" ", 3) + [""])[:4]
            i = int(i)
            last = i
            outcome[i] = {("intsim", "error"): "intsim error", ("intsim", "ok"): "running", ("peer", "ok"): "ok",
                          ("peer", "error"): "peer error", ("peer", "differs"): "differs"}[(who, what)]  # fmt: skip
            if outcome[i] == "peer error" and detail == "UnicodeDecodeError":
                outcome[i] = "peer cannot decode a name"
        if proc.returncode == 0:
            break
        if outcome.get(last) == "running":  # died in the peer, after intsim ran the case
            outcome[last] = "peer crash"
        else:  # died in intsim on the next case
            intsim_crashes.append(last + 1)
            outcome[last + 1] = "intsim crash"
        start = max(outcome) + 1
    return outcome, intsim_crashes


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_corrupted_models_give_a_clear_error_or_the_peers_result(kind):
    outcome, crashes = _run(kind, seed=16)
    counts = Counter(outcome.values())
    assert not crashes, f"intsim crashed on cases {crashes}"
    assert len(outcome) == CASES and "running" not in counts, counts
    assert counts["differs"] == 0, (counts, [i for i, o in outcome.items() if o == "differs"])
    # intsim runs nothing the peer refuses (it verifies flatbuffers as LiteRT does); the one
    # allowance: LiteRT's Python binding cannot decode a tensor name that is not UTF-8, which
    # its C++ loads and intsim reads with replacement characters
    assert counts["peer error"] == counts["peer crash"] == 0, (counts, outcome)
    assert counts["intsim error"] > CASES // 4 and counts["ok"] > 0, counts  # the corruptions bite
