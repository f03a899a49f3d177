"""Gradient masks of the clipped quantizer for quantization-aware training (plain numpy).

The clipped input is ``clip(x) = sign(x) * min(|x|, s)``, written ``a(x) * x`` with
``a(x) = 1`` for ``|x| <= s`` and ``s / |x|`` otherwise.  Each function returns the factor that
multiplies the upstream gradient ``dL/dq`` to give ``dL/dx``:

``ste(x, s)``  straight-through estimator: ``1`` everywhere
``pwl(x, s)``  piecewise-linear (the true derivative of ``clip``): ``1`` if ``|x| <= s`` else ``0``
               (OCTAV's recommendation for activations)
``mad(x, s)``  magnitude-aware differentiation (Sakr et al. 2022): ``a(x) = 1`` if ``|x| <= s``
               else ``s / |x|`` (for weights: clipped weights keep a gradient that shrinks with
               their magnitude)
"""

from __future__ import annotations

import numpy as np


def _check(x, s):
    x = np.asarray(x, np.float64)
    s = np.asarray(s, np.float64)
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("the clipping scalar s must be finite and positive")
    return x, s


def ste(x, s) -> np.ndarray:
    x, s = _check(x, s)
    return np.ones(np.broadcast_shapes(x.shape, s.shape))


def pwl(x, s) -> np.ndarray:
    x, s = _check(x, s)
    return (np.abs(x) <= s).astype(np.float64)


def mad(x, s) -> np.ndarray:
    x, s = _check(x, s)
    ax = np.abs(x)
    with np.errstate(divide="ignore"):
        return np.where(ax <= s, 1.0, s / np.where(ax > 0, ax, 1.0))
