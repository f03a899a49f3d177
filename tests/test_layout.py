"""The package layout keeps its promises: the layers and the frontends' conventions import
without the frontends (no onnx needed for ``intsim.ops``), and the frontends' errors share one
base class."""

from __future__ import annotations

import subprocess
import sys

import intsim.onnx as ion
import intsim.tflite as itf
from intsim import frontend


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_layers_import_without_the_frontends():
    loaded = _modules_after("import intsim.ops")
    assert "onnx" not in loaded and "intsim.onnx.graph" not in loaded
    assert "intsim.tflite.interpreter" not in loaded and "intsim.tflite.conventions" in loaded
    assert "intsim.onnx.conventions" in loaded


def test_frontend_packages_load_their_modules_on_first_use():
    assert "intsim.tflite.interpreter" in _modules_after("import intsim.tflite as t; t.run")
    assert issubclass(itf.ModelError, frontend.ModelError) and issubclass(ion.ModelError, frontend.ModelError)
    assert {"load", "run", "diff", "Model"} <= set(dir(itf)) and {"load", "run", "Backend"} <= set(dir(ion))
