"""Comparisons as array operations: cost ratios and break-even concurrency.

``break_even_concurrency`` works on any pair of cost arrays that share a concurrency
axis (xarray DataArrays from a cube, or numpy arrays), so "where does an H100 fleet
become cheaper than WSE-3" is one call over a whole cube.
"""

from __future__ import annotations

import numpy as np

from engine.assumptions import Assumptions
from engine.catalog import Hardware, Model, Workload
from engine.evaluate import evaluate_arrays
from engine.reference import output_length

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


def compare_point(
    model: Model,
    hardware: Hardware,
    other: Hardware,
    isl: float,
    concurrency: float,
    weight_bits: float,
    kv_bits: float,
    workload: Workload,
    assumptions: Assumptions,
    osl: float | None = None,
    api_price: float | None = None,
) -> dict:
    """Both hardware side by side at one point, and break-even concurrencies over 1..4096."""
    import xarray as xr

    if osl is None:
        osl = output_length(isl, workload)
    axis = sorted(set(BREAK_EVEN_AXIS) | {int(concurrency)})
    arrays = evaluate_arrays(
        [model], [hardware, other], [isl], [osl], axis, [weight_bits], [kv_bits], workload, assumptions
    )
    names = ("units_needed", "interactivity_tps", "ttft_s", "throughput_tps", "usd_per_hour", "cost_per_mtok_usd",
             "cost_per_mtok_output_usd")  # fmt: skip
    at = axis.index(int(concurrency))
    sides = {}
    for j, unit in enumerate((hardware, other)):
        sides[unit.name] = {n: arrays[n][0, 0, at, 0, 0, j].item() for n in names}
    cost = xr.DataArray(
        arrays["cost_per_mtok_usd"][0, 0, :, 0, 0, :],
        dims=("concurrency", "hardware"),
        coords={"concurrency": axis, "hardware": [hardware.name, other.name]},
    )
    first, second = cost.sel(hardware=hardware.name), cost.sel(hardware=other.name)
    result = {
        "model": model.name,
        "isl": isl,
        "osl": osl,
        "concurrency": concurrency,
        "weight_bits": weight_bits,
        "kv_bits": kv_bits,
        "hardware": sides,
        "cost_ratio": sides[hardware.name]["cost_per_mtok_usd"] / sides[other.name]["cost_per_mtok_usd"],
        "break_even_concurrency": {
            f"{hardware.name} below {other.name}": _plain(break_even_concurrency(first, second)),
            f"{other.name} below {hardware.name}": _plain(break_even_concurrency(second, first)),
        },
        "concurrency_searched": [axis[0], axis[-1]],
    }
    if api_price is not None:
        result["api_price_usd_per_mtok"] = api_price
        for unit, series in ((hardware.name, first), (other.name, second)):
            result["break_even_concurrency"][f"{unit} below API price"] = _plain(break_even_concurrency(series, api_price))
    return result


def _plain(value) -> int | None:
    v = float(value)
    return None if np.isnan(v) else int(v)


def format_comparison(model: Model, comparison: dict) -> str:
    from engine.units import format_count, format_usd

    names = list(comparison["hardware"])
    a, b = (comparison["hardware"][n] for n in names)
    rows = [
        ("units needed", lambda s: f"{s['units_needed']}"),
        ("interactivity", lambda s: f"{s['interactivity_tps']:,.1f} tok/s"),
        ("time to first token", lambda s: f"{s['ttft_s']:.4g} s"),
        ("cluster throughput", lambda s: f"{s['throughput_tps']:,.0f} tok/s"),
        ("hourly cost", lambda s: f"{format_usd(s['usd_per_hour'])}/h"),
        ("cost per Mtok", lambda s: f"{format_usd(s['cost_per_mtok_usd'])}/Mtok"),
        ("cost per output Mtok", lambda s: f"{format_usd(s['cost_per_mtok_output_usd'])}/Mtok"),
    ]
    lines = [
        f"{model.name}: ISL {format_count(comparison['isl'])} tokens, OSL {comparison['osl']:.0f} tokens, "
        f"{comparison['concurrency']:g} concurrent requests, weights {comparison['weight_bits']:g}-bit, "
        f"KV {comparison['kv_bits']:g}-bit",
        "",
        f"  {'':<22} {names[0]:>18} {names[1]:>18}",
    ]
    lines += [f"  {label:<22} {fmt(a):>18} {fmt(b):>18}" for label, fmt in rows]
    lines.append(f"  cost ratio {names[0]}/{names[1]}: {comparison['cost_ratio']:.3g}")
    lo, hi = comparison["concurrency_searched"]
    lines.append(f"Break-even concurrency (searched {lo} to {hi}, powers of two):")
    for label, value in comparison["break_even_concurrency"].items():
        lines.append(f"  {label:<40} {'never' if value is None else value}")
    return "\n".join(lines)
