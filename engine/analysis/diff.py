"""Two cubes compared: the ratio (or difference) of their shared variables over shared labels.

``diff(a, b)`` answers "what changed" between spot and on-demand pricing, catalog v1 and
v2, two workload mixes: for every numeric variable both cubes hold over the same dims, B
relative to A at every label both cubes have (an inner join per dim; labels compare
exactly, which is why token counts are whole numbers). Cubes with nothing to compare
(no shared variable, no shared label on a dim, a variable in different units) are refused
in one line.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from engine.errors import UserError
from engine.units import units_of

HOW = ("ratio", "difference")


def shared_variables(a: xr.Dataset, b: xr.Dataset, names: list[str] | None = None) -> list[str]:
    if names:
        missing = [n for n in names if n not in a.data_vars or n not in b.data_vars]
        if missing:
            raise UserError(f"--var: {', '.join(missing)} is not in both cubes")
        candidates = list(dict.fromkeys(names))
    else:
        candidates = [n for n in a.data_vars if n in b.data_vars]
    out = []
    for name in candidates:
        if a[name].dtype.kind not in "iuf" or b[name].dtype.kind not in "iuf":
            if names:
                raise UserError(f"--var: {name} is not numeric (booleans and labels have no ratio)")
            continue
        if set(a[name].dims) != set(b[name].dims):
            if names:
                raise UserError(f"--var: {name} spans {a[name].dims} in A but {b[name].dims} in B")
            continue
        if units_of(a[name]) != units_of(b[name]):
            raise UserError(f"diff: {name} is in {units_of(a[name])} in A but {units_of(b[name])} in B")
        out.append(name)
    if not out:
        raise UserError("diff: the cubes share no numeric variable over the same dims (a full cube and a reduced one?)")
    return out


def diff(a: xr.Dataset, b: xr.Dataset, names: list[str] | None = None, how: str = "ratio") -> xr.Dataset:
    """B / A (or B - A) for the shared variables over the labels both cubes hold."""
    if how not in HOW:
        raise UserError(f"--how: '{how}' is not one of {', '.join(HOW)}")
    variables = shared_variables(a, b, names)
    left = a[variables].reset_coords(drop=True)
    right = b[variables].reset_coords(drop=True)
    for dim in set(left.dims) & set(right.dims):
        common = np.intersect1d(left[dim].values, right[dim].values)
        if common.size == 0:
            raise UserError(f"diff: no {dim} label is in both cubes (A: {_span(left[dim])}; B: {_span(right[dim])})")
    left, right = xr.align(left, right, join="inner")
    out = xr.Dataset(attrs={"title": "tokensweep diff", "how": how})
    for name in variables:
        x, y = left[name].astype(float), right[name].astype(float)
        # A zero reference has no ratio: NaN, masked before dividing (the arrays are lazy, so a
        # floating-point warning raised later, in Dask's tasks, could not be silenced here).
        value = y / x.where(x != 0) if how == "ratio" else y - x
        units = "1" if how == "ratio" else units_of(a[name])
        what = "B / A" if how == "ratio" else "B - A"
        out[name] = value.assign_attrs(units=units, long_name=f"{what}: {a[name].attrs.get('long_name', name)}")
    return out


def summary(result: xr.Dataset) -> list[dict]:
    """Per variable: cells compared, min / median / max, and where B is below A."""
    rows = []
    for name, values in result.data_vars.items():
        data = np.asarray(values.values, dtype=float).ravel()
        finite = data[np.isfinite(data)]
        below = (finite < 1) if result.attrs["how"] == "ratio" else (finite < 0)
        rows.append(
            {
                "variable": name,
                "cells": int(data.size),
                "compared": int(finite.size),
                "min": float(finite.min()) if finite.size else float("nan"),
                "median": float(np.median(finite)) if finite.size else float("nan"),
                "max": float(finite.max()) if finite.size else float("nan"),
                "b_below_a": float(below.mean()) if finite.size else float("nan"),
            }
        )
    return rows


def _span(labels) -> str:
    values = labels.values
    return f"{values[0]} .. {values[-1]}" if values.size > 1 else str(values[0]) if values.size else "none"
