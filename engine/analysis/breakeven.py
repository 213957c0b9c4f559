"""Break-even prices: the hourly rate, or the system price, at which one deployment costs what another does.

Cost per token is linear in a unit's hourly rate (``cost = rate x units / tokens per second``),
so the price at which the winner flips is closed form (:func:`engine.model.formulas.break_even_rate`),
and so is the system price whose TCO rate that is (:func:`engine.model.formulas.capex_for_rate`).
Both work on whole cubes: "at what WSE-3 price would it match the cheapest GPU?" is one call.

>>> import xarray as xr
>>> cost = xr.DataArray([2.0, 0.5], dims="isl")          # this hardware's cost per Mtok
>>> rival = xr.DataArray([1.0, 1.0], dims="isl")         # the rival's
>>> prices = break_even_prices(cost, rival, unit_rate=40.0, power_kw=23.0, amortisation_years=3, pue=1.3,
...                            usd_per_kwh=0.08)
>>> prices["break_even_usd_per_hour"].values.tolist()   # half the rate where it costs twice as much
[20.0, 80.0]
>>> [round(v) for v in prices["break_even_capex_usd"].values]
[462738, 2039538]
"""

from __future__ import annotations

import numpy as np

from engine.errors import UserError
from engine.model import formulas

#: Costs proportional to a unit's hourly rate at a fixed deployment and over its throughput:
#: the ones a break-even price (and a win probability) is defined for.
PRICED = ("cost_per_mtok_usd", "cost_per_mtok_output_usd", "cost_per_turn_usd")

#: Variables a break-even adds (per unit of the hardware it is computed for).
BREAK_EVEN_ATTRS = {
    "break_even_usd_per_hour": {
        "units": "USD/h",
        "long_name": "hourly rate per unit at which the cost equals the rival's",
    },
    "break_even_capex_usd": {
        "units": "USD",
        "long_name": "capital cost per unit whose TCO rate makes the cost equal the rival's (missing: no price does)",
    },
}


def break_even_prices(cost, reference_cost, unit_rate, power_kw, amortisation_years, pue, usd_per_kwh):
    """The per-unit hourly rate and system price at which ``cost`` equals ``reference_cost``.

    Arguments broadcast (xarray DataArrays or numbers). The capex is missing where even a free
    system would cost more than the rival (power alone), and where either cost is missing."""
    import xarray as xr

    rate = formulas.break_even_rate.py_func(unit_rate, cost, reference_cost)
    capex = formulas.capex_for_rate.py_func(rate, amortisation_years, power_kw, pue, usd_per_kwh)
    rate, capex = xr.DataArray(rate), xr.DataArray(capex)
    return xr.Dataset(
        {
            "break_even_usd_per_hour": rate.assign_attrs(BREAK_EVEN_ATTRS["break_even_usd_per_hour"]),
            "break_even_capex_usd": capex.where(capex > 0).assign_attrs(BREAK_EVEN_ATTRS["break_even_capex_usd"]),
        }
    )


def assumption(ds, name: str):
    """An assumption's value at every point: the cube's coordinate where it is swept, else the
    value the cube recorded (its ``assumptions`` attribute)."""
    if name in ds.coords:
        return ds[name]
    from engine.sweep.cube import CubeInfo

    recorded = CubeInfo.of(ds).assumptions
    if name not in recorded:
        raise UserError(f"cube: no recorded value of '{name}' (a cube from an older engine); run the sweep again")
    return float(recorded[name])


def _recorded(ds, name: str, default):
    from engine.sweep.cube import CubeInfo

    return CubeInfo.of(ds).assumptions.get(name, default)


def unit_rate(ds, over=()):
    """Each hardware's hourly rate per unit (USD/h): ``usd_per_hour / units_per_replica`` where
    the cube holds both (it follows any swept price scenario), else the ``unit_usd_per_hour``
    coordinate; constant over deployment choices, so reduced over ``over``. Only colocated points
    say it: a disaggregated replica's ``usd_per_hour`` holds its prefill pool's share too."""
    if "usd_per_hour" in ds.data_vars and "units_per_replica" in ds.data_vars:
        rate = ds["usd_per_hour"] / ds["units_per_replica"]
        if "serving" in rate.dims:
            rate = rate.sel(serving="colocated") if "colocated" in rate["serving"].values else None
        elif _recorded(ds, "serving", "colocated") != "colocated":
            rate = None
        if rate is not None:
            return rate.max([d for d in over if d in rate.dims], skipna=True)
    if "price" in ds.dims:
        raise UserError("cube: the price scenario is swept; the break-even needs usd_per_hour and units_per_replica")
    if "unit_usd_per_hour" not in ds.coords:
        raise UserError("cube: no hourly rate per unit (usd_per_hour or the unit_usd_per_hour coordinate)")
    return ds["unit_usd_per_hour"]


def proportional_to_rate(ds, best):
    """Where a winner's cost is proportional to its own unit's hourly rate (what a break-even
    price assumes): colocated, or a prefill pool of its own kind. A pool of other hardware keeps
    its price as the unit's moves, so there the cost is not proportional and no price is given."""
    import xarray as xr

    def text(name, default):  # as Python strings (a cube's labels may be numpy's StringDType)
        if name in best.variables:
            return best[name].copy(data=np.asarray(best[name].values, dtype=object).astype(str).astype(object))
        return xr.DataArray(str(_recorded(ds, name, default)))

    serving, pool = text("serving", "colocated"), text("prefill_hardware", "same")
    own = (pool == text("hardware", "")) if "hardware" in best.variables else False
    return (serving != "disaggregated") | (pool == "same") | own


def foreign_pools(ds, hardware: str) -> list[str]:
    """The prefill pools of other hardware that ``hardware``'s disaggregated deployments in ``ds``
    may use (none where the cube is colocated only)."""
    serving = ds["serving"].values if "serving" in ds.coords else [_recorded(ds, "serving", "colocated")]
    if "disaggregated" not in [str(v) for v in serving]:
        return []
    pools = (
        ds["prefill_hardware"].values
        if "prefill_hardware" in ds.coords
        else [_recorded(ds, "prefill_hardware", "same")]
    )
    return [str(p) for p in pools if str(p) not in ("same", hardware)]


def rival_break_even(ds, best, cost: str, over=()):
    """For each hardware's winner in ``best`` (:func:`engine.cheapest` per hardware): the
    cheapest other hardware in the same group (``rival``, ``rival_cost``) and the prices per unit
    at which this hardware would cost what the rival does."""
    import xarray as xr

    if "hardware" not in best.dims or best.sizes["hardware"] < 2:
        raise UserError("break-even: needs two or more hardware in the cube (and none fixed by --sel)")
    names = [str(h) for h in best["hardware"].values]
    values = best[cost]
    rivals, rival_costs = [], []
    for name in names:
        others = values.where(best["hardware"] != name)
        filled = others.fillna(np.inf)
        position = filled.argmin("hardware")
        found = np.isfinite(filled.min("hardware"))
        rival_costs.append(others.isel(hardware=position).where(found).drop_vars("hardware", errors="ignore"))
        label = np.asarray(names, dtype=object)[position.values]
        rivals.append(xr.DataArray(np.where(found.values, label, ""), dims=position.dims, coords=position.coords))
    rival_cost = xr.concat(rival_costs, "hardware").assign_coords(hardware=best["hardware"])
    rival = xr.concat(rivals, "hardware").assign_coords(hardware=best["hardware"])
    reset = ds.reset_coords()
    power = reset.get("power_kw", np.nan)  # older cubes: no capex break-even
    prices = break_even_prices(
        values,
        rival_cost,
        unit_rate(ds, over),
        power,
        assumption(ds, "amortisation_years"),
        assumption(ds, "pue"),
        assumption(ds, "usd_per_kwh"),
    )
    prices = prices.where(proportional_to_rate(ds, best))
    out = prices.assign(rival=rival, rival_cost=rival_cost.assign_attrs(values.attrs))
    keep = [c for c in out.coords if c not in out.dims]
    return out.drop_vars(keep)
