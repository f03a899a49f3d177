"""The FlatBuffers verifier LiteRT runs before it loads a model, for the TFLite schema.

LiteRT refuses a model whose flatbuffer does not verify (``FlatBufferModel::VerifyAndBuildFromBuffer``
with ``tflite::VerifyModelBuffer``: "The model is not a valid Flatbuffer buffer").  intsim reads
only part of a model, so without this check a corrupted offset in a part it does not read (a
signature, metadata, an option table) would let intsim run a file LiteRT rejects.  The rules are
those of ``flatbuffers/verifier.h``:

* a table: its offset 4-aligned and inside the buffer, its vtable (``table - soffset``)
  2-aligned with its size and the object size inside the buffer;
* a field: inside the buffer and aligned to its own size;
* an offset field (string, vector, table): a positive ``uoffset`` 4-aligned, its target inside;
* a vector: its length 4-aligned, ``length * element size`` inside the buffer; a string also
  its terminating zero byte; vectors of tables and strings verify every element;
* at most 64 levels of nesting and 1,000,000 tables.

Tables are described below by their fields in schema order (``tensorflow/compiler/mlir/lite/
schema/schema.fbs``): a scalar's byte size, ``"str"``, ``("vec", element size)``, ``("vec",
table)``, ``("vecstr",)``, a table, or ``("union", types)``.  Option tables of the operator
unions are checked as tables (their vtables); their fields are read, and checked, by intsim's
option parser where it runs the operator.
"""

from __future__ import annotations

import struct

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
ANY_TABLE: dict = {}  # a table whose fields are not described: vtable checks only

INT32_VECTOR = {0: ("vec", 4)}
UINT16_VECTOR = {0: ("vec", 2)}
UINT8_VECTOR = {0: ("vec", 1)}
SPARSE_INDEX = ("union", {1: INT32_VECTOR, 2: UINT16_VECTOR, 3: UINT8_VECTOR})
DIMENSION_METADATA = {0: 1, 1: 4, 2: 1, 3: SPARSE_INDEX, 4: 1, 5: SPARSE_INDEX}
SPARSITY = {0: ("vec", 4), 1: ("vec", 4), 2: ("vec", DIMENSION_METADATA)}
QUANTIZATION = {0: ("vec", 4), 1: ("vec", 4), 2: ("vec", 4), 3: ("vec", 8), 4: 1,
                5: ("union", {1: {0: ("vec", 1)}}), 6: 4}  # fmt: skip
VARIANT_SUBTYPE = {0: ("vec", 4), 1: 1, 2: 1}
TENSOR = {0: ("vec", 4), 1: 1, 2: 4, 3: "str", 4: QUANTIZATION, 5: 1, 6: SPARSITY, 7: ("vec", 4), 8: 1,
          9: ("vec", VARIANT_SUBTYPE)}  # fmt: skip
OPTIONS = ("union", None)  # any nonzero type: an option table
OPERATOR = {0: 4, 1: ("vec", 4), 2: ("vec", 4), 3: 1, 4: OPTIONS, 5: ("vec", 1), 6: 1, 7: ("vec", 1),
            8: ("vec", 4), 9: 8, 10: 8, 11: 1, 12: OPTIONS, 13: 4}  # fmt: skip
SUBGRAPH = {0: ("vec", TENSOR), 1: ("vec", 4), 2: ("vec", 4), 3: ("vec", OPERATOR), 4: "str", 5: 4}
BUFFER = {0: ("vec", 1), 1: 8, 2: 8}
METADATA = {0: "str", 1: 4}
TENSOR_MAP = {0: "str", 1: 4}
SIGNATURE_DEF = {0: ("vec", TENSOR_MAP), 1: ("vec", TENSOR_MAP), 2: "str", 4: 4}
OPERATOR_CODE = {0: 1, 1: "str", 2: 4, 3: 4}
MODEL = {0: 4, 1: ("vec", OPERATOR_CODE), 2: ("vec", SUBGRAPH), 3: "str", 4: ("vec", BUFFER), 5: ("vec", 4),
         6: ("vec", METADATA), 7: ("vec", SIGNATURE_DEF)}  # fmt: skip


class _Verifier:
    def __init__(self, buf: bytes):
        self.buf, self.size, self.tables = buf, len(buf), 0

    def inside(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise ValueError(f"{what} at byte {pos} (+{n}) lies outside the {self.size}-byte buffer")

    def aligned(self, pos: int, n: int, what: str) -> None:
        if n > 1 and pos % n:
            raise ValueError(f"{what} at byte {pos} is not {n}-byte aligned")

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def offset(self, pos: int, what: str) -> int:
        """The target of the uoffset at ``pos``."""
        self.inside(pos, 4, what)
        self.aligned(pos, 4, what)
        o = self.u32(pos)
        if o == 0 or o >= 2**31:
            raise ValueError(f"{what} at byte {pos} has offset {o}")
        self.inside(pos + o, 1, what)
        return pos + o

    def table(self, pos: int, fields: dict, depth: int, what: str) -> None:
        if depth > MAX_DEPTH:
            raise ValueError(f"{what}: nesting deeper than {MAX_DEPTH}")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise ValueError(f"more than {MAX_TABLES} tables")
        self.inside(pos, 4, what)
        self.aligned(pos, 4, what)
        vtable = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.inside(vtable, 4, f"{what} vtable")
        self.aligned(vtable, 2, f"{what} vtable")
        vsize, tsize = struct.unpack_from("<HH", self.buf, vtable)
        if vsize % 2 or vsize < 4:
            raise ValueError(f"{what} vtable size {vsize} is not a valid size")
        self.inside(vtable, vsize, f"{what} vtable")
        self.inside(pos, tsize, what)
        count = (vsize - 4) // 2
        present = {i: struct.unpack_from("<H", self.buf, vtable + 4 + 2 * i)[0] for i in range(count)}
        for i, kind in fields.items():
            field = present.get(i, 0)
            if not field:
                continue
            at = pos + field
            name = f"{what} field {i}"
            if isinstance(kind, int):  # a scalar of this size
                self.inside(at, kind, name)
                self.aligned(at, kind, name)
            elif kind == "str":
                self.vector(self.offset(at, name), 1, name, string=True)
            elif kind[0] == "vec" and isinstance(kind[1], int):
                self.vector(self.offset(at, name), kind[1], name)
            elif kind[0] == "vec":
                start = self.offset(at, name)
                n = self.vector(start, 4, name)
                for j in range(n):
                    self.table(self.offset(start + 4 + 4 * j, f"{name}[{j}]"), kind[1], depth + 1, f"{name}[{j}]")
            elif kind[0] == "union":
                type_field = present.get(i - 1, 0)  # the _type field precedes its value
                if not type_field or not self.buf[pos + type_field]:
                    continue
                tables = kind[1]
                sub = ANY_TABLE if tables is None else tables.get(self.buf[pos + type_field])
                if sub is None:
                    raise ValueError(f"{name}: unknown union type {self.buf[pos + type_field]}")
                self.table(self.offset(at, name), sub, depth + 1, name)
            else:  # a table
                self.table(self.offset(at, name), kind, depth + 1, name)

    def vector(self, pos: int, elem: int, what: str, string: bool = False) -> int:
        self.inside(pos, 4, what)
        self.aligned(pos, 4, what)
        n = self.u32(pos)
        if n >= 2**31 // max(elem, 1):
            raise ValueError(f"{what}: vector of {n} elements")
        self.inside(pos + 4, n * elem + (1 if string else 0), what)
        if string and self.buf[pos + 4 + n] != 0:
            raise ValueError(f"{what}: string without its terminating zero")
        return n


def verify_model(buf: bytes) -> None:
    """Raise ``ValueError`` naming the first violation unless ``buf`` verifies as LiteRT's
    ``VerifyModelBuffer`` would."""
    v = _Verifier(buf)
    root = v.offset(0, "root table")
    v.table(root, MODEL, 1, "Model")
