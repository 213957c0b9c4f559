"""What a store's records promise, and how that promise is checked.

- **Run token**: each run writes a fresh random token beside the store before any block is
  computed; every block write checks it before writing data and again before recording.
  A worker left over from a killed run (an orphaned process, a cluster whose client died)
  finds a different token and stops without writing or recording anything.
- **Records**: a block's record (``<store>.tokensweep/blocks/<id>``) names the run token,
  the chunk index of every variable it wrote and a checksum of each chunk (CRC-32 of the
  chunk file the direct writer put, or BLAKE2 of the values when Zarr wrote it).
  Records are written atomically, only after the data landed.
- **Verification**: a resume (and a rerun of a complete store) reads back every recorded
  chunk and compares digests; a record whose chunks were deleted or edited, whose token is
  not one of this spec's runs, or that cannot be parsed is dropped and its block computed
  again.
- **Reading**: an incomplete cube opened through :func:`engine.open_cube` reads every
  chunk no record vouches for as missing (NaN), whatever the variable's dtype, and warns.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import warnings
import zlib
from pathlib import Path

import numpy as np

from engine.sweep.location import is_remote, put_text, url

TOKEN_FILE = "token"


class StaleWriter(RuntimeError):
    """A block write from a run that is no longer the store's current run."""


class IncompleteCubeWarning(UserWarning):
    """The cube was not completed: what was not computed reads as missing."""


# ---------------------------------------------------------------------- run token
def new_token(state: Path) -> str:
    token = secrets.token_hex(8)
    put_text(state / TOKEN_FILE, token)
    return token


def check_token(state: Path, token: str) -> None:
    try:
        current = (state / TOKEN_FILE).read_text()
    except OSError:
        current = ""
    if current != token:
        raise StaleWriter(f"{state}: the run that queued this block is no longer the store's run; not writing")


# ---------------------------------------------------------------------- records
def digest(values: np.ndarray) -> str:
    """BLAKE2b of a chunk's values as stored (strings joined by a unit separator)."""
    values = np.asarray(values)
    if values.dtype.kind in "OTUS":
        payload = "\x1f".join("" if v is None else str(v) for v in values.reshape(-1)).encode()
    else:
        payload = np.ascontiguousarray(values).tobytes()
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def digest_bytes(payload: bytes) -> str:
    """CRC-32 and length of a chunk file's encoded bytes (what the direct chunk writer records).

    A checksum against accidental damage (a deleted, truncated or edited file), the same
    strength as Zarr's own ``crc32c`` codec; measured 5x cheaper than BLAKE2b on compressed
    chunks, where hashing had cost as much as writing the file.
    """
    return f"crc32:{zlib.crc32(payload):08x}:{len(payload)}"


def write_record(state: Path, name: str, token: str, chunks: dict, digests: dict[str, tuple[str, str]]) -> None:
    """Atomically record a block: its token, the chunk index of every variable and their digests.

    ``digests`` maps a variable to ``("file", hex)`` (the chunk file's bytes) or ``("values", hex)``
    (its decoded values, for chunks Zarr wrote).
    """
    record = {
        "token": token,
        "chunks": {v: list(map(int, index)) for v, index in chunks.items()},
        "digests": {v: digests[v][1] for v in chunks},
        "kinds": {v: digests[v][0] for v in chunks},
    }
    put_text(state / "blocks" / name, json.dumps(record))


def read_records(state: Path) -> dict[str, dict]:
    """Parsed records by block id (unparseable or foreign files are left out)."""
    folder = state / "blocks"
    out: dict[str, dict] = {}
    if not folder.exists():
        return out
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("chunks"), dict)
            and isinstance(record.get("digests"), dict)
        ):
            out[path.name] = record
    return out


def _region(array, index) -> tuple[slice, ...]:
    return tuple(
        slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, array.metadata.chunk_grid.chunk_shape, array.shape)
    )


def verify(path: Path, state: Path, tokens: set[str]) -> tuple[set[str], int]:
    """Block ids whose records hold (token of this spec, chunks read back equal to their digests).

    Returns the trusted ids and how many records were dropped (their files are removed).
    """
    import zarr

    from engine.sweep.chunks import chunk_path

    records = read_records(state)
    group = zarr.open_group(url(path), mode="r", use_consolidated=False)
    arrays: dict = {}
    trusted, dropped = set(), 0
    for name, record in records.items():
        ok = record.get("token") in tokens
        kinds = record.get("kinds", {})
        try:
            for var, index in record["chunks"].items() if ok else ():
                if var not in arrays:
                    arrays[var] = group[var]
                array = arrays[var]
                if kinds.get(var) == "file":
                    separator = array.metadata.chunk_key_encoding.separator
                    found = digest_bytes(chunk_path(Path(path) / var, separator, index).read_bytes())
                else:
                    found = digest(array[_region(array, index)])
                if found != record["digests"].get(var):
                    ok = False
                    break
        except Exception:
            ok = False
        if ok:
            trusted.add(name)
        else:
            dropped += 1
            (state / "blocks" / name).unlink(missing_ok=True)
    if not is_remote(state):  # half-written records of a killed run (an object is written whole)
        for leftover in (state / "blocks").glob(".*.tmp*"):
            leftover.unlink(missing_ok=True)
    return trusted, dropped


# ---------------------------------------------------------------------- reading incomplete cubes
def mask_unrecorded(ds, path: Path):
    """An incomplete cube with every chunk no record vouches for read as NaN (lazily), and a warning."""
    state = path.with_name(path.name + ".tokensweep")
    records = read_records(state)
    recorded: dict[str, set[tuple[int, ...]]] = {}
    for record in records.values():
        for var, index in record["chunks"].items():
            recorded.setdefault(var, set()).add(tuple(index))
    warnings.warn(
        f"cube {path} is incomplete ({len(records)} blocks recorded): values not computed read as missing (NaN); "
        "run the same command again to complete it",
        IncompleteCubeWarning,
        stacklevel=3,
    )
    out = ds.copy()
    for name, var in ds.data_vars.items():
        out[name] = var.copy(data=_masked(var.data, recorded.get(name, set())))
    return out


def _masked(data, recorded: set[tuple[int, ...]]):
    """A Dask array whose chunks not in ``recorded`` are NaN (ints and bools become float64)."""
    import dask.array as da

    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(object if data.dtype.kind in "OTUS" else np.float64)

    def keep_or_blank(block, block_info=None):
        location = tuple(block_info[0]["chunk-location"]) if block_info else None
        if location in recorded:
            return block.astype(dtype, copy=False)
        return np.full(block.shape, np.nan if dtype.kind == "f" else None, dtype=dtype)

    if not isinstance(data, da.Array):
        data = da.from_array(data)
    return data.map_blocks(keep_or_blank, dtype=dtype)
