"""``tokensweep best``: the cheapest configuration per group that meets interactivity and latency targets."""

from __future__ import annotations

import sys

from engine.errors import UserError, did_you_mean
from engine.escape import csv_frame
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
        help="also decide separately per value of DIM, e.g. a deployment dim such as parallelism (repeatable); "
        "every dim that is not a deployment choice (model, ISL, hardware, ...) is always kept apart",
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
    for suffix, factor in (
        ("ms", 1e-3),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ns", 1e-9),
        ("min", 60.0),
        ("h", 3600.0),
        ("s", 1.0),
    ):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    value = parse_quantity(text, "--max-ttft") * scale
    if value <= 0:
        raise UserError(f"--max-ttft: must be > 0, got {value:g} s")
    return value


def run(args) -> int:
    from engine.analysis.decisions import axis_edges, cheapest, deployment_dims
    from engine.interfaces.panels import cube_price_note, cube_serving_text
    from engine.interfaces.selection import parse_selection
    from engine.sweep.cube import CubeInfo

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
    over = deployment_dims(ds)
    for dim in args.by:
        if dim not in ds.dims:
            raise UserError(f"--by: '{dim}' is not a dim of the cube ({did_you_mean(dim, list(ds.dims))})")
    by = [d for d in ds.dims if d != "token_type" and (d not in over or d in args.by)]  # never compare workloads
    over = [d for d in over if d not in by]
    if not over:
        raise UserError(
            "best: nothing left to choose (every deployment dim is fixed or in --by); "
            f"the cube's deployment dims: {', '.join(deployment_dims(open_cube_arg(args.cube))) or 'none'}"
        )
    result = cheapest(ds, cost=args.cost, where=where, over=over, by=by).load()
    drawn = "draw" in result.dims and "draw" not in args.by  # Monte Carlo draws: summarised over them
    if drawn:
        from engine.analysis.decisions import over_draws

        result = over_draws(result, args.cost, over)
        by = [d for d in by if d != "draw"]
    edges = axis_edges(result, ds, over)
    if edges is not None:
        result["at_axis_edge"] = edges
    from engine.analysis.breakeven import PRICED

    # The price at which each winner flips: for costs proportional to the price only (not a latency).
    if args.cost in PRICED and "hardware" in result.dims and result.sizes["hardware"] > 1 and not drawn:
        from engine.analysis.breakeven import rival_break_even
        from engine.analysis.uncertainty import rival_win_probability

        result = result.merge(rival_break_even(ds, result, args.cost, over).load())
        confidence = rival_win_probability(ds, result, args.cost)
        if confidence is not None:
            result["win_probability"] = confidence
    frame = result.reset_coords(drop=True).to_dataframe().reset_index()
    frame["qualifies"] = frame[args.cost].notna()  # False: no configuration meets the constraints there
    units = {name: units_of(result[name]) for name in result.data_vars}
    serving = cube_serving_text(ds)
    price_note = cube_price_note(ds)
    if price_note:
        print(f"tokensweep: note: {price_note}", file=sys.stderr)
    chosen_over = f"minimised over {', '.join(over)}; per {', '.join(by) or 'cube'}"
    if drawn:
        chosen_over += f"; over {ds.sizes['draw']:,} draws (median, 5th-95th percentile)"
    complete = CubeInfo.of(ds).complete  # an incomplete cube's winners are among what was computed only
    incomplete = (
        ""
        if complete
        else (
            "the cube is incomplete: uncomputed points read as missing, so a winner is the cheapest of what was computed; "
            "run the sweep again to complete it"
        )
    )
    if args.json:
        selection = {d: v if isinstance(v, str | int | float) else str(v) for d, v in chosen.items()}
        doc = {"units": units, "serving": serving, "price_note": price_note, "minimised_over": over, "per": by,
               "selection": selection,
               "complete": complete, "incomplete_note": incomplete, "best": frame.to_dict(orient="records")}  # fmt: skip
        print(dumps(doc, indent=2))
    elif args.csv:
        frame["cube_complete"] = complete
        csv_frame(frame.rename(columns={c: f"{c} [{units[c]}]" if units.get(c) else c for c in frame.columns})).to_csv(
            sys.stdout, index=False
        )
    else:
        goal = (
            ", ".join(f"{k} {' and '.join(f'{op} {v:g}' for op, v in c.items())}" for k, c in where.items()) or "none"
        )
        print(f"cheapest {args.cost} [{units[args.cost]}] {chosen_over}; constraints: {goal}")
        print(f"serving: {serving}")
        shown = frame.rename(columns={c: f"{c} [{units[c]}]" if units.get(c) else c for c in frame.columns})
        print(shown.to_string(index=False))
        if edges is not None and bool((edges != "").any()):
            print("at_axis_edge: the winner sits at the end of a searched axis; the optimum may lie beyond it")
        if incomplete:
            print(f"note: {incomplete}")
        empty = int((~frame["qualifies"]).sum())
        if empty:
            print(f"note: {empty} of {len(frame)} rows have no configuration that meets the constraints (or fits): "
                  "their cost and choices read NaN")  # fmt: skip
        if "rival" in frame:
            print("break_even: the hourly rate per unit (and the TCO system price per unit) at which a row's "
                  "hardware would cost what its rival, the cheapest other hardware in the same group, does")  # fmt: skip
        if drawn:
            print("over the draws: the cost is the median of each draw's winner (p5, p95 its 5th and 95th percentile); "
                  "the choices are the configuration most draws pick (choice_share of them); win_share: the draws in "
                  "which this hardware is strictly cheaper than every other; qualifying_share: the draws with a "
                  "winner (--by draw lists every draw)")  # fmt: skip
        if "win_probability" in frame:
            print("win_probability: the chance the row is really cheaper than its rival, from the profile's held-out "
                  "errors (GPUs: measured throughput; the wafer: its published-speed fit), each side independent")  # fmt: skip
    return 0
