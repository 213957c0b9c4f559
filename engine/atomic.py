"""Files that appear whole or not at all, with the mode the user's umask gives.

:func:`atomic_path` yields a temporary name beside the target; the caller writes it, and on
success it is renamed over the target (so a crash, a full disk or a signal never leaves half
a file), with the permissions a plain ``open(..., "w")`` would have given (``mkstemp``'s are
0600). On any failure, including ``KeyboardInterrupt`` and the ``SystemExit`` the command
line turns SIGTERM into, the temporary file is removed.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> with atomic_path(target) as temporary:
...     _ = temporary.write_text("whole")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('whole', ['out.txt'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process's umask (what ``open`` would create)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


@contextmanager
def atomic_path(target, suffix: str | None = None) -> Iterator[Path]:
    target = Path(target)
    handle, name = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=suffix if suffix is not None else target.suffix, dir=target.parent or "."
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, umask_mode())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
