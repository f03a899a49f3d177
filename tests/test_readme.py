"""Every Python snippet of the README runs as pasted, from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_snippets():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs(index, capsys):
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})
    finally:
        os.chdir(here)
    if "print(report)" in BLOCKS[index]:
        assert "4096 of 4096 outputs saturated in a 20-bit accumulator" in capsys.readouterr().out
