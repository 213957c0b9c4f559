"""``tokensweep export``: a whole cube (or some variables) as one Parquet or CSV table."""

from __future__ import annotations

from pathlib import Path

from engine.atomic import check_file_output
from engine.errors import UserError
from engine.interfaces.cli.common import open_cube_arg


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a cube as one table: Parquet (units in the schema) or CSV")
    p.add_argument("cube")
    p.add_argument("--format", help="parquet or csv (default: from -o's suffix, else parquet)")
    p.add_argument("--var", action="append", help="variable to export (repeatable; default: all but by-type)")
    p.add_argument(
        "-o", "--output", help="table file, or - for stdout (default: beside the cube, <cube>.parquet or .csv)"
    )


def run(args) -> int:
    import sys

    from engine.interfaces.export import check_format, export
    from engine.sweep.cube import CubeInfo
    from engine.sweep.location import beside
    from engine.units import format_bytes

    suffix = Path(args.output).suffix.lower().lstrip(".") if args.output and args.output != "-" else ""
    if args.format is None:
        args.format = suffix if suffix in ("csv", "parquet") else "parquet"
    elif suffix in ("csv", "parquet") and suffix != args.format:
        raise UserError(f"-o: '{args.output}' ends in .{suffix} but --format is {args.format}")
    check_format(args.format)  # before a default path is made (a remote cube's makes outputs/)
    ds = open_cube_arg(args.cube)
    if args.output == "-":
        if args.format == "parquet" and sys.stdout.isatty():
            raise UserError("-o -: Parquet is binary; redirect stdout to a file or a pipe (or use --format csv)")
        rows, columns = export(ds, "-", args.format, args.var)
        print(f"exported {rows:,} rows x {columns} columns to stdout", file=sys.stderr)
    else:
        output = Path(args.output) if args.output else beside(args.cube, f".{args.format}")
        check_file_output(output, [args.cube])
        rows, columns = export(ds, output, args.format, args.var)
        print(f"exported {rows:,} rows x {columns} columns to {output} ({format_bytes(output.stat().st_size)})")
    if not CubeInfo.of(ds).complete:
        print(
            "tokensweep: note: the cube is incomplete: points not yet computed are empty (CSV) or null (Parquet); "
            "the table's cube_complete says so too",
            file=sys.stderr,
        )
    return 0
