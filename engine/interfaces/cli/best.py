"""``tokensweep best``: the cheapest configuration per group that meets interactivity and latency targets."""

from __future__ import annotations

import sys

from engine.errors import UserError
from engine.interfaces.cli.common import open_cube_arg, quantity
from engine.interfaces.jsonout import dumps
from engine.interfaces.selection import add_nearest_option
from engine.units import units_of


def add_parser(sub) -> None:
    p = sub.add_parser("best", help="cheapest configuration per group under interactivity / TTFT / size limits")
    p.add_argument("cube")
    p.add_argument(
        "--cost", default="cost_per_mtok_output_usd", help="variable to minimise (default cost_per_mtok_output_usd)"
    )
    p.add_argument("--min-interactivity", type=quantity("--min-interactivity", 0), help="tokens/s per user, at least")
    p.add_argument("--max-ttft", type=_seconds, help="time to first token, at most (e.g. 2s, 500ms)")
    p.add_argument("--max-units", type=quantity("--max-units", 1), help="units per replica, at most")
    p.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="DIM",
        help="decide separately per value of DIM (repeatable; default hardware)",
    )
    p.add_argument("--sel", action="append", default=[], metavar="DIM=VALUE", help="fix a dim first (repeatable)")
    add_nearest_option(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout")


def _seconds(text: str) -> float:
    from engine.units import parse_quantity

    text = text.strip()
    scale = 1.0
    for suffix, factor in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    value = parse_quantity(text, "--max-ttft") * scale
    if value <= 0:
        raise UserError(f"--max-ttft: must be > 0, got {value:g} s")
    return value


def run(args) -> int:
    from engine.analysis.decisions import cheapest
    from engine.interfaces.panels import cube_serving_text
    from engine.interfaces.selection import parse_selection

    ds = open_cube_arg(args.cube)
    chosen = parse_selection(ds, args.sel, args.nearest)
    if chosen:
        ds = ds.sel(chosen)
    where: dict = {}
    if args.min_interactivity is not None:
        where["interactivity_tps"] = {"ge": args.min_interactivity}
    if args.max_ttft is not None:
        where["ttft_s"] = {"le": args.max_ttft}
    if args.max_units is not None:
        where["units_per_replica"] = {"le": args.max_units}
    by = args.by or (["hardware"] if "hardware" in ds.dims else [])
    result = cheapest(ds, cost=args.cost, where=where, by=by).load()
    frame = result.reset_coords(drop=True).to_dataframe().reset_index()
    units = {name: units_of(result[name]) for name in result.data_vars}
    serving = cube_serving_text(ds)
    if args.json:
        print(dumps({"units": units, "serving": serving, "best": frame.to_dict(orient="records")}, indent=2))
    elif args.csv:
        frame.rename(columns={c: f"{c} [{units[c]}]" if units.get(c) else c for c in frame.columns}).to_csv(
            sys.stdout, index=False
        )
    else:
        goal = (
            ", ".join(f"{k} {' and '.join(f'{op} {v:g}' for op, v in c.items())}" for k, c in where.items()) or "none"
        )
        print(f"cheapest {args.cost} [{units[args.cost]}] per {', '.join(by) or 'cube'}; constraints: {goal}")
        print(f"serving: {serving}")
        shown = frame.rename(columns={c: f"{c} [{units[c]}]" if units.get(c) else c for c in frame.columns})
        print(shown.to_string(index=False))
    return 0
