"""Hourly rates per unit: the catalog's rental rate for a price scenario, else the TCO rate.

Used by the cube's coordinates and by the reference implementation; the kernels pick the
rental rate from their table and call the same formula (engine.model.formulas.hourly_rate).
"""

from __future__ import annotations

import math

from engine.model.formulas import hourly_rate, tco_rate
from engine.model.records import Hardware


def tco_usd_per_hour(hardware: Hardware, amortisation_years: float, pue: float, usd_per_kwh: float) -> float:
    """``capex / (years x 8760) + power_kW x PUE x $/kWh`` per unit (USD/h)."""
    return tco_rate(hardware.capex_usd, amortisation_years, hardware.power_kw, pue, usd_per_kwh)


def unit_usd_per_hour(hardware: Hardware, assumptions) -> float:
    """Hourly rate of one unit in the chosen price scenario (TCO where no rate is listed)."""
    rent = hardware.usd_per_hour.get(assumptions.price, math.nan) if assumptions.price != "tco" else math.nan
    a = assumptions
    return hourly_rate(rent, hardware.capex_usd, a.amortisation_years, hardware.power_kw, a.pue, a.usd_per_kwh)


def price_source(hardware: Hardware, price: str) -> str:
    """``rental`` where the catalog lists a rate for the scenario, else ``tco``."""
    return "rental" if price != "tco" and price in hardware.usd_per_hour else "tco"


def missing_rate_note(hardware, price: str) -> str | None:
    """One line naming the hardware whose catalog lists no rate for ``price`` (their TCO rate is
    used instead), or None when every one has it (or the scenario is ``tco``)."""
    if price == "tco":
        return None
    return fallback_note(price, [h.name for h in hardware if price_source(h, price) == "tco"])


def fallback_note(price: str, missing) -> str | None:
    """The one wording of "these units have no rate in this scenario" (catalog or cube alike)."""
    if not missing:
        return None
    return f"price {price}: no {price} rate listed for {', '.join(missing)}; their TCO rate is used (price_source coordinate)"
