"""The cube's variables: name, kernel family, dimensions, units and meaning.

One registry drives the kernels' output allocation, the cube template, ``--json`` keys,
the CLI panel and the docs, so a variable is declared exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Placeholder in dims for the context axes: ("isl",) or ("isl", "osl").
CONTEXT = "<context>"
TOKEN_TYPE = "token_type"
TOKEN_TYPES = ("cache_read", "cache_write", "input", "output")


@dataclass(frozen=True)
class Variable:
    name: str
    family: str  # "memory" or "performance"
    dims: tuple[str, ...]  # kernel axes: model, <context>, concurrency, weight_bits, kv_bits, hardware, token_type
    units: str
    long_name: str
    dtype: type = np.float64


_MC = ("model", CONTEXT)
_FULL = ("model", CONTEXT, "concurrency", "weight_bits", "kv_bits")
_HW = _FULL + ("hardware",)

VARIABLES: tuple[Variable, ...] = (
    Variable("weight_bytes", "memory", ("model", "weight_bits"), "bytes", "weight memory, P x wbits / 8"),
    Variable("kv_bytes_per_request", "memory", (*_MC, "kv_bits"), "bytes", "KV cache held by one request at ISL + OSL"),
    Variable("kv_bytes", "memory", (*_MC, "concurrency", "kv_bits"), "bytes", "KV cache of all concurrent requests"),
    Variable("total_bytes", "memory", _FULL, "bytes", "weights + KV cache of one replica"),
    Variable("kv_share", "memory", _FULL, "1", "KV cache share of the memory footprint"),
    Variable("units_needed", "memory", _HW, "count", "units (WSE-3 systems or GPUs) needed for one replica", np.int64),
    Variable("layers_per_unit", "memory", _HW, "layers", "model layers per unit"),
    Variable("capex_usd", "memory", _HW, "USD", "estimated capital cost of one replica"),
    Variable("stranded_fraction", "memory", _HW, "1", "usable memory bought but left empty"),
    Variable("fits_domain", "memory", _HW, "bool", "replica fits the scale-up domain (always true without one)", np.bool_),
    Variable("interactivity_tps", "performance", _HW, "tokens/s", "output tokens per second per request while decoding"),
    Variable("decode_step_s", "performance", _HW, "s", "time of one decode step for all concurrent requests"),
    Variable("ttft_s", "performance", _HW, "s", "time to first token (prefill + cache read of one turn)"),
    Variable("turn_time_s", "performance", _HW, "s", "wall time of one round of R turns (WSE-3: of one turn per request)"),
    Variable("throughput_tps", "performance", _HW, "tokens/s", "cluster throughput, all token types"),
    Variable("output_throughput_tps", "performance", _HW, "tokens/s", "cluster output-token throughput"),
    Variable("usd_per_hour", "performance", _HW, "USD/h", "hourly cost of one replica"),
    Variable("cost_per_mtok_usd", "performance", _HW, "USD/Mtok", "hardware cost per million tokens, blended over all types"),
    Variable("cost_per_mtok_output_usd", "performance", _HW, "USD/Mtok", "hardware cost per million output tokens"),
    Variable("cost_per_turn_usd", "performance", _HW, "USD", "hardware cost of one turn"),
    Variable(
        "cost_per_mtok_by_type_usd",
        "performance",
        _HW + (TOKEN_TYPE,),
        "USD/Mtok",
        "hardware cost per million tokens of each type, by its share of the time (NaN: type absent from the mix)",
    ),
)

BY_NAME = {v.name: v for v in VARIABLES}
FAMILIES = ("memory", "performance")


def family(name: str) -> tuple[Variable, ...]:
    return tuple(v for v in VARIABLES if v.family == name)

