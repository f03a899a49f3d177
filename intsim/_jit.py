"""The one module that owns numba flags.

Rules (see ``shared/reference/style.md``):

* fast-math compilation is never enabled: every kernel must be bit-exact.
* Parallel kernels use ``prange`` over independent outputs only, so a result never depends on
  the thread count or on the order in which threads finish.
* Every jitted kernel exists twice, compiled from the same Python code: a serial build and a
  parallel build, both cached on disk.  numba keys its cache by the function's qualified name
  and signature, not by its flags, so the serial build is compiled from a copy of the function
  renamed ``<name>__serial``: each build has its own cache entry.  Kernels made by a factory
  (closures) are not cached at all: numba keys them by their pickled closure, which differs in
  every process, so each run would only add files.
* Threads: numba's TBB layer where the ``tbb`` package is installed (a dependency on x86-64
  Linux; ``_load_tbb``), else OpenMP.  OpenMP's threads spin between parallel regions, which
  starves other processes on a shared machine: three processes running a 31-operator int8
  model on two cores ran up to 34x slower than one alone (``benchmarks/run.py contention``).
* Small work runs serially even under ``backend="jit"``: a kernel told its ``work`` (multiply-
  adds or elements) below ``PARALLEL_MIN_WORK`` (2**16 under TBB, 2**20 under OpenMP) runs its
  serial build, since waking threads costs more than it saves there.  ``INTSIM_PARALLEL_MIN_WORK``
  (environment) sets another threshold; 0 makes every "jit" call parallel.

Backends, selectable at run time by every public function that calls a kernel:

``"jit"``         the parallel build (default)
``"jit-serial"``  the serial build
``"reference"``   the slow, obviously-correct Python implementation kept beside each kernel
"""

from __future__ import annotations

import ctypes
import os
import sys
import types
from pathlib import Path

import numba

BACKENDS = ("jit", "jit-serial", "reference")


def _load_tbb() -> bool:
    """Make numba's TBB threading layer loadable: the ``tbb`` wheel puts ``libtbb.so.12`` in the
    environment's ``lib/``, where the loader does not look, so numba would fall back to OpenMP.
    Loading it first (RTLD_GLOBAL) lets numba's own layer choice (TBB before OpenMP) find it.
    Nothing is loaded when the user chose a layer (``NUMBA_THREADING_LAYER``)."""
    if os.environ.get("NUMBA_THREADING_LAYER", "default") not in ("default", "tbb"):
        return False
    lib = Path(sys.prefix) / "lib" / "libtbb.so.12"
    try:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True


# TBB's workers back off and yield between regions; OpenMP's spin (see the module docstring):
# measured on 2 cores, TBB with 2**16 matches OpenMP's solo speed and keeps three concurrent
# processes within 2.3x of solo, OpenMP needs 2**20 to stay within 2x (and loses up to 1.6x solo)
TBB = _load_tbb()
PARALLEL_MIN_WORK = int(os.environ.get("INTSIM_PARALLEL_MIN_WORK", 1 << 16 if TBB else 1 << 20))

# Scalar helpers called from kernels; never called from Python.  Inlined by numba into each
# caller (inline="always"): left to LLVM they stayed calls through function pointers (numba links
# each function's module separately), which blocked vectorization of every loop calling one;
# the TFLite ADD kernel ran 8x slower so (13 ns -> 1.6 ns an element).
helper = numba.njit(cache=True, nogil=True, inline="always")
# The same, not cached on disk: for scalars made by a factory or defined where numba has no file
# to key a cache by (a rule typed into a session, ``intsim.fixedpoint.jit_scalar``).
uncached_helper = numba.njit(nogil=True, inline="always")

# Kernels that are serial by design and called from Python (a whole-model program over tensors of
# a few hundred elements, ``intsim.tflite.program``): one build, disk-cached, under every jit
# backend.  Their reference is the op-by-op path they replace.
sequential = numba.njit(cache=True, nogil=True)


def entry_point(dispatcher, *args):
    """The machine code ``dispatcher`` compiled for the types of ``args``, callable without
    numba's per-call type dispatch (about 0.3 us saved, which matters to a call of 2 us).  Only
    for a caller that passes arguments of exactly these types on every call; falls back to the
    dispatcher itself when numba keeps no such overload."""
    dispatcher(*args)  # compile (or load from the cache) the overload for these types
    try:
        return dispatcher.overloads[tuple(numba.typeof(a) for a in args)].entry_point
    except (AttributeError, KeyError):
        return dispatcher


class Kernel:
    """A numba kernel compiled twice from one Python function: ``serial`` and ``parallel``."""

    def __init__(self, fn, cache: bool = True):
        self.py_func = fn
        self.serial = numba.njit(_renamed(fn, "__serial"), cache=cache, nogil=True, parallel=False)
        self.parallel = numba.njit(fn, cache=cache, nogil=True, parallel=True)
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def build(self, backend: str, work: int | None = None):
        """The compiled function for ``backend`` ("jit" or "jit-serial"); under "jit", the serial
        build when ``work`` is given and below ``PARALLEL_MIN_WORK``."""
        if backend == "jit":
            return self.serial if work is not None and work < PARALLEL_MIN_WORK else self.parallel
        if backend == "jit-serial":
            return self.serial
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _renamed(fn, suffix: str):
    """A copy of ``fn`` whose qualified name ends in ``suffix`` (its own numba cache entry)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__, copy.__doc__ = fn.__module__, fn.__doc__
    return copy


def kernel(fn) -> Kernel:
    """Decorator: compile ``fn`` as a serial and a parallel numba kernel."""
    return Kernel(fn)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend
