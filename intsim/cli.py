"""The ``intsim`` command.

``intsim demo``     encode and decode a few values across formats and show what each target
                    format makes of them (grows into a real-model run as the frontends land)
``intsim formats``  list every named format with its parameters
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from intsim import formats as F

DEMO_VALUES = np.array([0.1, 1 / 3, 1.0625 + 2**-40, 3.0, -2.5, 300.0, 470.0, 70000.0, 1e-5])
DEMO_FORMATS = [
    "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float6_e2m3fn",
    "float4_e2m1fn", "float8_e8m0fnu", "int8", "int4",
]  # fmt: skip


def _fmt_value(v: float) -> str:
    return "nan" if np.isnan(v) else f"{v:.6g}"


def demo(out=sys.stdout) -> None:
    print("intsim demo: each input rounded once (nearest even) to each format, then decoded.", file=out)
    print(
        "Default overflow rule: non-saturating for floats (ml_dtypes), saturating for integers.\n"
        "[x] shows the other rule where it differs (ONNX saturate=1 for floats, wrapping for ints).\n",
        file=out,
    )
    width = 15
    print("format".ljust(16) + "".join(_fmt_value(v).rjust(width) for v in DEMO_VALUES), file=out)
    for name in DEMO_FORMATS:
        fmt = F.get(name)
        default = F.encode(DEMO_VALUES, fmt)
        is_int = fmt.kind == "int"
        other = F.encode(DEMO_VALUES, fmt, saturate=not is_int)
        cells = []
        for a, b in zip(F.decode(default, fmt, dtype=np.float64), F.decode(other, fmt, dtype=np.float64), strict=True):
            same = a == b or (np.isnan(a) and np.isnan(b))
            cells.append((_fmt_value(a) + ("" if same else f" [{_fmt_value(b)}]")).rjust(width))
        print(name.ljust(16) + "".join(cells), file=out)
    x = np.array([1.0625 + 2**-40])
    print(
        "\nSingle rounding from float64: 1.0625 + 2**-40 -> float8_e4m3fn gives "
        f"{F.decode(F.encode(x, 'float8_e4m3fn'), 'float8_e4m3fn')[0]} "
        "(a float64 -> float32 -> float8 cast gives 1.0).",
        file=out,
    )
    codes = F.encode(np.array([-8.0, -1.0, 0.0, 3.0, 7.0]), "int4")
    print(f"int4 codes of [-8, -1, 0, 3, 7]: {codes.tolist()}, packed: "
          f"{[hex(b) for b in F.pack(codes, 4).tolist()]}", file=out)


def demo_requantization(out=sys.stdout) -> None:
    from intsim import fixedpoint as fxp
    from intsim import profiles

    acc = np.array([7984, -7984, 1000003, -257])
    m, s = 1583594044, -9
    print("\nRequantizing int32 accumulators (TF issue 25087's multiplier 1583594044, shift -9):", file=out)
    print(f"  accumulators           {acc.tolist()}", file=out)
    for rounding in ("double", "single"):
        got = fxp.multiply_by_quantized_multiplier(acc, m, s, rounding=rounding)
        print(f"  MBQM {rounding:<17} {got.tolist()}", file=out)
    real = m * 2.0 ** (s - 31)
    print(f"  exact acc * {real:.9f}: {[round(float(a) * real, 4) for a in acc]}", file=out)
    print("\nThe same accumulators through each target's requantization (zero point 1):", file=out)
    for name, prof in profiles.PROFILES.items():
        rule, _ = prof.rules("fc")
        got = profiles.requantize(acc, real, 1, rule, qmin=-(2**31), qmax=2**31 - 1)
        print(f"  {name:<22} FullyConnected rule {rule:<13} {got.tolist()}", file=out)


def list_formats(out=sys.stdout) -> None:
    for fmt in F.REGISTRY.values():
        print(fmt.describe(), file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="intsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="show the number formats at work on a few values")
    sub.add_parser("formats", help="list every named format")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo()
        demo_requantization()
    elif args.command == "formats":
        list_formats()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
