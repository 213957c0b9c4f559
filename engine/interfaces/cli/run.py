"""``tokensweep run``: a sweep into a Zarr v3 cube, resuming an interrupted run; then its figures."""

from __future__ import annotations

import sys

from engine.interfaces.cli.common import add_sweep_options, execution_profile, sweep_plan


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a sweep into a Zarr v3 cube (resumes an interrupted run)")
    add_sweep_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace a store written by a different spec")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="skip the figures the spec asks for")


def run(args) -> int:
    from engine.interfaces.progress import progress_bar, progress_interval
    from engine.model.pricing import missing_rate_note
    from engine.sweep.store import run_sweep

    plan = sweep_plan(args)
    profile = execution_profile(args)
    prices = plan.spec.axes.get("price", [plan.spec.assumptions.price])
    for price in prices:  # a scenario some hardware lacks is said once, before the run
        note = missing_rate_note(plan.spec.hardware, str(price))
        if note:
            print(f"tokensweep: note: {note}", file=sys.stderr)
    if plan.spec.reduction is None:
        from engine.sweep.destination import check_output, default_output, space_note

        note = space_note(check_output(args.output or default_output(plan)), plan.bytes_on_disk())
        if note:
            print(f"tokensweep: note: {note}", file=sys.stderr)
    bar = None if args.no_progress else progress_bar
    if bar is not None:
        progress_interval()  # a bad TOKENSWEEP_PROGRESS_INTERVAL is one line before anything is written
    result = run_sweep(plan, args.output, profile, overwrite=args.overwrite, progress=bar)
    print(result.summary())
    if plan.spec.figures and not args.no_figures:
        from engine.errors import UserError
        from engine.interfaces import figures

        for kind in plan.spec.figures:
            path = figures.default_figure_path(result.path, kind)
            try:
                figures.draw(kind, result.path, path)
            except UserError as err:  # the cube is written: not exit 2, which promises nothing was
                print(f"tokensweep: error: figure {kind} not drawn ({err}); the cube is complete at {result.path}",
                      file=sys.stderr)  # fmt: skip
                return 1
            print(f"figure {kind}: {path}")
    return 0
