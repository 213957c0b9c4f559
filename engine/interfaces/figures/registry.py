"""The figure registry: each figure module registers itself here, by name.

``tokensweep plot``'s choices, the check of a spec's ``figures:`` and the drawer all read
:data:`NAMES` / :data:`FIGURES`, so a new figure is one module that calls :func:`register`
and its name in :data:`NAMES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One figure: how to draw it, from what, and whether a spec's cube can give it."""

    name: str
    summary: str  # for --help
    draw: Callable  # draw(source, output, chosen, **options); source: an opened cube, or CSV paths
    from_cube: bool = True  # False: drawn from measured CSV files (the calibration figure)
    #: (spec) -> None, raising ValueError with the reason where the spec's cube cannot give it.
    check: Callable | None = None


#: The figure modules of this package, each registering the figure of its own name. Listed here
#: so that ``tokensweep plot``'s choices need not import matplotlib-era code at start-up.
NAMES = ("phase", "cost", "memory", "frontier", "advantage", "calibration")

FIGURES: dict[str, Figure] = {}


def register(figure: Figure) -> Figure:
    if figure.name not in NAMES:
        raise AssertionError(f"figure {figure.name}: its module is not listed in registry.NAMES")
    if figure.name in FIGURES:
        raise AssertionError(f"figure {figure.name} is registered twice")
    FIGURES[figure.name] = figure
    return figure


def full_cube_only(spec) -> None:
    """The check of figures drawn from every point of a full cube."""
    if spec.reduction is not None:
        raise ValueError("a reduced cube can draw only figures made from a frontier (advantage)")
