"""The int16 sigmoid and tanh of LiteRT and TFLite Micro, two families:

* ``reference_integer_ops::Logistic`` / ``Tanh`` (``internal/reference/integer_ops/logistic.h``,
  ``tanh.h``): linear interpolation in ``sigmoid_table_uint16`` (``internal/common.h``: 256
  samples of sigmoid(i / 24) in Q0.16), with tanh(x) = 2 sigmoid(2x) - 1.  int16 LOGISTIC/TANH
  in both runtimes' reference kernels, and TFLite Micro's integer LSTM gates.
* gemmlowp ``logistic`` / ``tanh`` on ``FixedPoint<int16, n>`` (``fixedpoint.gemmlowp`` with
  ``bits=16``): LiteRT's integer LSTM (``PortableApplySigmoid`` / ``ApplyTanh``) and its
  optimized int16 LOGISTIC/TANH for power-of-two scales (``optimized_ops.h``).

Each function maps int16 to int16, so the jit backends evaluate all 65536 inputs once and look
results up; ``backend="reference"`` computes the C code's steps directly."""

from __future__ import annotations

import functools

import numpy as np

from intsim.fixedpoint import gemmlowp as g

SIGMOID_TABLE = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064,
    42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464,
    50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503,
    56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666,
    62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968,
    64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687,
    64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258, 65269, 65280, 65291,
    65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367, 65374, 65381, 65387, 65393, 65399, 65404,
    65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525, 65525,
    65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530,
    65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65535
], np.int64)  # fmt: skip


def _scaled(x, multiplier: int, left_shift: int) -> np.ndarray:
    """The input scaling both kernels share: ``(x * m + round) >> shift``, with ``m = 3 << shift``
    and no shift when ``multiplier`` is 0 (the power-of-two case)."""
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (np.asarray(x, np.int64) * multiplier + rounding) >> left_shift


def sigmoid_reference(x, multiplier: int = 0, left_shift: int = 0) -> np.ndarray:
    """``Logistic(input_multiplier, input_left_shift, ...)`` of int16 ``x``: int16 in Q0.15."""
    v = _scaled(x, multiplier, left_shift)
    a = np.abs(v)
    uh = a >> 9
    i = np.minimum(uh, 254)
    r = np.where(uh >= 255, 0x7FFF << 10, (SIGMOID_TABLE[i] << 9) + (a & 0x1FF) * (SIGMOID_TABLE[i + 1] - SIGMOID_TABLE[i]))
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) & 0xFFFFFFFF  # uint32
    return (((r >> 10) + 32768) & 0xFFFF) - 32768  # stored to int16


def tanh_reference(x, multiplier: int = 0, left_shift: int = 0) -> np.ndarray:
    """``Tanh(input_multiplier, input_left_shift, ...)`` of int16 ``x``: int16 in Q0.15."""
    v = _scaled(x, multiplier, left_shift)
    a = np.abs(v)
    uh = a >> 8
    i = np.minimum(uh, 254)
    r = np.where(uh >= 255, 0xFFFF << 8, (SIGMOID_TABLE[i] << 8) + (a & 0xFF) * (SIGMOID_TABLE[i + 1] - SIGMOID_TABLE[i]))
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)  # int32
    return (((r >> 8) + 32768) & 0xFFFF) - 32768


@functools.lru_cache(maxsize=32)
def _table(kind: str, multiplier: int, left_shift: int) -> np.ndarray:
    f = sigmoid_reference if kind == "sigmoid" else tanh_reference
    t = f(np.arange(-32768, 32768), multiplier, left_shift).astype(np.int16)
    t.flags.writeable = False
    return t


def sigmoid_int16(x, multiplier: int = 0, left_shift: int = 0, backend: str = "jit") -> np.ndarray:
    """``sigmoid_reference`` (``backend="reference"``) or the lookup of its 65536 values."""
    if backend == "reference":
        return sigmoid_reference(x, multiplier, left_shift).astype(np.int16)
    return _table("sigmoid", multiplier, left_shift)[np.asarray(x, np.int64) + 32768]


def tanh_int16(x, multiplier: int = 0, left_shift: int = 0, backend: str = "jit") -> np.ndarray:
    """``tanh_reference`` (``backend="reference"``) or the lookup of its 65536 values."""
    if backend == "reference":
        return tanh_reference(x, multiplier, left_shift).astype(np.int16)
    return _table("tanh", multiplier, left_shift)[np.asarray(x, np.int64) + 32768]


@functools.lru_cache(maxsize=16)
def _gemmlowp_table(kind: str, integer_bits: int) -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int64)
    t = (g.logistic if kind == "logistic" else g.tanh)(x, integer_bits, 16)
    t.flags.writeable = False
    return t


def gemmlowp16(kind: str, integer_bits: int, v, backend: str = "jit") -> np.ndarray:
    """gemmlowp ``logistic`` / ``tanh`` of int16 ``FixedPoint<int16, integer_bits>`` raw values
    (int64 results): computed (``backend="reference"``) or looked up in the 65536 results."""
    if backend == "reference":
        return (g.logistic if kind == "logistic" else g.tanh)(v, integer_bits, 16)
    return _gemmlowp_table(kind, integer_bits)[np.asarray(v, np.int64) + 32768]
