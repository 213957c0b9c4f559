"""``tokensweep calibrate``: fit a serving-efficiency profile to measured benchmark rows."""

from __future__ import annotations

import sys

from engine.interfaces.cli.common import add_catalog_option


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a serving-efficiency profile to measured serving data")
    p.add_argument("data", nargs="+", help="measured rows (CSV in the formats of engine/data/calibration/)")
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
    add_catalog_option(p)


def run(args) -> int:
    import yaml

    from engine.analysis import calibrate as cal
    from engine.errors import UserError
    from engine.model.catalog import load_catalog

    catalog = load_catalog(args.catalog)
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
    result = cal.fit(rows, catalog, names)
    print(
        f"fitted {len(names)} assumptions to {len(rows)} rows ({skipped} skipped: hardware or model not in the catalog)"
    )
    for name, value in result.parameters.items():
        print(f"  {name:<28} {value:.4g}")
    print("per row: log error = log(predicted / measured)")
    print(
        f"  {'hardware':<10} {'model':<15} {'framework':<8} {'ISL/OSL':<11} {'units':>5} {'layout':<6} {'R':>6}  errors"
    )
    for row, pred in zip(result.rows, result.predictions):
        errors = ", ".join(f"{k} {pred[k] / v - 1:+.0%}" for k, v in row.measured.items())
        concurrency = f"{row.concurrency:g}" if row.concurrency is not None else "max"
        print(f"  {row.hardware:<10} {row.model:<15} {row.framework:<8} {row.length:<11} {row.units:>5} "
              f"{row.parallelism:<6} {concurrency:>6}  {errors}")  # fmt: skip
    print("summary: |predicted / measured - 1|")
    _print_summary(result.summary(), "  ")
    cv = {}
    for by in args.cv or ():
        cv[by] = cal.cross_validate(rows, catalog, by, names)
        print(f"cross-validation by {by} (each group predicted by a fit without it):")
        for group, summary in cv[by].items():
            print(f"  {group}")
            _print_summary(summary, "    ")
    if args.output:
        from pathlib import Path

        document = cal.profile_document(args.name, result, args.data, cv, args.description)
        header = (
            "# Written by: tokensweep calibrate "
            + " ".join(sys.argv[2:] if sys.argv[1:2] == ["calibrate"] else [])
            + "\n"
        )
        Path(args.output).write_text(header + yaml.safe_dump(document, sort_keys=False, width=110))
        print(f"profile {args.name}: {args.output} (use with --catalog {args.output} --profile {args.name})")
    sys.stdout.flush()
    return 0


def _print_summary(summary: dict, indent: str) -> None:
    for metric, s in summary.items():
        if s.get("n"):
            print(
                f"{indent}{metric:<26} median {s['median']:.1%}, p90 {s['p90']:.1%}, max {s['max']:.1%} ({s['n']} rows)"
            )
