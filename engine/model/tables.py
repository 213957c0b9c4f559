"""Catalog records as struct-of-arrays tables, the layout the kernels read, bound by name.

Kernels take 2-D float tables with one row per model / hardware unit; columns are named by
:class:`enum.IntEnum` classes (``hardware[h, HW.memory_bytes]``), frozen into the
compiled code as constants. Builders fill each row by column name and check that every
column is set, so no table depends on the order values are listed in. KV groups of all
models are flattened with offsets. Missing values use sentinels documented per column.

:data:`LAYOUT_FINGERPRINT` hashes every layout the kernels freeze (columns, parameter
vector, codes, variable shapes); the kernels' on-disk cache is keyed by it, so a changed
layout can never load a stale compiled kernel.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

import numpy as np

from engine.axes import CHOICE_PARAMETERS, NUMERIC_PARAMETERS
from engine.model.assumptions import CODES, Assumptions
from engine.model.records import Hardware, HardwareCode, Model, Workload
from engine.model.variables import VARIABLES


class MC(IntEnum):
    """Model table columns."""

    total_params = 0
    active_params = 1
    layers = 2
    hidden_size = 3
    query_width = 4
    experts = 5
    experts_per_token = 6
    kv_shards = 7  # ways the KV splits under tensor parallelism (KV heads; 1 for latent caches)
    max_context = 8  # tokens; +inf without a limit
    decode_query_width = 9  # attention width of a decode step (MLA: absorbed, over the latent)


class GC(IntEnum):
    """KV group table columns; window = +inf when the group has none."""

    layers = 0
    elements = 1
    window = 2
    ratio = 3


class HW(IntEnum):
    """Hardware table columns. scaleup_domain 0 = none; scaleup_link_bw 0 = no scale-up link;
    rent_* NaN = no listed rate in that scenario (the TCO rate applies)."""

    kind = 0  # HardwareCode
    memory_bytes = 1
    usable_fraction = 2
    bandwidth = 3
    peak_fp4 = 4
    peak_fp8 = 5
    peak_bf16 = 6
    capex = 7
    scaleup_domain = 8
    scaleup_link_bw = 9
    rent_on_demand = 10
    rent_spot = 11
    power_kw = 12
    native_fp4 = 13  # 1 where the unit computes in FP4 (else FP4 weights are converted as they stream)
    native_fp8 = 14


class MIX(IntEnum):
    """Workload mix vector."""

    cache_read = 0
    cache_write = 1
    input = 2
    output = 3


_KIND_CODES = {m.name: int(m) for m in HardwareCode}

#: Parameter vector: numeric assumptions in registry order, then the choice codes.
P = IntEnum("P", {name: i for i, name in enumerate(NUMERIC_PARAMETERS + CHOICE_PARAMETERS)})


@cache
def _names(columns: type[IntEnum]) -> tuple[tuple[str, ...], frozenset[str]]:
    return tuple(c.name for c in columns), frozenset(c.name for c in columns)


def _row(columns: type[IntEnum], values: Mapping[str, float], what: str) -> list[float]:
    """Values in column order, refusing a missing or unknown column name."""
    names, known = _names(columns)
    if values.keys() != known:
        raise AssertionError(f"{what} row: columns {sorted(set(values) ^ known)} are missing or unknown")
    return [float(values[n]) for n in names]


#: Rows already built, by record identity (the record is held, so its id is never reused).
_ROWS: OrderedDict[int, tuple[object, list[list[float]]]] = OrderedDict()
_ROWS_MAX = 4096


_ROWS_LOCK = threading.Lock()  # Dask threads build tables concurrently


def _rows_of(record, build) -> list[list[float]]:
    """``build(record)`` once per record: blocks of a sweep share their records."""
    with _ROWS_LOCK:
        hit = _ROWS.get(id(record))
        if hit is not None and hit[0] is record:
            _ROWS.move_to_end(id(record))
            return hit[1]
    rows = build(record)
    with _ROWS_LOCK:
        _ROWS[id(record)] = (record, rows)
        if len(_ROWS) > _ROWS_MAX:
            _ROWS.popitem(last=False)
    return rows


@dataclass(frozen=True)
class ModelTable:
    table: np.ndarray  # (M, len(MC))
    group_offsets: np.ndarray  # (M + 1,) int64
    groups: np.ndarray  # (G, len(GC))


def _model_rows(m: Model) -> list[list[float]]:
    """The model's row, then one row per KV group."""
    rows = [
        _row(
            MC,
            {
                "total_params": m.total_params,
                "active_params": m.active_params,
                "layers": m.layers,
                "hidden_size": m.hidden_size,
                "query_width": m.query_width,
                "experts": m.experts,
                "experts_per_token": m.experts_per_token,
                "kv_shards": m.kv_shards,
                "max_context": math.inf if m.max_context is None else m.max_context,
                "decode_query_width": m.decode_query_width,
            },
            "model",
        )
    ]
    for g in m.kv_groups:
        window = math.inf if g.window is None else g.window
        rows.append(_row(GC, {"layers": g.layers, "elements": g.elements, "window": window, "ratio": g.ratio}, "group"))
    return rows


def model_table(models: Sequence[Model]) -> ModelTable:
    table = np.empty((len(models), len(MC)))
    offsets = np.zeros(len(models) + 1, dtype=np.int64)
    groups = []
    for i, m in enumerate(models):
        row, *group_rows = _rows_of(m, _model_rows)
        table[i] = row
        groups.extend(group_rows)
        offsets[i + 1] = len(groups)
    return ModelTable(table, offsets, np.array(groups, dtype=np.float64).reshape(len(groups), len(GC)))


def _hardware_rows(h: Hardware) -> list[list[float]]:
    return [
        _row(
            HW,
            {
                "kind": _KIND_CODES[h.kind],
                "memory_bytes": h.memory_gb * 1e9,
                "usable_fraction": h.usable_fraction,
                "bandwidth": h.memory_bw_tbs * 1e12,
                "peak_fp4": h.peak_flops(4),
                "peak_fp8": h.peak_flops(8),
                "peak_bf16": h.peak_flops(16),
                "capex": h.capex_usd,
                "scaleup_domain": h.scaleup_domain or 0,
                "scaleup_link_bw": (h.scaleup_link_gbs_per_dir or 0.0) * 1e9,
                "rent_on_demand": h.usd_per_hour.get("on_demand", math.nan),
                "rent_spot": h.usd_per_hour.get("spot", math.nan),
                "power_kw": h.power_kw,
                "native_fp4": h.fp4_tflops is not None,
                "native_fp8": h.fp8_tflops is not None,
            },
            "hardware",
        )
    ]


def hardware_table(units: Sequence[Hardware]) -> np.ndarray:
    return np.array([_rows_of(h, _hardware_rows)[0] for h in units], dtype=np.float64).reshape(len(units), len(HW))


def pool_units(name: str) -> list[Hardware]:
    """The prefill pool's unit as a list (``serving: disaggregated``): none for ``same`` (each
    decode hardware prefills on its own kind), else the shipped record of that name."""
    if name == "same":
        return []
    from engine.model.catalog import pool_unit

    return [pool_unit(name)]


def interactivity_overrides(models: Sequence[Model], units: Sequence[Hardware]) -> np.ndarray:
    """(M, H) catalog interactivity overrides in tok/s; NaN where the fit applies."""
    out = np.full((len(models), len(units)), np.nan)
    for i, m in enumerate(models):
        for j, h in enumerate(units):
            if h.name in m.interactivity_tps:
                out[i, j] = m.interactivity_tps[h.name]
    return out


class SPEC(IntEnum):
    """Speculation table columns (per model and hardware); NaN rows = not listed in the catalog."""

    draft_tokens = 0
    acceptance = 1
    draft_ratio = 2


def speculation_table(models: Sequence[Model], units: Sequence[Hardware]) -> np.ndarray:
    """(M, H, len(SPEC)) how the catalog says each model is served on each hardware; NaN: no entry."""
    out = np.full((len(models), len(units), len(SPEC)), np.nan)
    for i, m in enumerate(models):
        for j, h in enumerate(units):
            setting = m.speculative.get(h.name)
            if setting is not None:
                out[i, j] = _row(
                    SPEC,
                    {
                        "draft_tokens": setting.draft_tokens,
                        "acceptance": setting.acceptance,
                        "draft_ratio": setting.draft_ratio,
                    },
                    "speculation",
                )
    return out


def parameter_vector(assumptions: Assumptions) -> np.ndarray:
    vector = assumptions.as_vector()
    assert len(vector) == len(P)
    return np.asarray(vector, dtype=np.float64)


def workload_vector(workload: Workload) -> np.ndarray:
    return np.asarray(_row(MIX, {f: getattr(workload, f) for f in _names(MIX)[0]}, "mix"), dtype=np.float64)


def _layout() -> dict:
    enums = {e.__name__: [m.name for m in e] for e in (MC, GC, HW, MIX, P, SPEC, HardwareCode, *CODES.values())}
    variables = [(v.name, v.family, v.dims, np.dtype(v.dtype).str) for v in VARIABLES]
    return {"enums": enums, "variables": variables}


LAYOUT_FINGERPRINT = hashlib.sha256(json.dumps(_layout(), sort_keys=True).encode()).hexdigest()[:12]
