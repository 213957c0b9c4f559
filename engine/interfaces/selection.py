"""``--sel DIM=VALUE`` selections on a cube: labels exactly, numbers with human units.

A numeric value must be one of the axis's values (to 1e-9 relative); anything else is refused
in one line naming the nearest values, unless ``--nearest`` is given, in which case the
nearest value is used and said (on stderr). Values outside the axis range are refused even
then: a cube never answers for a point it does not hold without saying so.
"""

from __future__ import annotations

import sys

import numpy as np

from engine.errors import UserError, did_you_mean
from engine.units import format_count, parse_quantity


def nearest(ds, dim: str, value):
    """The coordinate value of ``dim`` closest to ``value`` (labels: exactly, or a one-line error)."""
    coord = ds[dim]
    if coord.dtype.kind in "iuf":
        return coord.sel({dim: float(value)}, method="nearest").item()
    labels = [str(v) for v in coord.values]
    if str(value) not in labels:
        raise UserError(f"--sel: {dim} has no '{value}' ({did_you_mean(str(value), labels)})")
    return str(value)


def _show(v: float) -> str:
    return format_count(v) if abs(v) >= 1e3 else f"{v:g}"


def on_axis(ds, dim: str, value: float, allow_nearest: bool = False):
    """``value`` as the axis holds it: exact, or the nearest when allowed; out of range never."""
    values = np.asarray(ds[dim].values, dtype=float)
    match = np.flatnonzero(np.isclose(values, value, rtol=1e-9, atol=0.0))
    if match.size:
        return ds[dim].values[match[0]].item()
    low, high = values.min(), values.max()
    if value < low or value > high:
        raise UserError(f"--sel: {dim}={_show(value)} is outside the cube's axis ({_show(low)} to {_show(high)})")
    below, above = values[values < value].max(), values[values > value].min()
    if not allow_nearest:
        raise UserError(f"--sel: {dim} has no {_show(value)} (nearest: {_show(below)} and {_show(above)}; "
                        "give one of them or add --nearest)")  # fmt: skip
    chosen = nearest(ds, dim, value)
    print(
        f"tokensweep: note: {dim}={_show(value)} is not on the axis; using the nearest, {_show(chosen)}",
        file=sys.stderr,
    )
    return chosen


def parse_selection(ds, items: list[str], allow_nearest: bool = False) -> dict:
    """``DIM=VALUE`` items as coordinate values of the cube (exact labels; numbers on the axis)."""
    chosen = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--sel: expected DIM=VALUE, got '{item}'")
        dim, text = (p.strip() for p in item.split("=", 1))
        if dim not in ds.dims:
            raise UserError(f"--sel: unknown dim '{dim}' ({did_you_mean(dim, list(ds.dims))})")
        if dim in chosen:
            raise UserError(f"--sel: {dim} is selected twice; give one value per dim")
        if ds[dim].dtype.kind in "iuf":
            chosen[dim] = on_axis(ds, dim, parse_quantity(text, f"--sel {dim}"), allow_nearest)
        else:
            chosen[dim] = nearest(ds, dim, text)
    return chosen


def add_nearest_option(parser) -> None:
    parser.add_argument("--nearest", action="store_true", help="let --sel take the nearest value on a numeric axis")
