"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from engine.axes import AXES
from engine.errors import UserError, said_of
from engine.units import parse_quantity


def axis_type(name: str, flag: str | None = None):
    """argparse type for an axis: human units, checked against the registry's bounds."""
    axis = AXES[name]
    flag = flag or f"--{name.replace('_', '-')}"

    def parse(text: str):
        value = axis.parse(text, flag)
        return int(value) if axis.integer else value

    parse.__name__ = flag
    return parse


def quantity(field: str, minimum: float | None = None):
    """argparse type for a plain quantity (not an axis), e.g. a price."""

    def parse(text: str) -> float:
        value = parse_quantity(text, field)
        if minimum is not None and value < minimum:
            raise UserError(f"{field}: {text} is out of range (allowed: >= {minimum:g})")
        return value

    parse.__name__ = field
    return parse


def add_catalog_option(parser) -> None:
    parser.add_argument(
        "--catalog", action="append", default=[], metavar="PATH", help="extra catalog file (repeatable)"
    )


def add_sweep_options(parser) -> None:
    """The options `plan` and `run` share: the spec, catalog, budget, output and scheduler."""
    parser.add_argument("spec", help="sweep YAML file, e.g. sweeps/cerebras_phase.yaml")
    add_catalog_option(parser)
    parser.add_argument(
        "--max-points", type=quantity("--max-points", 1), help="size budget (overrides the spec's max_points)"
    )
    parser.add_argument("--output", help="store path ending in .zarr (default outputs/<name>.zarr)")
    parser.add_argument(
        "--scheduler",
        help="threads (default), processes, sync or a Dask scheduler address (tcp://HOST:PORT, tls://..., HOST:PORT; "
        "default: DASK_SCHEDULER_ADDRESS or Dask's config when set)",
    )
    parser.add_argument("--scheduler-file", help="a Dask scheduler file (dask scheduler --scheduler-file PATH)")
    parser.add_argument(
        "--workers", type=lambda t: int(parse_quantity(t, "--workers")), help="local worker count (default: cores)"
    )
    parser.add_argument("--cluster", help="named cluster (execution profile) from --clusters")
    parser.add_argument("--clusters", default="clusters.yaml", help="clusters file (default ./clusters.yaml)")
    parser.add_argument("--profile", help=argparse.SUPPRESS)  # a serving profile belongs in the spec: refused, said why


def sweep_plan(args):
    """The plan of the spec named on the command line (budget override applied)."""
    from engine.interfaces.figures import check_spec
    from engine.model.catalog import load_catalog
    from engine.sweep.plan import make_plan
    from engine.sweep.spec import load_spec

    spec = load_spec(args.spec)
    if args.max_points is not None:
        spec = spec.model_copy(update={"max_points": args.max_points})
    catalog = load_catalog(args.catalog)
    try:  # names resolved, axes expanded, figures checked: every refusal names the spec file
        plan = make_plan(spec, catalog)
        check_spec(plan.spec)  # the figures it asks for, against the figure registry, before anything runs
    except UserError as err:
        raise UserError(in_file(args.spec, str(err))) from None
    return plan


def in_file(path: str, message: str) -> str:
    """``message`` as said of the file ``path`` (unchanged when it already names it)."""
    return message if message.startswith(f"{path}: ") else f"{path}: {message}"


def execution_profile(args):
    from engine.sweep import cluster

    if args.profile:
        raise UserError(
            f"--profile: {args.profile} would be a serving profile, which a sweep sets in its spec "
            "(parameters: {profile: NAME}); a cluster to run on is --cluster NAME (from --clusters FILE)"
        )
    if args.cluster:
        return cluster.load_cluster(args.cluster, args.clusters)
    if getattr(args, "scheduler_file", None):
        if args.scheduler:
            raise UserError("--scheduler-file: give either --scheduler or --scheduler-file, not both")
        return cluster.resolve("scheduler-file", args.workers, (("scheduler_file", args.scheduler_file),))
    if args.scheduler is None:
        address = cluster.from_dask_config()
        if address:  # Dask's own convention (DASK_SCHEDULER_ADDRESS or a Dask config file): honoured, and said
            import sys

            print(f"tokensweep: using the Dask scheduler at {address} (from Dask's configuration)", file=sys.stderr)
            return cluster.resolve(address, args.workers)
    return cluster.resolve(args.scheduler, args.workers)


def open_cube_arg(path: str, field: str = "cube"):
    """The cube at ``path``; a refusal names the argument (``field``) it came from."""
    from engine.sweep.cube import open_cube

    try:
        return open_cube(path)
    except UserError as err:
        raise said_of(field, err) from None
