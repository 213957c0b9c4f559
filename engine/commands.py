"""Sweep-side subcommands: catalog, plan, run, show, slice, plot."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from engine.errors import UserError, did_you_mean
from engine.units import format_bytes, parse_quantity


def add_parsers(sub) -> None:
    c = sub.add_parser("catalog", help="list catalog models, hardware and workloads")
    c.add_argument("--catalog", action="append", default=[], metavar="PATH", help="extra catalog file (repeatable)")

    for name, text in (("plan", "validate a sweep and print its grid, chunks, sizes and estimated time (writes nothing)"),
                       ("run", "run a sweep into a Zarr v3 cube (resumes an interrupted run)")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("spec", help="sweep YAML file, e.g. sweeps/cerebras_phase.yaml")
        p.add_argument("--catalog", action="append", default=[], metavar="PATH", help="extra catalog file (repeatable)")
        p.add_argument("--max-points", type=lambda t: parse_quantity(t, "--max-points"), help="size budget (overrides the spec's max_points)")
        p.add_argument("--output", help="store path ending in .zarr (default outputs/<name>.zarr)")
        p.add_argument("--scheduler", help="threads (default), processes, sync or tcp://HOST:PORT")
        p.add_argument("--workers", type=lambda t: int(parse_quantity(t, "--workers")), help="local worker count (default: cores)")
        p.add_argument("--profile", help="named execution profile from --profiles")
        p.add_argument("--profiles", default="profiles.yaml", help="profiles file (default ./profiles.yaml)")
        if name == "run":
            p.add_argument("--overwrite", action="store_true", help="replace a store written by a different spec")
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
            p.add_argument("--no-figures", action="store_true", help="skip the figures the spec asks for")

    s = sub.add_parser("show", help="describe a cube: dims, variables with units, provenance")
    s.add_argument("cube")

    sl = sub.add_parser("slice", help="select values from a cube (nearest on numeric axes)")
    sl.add_argument("cube")
    sl.add_argument("--var", required=True, help="variable name, e.g. cost_per_mtok_usd")
    sl.add_argument("--sel", action="append", default=[], metavar="DIM=VALUE", help="selection (repeatable), e.g. isl=1M")
    fmt = sl.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout")

    from engine import plots

    plots.add_parser(sub)


def dispatch(args) -> int:
    handlers = {"catalog": run_catalog, "plan": run_plan, "run": run_run, "show": run_show, "slice": run_slice, "plot": run_plot}
    return handlers[args.command](args)


def run_plot(args) -> int:
    from engine import plots

    return plots.run(args)


def run_catalog(args) -> int:
    from engine.catalog import load_catalog
    from engine.units import format_count

    cat = load_catalog(args.catalog)
    print(f"catalog {cat.fingerprint} ({', '.join(cat.files)})")
    print("models:")
    for m in cat.models.values():
        kv = m.kv_elements_per_token_full
        print(f"  {m.name:<24} {format_count(m.total_params):>6} params, {format_count(m.active_params):>6} active, "
              f"{m.layers:>3} layers, {m.attention}, {kv:,.0f} KV elements/token (full context)")  # fmt: skip
    print("hardware:")
    for h in cat.hardware.values():
        rates = ", ".join(f"{k} ${v:g}/h" for k, v in h.usd_per_hour.items()) or "TCO-derived rate"
        print(f"  {h.name:<12} {h.kind:<9} {h.memory_gb:g} GB, {h.memory_bw_tbs:g} TB/s, {rates}")
    print("workloads:")
    for w in cat.workloads.values():
        print(f"  {w.name:<20} cache read {w.cache_read:g}, cache write {w.cache_write:g}, input {w.input:g}, output {w.output:g}")
    return 0


def _plan(args):
    from engine.catalog import load_catalog
    from engine.grid import make_plan
    from engine.spec import load_spec

    spec = load_spec(args.spec)
    if args.max_points is not None:
        spec = spec.model_copy(update={"max_points": args.max_points})
    return make_plan(spec, load_catalog(args.catalog))


def _profile(args):
    from engine import cluster

    if args.profile:
        return cluster.load_profile(args.profile, args.profiles)
    return cluster.resolve(args.scheduler, args.workers)


def run_plan(args) -> int:
    from engine.grid import evaluate_block
    from engine.store import check_output, default_output

    plan = _plan(args)
    profile = _profile(args)
    output = check_output(args.output or plan.spec.output or default_output(plan))
    first = next(plan.blocks())
    evaluate_block(plan, first)  # compile / load kernels before timing
    started = time.perf_counter()
    evaluate_block(plan, first)
    per_block = time.perf_counter() - started
    local = profile.scheduler in ("threads", "processes")
    workers = (profile.workers or os.cpu_count() or 1) if local else 1
    estimate = per_block * plan.n_blocks / max(1, workers)
    shape = ", ".join(f"{d} {n}" for d, n in plan.shape.items())
    chunks = ", ".join(f"{d} {n}" for d, n in plan.chunks.items())
    print(f"sweep {plan.spec.name} -> {output}")
    print(f"  grid          {shape}")
    print(f"  points        {plan.n_points:,}")
    print(f"  variables     {len(plan.variables)} ({', '.join(v.name for v in plan.variables)})")
    print(f"  chunks        {chunks}: {plan.n_blocks:,} blocks")
    print(f"  memory        {format_bytes(plan.bytes_per_block())} per block in flight (x workers)")
    print(f"  on disk       {format_bytes(plan.bytes_on_disk())} before compression ({plan.spec.precision})")
    print(f"  estimated     {estimate:,.1f} s of compute on {profile.describe()} "
          f"(one block took {per_block * 1e3:.1f} ms; Zarr writes add to this)")  # fmt: skip
    return 0


def run_run(args) -> int:
    from engine.store import run_sweep

    plan = _plan(args)
    profile = _profile(args)
    result = run_sweep(plan, args.output, profile, overwrite=args.overwrite, progress=not args.no_progress)
    print(result.summary())
    if plan.spec.figures and not args.no_figures:
        from engine import plots

        for kind in plan.spec.figures:
            path = plots.default_figure_path(result.path, kind)
            plots.draw(kind, result.path, path)
            print(f"figure {kind}: {path}")
    return 0


def _open(path: str):
    from engine.store import open_cube

    return open_cube(Path(path))


def run_show(args) -> int:
    ds = _open(args.cube)
    spec = json.loads(ds.attrs.get("spec", "{}"))
    state = "complete" if int(ds.attrs.get("complete", 0)) else "INCOMPLETE (run the sweep again to resume)"
    print(f"cube {args.cube}: sweep '{spec.get('name', '?')}', {state}")
    print(f"  engine {ds.attrs.get('engine_version')}, catalog {ds.attrs.get('catalog_fingerprint')}, "
          f"spec {ds.attrs.get('spec_fingerprint')}, created {ds.attrs.get('created')}")  # fmt: skip
    print("dims:")
    for dim, size in ds.sizes.items():
        values = ds[dim].values
        units = ds[dim].attrs.get("units", "")
        span = f"{values[0]} .. {values[-1]}" if size > 1 else f"{values[0]}"
        print(f"  {dim:<22} {size:>6}  {span} {units}".rstrip())
    print("variables:")
    for name, var in ds.data_vars.items():
        print(f"  {name:<28} [{var.attrs.get('units', '')}] ({', '.join(var.dims)})  {var.attrs.get('long_name', '')}")
    print("assumptions:", ds.attrs.get("assumptions"))
    return 0


def _selection(ds, items: list[str]) -> tuple[dict, dict]:
    """--sel items split into exact (labels) and nearest (numeric) selections."""
    from engine.plots import parse_selection

    chosen = parse_selection(ds, items)
    nearest = {d: v for d, v in chosen.items() if ds[d].dtype.kind in "iuf"}
    return {d: v for d, v in chosen.items() if d not in nearest}, nearest


def run_slice(args) -> int:
    ds = _open(args.cube)
    if args.var not in ds.data_vars:
        raise UserError(f"--var: unknown variable '{args.var}' ({did_you_mean(args.var, list(ds.data_vars))})")
    exact, nearest = _selection(ds, args.sel)
    da = ds[args.var]
    exact = {d: v for d, v in exact.items() if d in da.dims}
    nearest = {d: v for d, v in nearest.items() if d in da.dims}
    if exact:
        da = da.sel(exact)
    if nearest:
        da = da.sel(nearest, method="nearest")
    # Keep the dims and the value; catalog fields stay in `tokensweep show`.
    da = da.reset_coords(drop=True).load()
    units = da.attrs.get("units", "")
    if args.json:
        frame = da.to_dataframe().reset_index()
        print(frame.to_json(orient="records", double_precision=15))
    elif args.csv:
        da.to_dataframe().reset_index().to_csv(sys.stdout, index=False)
    elif da.ndim == 0:
        where = ", ".join(f"{c}={da[c].values}" for c in da.coords if da[c].ndim == 0 and c in ds.dims)
        print(f"{args.var} = {da.values.item():.6g} {units} at {where}")
    else:
        frame = da.to_dataframe().reset_index()
        print(f"{args.var} [{units}]")
        print(frame.to_string(index=False))
    return 0
