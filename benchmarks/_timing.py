"""Timing helpers shared by the benchmarks: best-of-N wall time, a plain table printer."""

from __future__ import annotations

import time


def best_time(fn, *, repeat: int = 10, warmup: int = 2) -> float:
    """Best wall time in seconds of ``fn()`` over ``repeat`` samples, after ``warmup`` calls.
    A sample times a loop of calls lasting at least ``MIN_SAMPLE`` seconds (one call for anything
    slower), so that microsecond calls are not measured at the timer's resolution."""
    return best_times({"fn": fn}, repeat=repeat, warmup=warmup)["fn"]


MIN_SAMPLE = 2e-4
MIN_WARMUP = 0.25  # seconds of calls of each callable before its samples


def best_times(fns: dict, *, repeat: int = 10, warmup: int = 2) -> dict:
    """``best_time`` of several callables measured in turn, sample by sample (interleaved, so a
    slow spell of the machine hits them alike); returns seconds per call by key."""
    for fn in fns.values():  # compile everything first: a compile leaves parallel kernels
        for _ in range(warmup):  # stalling for some 100 ms (8 ms calls of a 0.07 ms transpose)
            fn()
    loops = {}
    for key, fn in fns.items():
        start = time.perf_counter()
        while time.perf_counter() - start < MIN_WARMUP:
            fn()
        once = float("inf")
        for _ in range(3):  # the quickest of three calls: one call can stall on a thread's wake-up
            t0 = time.perf_counter()
            fn()
            once = min(once, time.perf_counter() - t0)
        loops[key] = max(1, int(MIN_SAMPLE / max(once, 1e-9)))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for key, fn in fns.items():
            n = loops[key]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[key] = min(best[key], (time.perf_counter() - t0) / n)
    return best


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells])
