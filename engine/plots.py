"""Figures drawn from cubes (filled in by the figures work)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw a figure from a cube")
    p.add_argument("kind", choices=["phase", "cost", "memory"])
    p.add_argument("cube")
    p.add_argument("-o", "--output")


def default_figure_path(cube: Path, kind: str) -> Path:
    return cube.with_name(f"{cube.stem}_{kind}.png")


def draw(kind: str, cube, output) -> Path:  # pragma: no cover - replaced by the figures work
    raise NotImplementedError


def run(args) -> int:  # pragma: no cover
    raise NotImplementedError
