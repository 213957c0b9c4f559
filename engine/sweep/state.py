"""The state beside a store: ``<store>.tokensweep/`` (lock, run record, block records, token).

The cube itself stays plain Zarr; everything a run needs to resume or to refuse a second
writer lives in this folder. This module names the folder, holds the one-writer lock and
names the records of work units; :mod:`engine.sweep.integrity` writes and checks the
records and the run token.
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from engine.errors import UserError
from engine.sweep.location import is_remote, lease

STATE_SUFFIX = ".tokensweep"


def state_dir(path: Path) -> Path:
    """The state folder of a store."""
    return path.with_name(path.name + STATE_SUFFIX)


def block_id(block: tuple[int, ...]) -> str:
    """The record name of a block (its index along every dim)."""
    return ".".join(map(str, block)) or "0"


@contextmanager
def writer_lock(state):
    """One writer per store: an ``flock`` locally, a lease object on object stores.

    The ``flock`` is released by the kernel when a run dies, so a killed run can always be
    resumed; a second writer is refused in one line naming the holder.
    """
    if is_remote(state):
        with lease(state):
            yield
        return
    if state.is_symlink():  # a planted link would move the run's records (and deletions) elsewhere
        raise UserError(f"store: the state folder {state} is a symlink; remove it (tokensweep writes a real folder)")
    state.mkdir(parents=True, exist_ok=True)
    linked = next((child for child in state.iterdir() if child.is_symlink()), None)
    if linked is not None:
        raise UserError(
            f"store: {linked} is a symlink inside the state folder; remove it (tokensweep writes real files)"
        )
    try:  # O_NOFOLLOW: a symlinked lock would truncate whatever it points to
        descriptor = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"store: {state / 'lock'} is a symlink; remove it (the lock is a plain file)") from None
        raise
    handle = os.fdopen(descriptor, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise UserError(
                f"store: {state.with_suffix('')} is being written by {owner}; wait for it or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
        handle.flush()
        yield
    finally:
        handle.close()
