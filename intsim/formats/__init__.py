"""Bit-exact number formats: IEEE floats, float8/fp6/fp4, E8M0 and integers of 2 to 32 bits.

``get(name)`` returns a format object; ``encode`` rounds real numbers to codes, ``decode``
turns codes back into float32/float64; ``pack``/``unpack`` handle 4- and 2-bit storage.
See ``spec`` for the format model and ``codec`` for the conversion rules.
"""

from intsim.formats.codec import decode, encode
from intsim.formats.packing import pack, unpack, unpack_values
from intsim.formats.spec import (
    REGISTRY,
    FloatFormat,
    Format,
    IntFormat,
    code_dtype,
    get,
    minifloat,
    register,
)

__all__ = [
    "REGISTRY",
    "FloatFormat",
    "Format",
    "IntFormat",
    "code_dtype",
    "decode",
    "encode",
    "get",
    "minifloat",
    "pack",
    "register",
    "unpack",
    "unpack_values",
]
