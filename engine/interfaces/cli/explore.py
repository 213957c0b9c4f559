"""``tokensweep explore``: the calculator's panels over a cube, as one offline HTML page."""

from __future__ import annotations

from engine.interfaces.cli.common import open_cube_arg
from engine.interfaces.selection import add_nearest_option
from engine.units import parse_bytes


def add_parser(sub) -> None:
    p = sub.add_parser("explore", help="write an interactive HTML page of a cube (works offline, one file)")
    p.add_argument("cube", help="a cube written by tokensweep run")
    p.add_argument("-o", "--output", help="page file (.html); default <cube>_explorer.html next to the cube")
    p.add_argument(
        "--sel",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="fix an axis (repeatable) to make a page smaller",
    )
    add_nearest_option(p)
    p.add_argument(
        "--vars", action="append", default=[], metavar="NAME[,NAME]", help="variables to include (default all)"
    )
    p.add_argument(
        "--max-size", type=lambda t: parse_bytes(t, "--max-size"), default="50MB",
        help="largest data the page may embed, before compression (default 50MB)",
    )  # fmt: skip


def run(args) -> int:
    from pathlib import Path

    from engine.interfaces.explorer import explore
    from engine.units import format_bytes

    open_cube_arg(args.cube)  # one-line error for a path that is not a cube
    variables = [v.strip() for item in args.vars for v in item.split(",") if v.strip()] or None
    page = explore(args.cube, args.output, args.sel, args.nearest, variables, args.max_size)
    print(f"explorer: {page} ({format_bytes(Path(page).stat().st_size)}; open it in a browser, no network needed)")
    return 0
