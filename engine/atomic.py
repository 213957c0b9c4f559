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
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import UserError


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process's umask (what ``open`` would create)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


@contextmanager
def atomic_path(target, suffix: str | None = None, inputs: Iterable = ()) -> Iterator[Path]:
    """A temporary name beside ``target``, renamed over it on success (the module's docstring);
    ``target`` is checked first by :func:`check_file_output`."""
    target = check_file_output(target, inputs)
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


def check_file_output(target, inputs: Iterable = (), flag: str = "-o") -> Path:
    """One routine for every file a command writes (figure, page, table, profile): refuse, in
    one line and before anything is computed, a target that is

    - ``-`` (no command writes a file to stdout: use ``--csv`` / ``--json``);
    - a symlink, a folder, a FIFO, a device or any other special file (a regular file, or
      nothing yet, is replaced whole by :func:`atomic_path`; nothing is written through a link);
    - one of the command's ``inputs`` (the same file by any name);
    - inside a Zarr store (a cube's metadata or chunks), or in a folder that does not exist.

    >>> check_file_output("-")
    Traceback (most recent call last):
    engine.errors.UserError: -o: '-' (stdout) is not a file; this command writes a file (give a path)
    """
    if str(target) == "-":
        raise UserError(f"{flag}: '-' (stdout) is not a file; this command writes a file (give a path)")
    path = Path(target)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UserError(f"{flag}: cannot use {path} ({exc.strerror})") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise UserError(
                f"{flag}: {path} is a symlink; give the path of a regular file (nothing is written through a link)"
            )
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a special file (FIFO, device or socket)"
            raise UserError(f"{flag}: {path} is {kind}, not a file this command may replace")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{flag}: folder {parent} does not exist")
    for given in inputs:
        given = Path(given)
        if info is not None and given.exists() and os.path.samefile(given, path):
            raise UserError(f"{flag}: {path} is this command's input {given}; write the output elsewhere")
    resolved = parent.resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / "zarr.json").is_file() or folder.suffix == ".zarr":
            raise UserError(f"{flag}: {path} is inside the Zarr store {folder}; write the output outside it")
    return path
