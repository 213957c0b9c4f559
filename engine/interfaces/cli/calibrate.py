"""``tokensweep calibrate``: fit a serving-efficiency profile to measured benchmark rows."""

from __future__ import annotations

import math
import sys

from engine.interfaces.cli.common import add_catalog_option


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a serving-efficiency profile to measured serving data")
    p.add_argument("data", nargs="*", help="measured GPU rows (CSV in the formats of engine/data/calibration/)")
    p.add_argument(
        "--wafer",
        nargs="?",
        const="",
        metavar="CSV",
        help="also fit the WSE-3 pipeline latencies to published single-stream speeds "
        "(default: engine/data/calibration/published-wse3.csv; such files among DATA are fitted the same way)",
    )
    p.add_argument(
        "--fit", action="append", metavar="NAME", help="assumption to fit (repeatable; default: the serving set)"
    )
    p.add_argument(
        "--cv",
        action="append",
        choices=["hardware", "model", "length"],
        help="also cross-validate, holding out one group at a time (repeatable)",
    )
    p.add_argument("-o", "--output", help="write the profile here (a catalog YAML file usable with --catalog)")
    p.add_argument("--name", default="calibrated", help="profile name (default calibrated)")
    p.add_argument("--description", default="", help="what the profile is, for the catalog")
    p.add_argument("--all-runs", action="store_true", help="use every run, not only the latest per configuration")
    p.add_argument("--rows", action="store_true", help="also print every row's errors (one line per measured row)")
    add_catalog_option(p)


def run(args) -> int:
    import yaml

    from engine.analysis import calibrate as cal
    from engine.analysis import wafer
    from engine.errors import UserError
    from engine.model.catalog import load_catalog

    catalog = load_catalog(args.catalog)
    if args.output:  # before any fit: never the measured data itself, a link, a folder or inside a cube
        from engine.atomic import check_file_output

        check_file_output(args.output, [*args.data, *([args.wafer] if args.wafer else [])])
    if not args.data and args.wafer is None:
        raise UserError("data: give measured GPU rows, --wafer, or both")
    wafer_files = [path for path in args.data if wafer.is_wafer_file(path)]  # published WSE-3 speeds
    if args.wafer is not None:
        wafer_files.append(args.wafer or str(wafer.shipped_rows_path()))
    args.data = [path for path in args.data if path not in wafer_files]
    wafer_fit = _wafer(wafer_files, catalog) if wafer_files else None
    if not args.data:
        sys.stdout.flush()
        return 0
    rows, skipped = [], 0
    for path in args.data:
        for row in cal.read_rows(path, latest_only=not args.all_runs):
            if row.hardware in catalog.hardware and row.model in catalog.models:
                rows.append(row)
            else:
                skipped += 1
    if not rows:
        raise UserError("data: no row names a catalog model and hardware")
    names = tuple(args.fit) if args.fit else cal.DEFAULT_FIT
    from engine.interfaces.progress import fit_lines, progress_interval

    interval = progress_interval()  # checked before minutes of fitting
    started = f"fitting {len(names)} assumptions to {len(rows):,} rows ..."
    result = cal.fit(rows, catalog, names, progress=fit_lines(interval, first=started))
    print(
        f"fitted {len(names)} assumptions to {len(rows)} rows ({skipped} skipped: hardware or model not in the catalog)"
    )
    for name, value in result.parameters.items():
        spread = result.standard_errors.get(name)
        print(f"  {name:<28} {value:.4g}" + (f" +- {spread:.2g} (1 standard error)" if spread else ""))
    for framework, value in result.framework_factors.items():
        spread = result.standard_errors.get(f"{cal.FRAMEWORK_FACTOR}@{framework}")
        print(f"  {cal.FRAMEWORK_FACTOR + ' ' + framework:<28} {value:.4g}"
              + (f" +- {spread:.2g} (1 standard error)" if spread else "") + f" (profile {args.name}-{framework})")  # fmt: skip
    if result.framework_factors:
        print(f"  ({cal.FRAMEWORK_FACTOR} above, for the other frameworks' rows and profile {args.name}: "
              "the frameworks' geometric mean)")  # fmt: skip
    for pair, rho in result.correlation.items():
        print(f"  strongly correlated: {pair} {rho:+.2f} (the prior holds them apart)")
    if args.rows:
        print("per row: predicted / measured - 1")
        print(
            f"  {'hardware':<10} {'model':<15} {'framework':<8} {'ISL/OSL':<11} {'units':>5} {'layout':<6} {'R':>6}  errors"
        )
        for row, pred in zip(result.rows, result.predictions):
            errors = ", ".join(f"{k} {pred[k] / v - 1:+.0%}" for k, v in row.measured.items())
            concurrency = f"{row.concurrency:g}" if row.concurrency is not None else "max"
            print(f"  {row.hardware:<10} {row.model:<15} {row.framework:<8} {row.length:<11} {row.units:>5} "
                  f"{row.parallelism:<6} {concurrency:>6}  {errors}")  # fmt: skip
    else:
        print(f"  (--rows prints each of the {len(result.rows)} rows' errors)")
    print("summary: |predicted / measured - 1|")
    _print_summary(result.summary(), "  ")
    cv, held = {}, {}
    for by in dict.fromkeys(args.cv or ()):
        print(f"cross-validation by {by} (each group predicted by a fit without it):", flush=True)
        held[by] = cal.held_out(
            rows,
            catalog,
            by,
            names,
            progress=lambda group: print(f"  fitting without {group} ...", file=sys.stderr, flush=True),
        )
        cv[by] = cal.held_out_summary(held[by])
        for group, summary in cv[by].items():
            print(f"  {group}")
            _print_summary(summary, "    ")
    uncertainty = _uncertainty(held)
    if args.output:
        document = cal.profile_document(args.name, result, args.data, cv, args.description, uncertainty)
        if wafer_fit is not None:
            entry = document["profiles"][args.name]
            for profile in document["profiles"].values():
                profile["parameters"].update(wafer_fit.parameters)
            entry["provenance"]["wafer"] = wafer_provenance(wafer_fit, wafer_files)
        import shlex

        from engine.atomic import atomic_path
        from engine.escape import terminal

        words = sys.argv[2:] if sys.argv[1:2] == ["calibrate"] else []
        # One comment line, whatever an argument holds (a newline in --description stays "\n").
        header = "# Written by: tokensweep calibrate " + terminal(" ".join(shlex.quote(w) for w in words)).replace(
            "\n", "\\n"
        )
        with atomic_path(args.output, inputs=[*args.data, *wafer_files]) as temporary:
            temporary.write_text(header + "\n" + yaml.safe_dump(document, sort_keys=False, width=110))
        print(f"profile {args.name}: {args.output} (use with --catalog {args.output} --profile {args.name})")
    sys.stdout.flush()
    return 0


def _uncertainty(held: dict) -> dict | None:
    """Prediction intervals from the held-out errors (by model and by hardware where both were
    cross-validated: a new configuration is most often a new model or new hardware), printed
    with their cross-conformal coverage. None without --cv."""
    from engine.analysis import uncertainty as unc

    if not held:
        return None
    basis = [by for by in ("model", "hardware") if by in held] or list(held)
    found = unc.profile_uncertainty(held, basis)
    print(f"{found['level']:.0%} prediction intervals ({found['basis']}): measured / predicted within")
    for metric, (lo, hi) in found["log_ratio_quantiles"].items():
        level = found["quantile_levels"][metric]
        print(f"  {metric:<26} x{math.exp(lo):.3g} to x{math.exp(hi):.3g} (the {level:.0%} quantiles, widened to cover "
              f"{found['level']:.0%} of held-out groups)")  # fmt: skip
    print("  coverage of new groups (nested: each group's interval chosen from the other groups' errors only):")
    for by, shares in found["coverage"].items():
        text = ", ".join(f"{metric} {share:.0%}" for metric, share in shares.items())
        print(f"    held out by {by}: {text}")
    return found


def _wafer(paths, catalog):
    """Fit and print the wafer pipeline latencies (engine.analysis.wafer)."""
    import numpy as np

    from engine.analysis import wafer

    result = wafer.fit([row for path in paths for row in wafer.read_rows(path)], catalog)
    fixed = f" ({', '.join(result.fixed_at_zero)} fixed at 0 by cross-validation)" if result.fixed_at_zero else ""
    print(f"wafer pipeline fitted to {len(result.rows)} published WSE-3 speeds{fixed}")
    for name, value in result.parameters.items():
        print(f"  {name:<28} {value * 1e6:.3f} µs")
    for pair, rho in result.correlation.items():
        print(f"  correlation if all were fitted: {pair} {rho:+.2f}")
    print(
        f"  {'model':<18} {'published':>10} {'fitted':>10} {'error':>7} {'held out':>9}  (output tokens/s, one request)"
    )
    for row, predicted in zip(result.rows, result.predicted_tps):
        held = result.cross_validation.get(row.model)
        note = "  speculative decoding: not in the latency fit" if row.speculative else ""
        error = "" if row.speculative else f"{predicted / row.interactivity_tps - 1:+.0%}"
        print(f"  {row.model:<18} {row.interactivity_tps:>10,.0f} {predicted:>10,.0f} {error:>7} "
              f"{'' if held is None else f'{held:+.0%}':>9}{note}")  # fmt: skip
    errors = result.errors()
    held = np.abs(list(result.cross_validation.values()))
    print(f"  |error| median {np.median(errors):.0%}, max {errors.max():.0%}; held out median {np.median(held):.0%}, "
          f"max {held.max():.0%}")  # fmt: skip
    if result.acceptance is not None:
        print(f"  speculative rows: acceptance {result.acceptance:.2f} at {wafer.DRAFT_TOKENS} drafted tokens, "
              f"draft ratio {wafer.DRAFT_RATIO:.3f} (the rate that gives the published speed)")  # fmt: skip
    return result


def wafer_provenance(result, files) -> dict:
    """What the wafer fit was made from and how well it does, for the profile's provenance."""
    from pathlib import Path

    import numpy as np

    held = np.abs(list(result.cross_validation.values()))
    return {
        "data": [Path(f).name for f in files],
        "rows": len(result.rows),
        "fixed_at_zero": list(result.fixed_at_zero),
        "error": {"median": float(np.median(result.errors())), "max": float(result.errors().max())},
        "cross_validation_by_model": {"median": float(np.median(held)), "max": float(held.max())},
        "speculative_acceptance": result.acceptance,
    }


def _print_summary(summary: dict, indent: str) -> None:
    for metric, s in summary.items():
        if s.get("n"):
            print(
                f"{indent}{metric:<26} median {s['median']:.1%}, p90 {s['p90']:.1%}, max {s['max']:.1%} ({s['n']} rows)"
            )
