"""Calibration: clipping scalars by OCTAV and its peers, and quantization parameters from them.

``octav`` (Sakr et al., ICML 2022) with ``clip_max``, ``clip_percentile``, ``clip_mse``,
``clip_entropy`` (TensorRT KL) and ``clip_aciq`` per tensor, channel, block or vector;
``calibrate(x, method=...)`` returns ``QuantParams``; ``HistogramObserver`` and
``OctavObserver`` stream over many batches; ``ste``/``pwl``/``mad`` are QAT gradient masks.
"""

from intsim.calibrate.api import (
    METHODS,
    HistogramObserver,
    OctavObserver,
    calibrate,
    clip_for,
    params_from_clip,
)
from intsim.calibrate.gradients import mad, pwl, ste
from intsim.calibrate.groups import QuantGrid, grid_for
from intsim.calibrate.methods import (
    aciq_alpha,
    clip_aciq,
    clip_entropy,
    clip_max,
    clip_mse,
    clip_percentile,
    entropy_threshold,
)
from intsim.calibrate.octav import OctavResult, octav

__all__ = [
    "METHODS", "HistogramObserver", "OctavObserver", "OctavResult", "QuantGrid", "aciq_alpha",
    "calibrate", "clip_aciq", "clip_entropy", "clip_for", "clip_max", "clip_mse", "clip_percentile",
    "entropy_threshold", "grid_for", "mad", "octav", "params_from_clip", "pwl", "ste",
]  # fmt: skip
