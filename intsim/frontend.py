"""What the model frontends (``intsim.tflite``, ``intsim.onnx``) share: the operator registry,
the error that names the model and the operator, and the cache of prepared layers.

* ``Registry``: operator implementations by key (TFLite: the builtin operator name; ONNX:
  ``(domain, op_type)``), registered with a decorator.
* ``reported(error, where)``: a ``ValueError``, ``IndexError`` or ``KeyError`` raised while an
  operator runs or is prepared becomes the frontend's ``ModelError`` prefixed with ``where``
  (the model and the operator index or node name); a ``ModelError`` passes unchanged.
* ``lazy_exports(package, exports)``: a frontend package's ``__getattr__`` and ``__dir__`` that
  load each public name's module on first use (so that its ``conventions`` module imports alone).
* ``prepared(store, key, profile, backend, build)``: a layer built once per model, keyed by the
  operator, the ``Profile`` object (two custom profiles may share a name; equal profiles share
  layers) and the backend.
"""

from __future__ import annotations

import contextlib
import importlib


class ModelError(ValueError):
    """A model the frontends cannot run as written; the message names the model and operator."""


class Registry:
    """Operator implementations by key."""

    def __init__(self, what: str):
        self.what = what
        self.table: dict = {}

    def register(self, *keys):
        """Decorator: ``fn`` implements every key in ``keys``."""

        def add(fn):
            for key in keys:
                self.table[key] = fn
            return fn

        return add

    def __contains__(self, key) -> bool:
        return key in self.table

    def __iter__(self):
        return iter(self.table)

    def __getitem__(self, key):
        return self.table[key]


@contextlib.contextmanager
def reported(error: type[ModelError], where: str):
    """Errors raised inside as ``error(f"{where}: {message}")``; ``ModelError`` unchanged."""
    try:
        yield
    except ModelError:
        raise
    except (ValueError, IndexError, KeyError) as e:
        raise error(f"{where}: {e}") from e


def prepared(store: dict, key, profile, backend: str, build):
    """``build()`` for ``(key, profile, backend)``, made on first use and kept in ``store``."""
    full = (key, profile, backend)
    layer = store.get(full)
    if layer is None:
        layer = store[full] = build()
    return layer


def lazy_exports(package: str, exports: dict):
    """``(__getattr__, __dir__)`` for ``package`` whose public names (``exports``: name ->
    submodule) load their submodule on first use."""

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
