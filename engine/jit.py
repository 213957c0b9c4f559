"""One switch for every Numba option.

All kernels are compiled through :func:`kernel` so that ``nogil`` (they run on Dask
threads), on-disk caching and ``fastmath`` are set in one place. Environment overrides:

- ``TOKENSWEEP_JIT_CACHE=0`` disables the on-disk compilation cache (default on, so that
  ``tokensweep point`` starts in about a second after the first run);
- ``TOKENSWEEP_FASTMATH=1`` enables ``fastmath`` (default off, and not safe to turn on:
  the kernels use NaN as a sentinel for "no catalog override" and "no rental rate", and
  fastmath assumes NaN never occurs; measured, it breaks those checks);
- ``NUMBA_DISABLE_JIT=1`` (Numba's own) runs the kernels as plain Python, for debugging.

Parallelism has one owner: Dask. Kernels are single-threaded (no ``parallel=True``), so
Dask threads never meet Numba's threading layer (no oversubscription, no workqueue abort).
"""

from __future__ import annotations

import os

import numba


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


JIT_OPTIONS = {
    "nogil": True,
    "cache": _flag("TOKENSWEEP_JIT_CACHE", True),
    "fastmath": _flag("TOKENSWEEP_FASTMATH", False),
    "error_model": "numpy",  # x/0 gives inf/nan like numpy instead of raising
}


def kernel(signature=None):
    """``numba.njit`` with the project's options; ``signature`` compiles eagerly on first import."""
    if signature is None:
        return numba.njit(**JIT_OPTIONS)
    return numba.njit(signature, **JIT_OPTIONS)


def helper(func):
    """A small scalar function inlined into kernels (compiled lazily with them)."""
    return numba.njit(inline="always", **JIT_OPTIONS)(func)
