"""Blocks persisted on spare cores while the next block computes (local thread runs).

With fewer busy workers than cores (one worker on a laptop, say), a worker that encodes
and writes its own block leaves a core idle half the time. A :class:`WritePipeline` takes a
computed block's arrays and encodes, writes and records them on its own threads, so the
worker goes straight on to its next block. Each worker thread keeps two buffer sets and
waits only when it comes back to a set whose block is still being written (double
buffering), so memory stays bounded at two blocks per worker.

What a crash leaves is unchanged: a block is recorded only after all its chunks are written,
by the pipeline thread; a block computed but not yet recorded is computed again on resume.
The run waits for the pipeline (:meth:`WritePipeline.drain`) before it finalises the store,
and any error raised while persisting fails the run.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

#: Buffer sets per worker thread: one being computed into, one being written from.
SLOTS = 2

_active: dict[str, WritePipeline] = {}


def write_threads(workers: int) -> int:
    """Pipeline threads for a local thread run of ``workers``: one per core while a core is idle, else 0.

    Measured on 2 cores (1.09e8-point bench sweep): one worker went from 4.7 (inline) to 4.9
    M points/s with one write thread and to 6.0 with two (writing is slower than computing
    there, so both cores must write); two workers ran faster inline (6.7) than with a
    pipeline (5.9), the cores being busy already. ``TOKENSWEEP_WRITE_THREADS`` overrides (0:
    no pipeline).
    """
    given = os.environ.get("TOKENSWEEP_WRITE_THREADS")
    if given is not None:
        from engine.errors import UserError

        try:
            threads = int(given)
        except ValueError:
            threads = -1
        if not 0 <= threads <= 256:
            raise UserError(f"TOKENSWEEP_WRITE_THREADS: '{given}' is not a whole number of threads from 0 to 256")
        return threads
    cores = os.cpu_count() or 1
    return cores if workers < cores else 0


class WritePipeline:
    """Persist tasks for one run, on ``threads`` threads; registered under the run token."""

    def __init__(self, token: str, threads: int):
        self.token = token
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="tokensweep-write")
        self.futures: list[Future] = []
        self.local = threading.local()
        self.lock = threading.Lock()

    def __enter__(self) -> WritePipeline:
        _active[self.token] = self
        return self

    def __exit__(self, *exc) -> None:
        _active.pop(self.token, None)
        # On an error, nothing queued starts; what is running finishes before the lock is released.
        self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)

    def slot(self) -> int:
        """This worker thread's next buffer set, once the block last written from it is recorded."""
        slots = getattr(self.local, "slots", None)
        if slots is None:
            slots = self.local.slots = [None] * SLOTS
            self.local.turn = 0
        self.local.turn = (self.local.turn + 1) % SLOTS
        pending = slots[self.local.turn]
        if pending is not None:
            pending.result()  # re-raises a failed write at once
        return self.local.turn

    def submit(self, slot: int, persist, *args) -> None:
        future = self.pool.submit(persist, *args)
        self.local.slots[slot] = future
        with self.lock:
            self.futures.append(future)

    def drain(self) -> None:
        """Wait for every block handed over; the first error is raised."""
        with self.lock:
            futures = list(self.futures)
        for future in futures:
            future.result()


def active(token: str) -> WritePipeline | None:
    """The pipeline of the run holding ``token`` in this process, if it has one."""
    return _active.get(token)
