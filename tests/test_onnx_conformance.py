"""ONNX's own conformance cases (onnx/backend/test/data/node) run through intsim.onnx.Backend.

Included: every case of QuantizeLinear, DequantizeLinear (per-axis, blocked, int2/int4/int16,
float8, float4), QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger,
DynamicQuantizeLinear (with the expanded versions), the Casts to and from float8, float4,
E8M0, int4, uint4, int2 and uint2, and the float/shape operators intsim's graphs use.
Outputs are compared by onnx's runner (exact for integers).  Exclusions, each with its reason,
are listed in EXCLUDED; nothing else is left out.
"""

import re
import warnings

import onnx.backend.test

from intsim.onnx.backend import Backend

QUANT = (
    r"^test_(quantizelinear|dequantizelinear|qlinearmatmul|qlinearconv|matmulinteger|convinteger"
    r"|dynamicquantizelinear)"
)
CASTS = (
    r"^test_cast(like)?_(no_saturate_|e8m0_)?[A-Z0-9]+_to_(FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2)",
    r"^test_cast(like)?_(no_saturate_|e8m0_)?(FLOAT8|FLOAT4|INT4|UINT4|INT2|UINT2)[A-Z0-9]*_to_",
)
FLOAT_OPS = (
    r"^test_(relu|reshape_[a-z_]+|flatten_[a-z_]+|transpose_[a-z_0-9]+|concat_[a-z_0-9]+|squeeze(_[a-z_]+)?"
    r"|unsqueeze_[a-z_0-9]+|gather_[0-9]|gather_negative_indices|identity|shape[a-z_0-9]*|clip[a-z_0-9]*"
    r"|maxpool_2d_[a-z_0-9]+|averagepool_2d_[a-z_0-9]+|globalaveragepool[a-z_]*|gemm_[a-z_0-9]+"
    r"|matmul_[0-9]d|softmax_[a-z_0-9]+|conv_with_[a-z_0-9]+|add|add_bcast|mul|mul_bcast|sigmoid[a-z_]*|leakyrelu[a-z_]*)_cpu$"
)

EXCLUDED = {
    r"_expanded(_ver18)?_cpu$": "expanded function bodies of Clip, Softmax and LeakyRelu use Less/Where/Exp/"
    "ReduceSum, which are outside intsim's operator set (the quantization _expanded cases run)",
    r"^test_(maxpool|averagepool)_2d_dilations_cpu$": "dilated pooling is not implemented "
    "(intsim raises ModelError for it)",
}

with warnings.catch_warnings():  # onnx's case modules divide by zero on import to build inf
    warnings.simplefilter("ignore", RuntimeWarning)
    backend_test = onnx.backend.test.BackendTest(Backend, __name__)
for pattern in (QUANT, *CASTS, FLOAT_OPS):
    backend_test.include(pattern)
for pattern in EXCLUDED:
    backend_test.exclude(pattern)


def _selected(name: str) -> bool:
    included = name.endswith("_cpu") and any(re.search(p, name) for p in (QUANT, *CASTS, FLOAT_OPS))
    return included and not any(re.search(p, name) for p in EXCLUDED)


# BackendTest marks every case it was not asked for as skipped; keep only the selected ones so
# the report shows what ran, not thousands of skips of operators intsim does not claim.
_cases = backend_test.test_cases  # a property that builds new classes on every access
for _case in _cases.values():
    for _name in [n for n in vars(_case) if n.startswith("test_") and not _selected(n)]:
        delattr(_case, _name)
globals().update(_cases)
