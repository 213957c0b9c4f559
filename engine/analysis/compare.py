"""Comparisons as array operations: cost ratios, break-even concurrency and break-even prices.

``break_even_concurrency`` works on any pair of cost arrays that share a concurrency
axis (xarray DataArrays from a cube, or numpy arrays), so "where does an H100 fleet
become cheaper than WSE-3" is one call over a whole cube.
"""

from __future__ import annotations

import numpy as np

from engine.analysis.breakeven import break_even_prices
from engine.model.core import evaluate_arrays
from engine.model.point import Point
from engine.model.pricing import price_source, unit_usd_per_hour
from engine.model.records import Hardware

#: Concurrency axis used by ``tokensweep point --vs`` to look for the break-even.
BREAK_EVEN_AXIS = tuple(2**i for i in range(0, 13))


def break_even_concurrency(cost, reference, dim: str = "concurrency"):
    """Smallest concurrency at which ``cost`` falls strictly below ``reference``.

    ``cost`` is an :class:`xarray.DataArray` with a ``dim`` coordinate; ``reference`` is
    another DataArray (broadcast against it, e.g. a second hardware's cost) or a number
    (a reference API price in the same units). The result drops ``dim``; NaN where the
    cost never falls below.

    >>> import xarray as xr
    >>> cost = xr.DataArray([1.47, 0.25, 0.10], dims="concurrency", coords={"concurrency": [1, 8, 32]})
    >>> float(break_even_concurrency(cost, 0.60))
    8.0
    """
    below = cost < reference
    concurrency = cost[dim].astype(float)
    candidates = concurrency.where(below)
    return candidates.min(dim=dim, skipna=True)


def compare_point(point: Point, other: Hardware, api_price: float | None = None, other_units: int = 0) -> dict:
    """``point`` on its hardware and on ``other`` side by side, and break-even concurrencies over 1..4096.

    Deployment settings of the point (``replica_units``) apply to its own hardware only; the
    other side is a replica of ``other_units`` units (0: the fewest that hold it).
    """
    import numpy as np
    import xarray as xr

    hardware = point.hardware
    axis = sorted(set(BREAK_EVEN_AXIS) | {int(point.concurrency)})
    theirs = point.assumptions.model_copy(update={"replica_units": other_units})
    sides_arrays = {
        unit.name: evaluate_arrays(
            [point.model], [unit], [point.isl], [point.osl], axis, [point.weight_bits], [point.kv_bits],
            point.workload, assumptions,
        )
        for unit, assumptions in ((hardware, point.assumptions), (other, theirs))
    }  # fmt: skip
    names = (
        "units_needed",
        "units_per_replica",
        "interactivity_tps",
        "ttft_s",
        "throughput_tps",
        "usd_per_hour",
        "cost_per_mtok_usd",
        "cost_per_mtok_output_usd",
    )
    at = axis.index(int(point.concurrency))
    sides = {unit: {n: arrays.at(n, concurrency=at).item() for n in names} for unit, arrays in sides_arrays.items()}
    cost = xr.DataArray(
        np.stack([a.view("cost_per_mtok_usd", ("concurrency",)) for a in sides_arrays.values()], axis=-1),
        dims=("concurrency", "hardware"),
        coords={"concurrency": axis, "hardware": [hardware.name, other.name]},
    )
    first, second = cost.sel(hardware=hardware.name), cost.sel(hardware=other.name)
    result = {
        "model": point.model.name,
        "isl": point.isl,
        "osl": point.osl,
        "concurrency": point.concurrency,
        "weight_bits": point.weight_bits,
        "kv_bits": point.kv_bits,
        "hardware": sides,
        "cost_ratio": sides[hardware.name]["cost_per_mtok_usd"] / sides[other.name]["cost_per_mtok_usd"],
        "break_even_concurrency": {
            f"{hardware.name} below {other.name}": _plain(break_even_concurrency(first, second)),
            f"{other.name} below {hardware.name}": _plain(break_even_concurrency(second, first)),
        },
        "concurrency_searched": [axis[0], axis[-1]],
        "other_units": other_units,
    }
    result["break_even_price"] = {}
    for (unit, assumptions), rival in zip(((hardware, point.assumptions), (other, theirs)), (other, hardware)):
        mine, theirs_cost = sides[unit.name], sides[rival.name]["cost_per_mtok_usd"]
        if not (mine["units_per_replica"] > 0 and np.isfinite(mine["cost_per_mtok_usd"]) and np.isfinite(theirs_cost)):
            continue  # a side no replica serves has no price that makes it match (the caller says which)
        if assumptions.serving == "disaggregated" and assumptions.prefill_hardware not in ("same", unit.name):
            continue  # a pool of other hardware keeps its price: the cost is not proportional to the unit's rate
        prices = break_even_prices(
            mine["cost_per_mtok_usd"],
            theirs_cost,
            unit_usd_per_hour(unit, assumptions),  # the unit's own rate (a disaggregated bill holds its pool's too)
            unit.power_kw,
            assumptions.amortisation_years,
            assumptions.pue,
            assumptions.usd_per_kwh,
        )
        result["break_even_price"][unit.name] = {
            "rival": rival.name,
            "usd_per_hour_per_unit": float(prices["break_even_usd_per_hour"]),
            "capex_usd_per_unit": _finite(float(prices["break_even_capex_usd"])),
            "price_source": price_source(unit, assumptions.price),
        }
    if api_price is not None:
        result["api_price_usd_per_mtok"] = api_price
        for unit, series in ((hardware.name, first), (other.name, second)):
            result["break_even_concurrency"][f"{unit} below API price"] = _plain(
                break_even_concurrency(series, api_price)
            )
    return result


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else value


def _plain(value) -> int | None:
    v = float(value)
    return None if np.isnan(v) else int(v)
