"""Several intsim processes at once on this machine: how much slower each runs than alone.

A worker process loads a 31-operator int8 MobileNet (``intsim.tflite.builder.example_mobilenet``,
shaped like TFLite Micro's person detector), warms up, then runs it for ``SECONDS`` and reports
its median time per inference.  The suite runs one worker alone, then ``PROCESSES`` workers at
once, and prints each one's slowdown against the solo median.  With ``P`` processes on ``C``
cores a fair share of the machine makes each one ``P / min(P, C) * (threads it used alone)``
slower at most: 3 processes on 2 cores, 3x; the bar is 1.5 times that, 4.5x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 6.0
PROCESSES = 3
BAR = 1.5


def worker(seconds: float) -> dict:
    """Run the model for ``seconds`` after a warm-up; the median and worst time per inference."""
    import numpy as np

    import intsim.tflite as itf
    from intsim.tflite.builder import example_mobilenet

    model = itf.load(example_mobilenet())
    x = model.random_inputs(np.random.default_rng(0))
    for _ in range(5):
        itf.run(model, x)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        itf.run(model, x)
        times.append(time.perf_counter() - t0)
    import numba

    return {"median_ms": statistics.median(times) * 1e3, "worst_ms": max(times) * 1e3, "runs": len(times),
            "layer": numba.threading_layer()}  # fmt: skip


def _spawn(n: int, seconds: float) -> list[dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(seconds)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def run(seconds: float = SECONDS, processes: int = PROCESSES) -> str:
    from benchmarks._timing import table

    cores = os.cpu_count() or 1
    (solo,) = _spawn(1, seconds)
    together = _spawn(processes, seconds)
    fair = processes / min(processes, cores) * min(cores, _threads())
    rows = [["alone", f"{solo['median_ms']:.2f}", f"{solo['worst_ms']:.1f}", "1.00x", ""]]
    for i, r in enumerate(together):
        ratio = r["median_ms"] / solo["median_ms"]
        rows.append([f"{processes} at once, #{i + 1}", f"{r['median_ms']:.2f}", f"{r['worst_ms']:.1f}",
                     f"{ratio:.2f}x", "yes" if ratio <= BAR * fair else "NO"])  # fmt: skip
    head = (f"Contention: a 31-operator int8 MobileNet (person-detector shape), {processes} processes at once "
            f"on {cores} cores, numba threading layer {solo['layer']}; fair share {fair:.1f}x, bar {BAR * fair:.1f}x")  # fmt: skip
    return head + "\n\n" + table(["run", "median ms", "worst ms", "vs alone", "within bar"], rows)


def _threads() -> int:
    import numba

    return numba.config.NUMBA_NUM_THREADS


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(float(sys.argv[2]))))
    else:
        print(run())
