"""The chunk writer both outputs share: whole chunks in, a record out, fenced by the run token.

A unit of work (a block of a full cube, an output chunk of a reduction) hands its arrays as
:class:`Piece` s: the variable, its chunk index and region, the values. :func:`persist`
encodes them (the direct chunk-file writer of :mod:`engine.sweep.chunks` for local stores,
in the calling thread; Zarr otherwise), checks the run token, writes, checks the token
again, and only then records the unit with a digest of every chunk
(:mod:`engine.sweep.integrity`). So a crash at any moment leaves every recorded unit on disk.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.sweep.chunks import layout
from engine.sweep.integrity import check_token, digest, digest_bytes, write_record
from engine.sweep.location import location
from engine.sweep.state import state_dir


@dataclass(frozen=True)
class Piece:
    """One variable's share of a unit of work: whole chunks at ``index`` covering ``region``."""

    name: str
    index: tuple[int, ...]
    region: tuple[slice, ...]
    values: np.ndarray
    direct: bool = True  # may go through the direct chunk-file writer (one chunk per piece)


@lru_cache(maxsize=256)
def open_array(path: str, name: str, fingerprint: str):
    """Async arrays stay open per process; the fingerprint keys out handles to an overwritten store."""
    import zarr.api.asynchronous as zarr_async
    from zarr.core.sync import sync

    return sync(zarr_async.open_array(store=path, path=name, mode="r+"))


async def _write_regions(writes) -> None:
    # One event-loop round trip per unit: the variables' chunks encode and land concurrently
    # (measured 1.8x faster than one synchronous write per variable).
    await asyncio.gather(*(array.setitem(region, data) for array, region, data in writes))


def persist(path: str, fingerprint: str, token: str, record: str, pieces: list[Piece]) -> None:
    """Write the pieces' whole chunks, then record the unit (fenced by the run token)."""
    from zarr.core.sync import sync

    state = state_dir(location(path))
    writes, encoded, digests, chunks = [], [], {}, {}
    for piece in pieces:
        chunks[piece.name] = list(piece.index)
        direct = layout(path, piece.name, fingerprint) if piece.direct else None
        if direct is not None:  # encoded here, in this thread (Blosc releases the GIL)
            payload = direct.encode(piece.values)
            encoded.append((direct, piece.index, payload))
            digests[piece.name] = ("file", digest_bytes(payload))
            continue
        array = open_array(path, piece.name, fingerprint)
        for sl, chunk, size in zip(piece.region, array.chunks, array.shape):
            start, stop, _ = sl.indices(size)
            if start % chunk or (stop != size and stop - start != chunk):
                raise AssertionError(f"{record} does not cover whole chunks of {piece.name}")
        writes.append((array, piece.region, piece.values))
        digests[piece.name] = ("values", digest(piece.values))
    check_token(state, token)
    for direct, index, payload in encoded:
        direct.write(index, payload)
    if writes:
        sync(_write_regions(writes))
    check_token(state, token)
    write_record(state, record, token, chunks, digests)
