"""One switch for every Numba option.

All kernels are compiled through :func:`kernel` so that ``nogil`` (they run on Dask
threads), on-disk caching and ``fastmath`` are set in one place. Environment overrides:

- ``TOKENSWEEP_JIT_CACHE=0`` disables the on-disk compilation cache (default on, so that
  ``tokensweep point`` starts in about a second after the first run);
- ``TOKENSWEEP_FASTMATH=1`` enables ``fastmath`` (default off, and not safe to turn on:
  the kernels use NaN as a sentinel for "no catalog override" and "no rental rate", and
  fastmath assumes NaN never occurs; measured, it breaks those checks);
- ``NUMBA_DISABLE_JIT=1`` (Numba's own) runs the kernels as plain Python, for debugging;
- ``NUMBA_CACHE_DIR`` (Numba's own) moves the compilation cache (default
  ``~/.cache/tokensweep/numba``).

Numba keys its cache on the kernel's source file only. The kernels also freeze layouts
declared elsewhere (table columns, parameter vector, codes), so :func:`layout_cache` puts
their cache in a folder named by a fingerprint of those layouts: a layout change compiles
afresh instead of loading a stale kernel that would read the wrong columns.

Parallelism has one owner: Dask. Kernels are single-threaded (no ``parallel=True``), so
Dask threads never meet Numba's threading layer (no oversubscription, no workqueue abort).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def layout_cache(fingerprint: str):
    """Kernels defined inside cache under ``<cache dir>/layout-<fingerprint>`` (Numba's cache
    locator reads ``numba.config.CACHE_DIR`` when a cached function is defined)."""
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tokensweep", "numba"
    )
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(Path(base) / f"layout-{fingerprint}")
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved
