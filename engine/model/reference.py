"""Reference implementation: one plain function per formula of ``docs/model.md``.

These functions are the documentation of the cost model and the oracle the compiled
kernels (:mod:`engine.model.kernels`) and the numpy baseline (``bench/numpy_impl.py``) are
tested against. They favour clarity over speed: each takes catalog records and scalars and
returns one quantity in base units. The production path never imports this module.

>>> from engine.model.catalog import load_catalog
>>> cat = load_catalog()
>>> kv_bytes_per_request(cat.model("qwen3-32b"), context=1000, kv_bits=16)
262144000.0
"""

from __future__ import annotations

import math

from engine.model.assumptions import Assumptions
from engine.model.point import Point
from engine.model.pricing import unit_usd_per_hour
from engine.model.records import Hardware, Model, Workload
from engine.model.variables import TOKEN_TYPES

# --------------------------------------------------------------------------- workload


def input_split(isl: float, workload: Workload) -> tuple[float, float, float]:
    """Cache-read, cache-write and fresh-input tokens of one turn (they sum to ISL)."""
    inputs = workload.cache_read + workload.cache_write + workload.input
    return (
        isl * workload.cache_read / inputs,
        isl * workload.cache_write / inputs,
        isl * workload.input / inputs,
    )


# --------------------------------------------------------------------------- memory


def kv_elements_per_request(model: Model, context: float) -> float:
    """``sum_g n_g x e_g x min(c, W_g) / r_g``: KV elements one request holds at context c."""
    total = 0.0
    for group in model.kv_groups:
        held = context if group.window is None else min(context, group.window)
        total += group.layers * group.elements * held / group.ratio
    return total


def kv_bytes_per_request(model: Model, context: float, kv_bits: float) -> float:
    """``kv_req(c) = sum_g n_g e_g min(c, W_g) / r_g x kbits / 8`` (bytes)."""
    return kv_elements_per_request(model, context) * kv_bits / 8.0


def weight_bytes(total_params: float, weight_bits: float) -> float:
    """``P x wbits / 8`` (bytes)."""
    return total_params * weight_bits / 8.0


def reserved_context(isl: float, osl: float) -> float:
    """Context reserved per request: ``ISL + OSL``."""
    return isl + osl


def kv_bytes(concurrency: float, kv_per_request: float) -> float:
    """KV of all concurrent requests: ``R x kv_req(c)``."""
    return concurrency * kv_per_request


def kv_share(kv: float, total: float) -> float:
    """Share of the footprint that is KV cache."""
    return kv / total


# --------------------------------------------------------------------------- units, capex


def usable_fraction(hardware: Hardware, assumptions: Assumptions) -> float:
    """The assumption where set (> 0), else the catalog's figure for the unit."""
    return assumptions.usable_memory_fraction or hardware.usable_fraction


def units_needed(total_bytes: float, memory_bytes: float, usable: float) -> int:
    """``max(1, ceil(total / (M x u)))``: systems (wafers) or GPUs for one replica."""
    return max(1, math.ceil(total_bytes / (memory_bytes * usable)))


def layers_per_unit(layers: float, units: int) -> float:
    return layers / units


def capex_usd(units: int, capex_per_unit: float) -> float:
    return units * capex_per_unit


def stranded_fraction(total_bytes: float, units: int, memory_bytes: float, usable: float) -> float:
    """Usable memory bought but left empty: ``1 - total / (units x M x u)``."""
    return 1.0 - total_bytes / (units * memory_bytes * usable)


def fits_domain(units: int, domain: int | None) -> bool:
    """Does the replica fit the scale-up domain (NVLink island)? No domain: always."""
    return domain is None or units <= domain


# --------------------------------------------------------------------------- compute


def flops_per_token(model: Model, context: float) -> float:
    """``2 x A + 4 x q_width x sum_g n_g x min(c, W_g) / r_g``.

    Ignores embeddings/unembedding beyond the active parameters, sparse top-k attention
    selection (an upper bound for indexer models) and the softmax itself.
    """
    attended = 0.0
    for group in model.kv_groups:
        held = context if group.window is None else min(context, group.window)
        attended += group.layers * held / group.ratio
    return 2.0 * model.active_params + 4.0 * model.query_width * attended


def nominal_weight_bits(weight_bits: float) -> int:
    """4 for wbits <= 4.5 (MXFP4 at 4.25 counts as 4), 8 for <= 8.5, else 16."""
    if weight_bits <= 4.5:
        return 4
    if weight_bits <= 8.5:
        return 8
    return 16


def compute_peak(hardware: Hardware, weight_bits: float) -> float:
    """Dense FLOP/s of the narrowest supported format that can hold the weights."""
    return hardware.peak_flops(nominal_weight_bits(weight_bits))


def routed_expert_params(model: Model) -> float:
    """``P_experts = (P - A) / (1 - k/E)``; zero for dense models."""
    if model.experts <= model.experts_per_token:
        return 0.0
    return (model.total_params - model.active_params) / (1.0 - model.experts_per_token / model.experts)


def weights_touched_bytes(model: Model, concurrency: float, weight_bits: float) -> float:
    """Weight bytes read by one decode step of R tokens under uniform routing.

    Dense part ``P - P_experts`` plus the expected unique experts touched,
    ``P_experts x (1 - (1 - k/E)^R)``.
    """
    experts = routed_expert_params(model)
    dense = model.total_params - experts
    touched = (
        0.0 if experts == 0.0 else experts * (1.0 - (1.0 - model.experts_per_token / model.experts) ** concurrency)
    )
    return (dense + touched) * weight_bits / 8.0


def base_interactivity(model: Model, hardware: Hardware, assumptions: Assumptions) -> float:
    """WSE-3 output tok/s per request: catalog override, else ``3322 / A_B^0.294``."""
    override = model.interactivity_tps.get(hardware.name)
    if override is not None:
        return override
    active_b = model.active_params / 1e9
    return assumptions.interactivity_fit_coefficient / active_b**assumptions.interactivity_fit_exponent


def tp_comm_time(model: Model, hardware: Hardware, units: int, tokens: float, assumptions: Assumptions) -> float:
    """``2 L (2(n-1)/n x tokens x hidden x 2 B / link_bw + t_allreduce)``; zero for n = 1.

    Past the scale-up domain (or with no scale-up link) the scale-out bandwidth applies.
    """
    if units <= 1:
        return 0.0
    if hardware.scaleup_link_gbs_per_dir is not None and fits_domain(units, hardware.scaleup_domain):
        link = hardware.scaleup_link_gbs_per_dir * 1e9
    else:
        link = assumptions.scaleout_bw_gbs * 1e9
    per_allreduce = 2.0 * (units - 1) / units * tokens * model.hidden_size * 2.0 / link
    return 2.0 * model.layers * (per_allreduce + assumptions.allreduce_latency_s)


# --------------------------------------------------------------------------- cost


def cost_per_mtok(usd_per_hour: float, tokens_per_s: float) -> float:
    """``CPM = $/hr / (tok/s x 3600) x 1e6``."""
    return usd_per_hour / (tokens_per_s * 3600.0) * 1e6


# --------------------------------------------------------------------------- one grid point


def evaluate_point(point: Point) -> dict[str, float]:
    """Every cube variable at one grid point, composed from the formulas above."""
    model, hardware, workload, a = point.model, point.hardware, point.workload, point.assumptions
    isl, osl, concurrency = point.isl, point.osl, point.concurrency
    weight_bits, kv_bits = point.weight_bits, point.kv_bits
    out: dict[str, float] = {}
    context = reserved_context(isl, osl)
    out["weight_bytes"] = weight_bytes(model.total_params, weight_bits)
    out["kv_bytes_per_request"] = kv_bytes_per_request(model, context, kv_bits)
    out["kv_bytes"] = kv_bytes(concurrency, out["kv_bytes_per_request"])
    out["total_bytes"] = out["weight_bytes"] + out["kv_bytes"]
    out["kv_share"] = kv_share(out["kv_bytes"], out["total_bytes"])

    memory = hardware.memory_gb * 1e9
    usable = usable_fraction(hardware, a)
    units = units_needed(out["total_bytes"], memory, usable)
    out["units_needed"] = units
    out["layers_per_unit"] = layers_per_unit(model.layers, units)
    out["capex_usd"] = capex_usd(units, hardware.capex_usd)
    out["stranded_fraction"] = stranded_fraction(out["total_bytes"], units, memory, usable)
    out["fits_domain"] = fits_domain(units, hardware.scaleup_domain)

    # Throughput ----------------------------------------------------------------------
    mean_context = isl + osl / 2.0
    cache_read, cache_write, fresh = input_split(isl, workload)
    peak = compute_peak(hardware, weight_bits)
    bandwidth = units * hardware.memory_bw_tbs * 1e12 * a.memory_bw_efficiency
    decode_flops = concurrency * flops_per_token(model, mean_context)
    decode_bytes_kv = concurrency * kv_bytes_per_request(model, mean_context, kv_bits)
    token_time = {}  # seconds per round of R turns spent on each token type
    if hardware.kind == "wafer":
        i_base = base_interactivity(model, hardware, a)
        t_mem = (out["weight_bytes"] + decode_bytes_kv) / bandwidth
        t_flop = decode_flops / (units * peak * a.mfu_decode)
        interactivity = 1.0 / max(1.0 / i_base, t_mem, t_flop)
        ingest = a.cache_read_speedup * interactivity
        turn_time = osl / interactivity + isl / ingest
        ttft = isl / ingest
        decode_step = 1.0 / interactivity
        token_time = {
            "cache_read": cache_read / ingest,
            "cache_write": cache_write / ingest,
            "input": fresh / ingest,
            "output": osl / interactivity,
        }
    else:
        weights = weights_touched_bytes(model, concurrency, weight_bits)
        t_dec = max(
            (weights + decode_bytes_kv) / bandwidth,
            decode_flops / (units * peak * a.mfu_decode),
        )
        decode_step = t_dec + a.step_overhead_s + tp_comm_time(model, hardware, units, concurrency, a)
        prefill_tokens = cache_write + fresh
        prefill_context = cache_read + prefill_tokens / 2.0
        t_pre = prefill_tokens * flops_per_token(model, prefill_context) / (units * peak * a.mfu_prefill)
        t_pre += tp_comm_time(model, hardware, units, prefill_tokens, a) if prefill_tokens > 0 else 0.0
        cache_bw = bandwidth if a.cache_tier == "hbm" else units * a.host_cache_bw_gbs * 1e9
        t_cr = kv_bytes_per_request(model, cache_read, kv_bits) / cache_bw
        interactivity = 1.0 / decode_step
        turn_time = osl * decode_step + concurrency * (t_pre + t_cr)
        ttft = t_pre + t_cr
        prefill_share = 0.0 if prefill_tokens == 0 else 1.0 / prefill_tokens
        token_time = {
            "cache_read": concurrency * t_cr,
            "cache_write": concurrency * t_pre * cache_write * prefill_share,
            "input": concurrency * t_pre * fresh * prefill_share,
            "output": osl * decode_step,
        }
    out["interactivity_tps"] = interactivity
    out["decode_step_s"] = decode_step
    out["ttft_s"] = ttft
    out["turn_time_s"] = turn_time
    out["throughput_tps"] = concurrency * (isl + osl) / turn_time
    out["output_throughput_tps"] = concurrency * osl / turn_time
    rate = units * unit_usd_per_hour(hardware, a)  # catalog rental rate, else TCO (engine.model.pricing)
    out["usd_per_hour"] = rate
    out["cost_per_mtok_usd"] = cost_per_mtok(rate, out["throughput_tps"])
    out["cost_per_mtok_output_usd"] = cost_per_mtok(rate, out["output_throughput_tps"])
    out["cost_per_turn_usd"] = rate * turn_time / 3600.0 / concurrency
    tokens = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh, "output": osl}
    by_type = {}
    for kind in TOKEN_TYPES:
        # A round of R turns costs rate x T; each type is charged its share of the time.
        if tokens[kind] > 0:
            by_type[kind] = rate * token_time[kind] / 3600.0 / (concurrency * tokens[kind]) * 1e6
        else:
            by_type[kind] = math.nan  # no tokens of this type in the mix
    out["cost_per_mtok_by_type_usd"] = by_type
    return out


def break_even_concurrency(concurrency, cost_a, cost_b):
    """Smallest concurrency at which ``cost_a`` falls strictly below ``cost_b``.

    ``cost_b`` may be a number (a reference API price) or a sequence aligned with
    ``concurrency``. Returns None if it never does.
    """
    pairs = sorted(zip(concurrency, cost_a, cost_b if hasattr(cost_b, "__len__") else [cost_b] * len(cost_a)))
    for r, a, b in pairs:
        if a < b:
            return r
    return None
