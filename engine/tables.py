"""Catalog records as struct-of-arrays tables, the layout the kernels read.

Kernels take 2-D float tables with one row per model / hardware unit and fixed column
indices (module constants, frozen into the compiled code), plus the KV groups of all
models flattened with offsets. Missing values use sentinels documented per column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.assumptions import NUMERIC, Assumptions
from engine.catalog import Hardware, Model, Workload

# Model table columns
M_TOTAL_PARAMS, M_ACTIVE_PARAMS, M_LAYERS, M_HIDDEN, M_QUERY_WIDTH, M_EXPERTS, M_EXPERTS_PER_TOKEN = range(7)
MODEL_COLUMNS = 7
# KV group table columns; window = +inf when the group has none
G_LAYERS, G_ELEMENTS, G_WINDOW, G_RATIO = range(4)
# Hardware table columns; domain 0 = no scale-up domain; link 0 = no scale-up link;
# rent NaN = no listed rate in that scenario (the TCO rate applies)
(
    H_KIND,
    H_MEMORY_BYTES,
    H_USABLE,
    H_BANDWIDTH,
    H_PEAK4,
    H_PEAK8,
    H_PEAK16,
    H_CAPEX,
    H_DOMAIN,
    H_LINK_BW,
    H_RENT_ON_DEMAND,
    H_RENT_SPOT,
    H_POWER_KW,
) = range(13)
HARDWARE_COLUMNS = 13
KIND_CODES = {"wafer": 0, "gpu": 1, "sram_chip": 2}
# Assumption vector: NUMERIC fields, then the price-mode and cache-tier codes
A_INDEX = {name: i for i, name in enumerate(NUMERIC)}
A_PRICE_MODE = len(NUMERIC)
A_CACHE_TIER = len(NUMERIC) + 1
# Workload mix vector
W_CACHE_READ, W_CACHE_WRITE, W_INPUT, W_OUTPUT = range(4)


@dataclass(frozen=True)
class ModelTable:
    table: np.ndarray  # (M, MODEL_COLUMNS)
    group_offsets: np.ndarray  # (M + 1,) int64
    groups: np.ndarray  # (G, 4)


def model_table(models: Sequence[Model]) -> ModelTable:
    table = np.empty((len(models), MODEL_COLUMNS))
    offsets = np.zeros(len(models) + 1, dtype=np.int64)
    rows = []
    for i, m in enumerate(models):
        table[i] = (m.total_params, m.active_params, m.layers, m.hidden_size, m.query_width, m.experts, m.experts_per_token)
        for g in m.kv_groups:
            rows.append((g.layers, g.elements, math.inf if g.window is None else g.window, g.ratio))
        offsets[i + 1] = len(rows)
    groups = np.array(rows, dtype=np.float64).reshape(len(rows), 4)
    return ModelTable(table, offsets, groups)


def hardware_table(units: Sequence[Hardware]) -> np.ndarray:
    table = np.empty((len(units), HARDWARE_COLUMNS))
    for i, h in enumerate(units):
        table[i] = (
            KIND_CODES[h.kind],
            h.memory_gb * 1e9,
            h.usable_fraction,
            h.memory_bw_tbs * 1e12,
            h.peak_flops(4),
            h.peak_flops(8),
            h.peak_flops(16),
            h.capex_usd,
            h.scaleup_domain or 0,
            (h.scaleup_link_gbs_per_dir or 0.0) * 1e9,
            h.usd_per_hour.get("on_demand", math.nan),
            h.usd_per_hour.get("spot", math.nan),
            h.power_kw,
        )
    return table


def interactivity_overrides(models: Sequence[Model], units: Sequence[Hardware]) -> np.ndarray:
    """(M, H) catalog interactivity overrides in tok/s; NaN where the fit applies."""
    out = np.full((len(models), len(units)), np.nan)
    for i, m in enumerate(models):
        for j, h in enumerate(units):
            if h.name in m.interactivity_tps:
                out[i, j] = m.interactivity_tps[h.name]
    return out


def assumption_vector(assumptions: Assumptions) -> np.ndarray:
    return np.asarray(assumptions.as_vector(), dtype=np.float64)


def workload_vector(workload: Workload) -> np.ndarray:
    return np.asarray(workload.fractions, dtype=np.float64)
