"""Shared test configuration: reproducible hypothesis, the shared/ directory, backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Derandomized, no example database: every run (CI or not) tries the same examples.  deadline=None: first calls compile.
settings.register_profile(
    "intsim",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("INTSIM_HYPOTHESIS_PROFILE", "intsim"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
JIT_BACKENDS = ("jit", "jit-serial")
ALL_BACKENDS = ("reference", "jit", "jit-serial")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"the shared/ directory is expected beside the project at {SHARED}")
    return SHARED
