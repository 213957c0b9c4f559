"""Hourly rates per unit: the catalog's rental rate for a price scenario, else the TCO rate.

Used by the cube's coordinates and by the reference implementation; the kernels compute
the same rate inline and are tested equal to it.
"""

from __future__ import annotations

from engine.model.formulas import tco_rate
from engine.model.records import Hardware


def tco_usd_per_hour(hardware: Hardware, amortisation_years: float, pue: float, usd_per_kwh: float) -> float:
    """``capex / (years x 8760) + power_kW x PUE x $/kWh`` per unit (USD/h)."""
    return tco_rate(hardware.capex_usd, amortisation_years, hardware.power_kw, pue, usd_per_kwh)


def unit_usd_per_hour(hardware: Hardware, assumptions) -> float:
    """Hourly rate of one unit in the chosen price scenario (TCO where no rate is listed)."""
    if price_source(hardware, assumptions.price) == "rental":
        return hardware.usd_per_hour[assumptions.price]
    return tco_usd_per_hour(hardware, assumptions.amortisation_years, assumptions.pue, assumptions.usd_per_kwh)


def price_source(hardware: Hardware, price: str) -> str:
    """``rental`` where the catalog lists a rate for the scenario, else ``tco``."""
    return "rental" if price != "tco" and price in hardware.usd_per_hour else "tco"
