"""The variable registry: every output of the cost model, declared once.

A :class:`Variable` names its kernel family, its kernel dims (which give the array rank),
its dtype, units and meaning, and the assumptions it reads. From this registry come the
kernels' signatures and output binding (:mod:`engine.model.kernels` checks at import that
each kernel's output parameters are its family's variables, by name), the cube's schema
(a variable spans an assumption axis only if it reads that assumption), ``--json`` keys,
the CLI panel and the documentation check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.axes import AXES

#: Codes of ``bound_by``, in code order (engine.model.formulas uses the same order).
BOUND_BY = ("latency", "compute", "memory_bandwidth", "link")

#: Placeholder in kernel dims for one (ISL, OSL) pair: ("isl",) or ("isl", "osl") in a cube.
CONTEXT = "<context>"
TOKEN_TYPE = "token_type"
TOKEN_TYPES = ("cache_read", "cache_write", "input", "output")
#: The kernels' loop order; a variable's kernel dims are a subsequence of it.
KERNEL_DIMS = ("model", CONTEXT, "concurrency", "weight_bits", "kv_bits", "hardware", TOKEN_TYPE)
FAMILIES = ("memory", "performance")


@dataclass(frozen=True)
class Variable:
    name: str
    family: str  # which kernel computes it: "memory" or "performance"
    dims: tuple[str, ...]  # kernel dims, a subsequence of KERNEL_DIMS
    units: str
    long_name: str
    reads: frozenset[str] = frozenset()  # assumptions (parameters) the value depends on
    dtype: type = np.float64

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}")
        order = [KERNEL_DIMS.index(d) for d in self.dims]
        if order != sorted(order):
            raise ValueError(f"{self.name}: dims {self.dims} are not in kernel order {KERNEL_DIMS}")
        unknown = set(self.reads) - {n for n, a in AXES.items() if a.role in ("parameter", "choice")}
        if unknown:
            raise ValueError(f"{self.name}: reads unknown assumptions {sorted(unknown)}")

    @property
    def rank(self) -> int:
        return len(self.dims)


# Which assumptions each group of formulas reads (tested: changing any other assumption
# leaves the variable unchanged, so a cube never misses a dim a value depends on).
CONTEXT_LIMIT = frozenset({"context_limit"})
DRAFT = frozenset({"spec_draft_tokens", "spec_draft_ratio", "speculative"})  # the speculative draft's weights
FIT = CONTEXT_LIMIT | DRAFT | {"usable_memory_fraction", "parallelism"}
REPLICA = FIT | {"replica_units"}
# The roofline reads the deployment and the schedule, never a serving efficiency: a bound is a
# property of the hardware, the model and the deployment, the same under every profile.
ROOFLINE = REPLICA | {
    "scaleout_bw_gbs",
    "interactivity_fit_coefficient",
    "interactivity_fit_exponent",
    "wafer_batching",
    "spec_acceptance",
    "cache_read_speedup",
    "host_cache_bw_gbs",
    "cache_tier",
    "prefill_model",
    "prefill_chunk_tokens",
    "serving",
    "prefill_hardware",
    "prefill_units",
    "prefill_replicas",
}
#: The wafer pipeline's fitted latencies (tokensweep calibrate --wafer).
WAFER_PIPELINE = frozenset({"wafer_token_latency_s", "wafer_layer_latency_s", "wafer_hop_latency_s"})
#: A GPU serving stack's efficiencies and fixed times (tokensweep calibrate fits them).
GPU_SERVING = frozenset({
    "memory_bw_efficiency",
    "mfu_decode",
    "mfu_prefill",
    "step_overhead_s",
    "layer_overhead_s",
    "dequant_flops_per_weight",
    "ttft_overhead_s",
    "allreduce_latency_s",
})  # fmt: skip
#: How long a GPU serving framework's scheduler holds a request (fitted per framework).
SCHEDULER = frozenset({"ttft_scheduler_factor"})
#: What the roofline takes at its physical limit (engine.model.assumptions.AT_PEAK sets them).
SERVING_EFFICIENCY = GPU_SERVING | WAFER_PIPELINE | SCHEDULER
SERVING = ROOFLINE | SERVING_EFFICIENCY | {"prefill_burstiness"}
PRICE = REPLICA | {"amortisation_years", "pue", "usd_per_kwh", "price"}
COST = SERVING | PRICE

_MC = ("model", CONTEXT)
_FULL = ("model", CONTEXT, "concurrency", "weight_bits", "kv_bits")
_HW = (*_FULL, "hardware")

# fmt: off
VARIABLES: tuple[Variable, ...] = (
    Variable("weight_bytes", "memory", ("model", "weight_bits"), "bytes",
             "weight memory of the model, P x wbits / 8 (a speculative draft's weights count in units_needed)"),
    Variable("within_context", "memory", _MC, "bool",
             "ISL + OSL fits the model's context window (else NaN figures unless context_limit is none)",
             dtype=np.bool_),
    Variable("kv_bytes_per_request", "memory", (*_MC, "kv_bits"), "bytes", "KV cache held by one request at ISL + OSL",
             CONTEXT_LIMIT),
    Variable("kv_bytes", "memory", (*_MC, "concurrency", "kv_bits"), "bytes", "KV cache of all concurrent requests",
             CONTEXT_LIMIT),
    Variable("total_bytes", "memory", _FULL, "bytes", "weights + KV cache of one replica", CONTEXT_LIMIT),
    Variable("kv_share", "memory", _FULL, "1", "KV cache share of the memory footprint", CONTEXT_LIMIT),
    Variable("units_needed", "memory", _HW, "count",
             "fewest units (WSE-3 systems or GPUs) that hold one replica in its layout (0: none does)", FIT, np.int64),
    Variable("units_per_replica", "memory", _HW, "count", "units in one replica: replica_units, or the fewest that fit",
             REPLICA, np.int64),
    Variable("replica_fits", "memory", _HW, "bool",
             "the replica holds the weights plus the KV of at least one request (else NaN figures)", REPLICA, np.bool_),
    Variable("admitted_requests", "memory", _HW, "requests",
             "requests the replica holds at once: all R, or as many as a fixed replica's KV room takes (the rest queue)",
             REPLICA, np.int64),
    Variable("layers_per_unit", "memory", _HW, "layers", "model layers per unit", REPLICA),
    Variable("capex_usd", "memory", _HW, "USD", "estimated capital cost of one replica", REPLICA),
    Variable("stranded_fraction", "memory", _HW, "1", "usable memory bought but left empty on the fullest unit", REPLICA),
    Variable("fits_domain", "memory", _HW, "bool", "replica fits the scale-up domain (always true without one)", REPLICA,
             np.bool_),
    Variable("interactivity_bound_tps", "performance", _HW, "tokens/s",
             "roofline decode rate per request: peak bandwidth, compute and links, no efficiency, latency or overhead",
             ROOFLINE),
    Variable("throughput_bound_tps", "performance", _HW, "tokens/s", "roofline cluster throughput, all token types",
             ROOFLINE),
    Variable("ttft_bound_s", "performance", _HW, "s", "roofline time to first token (prefill, cache read, first step)",
             ROOFLINE),
    Variable("interactivity_tps", "performance", _HW, "tokens/s",
             "expected output tokens per second per request (serving profile; prefills of others included)", SERVING),
    Variable("decode_step_s", "performance", _HW, "s", "expected time per output token (1 / interactivity)", SERVING),
    Variable("ttft_s", "performance", _HW, "s", "expected time to first token", SERVING),
    Variable("turn_time_s", "performance", _HW, "s", "expected wall time of one request's turn (first token to last)",
             SERVING),
    Variable("throughput_tps", "performance", _HW, "tokens/s", "expected cluster throughput, all token types", SERVING),
    Variable("output_throughput_tps", "performance", _HW, "tokens/s", "expected cluster output-token throughput",
             SERVING),
    Variable("bound_by", "performance", _HW, "flags:" + " ".join(BOUND_BY),
             "the resource that sets the turn time: latency (pipeline, overheads), compute, memory bandwidth or link",
             SERVING, np.int8),
    Variable("usd_per_hour", "performance", _HW, "USD/h",
             "hourly cost of one replica (disaggregated: with its share of the prefill pool, sized to the load)", COST),
    Variable("cost_per_mtok_usd", "performance", _HW, "USD/Mtok", "hardware cost per million tokens, blended over all types",
             COST),
    Variable("cost_per_mtok_output_usd", "performance", _HW, "USD/Mtok", "hardware cost per million output tokens", COST),
    Variable("cost_per_turn_usd", "performance", _HW, "USD", "hardware cost of one turn", COST),
    Variable("cost_per_mtok_by_type_usd", "performance", (*_HW, TOKEN_TYPE), "USD/Mtok",
             "hardware cost per million tokens of each type, by its share of the time (NaN: type absent from the mix)",
             COST),
)
# fmt: on

BY_NAME = {v.name: v for v in VARIABLES}


def family(name: str) -> tuple[Variable, ...]:
    return tuple(v for v in VARIABLES if v.family == name)
