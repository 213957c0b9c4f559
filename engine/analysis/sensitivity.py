"""Which assumptions move an answer most: one-at-a-time swings, ranked (a tornado table).

Each numeric assumption, and each hardware's price (its scenario's hourly rate, or its system
price under TCO), is moved to a low and a high value while everything else stays put, and the
chosen figure (or, with a rival hardware, the ratio of the two sides' figures) is evaluated
again by the same compiled model as ``tokensweep point``. The default swing is a factor
(``value / swing`` and ``value x swing``, inside the assumption's bounds); ``ranges`` gives an
assumption, or a price such as ``wse3.capex_usd``, its own low and high.

The rows come back sorted by how far they move the figure; those that move it by nothing
(a wafer latency on a GPU point) are left out, and counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from engine.axes import AXES, PARAMETERS
from engine.errors import UserError, did_you_mean
from engine.model.evaluate import evaluate_point
from engine.model.point import Point
from engine.model.pricing import price_source
from engine.model.records import MAX_USD, Hardware

#: The default swing: each value divided and multiplied by this factor.
SWING = 1.25
#: Assumptions that are codes or counts, not quantities to swing (they are choices of a sweep).
NOT_SWUNG = {name for name in PARAMETERS if AXES[name].role != "parameter" or AXES[name].integer}


@dataclass(frozen=True)
class Swing:
    name: str
    low: float
    high: float
    figure_low: float
    figure_high: float

    @property
    def spread(self) -> float:
        return abs(self.figure_high - self.figure_low)


def units_of(name: str) -> str:
    """The unit of a swung value: the assumption's, or a price's (per unit of hardware)."""
    if "." in name:
        return "USD/h" if name.endswith(".usd_per_hour") else "USD"
    return AXES[name].units


def price_names(hardware: Hardware, price: str) -> str:
    """The one price of ``hardware`` that sets its cost in scenario ``price``."""
    return (
        f"{hardware.name}.usd_per_hour" if price_source(hardware, price) == "rental" else f"{hardware.name}.capex_usd"
    )


def _priced(hardware: Hardware, field: str, value: float, price: str) -> Hardware:
    if field == "usd_per_hour":
        return hardware.model_copy(update={"usd_per_hour": {**hardware.usd_per_hour, price: value}})
    return hardware.model_copy(update={"capex_usd": value})


def _price_value(hardware: Hardware, field: str, price: str) -> float:
    return hardware.usd_per_hour[price] if field == "usd_per_hour" else hardware.capex_usd


def figures() -> list[str]:
    """The variables a swing can move: numbers with units (not flags, booleans or by-type tables)."""
    from engine.model.variables import TOKEN_TYPE, VARIABLES

    return [v.name for v in VARIABLES if v.units not in ("", "bool") and not v.units.startswith("flags:")
            and TOKEN_TYPE not in v.dims]  # fmt: skip


def figure_of(point: Point, figure: str, rival: Hardware | None) -> float:
    """The figure at ``point`` (over the rival's, at the same point with its fewest units)."""
    values = evaluate_point(point)
    mine = math.nan if values[figure] is None else float(values[figure])
    if rival is None:
        return mine
    theirs = evaluate_point(point.on(rival).at(assumptions=point.assumptions.model_copy(update={"replica_units": 0})))
    return mine / theirs[figure] if theirs[figure] else math.nan


def _check(point, figure, rival, swing, ranges, prices) -> None:
    """One line for any request that cannot give honest swings."""
    if figure not in figures():
        raise UserError(f"--figure: '{figure}' is not a numeric figure of a point ({did_you_mean(figure, figures())})")
    if not (swing > 1 and math.isfinite(swing)):
        raise UserError(f"--swing: must be a finite factor > 1 (got {swing:g})")
    if rival is not None and rival.name == point.hardware.name:
        raise UserError(f"--vs: {rival.name} is the --hardware itself; compare with other hardware")
    for name, (low, high) in ranges.items():
        if name not in PARAMETERS and name not in prices:
            allowed = sorted(set(PARAMETERS) - NOT_SWUNG) + sorted(prices)
            raise UserError(f"--range: '{name}' is not a numeric assumption or a price here "
                            f"({did_you_mean(name, allowed)})")  # fmt: skip
        if name in NOT_SWUNG:
            raise UserError(f"--range: '{name}' is a choice or a count, not a quantity to swing")
        if name in prices and not low > 0:
            raise UserError(f"--range {name}: a price must be > 0 (got {low:g})")
        if name in prices and not high <= MAX_USD:
            raise UserError(f"--range {name}: a price is at most {MAX_USD:g} USD (got {high:g})")
        if name in PARAMETERS and not AXES[name].low <= low < high <= AXES[name].high:
            raise UserError(f"--range {name}: LOW and HIGH must lie within {AXES[name].bounds_text()}")


def sensitivity(
    point: Point,
    figure: str = "cost_per_mtok_output_usd",
    rival: Hardware | None = None,
    swing: float = SWING,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, list[Swing], list[str], list[str]]:
    """(the figure at the point, the swings that move it sorted largest first, the names that do
    not move it, the names not swung because their value is 0: a factor cannot move them)."""
    ranges = dict(ranges or {})
    price = point.assumptions.price
    sides = [point.hardware, *([rival] if rival is not None else [])]
    prices = {price_names(h, price): h for h in sides}
    _check(point, figure, rival, swing, ranges, prices)
    base = figure_of(point, figure, rival)
    if not math.isfinite(base):
        where = rival.name if rival is not None else point.hardware.name
        raise UserError(f"--figure: {figure} is missing at this point (no {where} replica serves it, or it is zero "
                        "there); choose another point")  # fmt: skip
    rows, unmoved, unswung = [], [], []

    def evaluated(moved_point, moved_rival) -> float:
        try:
            return figure_of(moved_point, figure, moved_rival)
        except (ValueError, ArithmeticError):
            return math.nan

    for name in PARAMETERS:
        if name in NOT_SWUNG:
            continue
        value = float(getattr(point.assumptions, name))
        if name in ranges:
            low, high = ranges[name]
        elif value == 0:
            unswung.append(name)  # a factor does not move zero (often "the catalog's value"): give a --range
            continue
        else:
            axis = AXES[name]
            low, high = (min(max(v, axis.low), axis.high) for v in (value / swing, value * swing))
        results = [evaluated(point.at(assumptions=point.assumptions.model_copy(update={name: v})), rival)
                   for v in (low, high)]  # fmt: skip
        rows.append(Swing(name, low, high, *results))
    for name, hardware in prices.items():
        field = name.split(".", 1)[1]
        value = _price_value(hardware, field, price)
        low, high = ranges.get(name, (value / swing, value * swing))
        results = []
        for v in (low, high):
            changed = _priced(hardware, field, v, price)
            moved = point.on(changed) if hardware is point.hardware else point
            results.append(evaluated(moved, changed if hardware is rival else rival))
        rows.append(Swing(name, low, high, *results))
    moved = [r for r in rows if not (r.spread <= 1e-12 * max(abs(base), 1e-300))]
    unmoved += [r.name for r in rows if r not in moved]
    # Largest first; a swing that leaves no replica serving the point (NaN) goes last.
    moved.sort(key=lambda r: (not math.isfinite(r.spread), -r.spread if math.isfinite(r.spread) else 0.0, r.name))
    return base, moved, unmoved, unswung
