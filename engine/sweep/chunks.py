"""Chunks encoded where they are computed and put into a local store as files.

Zarr's own write path sends every chunk through one asyncio event loop per process, which
needs the GIL at each step: threads writing blocks queue behind it (measured in the scaling
issue: threads spent most of their time waiting in zarr's ``sync()``). For a local store
this module does what Zarr would do, from the calling thread: pad an edge chunk with the
fill value, encode it with the array's own codec chain (little-endian bytes, then Blosc,
which releases the GIL while compressing) and write the file atomically under the array's
chunk key. Only arrays whose metadata is exactly that chain (the ones tokensweep creates)
take this path; anything else goes through Zarr.

The files are ordinary Zarr v3 chunks: any Zarr reader opens the cube.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import UserError


@dataclass(frozen=True)
class ChunkLayout:
    """What encoding one array's chunks needs, read once from its ``zarr.json``."""

    folder: Path
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    dtype: np.dtype
    fill: object
    separator: str
    codec: object  # numcodecs.Blosc

    def key(self, index: tuple[int, ...]) -> Path:
        return chunk_path(self.folder, self.separator, index)

    def encode(self, values: np.ndarray) -> bytes:
        values = np.asarray(values, dtype=self.dtype)
        if values.shape != self.chunk_shape:  # an edge chunk: Zarr stores chunks at full shape
            full = np.full(self.chunk_shape, self.fill, dtype=self.dtype)
            full[tuple(slice(0, n) for n in values.shape)] = values
            values = full
        return self.codec.encode(np.ascontiguousarray(values, dtype=self.dtype.newbyteorder("<")))

    def write(self, index: tuple[int, ...], payload: bytes) -> None:
        target = self.key(index)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = target.parent
        while True:  # no link between the array and its chunk: a planted one would redirect the write
            if folder.is_symlink():
                raise UserError(f"store: {folder} is a symlink inside the store; refusing to write chunks through it")
            if folder == self.folder or folder == folder.parent:
                break
            folder = folder.parent
        temporary = target.with_name(f".{target.name}.tmp{os.getpid()}.{id(payload)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, target)


def chunk_path(folder: Path, separator: str, index) -> Path:
    """Where Zarr v3's default chunk key encoding puts chunk ``index`` of the array in ``folder``."""
    if separator == "/":
        return folder.joinpath("c", *map(str, index))
    return folder / ("c" + "".join("." + str(i) for i in index))


_FILLS = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


@lru_cache(maxsize=512)
def layout(store: str, name: str, fingerprint: str) -> ChunkLayout | None:
    """The array's chunk layout when tokensweep can write its chunks itself, else None.

    ``fingerprint`` keys out layouts cached for an overwritten store.
    """
    import numcodecs

    if "://" in store:  # a remote store: its chunks go through Zarr's fsspec store
        return None
    folder = Path(store) / name
    try:
        meta = json.loads((folder / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    codecs = meta.get("codecs", [])
    dtype = meta.get("data_type")
    if (
        meta.get("node_type") != "array"
        or meta.get("chunk_grid", {}).get("name") != "regular"
        or meta.get("chunk_key_encoding", {}).get("name") != "default"
        or not isinstance(dtype, str)
        or dtype not in ("float64", "float32", "int64", "int32", "int8", "uint8", "bool")
        or len(codecs) != 2
        or codecs[0].get("name") != "bytes"
        or codecs[0].get("configuration", {}).get("endian", "little") != "little"  # no endian: one-byte types
        or codecs[1].get("name") != "blosc"
    ):
        return None
    blosc = codecs[1]["configuration"]
    shuffle = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE,
               "bitshuffle": numcodecs.Blosc.BITSHUFFLE}[blosc.get("shuffle", "shuffle")]  # fmt: skip
    fill = meta.get("fill_value")
    fill = _FILLS.get(fill, fill) if isinstance(fill, str) else fill
    return ChunkLayout(
        folder=folder,
        shape=tuple(meta["shape"]),
        chunk_shape=tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]),
        dtype=np.dtype(dtype),
        fill=fill,
        separator=meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/"),
        codec=numcodecs.Blosc(
            cname=blosc["cname"], clevel=blosc["clevel"], shuffle=shuffle, blocksize=blosc.get("blocksize", 0)
        ),
    )
