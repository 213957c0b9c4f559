"""``tokensweep point``: one configuration, every figure (or a side-by-side with --vs)."""

from __future__ import annotations

from engine.axes import AXES, GRID_AXES
from engine.errors import UserError, said_of
from engine.interfaces.cli.common import add_catalog_option, axis_type, quantity
from engine.interfaces.jsonout import dumps
from engine.model.catalog import DEFAULT_PROFILE
from engine.model.point import CALCULATOR_POINT
from engine.model.uncertain import DISTRIBUTIONS

_HELP = {
    "isl": "average input tokens per turn (default 96.3k)",
    "osl": "output tokens per turn (default: from the workload mix)",
    "concurrency": "concurrent requests per replica",
    "weight_bits": "weight bits per parameter (e.g. 4.25 for MXFP4)",
    "kv_bits": "KV-cache bits per element",
}


def add_parser(sub) -> None:
    p = sub.add_parser("point", help="evaluate one configuration and print every figure")
    add_point_arguments(p)
    p.add_argument(
        "--vs", metavar="HARDWARE", help="compare with another hardware and print the break-even concurrency"
    )
    p.add_argument(
        "--vs-units",
        type=_whole("--vs-units"),
        default=0,
        help="units in the --vs side's replica (default 0: the fewest that hold it); --units applies to --hardware only",
    )
    p.add_argument(
        "--api-price",
        type=quantity("--api-price", 0),
        help="reference API price in USD/Mtok for break-even (with --vs)",
    )
    p.add_argument(
        "--dist",
        action="append",
        type=_distribution,
        default=[],
        metavar="NAME=KIND:ARGS",
        help="draw an assumption or price from a distribution, e.g. wse3.capex_usd=uniform:1M,3M or "
        "mfu_decode=triangular:0.3,0.4,0.6 (kinds: " + ", ".join(DISTRIBUTIONS) + "); repeatable",
    )
    p.add_argument("--draws", type=_whole("--draws"), default=1000, help="draws with --dist (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws with --dist (default 0)")
    add_catalog_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (base units)")


def add_point_arguments(p) -> None:
    """The options that name one configuration (model, lengths, load, bits, hardware, profile,
    overrides): shared by ``point`` and ``sensitivity``."""
    src = p.add_argument_group("model (a catalog preset, or an ad-hoc dense-attention model)")
    src.add_argument("--model", help="catalog model name, e.g. gpt-oss-120b")
    src.add_argument("--params", type=axis_type("params", "--params"), help="ad hoc: total parameters, e.g. 120B")
    src.add_argument(
        "--active-params", type=axis_type("params", "--active-params"), help="ad hoc: active parameters (MoE)"
    )
    for flag in ("layers", "kv-heads", "head-dim", "hidden-size", "attention-heads"):
        src.add_argument(f"--{flag}", type=_whole(f"--{flag}"), help=f"ad hoc: {flag.replace('-', ' ')}")
    for name in GRID_AXES:  # one flag per grid axis, bounds and default from the registry
        axis = AXES[name]
        default = axis.point_default if axis.point_default is not None else (axis.default[0] if axis.default else None)
        bounds = f" ({axis.bounds_text()} {axis.units})"
        p.add_argument(f"--{name.replace('_', '-')}", type=axis_type(name), default=default, help=_HELP[name] + bounds)
    hardware, workload = CALCULATOR_POINT["hardware"], CALCULATOR_POINT["workload"]
    p.add_argument("--hardware", default=hardware, help=f"catalog hardware name (default {hardware})")
    p.add_argument("--workload", default=workload, help=f"workload mix (default {workload})")
    p.add_argument("--price", help="price scenario: " + ", ".join(AXES["price"].choices))
    p.add_argument("--cache-tier", help="cache-read tier for GPUs: " + ", ".join(AXES["cache_tier"].choices))
    p.add_argument(
        "--units",
        type=axis_type("replica_units", "--units"),
        help="units in the replica (default: the fewest that fit)",
    )
    p.add_argument(
        "--parallelism", help="multi-unit layout: " + ", ".join(AXES["parallelism"].choices) + " (default tp)"
    )
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"serving-efficiency profile (default {DEFAULT_PROFILE}; roofline for the bound)",
    )
    p.add_argument(
        "--set",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="override an assumption (repeatable)",
    )


def _whole(flag: str):
    def parse(text: str) -> int:
        from engine.units import parse_quantity

        value = parse_quantity(text, flag)
        if value < 1 or value != int(value):
            raise UserError(f"{flag}: {text} must be a whole number >= 1")
        return int(value)

    return parse


def _distribution(text: str) -> tuple[str, dict]:
    if "=" not in text or ":" not in text.split("=", 1)[1]:
        raise UserError(f"--dist: expected NAME=KIND:ARG,ARG (e.g. wse3.capex_usd=uniform:1M,3M), got '{text}'")
    name, rest = text.split("=", 1)
    kind, args = rest.split(":", 1)
    return name.strip(), {kind.strip(): [a.strip() for a in args.split(",")]}


def uncertain_of(args):
    """The ``--dist`` options as one :class:`~engine.model.uncertain.Uncertain` (None without any)."""
    from engine.model.uncertain import Uncertain

    if not args.dist:
        return None
    names = [n for n, _ in args.dist]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--dist: {', '.join(twice)} given twice; keep one")
    if args.draws < 2:
        raise UserError("--draws: at least 2 draws")
    section = {"distributions": dict(args.dist), "draws": args.draws, "seed": args.seed}
    return Uncertain.parse(section, "--dist")


def _assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"--set: expected NAME=VALUE, got '{text}'")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), value.strip()


def assumptions_of(args, catalog):

    values: dict = dict(args.set)
    for name in ("price", "cache_tier", "parallelism"):
        if getattr(args, name):
            values[name] = getattr(args, name)
    if args.units is not None:
        values["replica_units"] = args.units
    return catalog.assumptions(args.profile, values, "--set ")


def model_of(args, catalog):
    from engine.model.evaluate import adhoc_model

    adhoc = [args.params, args.layers, args.kv_heads, args.head_dim]
    if args.model and any(v is not None for v in [*adhoc, args.active_params]):
        raise UserError(
            "--model: give either --model or the ad-hoc fields (--params --layers --kv-heads --head-dim), not both"
        )
    if args.model:
        return catalog.model(args.model)
    if any(v is None for v in adhoc):
        raise UserError(
            "--model: required (or the ad-hoc fields --params, --layers, --kv-heads and --head-dim together)"
        )
    if args.active_params is not None and args.active_params > args.params:
        raise UserError("--active-params: must not exceed --params")
    name = f"custom-{args.params / 1e9:g}B"
    return adhoc_model(
        args.params,
        args.layers,
        args.kv_heads,
        args.head_dim,
        args.active_params,
        args.hidden_size,
        args.attention_heads,
        name,
    )


def point_of(args, catalog):
    """The :class:`Point` the options name."""
    from engine.model.point import Point

    return Point(
        model=model_of(args, catalog),
        hardware=catalog.get_hardware(args.hardware),
        workload=catalog.workload(args.workload),
        isl=args.isl,
        osl=args.osl,
        concurrency=args.concurrency,
        weight_bits=args.weight_bits,
        kv_bits=args.kv_bits,
        assumptions=assumptions_of(args, catalog),
    )


def run(args) -> int:
    from engine.model.catalog import load_catalog
    from engine.model.evaluate import evaluate_point

    catalog = load_catalog(args.catalog)
    point = point_of(args, catalog)
    uncertain = uncertain_of(args)
    if uncertain is not None and args.vs:
        raise UserError("--dist: not with --vs yet; draw one side at a time (or sweep both with an uncertain: section)")
    if uncertain is not None:
        overlap = sorted(set(uncertain.names) & {k for k, _ in args.set})
        if overlap:
            raise UserError(f"--dist: {', '.join(overlap)} also given with --set; keep one")
    if args.vs:
        from engine.analysis.compare import compare_point
        from engine.interfaces.panels import format_comparison

        if args.vs == point.hardware.name:
            raise UserError(f"--vs: {args.vs} is the --hardware itself; compare with other hardware")
        try:
            other = catalog.get_hardware(args.vs)
        except UserError as err:  # named after the flag, not the catalog section
            raise said_of("--vs", err) from None
        refuse_unserved(point, evaluate_point(point))
        vs_point = point.on(other).at(assumptions=point.assumptions.model_copy(update={"replica_units": args.vs_units}))
        refuse_unserved(vs_point, evaluate_point(vs_point), units_flag="--vs-units")
        comparison = compare_point(point, other, args.api_price, args.vs_units)
        print(dumps(comparison, indent=2) if args.json else format_comparison(point.model, comparison, point.workload))
        return 0
    values = evaluate_point(point)
    refuse_unserved(point, values)
    found = point_intervals(point, catalog.profile(args.profile), values, [k for k, _ in args.set])
    drawn = drawn_quantiles(point, uncertain) if uncertain is not None else None
    if args.json:
        extra = {"drawn": drawn} if drawn is not None else {}
        print(dumps({"model": point.model.name, "hardware": point.hardware.name, **values, "uncertainty": found,
                     **extra}, indent=2))  # fmt: skip
    else:
        from engine.interfaces.panels import format_drawn, format_intervals, format_panel

        print(format_panel(point, values))
        print(format_intervals(found, found["note"]))
        if drawn is not None:
            print(format_drawn(drawn))
    return 0


def drawn_quantiles(point, uncertain) -> dict:
    """The 5th, 50th and 95th percentile over the draws of every figure a draw moves."""
    import numpy as np

    from engine.model.evaluate import evaluate_point_draws
    from engine.model.uncertain import INTERVAL

    levels = (INTERVAL[0], 0.5, INTERVAL[1])
    moved = {}
    drawn = evaluate_point_draws(point, uncertain)
    served = int(np.isfinite(drawn["cost_per_mtok_usd"]).sum())  # draws in which a replica serves the point
    for name, values in drawn.items():
        floating = np.issubdtype(values.dtype, np.floating)
        values = values.astype(np.float64)
        if np.array_equal(values, np.full_like(values, values[0]), equal_nan=True):
            continue  # no draw moves it
        present = values[~np.isnan(values)]
        if not present.size:
            moved[name] = [None, None, None]
            continue
        # Counts, flags and codes take an actual draw's value; figures missing in a draw are left out.
        found = np.quantile(present, levels, method="linear" if floating else "inverted_cdf")
        moved[name] = [float(q) for q in found]
    return {"description": uncertain.describe(cube=False), "levels": list(levels), "quantiles": moved,
            "served_draws": served, "draws": uncertain.draws}  # fmt: skip


def point_intervals(point, profile, values: dict, overridden) -> dict:
    """The point's prediction intervals from its profile's held-out errors, and a note saying
    what they rest on (or why there are none: the wafer, an uncalibrated profile, overrides)."""
    from engine.analysis.uncertainty import intervals

    unc = profile.uncertainty
    from engine.analysis.uncertainty import MEASURED_KINDS

    if point.hardware.kind == "wafer":
        return {"level": None, "intervals": {}, "note": "no measured interval for the wafer: its pipeline latencies are fitted to "
                "published single-stream speeds, not held-out serving measurements"}  # fmt: skip
    if point.hardware.kind not in MEASURED_KINDS:
        return {"level": None, "intervals": {}, "note": f"no measured interval for {point.hardware.name}: no measured serving row "
                f"of {point.hardware.kind} hardware is in the calibration"}  # fmt: skip
    if not unc:
        return {"level": None, "intervals": {}, "note": f"profile {profile.name} has no calibrated uncertainty (tokensweep "
                "calibrate --cv writes one)"}  # fmt: skip
    coverage = unc.get("coverage", {})
    covered = ", ".join(f"{share['all']:.0%} for a new {by}" for by, share in coverage.items() if "all" in share)
    note = (f"{unc['level']:.0%} prediction interval of the measured value, from {profile.name}'s "
            f"{unc['basis']}, held inside the roofline" + (f" (measured coverage: {covered})" if covered else ""))  # fmt: skip
    fitted = set(profile.provenance.get("fitted_parameters", ()))
    if fitted & set(overridden):
        note += f"; --set changed fitted values ({', '.join(sorted(fitted & set(overridden)))}), so it may not hold"
    return {"level": unc["level"], "intervals": {k: list(v) for k, v in intervals(values, unc).items()}, "note": note}


def refuse_unserved(point, values, units_flag: str = "--units") -> None:
    """One line, not a panel of NaN, when no replica serves the point."""
    from engine.units import format_count

    a, model = point.assumptions, point.model
    if not values["within_context"] and a.context_limit == "model":
        raise UserError(
            f"--isl: ISL + OSL = {format_count(point.isl + point.osl)} tokens exceeds {model.name}'s context window of "
            f"{model.max_context:,} tokens (--set context_limit=none extrapolates past it)"
        )
    if values["replica_fits"]:
        return
    word = point.hardware.units_word
    if values["units_needed"] == 0:
        hint = "try --parallelism dp-ep" if a.parallelism != "dp-ep" else "use fewer concurrent requests or fewer bits"
        raise UserError(f"replica: no number of {point.hardware.name} {word} holds {model.name} with this KV in the "
                        f"{a.parallelism} layout ({hint})")  # fmt: skip
    raise UserError(f"{units_flag}: {a.replica_units} {point.hardware.name} {word} cannot hold the replica; it needs "
                    f"{values['units_needed']} in the {a.parallelism} layout")  # fmt: skip
