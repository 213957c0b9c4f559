"""What produced a number: a fingerprint of the engine code and the compile options.

A cube's fingerprint (:mod:`engine.sweep.spec`) covers its spec and catalog; this covers
the code that turns them into numbers (every formula, the kernels that compose them, the
array core, the tables and codes they read) and the Numba options that change results
(``fastmath``). So a resume after the formulas changed, or under ``TOKENSWEEP_FASTMATH=1``,
is refused instead of mixing two engines' numbers in one cube.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

#: The modules whose source decides a cube's values.
ENGINE_SOURCES = (
    ("engine.model", ("formulas.py", "kernels.py", "core.py", "tables.py", "assumptions.py", "variables.py",
                      "pricing.py", "records.py", "catalog.py")),
    ("engine.sweep", ("blocks.py", "reduce.py")),
    ("engine", ("axes.py", "jit.py", "units.py")),
)  # fmt: skip


@cache
def engine_fingerprint() -> str:
    """16 hex digits over the engine's number-producing sources and ``fastmath``.

    >>> len(engine_fingerprint())
    16
    """
    from engine.jit import JIT_OPTIONS

    digest = hashlib.sha256(f"fastmath={JIT_OPTIONS['fastmath']}".encode())
    for package, names in ENGINE_SOURCES:
        folder = resources.files(package)
        for name in names:
            digest.update(name.encode())
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]
