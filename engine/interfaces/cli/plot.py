"""``tokensweep plot``: a figure from a cube (phase diagram, cost vs concurrency, memory)."""

from __future__ import annotations

from pathlib import Path

from engine.atomic import check_file_output
from engine.errors import UserError
from engine.interfaces.cli.common import open_cube_arg, quantity
from engine.interfaces.selection import add_nearest_option


def add_parser(sub) -> None:
    from engine.interfaces.figures.registry import NAMES  # the registry's names, without loading the figures

    p = sub.add_parser("plot", help="draw a figure from a cube (" + ", ".join(NAMES) + ")")
    p.add_argument("kind", choices=NAMES, help="which figure (calibration: from measured CSV files)")
    p.add_argument("--cost", help="cost variable of the frontier figure (default cost_per_mtok_output_usd)")
    p.add_argument(
        "--targets", help="interactivity targets of the advantage figure, tokens/s per user (default 30,100,300,1000)"
    )
    p.add_argument("cube", nargs="+", help="a cube written by tokensweep run (calibration: measured CSV files)")
    p.add_argument("--profile", default="calibrated", help="profile whose predictions the calibration figure shows")
    p.add_argument("-o", "--output", help="image file (.png or .svg); default next to the cube")
    p.add_argument(
        "--sel", action="append", default=[], metavar="DIM=VALUE", help="fix an axis (repeatable), e.g. concurrency=64"
    )
    add_nearest_option(p)
    p.add_argument("--levels", default="32,64,128", help="phase contour levels in units (default 32,64,128)")
    p.add_argument(
        "--api-price", type=quantity("--api-price", 0), default=0.60, help="reference API price, USD/Mtok (cost figure)"
    )
    p.add_argument("--model", help="model for the cost figure (default: the first)")


def run(args) -> int:
    from engine.interfaces import figures
    from engine.interfaces.selection import parse_selection

    if args.kind == "calibration":
        if not args.output:
            Path("outputs").mkdir(exist_ok=True)
        check_file_output(args.output or "outputs/calibration.png", args.cube)
        output = figures.draw("calibration", args.cube, args.output or "outputs/calibration.png", profile=args.profile)
        print(f"figure calibration: {output}")
        return 0
    if len(args.cube) != 1:
        raise UserError(f"cube: plot {args.kind} takes one cube, got {len(args.cube)} paths")
    args.cube = args.cube[0]
    chosen = parse_selection(open_cube_arg(args.cube), args.sel, args.nearest)
    try:
        levels = tuple(sorted({float(v) for v in args.levels.split(",")}))  # matplotlib wants them increasing
    except ValueError:
        raise UserError(f"--levels: expected numbers separated by commas, got '{args.levels}'") from None
    output = Path(args.output) if args.output else figures.default_figure_path(args.cube, args.kind)
    check_file_output(output, [args.cube])  # before anything is drawn
    targets = None
    if args.targets:
        try:
            targets = tuple(float(v) for v in args.targets.split(","))
        except ValueError:
            raise UserError(f"--targets: expected numbers separated by commas, got '{args.targets}'") from None
    replaced = not args.output and Path(output).exists()
    figures.draw(args.kind, args.cube, output, chosen, levels=levels, model=args.model, api_price=args.api_price,
                 cost=args.cost, targets=targets)  # fmt: skip
    print(
        f"figure {args.kind}: {output}" + (" (replaced the figure that was there; -o to keep both)" if replaced else "")
    )
    return 0
