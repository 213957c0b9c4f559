"""Decisions from cubes: the cost-interactivity frontier and the cheapest deployment under constraints.

Both work on any cube (or any xarray Dataset with the variables named), over whatever
configuration dims it has: ``over`` are the dims a decision may choose (concurrency,
replica units, parallelism, bits, hardware...), ``by`` the dims it is made for separately
(hardware, model, ISL...). Opening a cube with :func:`engine.open_cube` (or importing this
module) registers the ``ds.tokensweep`` accessor::

    ds.tokensweep.cheapest(where={"interactivity_tps": {"ge": 50}}, over=["concurrency", "replica_units"])
    ds.tokensweep.frontier(by=["hardware"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.axes import AXES, DEPLOYMENT_DIMS
from engine.conditions import COMPARISONS, holds
from engine.errors import UserError, did_you_mean

DEFAULT_COST = "cost_per_mtok_output_usd"
DEFAULT_SPEED = "interactivity_tps"


def deployment_dims(ds) -> list[str]:
    """The cube's dims that are deployment choices (the axis registry's), in the cube's order."""
    return [d for d in ds.dims if d in DEPLOYMENT_DIMS]


def axis_edges(result, ds, over: Sequence[str]):
    """Per winner, the ``over`` dims whose chosen value is the first or last of a searched numeric
    axis (``"concurrency=512 (max)"``): the optimum may lie beyond what was searched. A first
    value at the axis' own lower bound (one request, 0 = the fewest units) is no edge."""
    import xarray as xr

    notes = None
    for dim in over:
        values = ds[dim].values
        if dim not in result or len(values) < 2 or values.dtype.kind not in "iuf":
            continue
        chosen = result[dim]
        ends = [(values.max(), "max")]
        if dim not in AXES or values.min() > AXES[dim].low:  # room below what was searched
            ends.insert(0, (values.min(), "min"))
        for value, word in ends:
            hit = xr.where(chosen == value, f"{dim}={value:g} ({word})", "")
            notes = hit if notes is None else xr.where((notes != "") & (hit != ""), notes + ", " + hit, notes + hit)
    return notes


def _variable(ds, name: str, field: str):
    if name not in ds.data_vars:
        raise UserError(f"{field}: the cube has no variable '{name}' ({did_you_mean(name, list(ds.data_vars))})")
    return ds[name]


def _over(array, over: Sequence[str] | None, by: Sequence[str]) -> list[str]:
    dims = [d for d in array.dims if d != "token_type"]
    for d in [*(over or ()), *by]:
        if d not in dims:
            raise UserError(f"dims: '{d}' is not a dim of {array.name} ({did_you_mean(d, dims)})")
    return list(over) if over is not None else [d for d in dims if d not in by]


def feasible(ds, where: Mapping[str, object] | None = None):
    """Boolean mask (broadcast over the constrained variables): every condition holds, and the
    replica fits where the cube says so. Conditions: ``{var: {"ge": x, "le": y}}`` or ``{var: True}``."""
    conditions = dict(where or {})
    if "replica_fits" in ds.data_vars:
        conditions.setdefault("replica_fits", True)
    mask = True
    for name, condition in conditions.items():
        values = _variable(ds, name, "where")
        if isinstance(condition, Mapping):
            for op, bound in condition.items():
                if op not in COMPARISONS:
                    raise UserError(f"where.{name}: unknown comparison '{op}' (allowed: {', '.join(COMPARISONS)})")
                mask = mask & holds(values, op, bound)
        else:
            mask = mask & (values == condition)
    return mask


def cheapest(
    ds,
    cost: str = DEFAULT_COST,
    where: Mapping[str, object] | None = None,
    over: Sequence[str] | None = None,
    by: Sequence[str] = (),
):
    """The argmin of ``cost`` over the ``over`` dims where ``where`` holds, for every other coordinate.

    Returns a Dataset over the remaining dims with the minimum ``cost``, the winning value of
    every ``over`` dim (a variable of that name) and the constrained variables at the winner.
    Where no configuration qualifies the cost is NaN and the labels are missing.
    """
    import xarray as xr

    values = _variable(ds, cost, "--cost")
    over = _over(values, over, by)
    mask = feasible(ds, where)
    allowed = values.where(mask)
    extra = [d for d in allowed.dims if d not in values.dims and d not in over and d not in by]
    if extra:  # a constraint spans dims the cost lacks: the cost must hold for every choice in them
        over = over + extra
    stacked = allowed.stack(_config=over).transpose(..., "_config")
    filled = stacked.fillna(np.inf)
    index = filled.argmin("_config").compute()  # lazy cubes: the winners' positions are needed now
    found = np.isfinite(filled.min("_config")).compute()
    best = stacked.isel(_config=index).where(found)
    out = {cost: best.drop_vars(["_config", *over], errors="ignore").assign_attrs(values.attrs)}
    for dim in over:
        labels = stacked[dim].values[index.values]
        if labels.dtype.kind not in "iufb":
            labels = labels.astype(object)  # names (zarr may hand back numpy strings)
        label = xr.DataArray(labels, dims=index.dims, coords={d: index[d] for d in index.dims})
        out[dim] = (label if bool(found.all()) else label.where(found)).assign_attrs(ds[dim].attrs)
    for name in dict(where or {}):
        if name in ds.data_vars and name != cost:
            at = ds[name].broadcast_like(allowed).stack(_config=over).transpose(..., "_config").isel(_config=index)
            out[name] = at.drop_vars(["_config", *over], errors="ignore").where(found).assign_attrs(ds[name].attrs)
    result = xr.Dataset(out)
    return result.drop_vars([c for c in result.coords if c not in result.dims and c not in ds.coords], errors="ignore")


def over_draws(result, cost: str, over: Sequence[str], dim: str = "draw"):
    """The per-draw winners of :func:`cheapest` summarised over the Monte Carlo draws.

    Per group: the median of the winning cost over the draws in which something qualifies
    and its 5th-95th percentile (``<cost>_p5``, ``<cost>_p95``), ``qualifying_share`` (the
    draws with a winner), each ``over`` dim's value chosen in most draws, with ``choice_share``
    (the draws choosing that whole configuration); with several hardware, ``win_share``: the
    draws in which this hardware is strictly cheaper than every other (a hardware with no
    winner in a draw loses it).
    """
    import warnings

    import xarray as xr

    from engine.model.uncertain import INTERVAL

    costs = result[cost]
    qualifying = costs.notnull().mean(dim)
    with warnings.catch_warnings():  # a group no draw serves reads NaN, which is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {
            cost: costs.median(dim).assign_attrs(costs.attrs),
            f"{cost}_p5": costs.quantile(INTERVAL[0], dim).drop_vars("quantile").assign_attrs(costs.attrs),
            f"{cost}_p95": costs.quantile(INTERVAL[1], dim).drop_vars("quantile").assign_attrs(costs.attrs),
            "qualifying_share": qualifying.assign_attrs(units="1"),
        }
    keys = xr.concat([result[d].astype(str) for d in over], "_over") if over else None
    if keys is not None:
        config = keys.str.join("_over", sep="|") if keys.sizes["_over"] > 1 else keys.isel(_over=0)
        rows = config.transpose(..., dim)
        flat = rows.values.reshape(-1, rows.shape[-1])
        modes, shares = [], []
        for row in flat:
            values, counts = np.unique(row, return_counts=True)
            modes.append(values[np.argmax(counts)])
            shares.append(counts.max() / row.size)
        shape = rows.shape[:-1]
        chosen = np.asarray(modes, dtype=object).reshape(shape)
        coords = {d: rows[d] for d in rows.dims[:-1]}
        for d in over:
            first = result[d].transpose(*rows.dims).values.reshape(-1, rows.shape[-1])
            labels = np.asarray([row[np.argmax(config_row == mode)] for row, config_row, mode in
                                 zip(first, flat, chosen.reshape(-1))]).reshape(shape)  # fmt: skip
            out[d] = xr.DataArray(labels, dims=rows.dims[:-1], coords=coords).assign_attrs(result[d].attrs)
        share = xr.DataArray(np.reshape(shares, shape), dims=rows.dims[:-1], coords=coords)
        out["choice_share"] = share.where(qualifying > 0).assign_attrs(units="1")
    if "hardware" in costs.dims and costs.sizes["hardware"] > 1:
        filled = costs.fillna(np.inf)
        others = xr.concat([filled.drop_sel(hardware=h).min("hardware") for h in costs["hardware"].values], "hardware")
        wins = (filled < others.assign_coords(hardware=costs["hardware"])) & np.isfinite(filled)
        out["win_share"] = wins.mean(dim).assign_attrs(units="1")
    return xr.Dataset(out)


def frontier(
    ds,
    cost: str = DEFAULT_COST,
    speed: str = DEFAULT_SPEED,
    over: Sequence[str] | None = None,
    by: Sequence[str] = (),
    where: Mapping[str, object] | None = None,
):
    """Pareto-optimal configurations (lower cost, higher speed) per group of ``by`` coordinates.

    Returns a pandas DataFrame: the ``by`` and ``over`` coordinates of every optimal point,
    its cost and speed, sorted by group and rising speed. A point is optimal when no other
    point of its group is at least as fast and strictly cheaper (ties keep the faster).
    """
    import xarray as xr

    costs, speeds = _variable(ds, cost, "--cost"), _variable(ds, speed, "--speed")
    mask = feasible(ds, where)
    pair = xr.Dataset({"cost": costs.where(mask), "speed": speeds.where(mask)})
    over = _over(pair["cost"], over, by)
    table = pair.stack(_config=over).to_dataframe().reset_index()
    table = table.dropna(subset=["cost", "speed"])
    keep = [*by, *over, "cost", "speed"]
    table = table[[c for c in keep if c in table.columns]]
    frames = []
    groups = table.groupby(list(by), sort=True) if by else [((), table)]
    for _, group in groups:
        ordered = group.sort_values(["speed", "cost"], ascending=[False, True])
        cheaper_than_faster = ordered["cost"].values < np.minimum.accumulate(np.r_[np.inf, ordered["cost"].values[:-1]])
        frames.append(ordered[cheaper_than_faster].sort_values("speed"))
    import pandas as pd

    result = pd.concat(frames) if frames else table.iloc[:0]
    result = result.rename(columns={"cost": cost, "speed": speed}).reset_index(drop=True)
    result.attrs = {cost: costs.attrs.get("units", ""), speed: speeds.attrs.get("units", "")}
    return result


def _register():
    import xarray as xr

    if hasattr(xr.Dataset, "tokensweep"):
        return

    @xr.register_dataset_accessor("tokensweep")
    class TokensweepAccessor:
        """``ds.tokensweep.cheapest(...)`` and ``ds.tokensweep.frontier(...)`` on any cube."""

        def __init__(self, ds):
            self._ds = ds

        def cheapest(self, **options):
            return cheapest(self._ds, **options)

        def frontier(self, **options):
            return frontier(self._ds, **options)


_register()
