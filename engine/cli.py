"""The ``tokensweep`` command: a thin ``main(argv) -> int`` over the engine.

User mistakes raise :class:`engine.errors.UserError`; ``main`` prints them as one line on
stderr and returns 2 without writing anything. Heavy imports (Numba kernels, xarray,
Dask, matplotlib) happen inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from engine.errors import UserError
from engine.units import parse_quantity


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a UserError (one line, exit 2) instead of usage text."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UserError(message)


def _quantity(field: str, minimum: float | None = None, maximum: float | None = None, integer: bool = False):
    def parse(text: str) -> float:
        value = parse_quantity(text, field)
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            bounds = f"{minimum:g} to {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise UserError(f"{field}: {text} is out of range (allowed: {bounds})")
        if integer and value != int(value):
            raise UserError(f"{field}: {text} must be a whole number")
        return int(value) if integer else value

    parse.__name__ = field
    return parse


def _assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"--set: expected NAME=VALUE, got '{text}'")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), value.strip()


def _add_point_parser(sub) -> None:
    p = sub.add_parser("point", help="evaluate one configuration and print every figure")
    src = p.add_argument_group("model (a catalog preset, or an ad-hoc dense-attention model)")
    src.add_argument("--model", help="catalog model name, e.g. gpt-oss-120b")
    src.add_argument("--params", type=_quantity("--params", 1), help="ad hoc: total parameters, e.g. 120B")
    src.add_argument("--active-params", type=_quantity("--active-params", 1), help="ad hoc: active parameters (MoE)")
    src.add_argument("--layers", type=_quantity("--layers", 1, integer=True), help="ad hoc: layers")
    src.add_argument("--kv-heads", type=_quantity("--kv-heads", 1, integer=True), help="ad hoc: KV heads")
    src.add_argument("--head-dim", type=_quantity("--head-dim", 1, integer=True), help="ad hoc: head dimension")
    src.add_argument("--hidden-size", type=_quantity("--hidden-size", 1, integer=True), help="ad hoc: hidden size")
    src.add_argument("--attention-heads", type=_quantity("--attention-heads", 1, integer=True), help="ad hoc: query heads")
    p.add_argument("--isl", type=_quantity("--isl", 1, 1e9), default=96.3e3, help="average input tokens per turn (default 96.3k)")
    p.add_argument("--osl", type=_quantity("--osl", 1, 1e9), help="output tokens per turn (default: from the workload mix)")
    p.add_argument("--concurrency", type=_quantity("--concurrency", 1, 1e7, integer=True), default=1, help="concurrent requests per replica")
    p.add_argument("--weight-bits", type=_quantity("--weight-bits", 1, 32), default=16, help="weight bits per parameter (1-32, e.g. 4.25)")
    p.add_argument("--kv-bits", type=_quantity("--kv-bits", 1, 32), default=16, help="KV-cache bits per element (1-32)")
    p.add_argument("--hardware", default="wse3", help="catalog hardware name (default wse3)")
    p.add_argument("--workload", default="agentic-coding", help="workload mix (default agentic-coding)")
    p.add_argument("--price", help="price scenario: on_demand (default), spot or tco")
    p.add_argument("--cache-tier", help="cache-read tier for GPUs: hbm (default) or host")
    p.add_argument("--set", action="append", type=_assignment, default=[], metavar="NAME=VALUE", help="override an assumption (repeatable)")
    p.add_argument("--vs", metavar="HARDWARE", help="compare with another hardware and print the break-even concurrency")
    p.add_argument("--api-price", type=_quantity("--api-price", 0), help="reference API price in USD/Mtok for break-even (with --vs)")
    p.add_argument("--catalog", action="append", default=[], metavar="PATH", help="extra catalog file (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object (base units)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tokensweep", description="Sweep engine for LLM-inference economics.")
    from engine import __version__

    parser.add_argument("--version", action="version", version=f"tokensweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_point_parser(sub)
    from engine import commands

    commands.add_parsers(sub)
    return parser


def _assumptions(args):
    from pydantic import ValidationError

    from engine.assumptions import Assumptions
    from engine.spec import describe_validation_error

    values: dict = dict(args.set)
    if args.price:
        values["price"] = args.price
    if args.cache_tier:
        values["cache_tier"] = args.cache_tier
    for key, value in list(values.items()):
        if key not in Assumptions.model_fields:
            from engine.errors import did_you_mean

            raise UserError(f"--set: unknown assumption '{key}' ({did_you_mean(key, Assumptions.model_fields)})")
        if key not in ("price", "cache_tier"):
            values[key] = parse_quantity(value, f"--set {key}")
    try:
        return Assumptions(**values)
    except ValidationError as err:
        raise UserError(describe_validation_error(err, prefix="--set ")) from None


def _point_model(args, catalog):
    from engine.point import adhoc_model

    adhoc = [args.params, args.layers, args.kv_heads, args.head_dim]
    if args.model and any(v is not None for v in adhoc + [args.active_params]):
        raise UserError("--model: give either --model or the ad-hoc fields (--params --layers --kv-heads --head-dim), not both")
    if args.model:
        return catalog.model(args.model)
    if any(v is None for v in adhoc):
        raise UserError("--model: required (or the ad-hoc fields --params, --layers, --kv-heads and --head-dim together)")
    if args.active_params is not None and args.active_params > args.params:
        raise UserError("--active-params: must not exceed --params")
    name = f"custom-{args.params / 1e9:g}B"
    return adhoc_model(
        args.params, args.layers, args.kv_heads, args.head_dim, args.active_params, args.hidden_size, args.attention_heads, name
    )


def run_point(args) -> int:
    from engine.catalog import load_catalog
    from engine.point import evaluate_point, format_panel

    catalog = load_catalog(args.catalog)
    model = _point_model(args, catalog)
    hardware = catalog.unit(args.hardware)
    workload = catalog.workload(args.workload)
    assumptions = _assumptions(args)
    point = evaluate_point(
        model, hardware, args.isl, args.concurrency, args.weight_bits, args.kv_bits, workload, assumptions, args.osl
    )
    if args.vs:
        from engine.compare import compare_point, format_comparison

        other = catalog.unit(args.vs)
        comparison = compare_point(
            model, hardware, other, args.isl, args.concurrency, args.weight_bits, args.kv_bits,
            workload, assumptions, args.osl, args.api_price,
        )  # fmt: skip
        if args.json:
            print(json.dumps(comparison, indent=2))
        else:
            print(format_comparison(model, comparison))
        return 0
    if args.json:
        print(json.dumps({"model": model.name, "hardware": hardware.name, **point}, indent=2))
    else:
        print(format_panel(model, hardware, point, args.concurrency, args.weight_bits, args.kv_bits))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokensweep`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "point":
            return run_point(args)
        from engine import commands

        return commands.dispatch(args)
    except UserError as err:
        print(f"tokensweep: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # Disk full, a lost mount, permissions changing under a run: say so in one line.
        # Recorded blocks are safe; rerunning the same command resumes.
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"tokensweep: error: {err.strerror or err}{where}; completed blocks are kept, run again to resume",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("tokensweep: interrupted (a sweep resumes where it stopped: run it again)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
