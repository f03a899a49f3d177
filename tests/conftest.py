"""Shared test configuration: reproducible hypothesis, the model files in tests/data, backends."""

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

# Real models and TFLite Micro goldens, copied unchanged from tensorflow/tflite-micro (see its README)
MODELS = Path(__file__).resolve().parent / "data" / "models"
JIT_BACKENDS = ("jit", "jit-serial")
ALL_BACKENDS = ("reference", "jit", "jit-serial")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS
