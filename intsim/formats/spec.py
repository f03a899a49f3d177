"""Format definitions: one generic minifloat and one generic integer, plus the named registry.

A minifloat is fully described by its layout (sign bit or not, exponent bits, mantissa bits,
bias), whether exponent field 0 holds subnormals, and its special-value policy:

``specials="ieee"``  top exponent field reserved: mantissa 0 is +-inf, any other mantissa NaN
                      (float32, float16, bfloat16, float8_e5m2, float8_e4m3, float8_e3m4)
``specials="fn"``    finite only; the all-ones magnitude is NaN (float8_e4m3fn, E8M0)
``specials="fnuz"``  finite only; the negative-zero code (sign bit alone) is the single NaN and
                      there is no -0 (float8_e4m3fnuz, float8_e5m2fnuz, float8_e4m3b11fnuz)
``specials="none"``  every code is a finite number (float6_e2m3fn, float6_e3m2fn, float4_e2m1fn)

Parameters and names follow ml_dtypes and the OCP 8-bit / MX specifications
(``shared/reference/formats.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

SPECIALS = ("ieee", "fn", "fnuz", "none")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with ``exp_bits`` exponent and ``man_bits`` mantissa bits.

    Codes are unsigned integers of ``bits`` bits: sign (if ``signed``), exponent field, mantissa
    field, most significant first.  A magnitude code ``c`` (the code without its sign bit) with
    exponent field ``E = c >> man_bits`` and mantissa ``M`` has the value
    ``M * 2**(1 - bias - man_bits)`` when ``E == 0`` and the format has subnormals, and
    ``(2**man_bits + M) * 2**(E - bias - man_bits)`` otherwise.
    """

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    specials: str = "ieee"
    signed: bool = True
    subnormals: bool = True

    kind = "float"

    def __post_init__(self):
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {SPECIALS}, got {self.specials!r}")
        if self.exp_bits < 1 or self.man_bits < 0 or self.bits > 32:
            raise ValueError(
                f"{self.name}: need exp_bits >= 1, man_bits >= 0 and at most 32 bits in all"
            )
        if self.specials == "ieee" and self.man_bits == 0:
            raise ValueError(f"{self.name}: IEEE specials need a mantissa bit to tell NaN from inf")
        if self.specials == "fnuz" and not self.signed:
            raise ValueError(f"{self.name}: fnuz puts NaN on the sign bit, so it must be signed")
        if not self.signed and self.specials != "fn":
            raise ValueError(f"{self.name}: an unsigned float needs a NaN code for negative inputs")

    # ---- layout -------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def mag_bits(self) -> int:
        return self.exp_bits + self.man_bits

    @property
    def sign_bit(self) -> int:
        """The sign bit as a code mask (0 for unsigned formats)."""
        return (1 << self.mag_bits) if self.signed else 0

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number."""
        return 1 - self.bias if self.subnormals else -self.bias

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.specials != "none"

    @property
    def has_zero(self) -> bool:
        return self.subnormals

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.subnormals and self.specials != "fnuz"

    # ---- special codes ------------------------------------------------------------------------
    @property
    def max_mag_code(self) -> int:
        """Magnitude code of the largest finite value."""
        all_ones = (1 << self.mag_bits) - 1
        if self.specials == "ieee":
            return (((1 << self.exp_bits) - 1) << self.man_bits) - 1
        if self.specials == "fn":
            return all_ones - 1
        return all_ones

    @property
    def inf_mag_code(self) -> int | None:
        return ((1 << self.exp_bits) - 1) << self.man_bits if self.has_inf else None

    def nan_code(self, negative: bool = False) -> int | None:
        """The canonical NaN code (quiet NaN for IEEE formats), keeping the sign where it can."""
        if self.specials == "ieee":
            mag = (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))
        elif self.specials == "fn":
            mag = (1 << self.mag_bits) - 1
        elif self.specials == "fnuz":
            return self.sign_bit
        else:
            return None
        return mag | (self.sign_bit if negative else 0)

    def is_nan_code(self, code: int) -> bool:
        mag = code & ((1 << self.mag_bits) - 1)
        if self.specials == "ieee":
            return (mag >> self.man_bits) == (1 << self.exp_bits) - 1 and mag & (
                (1 << self.man_bits) - 1
            ) != 0
        if self.specials == "fn":
            return mag == (1 << self.mag_bits) - 1
        if self.specials == "fnuz":
            return code == self.sign_bit
        return False

    # ---- values -------------------------------------------------------------------------------
    def mag_value(self, mag: int) -> float:
        """Exact value of a finite magnitude code (Python float; every format here fits float64)."""
        e_field, m = mag >> self.man_bits, mag & ((1 << self.man_bits) - 1)
        if e_field == 0 and self.subnormals:
            return math.ldexp(m, 1 - self.bias - self.man_bits)
        return math.ldexp((1 << self.man_bits) + m, e_field - self.bias - self.man_bits)

    def value(self, code: int) -> float:
        """Value of any code: float, +-inf or NaN.  The obviously-correct scalar decoder."""
        if not 0 <= code < (1 << self.bits):
            raise ValueError(f"{self.name}: code {code} does not fit in {self.bits} bits")
        if self.is_nan_code(code):
            return math.nan
        negative = bool(code & self.sign_bit)
        mag = code & ((1 << self.mag_bits) - 1)
        v = math.inf if mag == self.inf_mag_code else self.mag_value(mag)
        return -v if negative else v

    @property
    def max(self) -> float:
        return self.mag_value(self.max_mag_code)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float | None:
        return math.ldexp(1.0, self.emin - self.man_bits) if self.subnormals else None

    @property
    def min(self) -> float:
        """Most negative finite value (smallest positive value for unsigned formats)."""
        return -self.max if self.signed else self.mag_value(0)

    @cached_property
    def _tables(self) -> dict:
        if self.bits > 16:
            raise ValueError(f"{self.name}: no decode table for formats over 16 bits")
        values = np.array([self.value(c) for c in range(1 << self.bits)], dtype=np.float64)
        return {np.dtype(np.float64): values, np.dtype(np.float32): values.astype(np.float32)}

    def table(self, dtype=np.float64) -> np.ndarray:
        """Value of every code, indexed by code (formats of at most 16 bits)."""
        return self._tables[np.dtype(dtype)]

    def describe(self) -> str:
        sub = f"{self.min_subnormal:.7g}" if self.subnormals else "none"
        return (
            f"{self.name}: {int(self.signed)}.{self.exp_bits}.{self.man_bits} bias {self.bias}, "
            f"max {self.max:.8g}, min normal {self.min_normal:.7g}, min subnormal {sub}, "
            f"specials {self.specials}"
        )


@dataclass(frozen=True)
class IntFormat:
    """A two's-complement (``signed``) or unsigned integer of ``bits`` bits.

    Codes are the low ``bits`` bits of the two's-complement value, as unsigned integers.
    """

    name: str
    bits: int
    signed: bool = True
    kind: str = field(default="int", init=False)

    def __post_init__(self):
        if not 1 <= self.bits <= 32:
            raise ValueError(f"{self.name}: integer formats have 1 to 32 bits")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    has_nan = False
    has_inf = False

    def value(self, code: int) -> int:
        if not 0 <= code < (1 << self.bits):
            raise ValueError(f"{self.name}: code {code} does not fit in {self.bits} bits")
        if self.signed and code >> (self.bits - 1):
            return code - (1 << self.bits)
        return code

    def code(self, value: int) -> int:
        """Code of an in-range integer value."""
        if not self.min <= value <= self.max:
            raise ValueError(f"{self.name}: {value} is outside [{self.min}, {self.max}]")
        return value & ((1 << self.bits) - 1)

    @cached_property
    def _tables(self) -> dict:
        if self.bits > 16:
            raise ValueError(f"{self.name}: no decode table for formats over 16 bits")
        values = np.array([self.value(c) for c in range(1 << self.bits)], dtype=np.float64)
        return {np.dtype(np.float64): values, np.dtype(np.float32): values.astype(np.float32)}

    def table(self, dtype=np.float64) -> np.ndarray:
        return self._tables[np.dtype(dtype)]

    @property
    def numpy_dtype(self) -> np.dtype:
        """Smallest numpy integer dtype that holds every value of this format."""
        width = next(w for w in (8, 16, 32) if self.bits <= w)
        return np.dtype(f"{'int' if self.signed else 'uint'}{width}")

    def describe(self) -> str:
        return f"{self.name}: {'signed' if self.signed else 'unsigned'} {self.bits}-bit [{self.min}, {self.max}]"


def code_dtype(bits: int) -> np.dtype:
    """Unsigned dtype that carries codes of ``bits`` bits: uint8, uint16 or uint32."""
    if bits <= 8:
        return np.dtype(np.uint8)
    if bits <= 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def minifloat(
    exp_bits: int,
    man_bits: int,
    *,
    bias: int | None = None,
    specials: str = "ieee",
    signed: bool = True,
    subnormals: bool = True,
    name: str | None = None,
) -> FloatFormat:
    """Define a custom minifloat; ``bias`` defaults to ``2**(exp_bits - 1) - 1``.

    Example: an E3M2 without NaN is ``minifloat(3, 2, specials="none")``; a 5-bit E2M2 is
    ``minifloat(2, 2, specials="none")``.
    """
    if bias is None:
        bias = (1 << (exp_bits - 1)) - 1 if exp_bits >= 1 else 0
    if name is None:
        name = f"float{int(signed) + exp_bits + man_bits}_e{exp_bits}m{man_bits}_{specials}"
    return FloatFormat(name, exp_bits, man_bits, bias, specials, signed, subnormals)


_FLOATS = [
    FloatFormat("float32", 8, 23, 127, "ieee"),
    FloatFormat("float16", 5, 10, 15, "ieee"),
    FloatFormat("bfloat16", 8, 7, 127, "ieee"),
    FloatFormat("float8_e4m3fn", 4, 3, 7, "fn"),
    FloatFormat("float8_e4m3fnuz", 4, 3, 8, "fnuz"),
    FloatFormat("float8_e5m2", 5, 2, 15, "ieee"),
    FloatFormat("float8_e5m2fnuz", 5, 2, 16, "fnuz"),
    FloatFormat("float8_e4m3", 4, 3, 7, "ieee"),
    FloatFormat("float8_e3m4", 3, 4, 3, "ieee"),
    FloatFormat("float8_e4m3b11fnuz", 4, 3, 11, "fnuz"),
    FloatFormat("float8_e8m0fnu", 8, 0, 127, "fn", signed=False, subnormals=False),
    FloatFormat("float6_e2m3fn", 2, 3, 1, "none"),
    FloatFormat("float6_e3m2fn", 3, 2, 3, "none"),
    FloatFormat("float4_e2m1fn", 2, 1, 1, "none"),
]
_INTS = [
    IntFormat("int2", 2),
    IntFormat("uint2", 2, signed=False),
    IntFormat("int4", 4),
    IntFormat("uint4", 4, signed=False),
    IntFormat("int8", 8),
    IntFormat("uint8", 8, signed=False),
    IntFormat("int16", 16),
    IntFormat("uint16", 16, signed=False),
    IntFormat("int32", 32),
]

REGISTRY: dict[str, FloatFormat | IntFormat] = {f.name: f for f in _FLOATS + _INTS}

Format = FloatFormat | IntFormat


def get(name) -> Format:
    """The format called ``name`` (ml_dtypes naming), or ``name`` itself if it is a format."""
    if isinstance(name, FloatFormat | IntFormat):
        return name
    if isinstance(name, np.dtype | type):
        name = np.dtype(name).name
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown format {name!r}; known formats: {', '.join(REGISTRY)}"
        ) from None


def register(fmt: Format) -> Format:
    """Make a custom format available to ``get`` by its name."""
    if fmt.name in REGISTRY and REGISTRY[fmt.name] != fmt:
        raise ValueError(f"a different format is already registered as {fmt.name!r}")
    REGISTRY[fmt.name] = fmt
    return fmt
