"""A cube as one flat table (Parquet or CSV), streamed slab by slab so any cube fits in memory.

Each row is one point of the chosen variables' dims; index and catalog coordinates are
columns. Units travel with the table: in Parquet as field metadata (``units``,
``long_name``, and CF flags for booleans), in CSV in the header (``ttft_s [s]``).
By-type variables (over ``token_type``) join only when asked for, since they multiply the
rows by four. The file appears only when complete (written aside, then renamed); ``-o -``
streams it to stdout instead.

Whether the cube was complete travels with the table: a ``cube_complete`` column in CSV (as in
``slice --csv`` and ``best --csv``), the ``cube_complete`` schema metadata in Parquet. In an
incomplete cube the points not yet computed are empty cells (CSV) or nulls (Parquet).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.atomic import check_file_output
from engine.errors import UserError, did_you_mean
from engine.escape import csv_cell, csv_frame
from engine.units import units_of

FORMATS = ("parquet", "csv")
#: Rows per slab written at once (bounds memory whatever the cube's size).
SLAB_ROWS = 1_000_000


def choose_variables(ds, names: list[str] | None) -> list[str]:
    if names:
        names = list(dict.fromkeys(names))
        for name in names:
            if name not in ds.data_vars:
                raise UserError(f"--var: unknown variable '{name}' ({did_you_mean(name, list(ds.data_vars))})")
        return names
    return [name for name in ds.data_vars if "token_type" not in ds[name].dims]


def _slabs(ds, dims: list[str]):
    """Index ranges that keep each slab near SLAB_ROWS rows, in row order, over every dim: a
    dim is split into steps once the dims inside it fit a slab, and taken one label at a time
    while they do not (so no slab holds more than SLAB_ROWS rows, whatever the shape)."""

    def walk(i: int, prefix: dict):
        if i == len(dims):
            yield prefix
            return
        inner = int(np.prod([ds.sizes[d] for d in dims[i + 1 :]]))
        size = ds.sizes[dims[i]]
        if inner > SLAB_ROWS:
            for k in range(size):
                yield from walk(i + 1, {**prefix, dims[i]: slice(k, k + 1)})
            return
        step = max(1, SLAB_ROWS // max(1, inner))
        for start in range(0, size, step):
            yield {**prefix, dims[i]: slice(start, start + step)}

    yield from walk(0, {})


def column_metadata(ds, column: str) -> dict[str, str]:
    attrs = ds[column].attrs if column in ds.variables else {}
    out = {"long_name": str(attrs.get("long_name", column))}
    units = units_of(ds[column]) if column in ds.variables else ""
    if units:
        out["units"] = units
    return out


def check_format(fmt: str) -> None:
    """One line for a format that is unknown, or whose writer is not installed."""
    if fmt not in FORMATS:
        raise UserError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("--format parquet needs pyarrow (pip install 'tokensweep[export]')") from None


def export(ds, output: Path | str, fmt: str, names: list[str] | None = None) -> tuple[int, int]:
    """Write the table (``output`` ``"-"``: to stdout); returns (rows, columns)."""
    from engine.sweep.cube import CubeInfo

    check_format(fmt)
    to_stdout = str(output) == "-"
    if not to_stdout:
        output = check_file_output(output)
        if not output.parent.is_dir():
            raise UserError(f"-o: folder {output.parent} does not exist")
    complete = CubeInfo.of(ds).complete
    variables = choose_variables(ds, names)
    subset = ds[variables]
    subset = subset.drop_vars([c for c in subset.coords if c not in subset.dims and subset[c].dtype == object])
    dims = [d for d in ds.dims if d in subset.dims]
    if to_stdout:
        import sys

        # Parquet is bytes (the raw buffer); CSV goes through stdout's own escaping.
        temporary = sys.stdout.buffer if fmt == "parquet" else sys.stdout
    else:
        temporary = output.with_name(f".{output.name}.tmp{os.getpid()}")
    rows = columns = 0
    writer = None
    try:
        for slab in _slabs(subset, dims):
            frame = subset.isel(slab).load().to_dataframe(dim_order=dims).reset_index()
            for name in frame.columns:  # labels as plain strings (object arrays in the cube)
                if frame[name].dtype == object:
                    frame[name] = frame[name].astype(str)
            if fmt == "csv":
                frame["cube_complete"] = complete  # False: uncomputed points are the empty cells
            rows, columns = rows + len(frame), len(frame.columns)
            if fmt == "csv":
                if writer is None:
                    header = [f"{c} [{u}]" if (u := column_metadata(ds, c).get("units")) else c for c in frame.columns]
                    frame = csv_frame(frame)
                    frame.to_csv(temporary, index=False, header=[csv_cell(h) for h in header])
                    writer = True
                else:
                    csv_frame(frame).to_csv(
                        temporary, index=False, header=False, **({} if to_stdout else {"mode": "a"})
                    )
                continue
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                fields = [
                    field.with_metadata({k.encode(): v.encode() for k, v in column_metadata(ds, field.name).items()})
                    for field in table.schema
                ]
                source = str(ds.attrs.get("title", "tokensweep cube")).encode()
                schema = pa.schema(
                    fields, metadata={b"source": source, b"cube_complete": str(complete).lower().encode()}
                )
                writer = pq.ParquetWriter(temporary, schema)
            writer.write_table(table.cast(schema))
        if fmt == "parquet" and writer is not None:
            writer.close()
        if to_stdout:
            temporary.flush()
        else:
            os.replace(temporary, output)
    except BaseException:
        if fmt == "parquet" and writer not in (None, True):
            writer.close()
        if not to_stdout:
            temporary.unlink(missing_ok=True)
        raise
    return rows, columns
