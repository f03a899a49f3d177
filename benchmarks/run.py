"""Run every benchmark and print its table: ``python benchmarks/run.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (  # noqa: E402
    bench_calibration, bench_contention, bench_formats, bench_kernels, bench_onnx, bench_overhead, bench_quantization,
    bench_requant, bench_tflite,
)  # fmt: skip

SUITES = {
    "formats": bench_formats.run,
    "requant": bench_requant.run,
    "kernels": bench_kernels.run,
    "calibration": bench_calibration.run,
    "tflite": bench_tflite.run,
    "litert-modes": bench_tflite.run_modes,
    "streaming": bench_tflite.run_streaming,
    "onnx": bench_onnx.run,
    "contention": bench_contention.run,
    "overhead": bench_overhead.run,
    "quantization": bench_quantization.run,
}


def main(argv: list[str]) -> None:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise SystemExit(f"run.py: unknown suite {unknown[0]!r}; suites: {', '.join(SUITES)}")
    for name in names:
        print(SUITES[name]())
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
