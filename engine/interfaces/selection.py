"""``--sel DIM=VALUE`` selections on a cube: labels exactly, numbers with human units."""

from __future__ import annotations

from engine.errors import UserError, did_you_mean
from engine.units import parse_quantity


def nearest(ds, dim: str, value):
    coord = ds[dim]
    if coord.dtype.kind in "iuf":
        return coord.sel({dim: float(value)}, method="nearest").item()
    labels = [str(v) for v in coord.values]
    if str(value) not in labels:
        raise UserError(f"--sel: {dim} has no '{value}' ({did_you_mean(str(value), labels)})")
    return str(value)


def parse_selection(ds, items: list[str]) -> dict:
    chosen = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--sel: expected DIM=VALUE, got '{item}'")
        dim, text = (p.strip() for p in item.split("=", 1))
        if dim not in ds.dims:
            raise UserError(f"--sel: unknown dim '{dim}' ({did_you_mean(dim, list(ds.dims))})")
        chosen[dim] = parse_quantity(text, f"--sel {dim}") if ds[dim].dtype.kind in "iuf" else nearest(ds, dim, text)
    return chosen
