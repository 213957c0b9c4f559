"""``tokensweep sensitivity``: which assumptions move one figure (or a WSE-3 / GPU ratio) most."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.errors import UserError
from engine.interfaces.cli.common import add_catalog_option
from engine.interfaces.cli.point import add_point_arguments
from engine.interfaces.jsonout import dumps


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sensitivity", help="rank the assumptions and prices by how far each moves a figure of one point (tornado)"
    )
    add_point_arguments(p)
    p.add_argument(
        "--figure",
        default="cost_per_mtok_output_usd",
        help="the figure to move (a point variable; default cost_per_mtok_output_usd)",
    )
    p.add_argument(
        "--vs", metavar="HARDWARE", help="move the ratio of the figure to this hardware's, at the same point"
    )
    p.add_argument(
        "--swing", type=float, default=None, help="factor each value is divided and multiplied by (default 1.25)"
    )
    p.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="an assumption's or a price's own range, e.g. wse3.usd_per_hour=20:80, or wse3.capex_usd=1M:3M "
        "with --price tco (repeatable)",
    )
    p.add_argument("--top", type=int, default=15, help="rows to show (default 15)")
    p.add_argument("-o", "--output", help="also draw the tornado figure here (.png, .svg or .pdf)")
    add_catalog_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


#: What the tornado figure can be written as (matplotlib's vector and raster formats).
FIGURE_FORMATS = (".png", ".svg", ".pdf")


def _range(text: str) -> tuple[str, tuple[float, float]]:
    from engine.units import parse_quantity

    name, sep, span = text.partition("=")
    low, colon, high = span.partition(":")
    if not sep or not colon:
        raise UserError(f"--range: expected NAME=LOW:HIGH, got '{text}'")
    name = name.strip().replace("-", "_") if "." not in name else name.strip()
    lo, hi = parse_quantity(low.strip(), f"--range {name}"), parse_quantity(high.strip(), f"--range {name}")
    if not lo < hi:
        raise UserError(f"--range {name}: LOW must be below HIGH (got {low} and {high})")
    return name, (lo, hi)


def _figure_units(figure: str, rival) -> str:
    """`` USD/Mtok`` for a figure, nothing for a ratio of two (it has no unit)."""
    from engine.model.variables import BY_NAME

    if rival is not None or figure not in BY_NAME:
        return ""
    return f" {BY_NAME[figure].units}"


def _at(point) -> str:
    """The point a sensitivity is taken at, in words."""
    from engine.interfaces.panels import requests

    return (f"{point.model.name}, ISL {point.isl:,.0f} tokens, OSL {point.osl:,.0f} tokens, "
            f"{requests(point.concurrency)}, weights {point.weight_bits:g}-bit, KV {point.kv_bits:g}-bit")  # fmt: skip


def run(args) -> int:
    from engine.analysis.sensitivity import SWING, sensitivity
    from engine.interfaces.cli.point import point_of, refuse_unserved
    from engine.model.catalog import load_catalog
    from engine.model.evaluate import evaluate_point

    if args.top < 1:
        raise UserError(f"--top: must be at least 1 (got {args.top})")
    ranges: dict = {}
    for text in args.range:
        name, span = _range(text)
        if name in ranges:
            raise UserError(f"--range: '{name}' is given twice")
        ranges[name] = span
    if args.output is not None:
        from engine.atomic import check_file_output

        if Path(args.output).suffix.lower() not in FIGURE_FORMATS:
            raise UserError(f"-o: '{args.output}' must end in {', '.join(FIGURE_FORMATS)} (the tornado figure)")
        check_file_output(args.output)
    catalog = load_catalog(args.catalog)
    point = point_of(args, catalog)
    refuse_unserved(point, evaluate_point(point))
    rival = catalog.get_hardware(args.vs) if args.vs else None
    swing = SWING if args.swing is None else args.swing
    base, rows, unmoved, unswung = sensitivity(point, args.figure, rival, swing, ranges)
    what = f"{args.figure} on {point.hardware.name}" + (f" / on {rival.name}" if rival else "")
    if args.json:
        print(dumps({"figure": args.figure, "vs": args.vs, "base": base, "swing": swing,
                     "rows": [{"name": r.name, "low": r.low, "high": r.high, "figure_low": r.figure_low,
                               "figure_high": r.figure_high} for r in rows], "no_effect": unmoved,
                     "not_swung": unswung}, indent=2))  # fmt: skip
    else:
        from engine.analysis.sensitivity import units_of

        unit = _figure_units(args.figure, rival)
        print(f"{what}: {base:.4g}{unit} at {_at(point)}")
        print(f"each value moved to /{swing:g} and x{swing:g} (inside its bounds) unless --range gives it one; "
              "largest effect first")  # fmt: skip
        print(f"  {'assumption or price':<34} {'low':>11} {'high':>11} {'unit':<9} {'figure at low':>13} {'at high':>11}"
              "  change")  # fmt: skip
        for r in rows[: args.top]:
            change = f"{r.figure_low / base - 1:+.1%} / {r.figure_high / base - 1:+.1%}" if base else ""
            print(f"  {r.name:<34} {r.low:>11.4g} {r.high:>11.4g} {units_of(r.name):<9} {r.figure_low:>13.4g} "
                  f"{r.figure_high:>11.4g}  {change}")  # fmt: skip
        if len(rows) > args.top:
            print(f"  ... {len(rows) - args.top} more (--top)")
        if unmoved:
            print(f"no effect here: {', '.join(unmoved)}")
        if unswung:
            print(f"not swung (their value 0 means the catalog's or none; give a --range): {', '.join(unswung)}")
    if args.output:
        from engine.interfaces.figures.tornado import draw_tornado

        figure = what if rival else f"{what} [{_figure_units(args.figure, rival).strip()}]"
        draw_tornado(base, rows[: args.top], figure, _at(point), args.output)
        print(f"figure: {args.output}", file=sys.stderr if args.json else sys.stdout)
    return 0
