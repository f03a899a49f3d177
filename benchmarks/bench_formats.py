"""Encode/decode throughput for 10**7 float32 values, against ml_dtypes' astype in the same run.

Run: ``python -m benchmarks.bench_formats`` (or ``python benchmarks/run.py``).
"""

from __future__ import annotations

import ml_dtypes
import numba
import numpy as np

from benchmarks._timing import best_time, table
from intsim import formats as F

N = 10**7


def run(n: int = N) -> str:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 8).astype(np.float32)
    rows = []
    for name, ml_type in (("float8_e4m3fn", ml_dtypes.float8_e4m3fn), ("bfloat16", ml_dtypes.bfloat16)):
        codes = F.encode(x, name)
        assert np.array_equal(codes, x.astype(ml_type).view(codes.dtype)), "encode disagrees"
        ml_vals = x.astype(ml_type)
        t_enc = best_time(lambda: F.encode(x, name))
        t_enc1 = best_time(lambda: F.encode(x, name, backend="jit-serial"))
        t_ml_enc = best_time(lambda: x.astype(ml_type))
        t_dec = best_time(lambda: F.decode(codes, name))
        t_dec1 = best_time(lambda: F.decode(codes, name, backend="jit-serial"))
        t_ml_dec = best_time(lambda: ml_vals.astype(np.float32))
        for op, t, t1, tm in (("encode", t_enc, t_enc1, t_ml_enc), ("decode", t_dec, t_dec1, t_ml_dec)):
            rows.append([
                f"{op} {name}", f"{n / t / 1e6:.0f}", f"{n / t1 / 1e6:.0f}", f"{n / tm / 1e6:.0f}",
                f"{tm / t:.2f}",
            ])  # fmt: skip
    head = f"formats: {n:.0e} float32 values, {numba.get_num_threads()} threads"
    return head + "\n" + table(
        ["op", "intsim Melem/s", "intsim serial Melem/s", "ml_dtypes Melem/s", "ratio vs ml_dtypes"],
        rows,
    )


if __name__ == "__main__":
    print(run())
