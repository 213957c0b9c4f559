"""Figures drawn from cubes (and the calibration figure, from measured data), one module each.

Each figure is two steps: ``*_data`` selects the slice of the cube it shows (an xarray
object, tested on its own), and ``draw_*`` renders it with matplotlib (Agg backend), with
a caption stating every fixed assumption. Each module registers its figure by name
(:mod:`engine.interfaces.figures.registry`); :func:`draw`, :func:`check_spec` and the
``plot`` command derive from that registry. The modules load on first use, so importing
this package (or the registry's names) costs nothing at the command line's start.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from engine.errors import UserError, did_you_mean
from engine.interfaces.figures.registry import FIGURES, NAMES, Figure

FIGURE_FORMATS = (".png", ".svg", ".pdf")

#: What the package re-exports from its modules (loaded when first asked for).
_EXPORTS = {
    "advantage": ("ADVANTAGE_TARGETS", "advantage_data", "draw_advantage"),
    "calibration": ("calibration_data", "draw_calibration"),
    "common": ("count_ticks", "display_name", "save", "unit_word", "wafer_of"),
    "cost": ("cost_data", "draw_cost"),
    "frontier": ("draw_frontier", "frontier_data"),
    "memory": ("draw_memory", "memory_data"),
    "phase": ("PHASE_LEVELS", "draw_phase", "phase_data"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def registered() -> dict[str, Figure]:
    """Every figure, its module loaded (each module registers the figure of its name)."""
    for name in NAMES:
        importlib.import_module(f"{__name__}.{name}")
    if set(FIGURES) != set(NAMES):  # pragma: no cover - a module that forgot to register
        raise AssertionError(f"figures not registered: {sorted(set(NAMES) - set(FIGURES))}")
    return FIGURES


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_figure_path(cube, kind: str) -> Path:
    from engine.sweep.location import beside

    return beside(cube, f"_{kind}.png")


def check_figure_path(output) -> Path:
    """A figure file name matplotlib can write, in a folder that exists (one-line errors)."""
    output = Path(output)
    if output.suffix.lower() not in FIGURE_FORMATS:
        raise UserError(f"-o: {output} must end in {', '.join(FIGURE_FORMATS)}")
    if not output.parent.is_dir():
        raise UserError(f"-o: folder {output.parent} does not exist")
    return output


def figure(kind: str) -> Figure:
    figures = registered()
    if kind not in figures:
        raise UserError(f"figure: unknown figure '{kind}' ({did_you_mean(kind, figures)})")
    return figures[kind]


def check_spec(spec) -> None:
    """A spec's ``figures:``, each a registered figure its cube can give (one line otherwise)."""
    figures = registered()
    cube_figures = [name for name, f in figures.items() if f.from_cube]
    for i, kind in enumerate(spec.figures):
        if kind not in cube_figures:
            raise UserError(f"figures.{i}: unknown figure '{kind}' ({did_you_mean(kind, cube_figures)})")
        check = figures[kind].check
        if check is not None:
            try:
                check(spec)
            except ValueError as err:
                raise UserError(f"figures.{i} ({kind}): {err}") from None


def draw(kind: str, source, output, chosen=None, **options) -> Path:
    """Draw a registered figure from a cube (path or URL), or from CSV paths for measured data."""
    from engine.interfaces.figures.common import summarise_draws
    from engine.sweep.cube import open_cube

    entry = figure(kind)
    output = check_figure_path(output)
    entry.draw(summarise_draws(open_cube(source), chosen) if entry.from_cube else source, output, chosen, **options)
    return output
