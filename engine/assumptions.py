"""Scalar assumptions of the cost model, with defaults, units and sources.

Every number here is overridable per sweep (``parameters:``) or per point (``--set``), and
any numeric one may be made a sweep axis. ``docs/model.md`` explains each.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]

PRICE_MODES = ("on_demand", "spot", "tco")
CACHE_TIERS = ("hbm", "host")


class Assumptions(BaseModel):
    """The scalar parameters of one evaluation (SPEC "Scalar assumptions")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_read_speedup: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 10.0
    memory_bw_efficiency: Fraction = 0.8
    mfu_decode: Fraction = 0.5
    mfu_prefill: Fraction = 0.6
    step_overhead_s: NonNegative = 0.0
    allreduce_latency_s: NonNegative = 8e-6
    scaleout_bw_gbs: Positive = 50.0
    host_cache_bw_gbs: Positive = 50.0
    usable_memory_fraction: Fraction | None = None
    amortisation_years: Positive = 4.0
    pue: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.3
    usd_per_kwh: NonNegative = 0.10
    interactivity_fit_coefficient: Positive = 3322.0
    interactivity_fit_exponent: NonNegative = 0.294
    price: Literal["on_demand", "spot", "tco"] = "on_demand"
    cache_tier: Literal["hbm", "host"] = "hbm"

    def as_vector(self) -> list[float]:
        """Kernel layout: the numeric fields in ``NUMERIC`` order, then the two codes."""
        values = [getattr(self, name) for name in NUMERIC]
        values[NUMERIC.index("usable_memory_fraction")] = self.usable_memory_fraction or 0.0
        return values + [float(PRICE_MODES.index(self.price)), float(CACHE_TIERS.index(self.cache_tier))]


NUMERIC = (
    "cache_read_speedup",
    "memory_bw_efficiency",
    "mfu_decode",
    "mfu_prefill",
    "step_overhead_s",
    "allreduce_latency_s",
    "scaleout_bw_gbs",
    "host_cache_bw_gbs",
    "usable_memory_fraction",
    "amortisation_years",
    "pue",
    "usd_per_kwh",
    "interactivity_fit_coefficient",
    "interactivity_fit_exponent",
)

#: Units and one-line meanings, used for cube attributes and ``docs/model.md``.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "cache_read_speedup": ("1", "cache-read/prefill token rate as a multiple of decode interactivity (WSE-3); plausible 5-20"),
    "memory_bw_efficiency": ("1", "achieved fraction of peak memory bandwidth"),
    "mfu_decode": ("1", "model FLOPs utilisation while decoding"),
    "mfu_prefill": ("1", "model FLOPs utilisation while prefilling"),
    "step_overhead_s": ("s", "fixed overhead added to every decode step"),
    "allreduce_latency_s": ("s", "latency of one tensor-parallel all-reduce"),
    "scaleout_bw_gbs": ("GB/s", "per-unit scale-out network bandwidth used past the scale-up domain (400 Gb/s NIC)"),
    "host_cache_bw_gbs": ("GB/s", "per-unit bandwidth of the host-memory prefix-cache tier (PCIe 5)"),
    "usable_memory_fraction": ("1", "usable fraction of unit memory; 0 or unset = catalog default (wafer 1.0, GPU 0.9)"),
    "amortisation_years": ("year", "capex amortisation period in TCO mode"),
    "pue": ("1", "data-centre power usage effectiveness in TCO mode"),
    "usd_per_kwh": ("USD/kWh", "electricity price in TCO mode"),
    "interactivity_fit_coefficient": ("tok/s", "WSE-3 interactivity fit: coefficient of 3322 / A_B^0.294"),
    "interactivity_fit_exponent": ("1", "WSE-3 interactivity fit: exponent of 3322 / A_B^0.294"),
    "price": ("", "hourly-rate scenario: on_demand, spot (rental rates) or tco (derived)"),
    "cache_tier": ("", "where cache-read KV is loaded from: hbm (resident prefix) or host (PCIe tier)"),
}
