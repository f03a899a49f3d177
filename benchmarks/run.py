"""Run every benchmark and print its table: ``python benchmarks/run.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_calibration, bench_formats, bench_kernels, bench_onnx, bench_requant, bench_tflite  # noqa: E402

SUITES = {
    "formats": bench_formats.run,
    "requant": bench_requant.run,
    "kernels": bench_kernels.run,
    "calibration": bench_calibration.run,
    "tflite": bench_tflite.run,
    "onnx": bench_onnx.run,
}


def main(argv: list[str]) -> None:
    names = argv or list(SUITES)
    for name in names:
        print(SUITES[name]())
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
