"""Quantization-error sweep: every calibration method on every tensor and bit width, as SQNR and
MSE with the time each method took; and the J(s) curve of the OCTAV paper's Figure 1."""

from __future__ import annotations

import math
import time

import numpy as np

from intsim.calibrate.api import METHODS, clip_for
from intsim.calibrate.groups import grid_for, make_groups
from intsim.calibrate.mse import empirical_mse, modelled_mse


def synthetic(n: int = 100_000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "gaussian": rng.standard_normal(n),
        "laplace": rng.laplace(size=n),
        "student_t3": rng.standard_t(3, n),
        "uniform": rng.uniform(-1, 1, n),
    }


def error_sweep(tensors: dict[str, np.ndarray], bits=range(2, 9), methods=METHODS) -> list[dict]:
    """One row per (tensor, bits, method): clip, MSE, SQNR (dB) on the signed grid, seconds."""
    rows = []
    for name, x in tensors.items():
        groups = make_groups(x)
        power = float(np.mean(np.asarray(x, np.float64) ** 2))
        for b in bits:
            grid = grid_for(f"int{b}")
            for method in methods:
                t0 = time.perf_counter()
                clip = float(clip_for(x, method, dtype=f"int{b}"))
                seconds = time.perf_counter() - t0
                mse = float(empirical_mse(groups.data, np.array([clip]), grid, groups.counts)[0])
                sqnr = 10 * math.log10(power / mse) if mse > 0 else math.inf
                rows.append(dict(tensor=name, bits=b, method=method, clip=clip, mse=mse, sqnr=sqnr, seconds=seconds))
    return rows


def markdown(rows: list[dict]) -> str:
    """SQNR (dB) per tensor and width, one column per method; best of each row in bold."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    keys = list(dict.fromkeys((r["tensor"], r["bits"]) for r in rows))
    by = {(r["tensor"], r["bits"], r["method"]): r for r in rows}
    lines = ["| tensor | bits | " + " | ".join(f"{m} SQNR dB" for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]  # fmt: skip
    for tensor, b in keys:
        cells = [by[(tensor, b, m)]["sqnr"] for m in methods]
        best = max(cells)
        text = [f"**{c:.2f}**" if c == best else f"{c:.2f}" for c in cells]
        lines.append(f"| {tensor} | {b} | " + " | ".join(text) + " |")
    times = {m: sum(r["seconds"] for r in rows if r["method"] == m) for m in methods}
    lines.append("")
    lines.append("total seconds per method: " + ", ".join(f"{m} {t:.3f}" for m, t in times.items()))
    return "\n".join(lines)


def plot_j_curve(x, bits: int, path, methods=METHODS) -> None:
    """J(s), modelled (OCTAV's additive-noise model) and empirical, with each method's clip."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # matplotlib is the optional extra "plot"
        raise RuntimeError("plotting needs matplotlib: pip install 'intsim[plot]'") from e
    groups = make_groups(x)
    grid = grid_for(f"int{bits}")
    smax = float(np.abs(groups.data).max())
    s = np.linspace(smax / 400, smax, 400)
    model = modelled_mse(groups.data, s[None, :], grid.constant("exact"), groups.counts)[0]
    emp = empirical_mse(groups.data, s[None, :], grid, groups.counts)[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(s, model, label="J(s) modelled")
    ax.plot(s, emp, label="J(s) empirical", alpha=0.8)
    for i, m in enumerate(methods):
        clip = float(clip_for(x, m, dtype=f"int{bits}"))
        ax.axvline(clip, ls="--", color=f"C{i + 2}", label=f"{m}: s = {clip:.3g}")
    ax.set(xlabel="clipping scalar s", ylabel="MSE", yscale="log", title=f"{bits}-bit quantization error")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
