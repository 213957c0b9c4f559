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


# --------------------------------------------------------------------------- deployment: units, layout


def usable_fraction(hardware: Hardware, assumptions: Assumptions) -> float:
    """The assumption where set (> 0), else the catalog's figure for the unit."""
    return assumptions.usable_memory_fraction or hardware.usable_fraction


def within_context(model: Model, isl: float, osl: float) -> bool:
    """A turn fits the model's context window (``ISL + OSL <= max_context``; no limit: always)."""
    return model.max_context is None or isl + osl <= model.max_context


def weight_split(model: Model, weight_bits: float) -> tuple[float, float]:
    """(dense, routed-expert) weight bytes: shared experts, attention and embeddings are dense."""
    experts = routed_expert_params(model)
    return (model.total_params - experts) * weight_bits / 8.0, experts * weight_bits / 8.0


def bytes_per_unit(
    model: Model, hardware: Hardware, parallelism: str, units: int, weight_bits: float, kv_total: float
) -> float:
    """Bytes one unit of an ``units``-unit replica holds, by memory layout.

    - wafer (any parallelism): layers pipelined over the wafers, everything split ``units`` ways;
    - ``tp`` / ``tp-ep``: weights split ``units`` ways; the KV cache splits by KV head, at most
      ``kv_shards`` ways (a latent MLA cache is replicated on every unit);
    - ``dp-ep``: dense weights (attention, shared experts, embeddings) on every unit, routed
      experts split ``units`` ways, each unit holding the KV of its share of the requests.
    """
    dense, experts = weight_split(model, weight_bits)
    if hardware.kind == "wafer":
        return (dense + experts + kv_total) / units
    if parallelism == "dp-ep":
        return dense + (experts + kv_total) / units
    return (dense + experts) / units + kv_total / min(units, model.kv_shards)


#: Replicas beyond this many units are reported as not fitting (no integer overflow).
MAX_UNITS = 1e12


def units_needed(
    model: Model, hardware: Hardware, parallelism: str, weight_bits: float, kv_total: float, capacity: float
) -> int:
    """The fewest units whose memory holds the replica in this layout; 0 when no number does."""
    dense, experts = weight_split(model, weight_bits)
    total = dense + experts + kv_total
    if hardware.kind == "wafer" or (parallelism != "dp-ep" and model.kv_shards >= total / capacity):
        needed = total / capacity
    elif parallelism == "dp-ep":
        if capacity <= dense:
            return 0
        needed = (experts + kv_total) / (capacity - dense)
    else:  # tensor parallel past the KV heads: the KV share stops shrinking at kv_shards units
        room = capacity - kv_total / model.kv_shards
        if room <= 0:
            return 0
        needed = (dense + experts) / room
    if not needed <= MAX_UNITS:
        return 0
    return max(1, math.ceil(needed))


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


def touched_expert_fraction(model: Model, tokens: float) -> float:
    """Expected share of routed experts a batch of ``tokens`` tokens touches, ``1 - (1 - k/E)^tokens``
    (uniform routing)."""
    if routed_expert_params(model) == 0.0:
        return 0.0
    return 1.0 - (1.0 - model.experts_per_token / model.experts) ** tokens


def weights_touched_bytes(model: Model, concurrency: float, weight_bits: float) -> float:
    """Weight bytes read by one decode step of R tokens under uniform routing.

    Dense part ``P - P_experts`` plus the expected unique experts touched,
    ``P_experts x (1 - (1 - k/E)^R)``.
    """
    dense, experts = weight_split(model, weight_bits)
    return dense + experts * touched_expert_fraction(model, concurrency)


def streamed_bytes_per_unit(
    model: Model,
    hardware: Hardware,
    parallelism: str,
    units: int,
    concurrency: float,
    weight_bits: float,
    kv_read: float,
) -> float:
    """Bytes one unit reads in one decode step of R tokens (weights touched + the KV it attends over).

    The wafer reads every weight (its layers are resident and pipelined); GPUs read the dense
    weights and the experts the batch touches, split as in :func:`bytes_per_unit`.
    """
    dense, experts = weight_split(model, weight_bits)
    touched = experts * touched_expert_fraction(model, concurrency)
    if hardware.kind == "wafer":
        return (dense + experts + kv_read) / units
    if parallelism == "dp-ep":
        return dense + (touched + kv_read) / units
    return (dense + touched) / units + kv_read / min(units, model.kv_shards)


def native_weight_format(hardware: Hardware, weight_bits: float) -> bool:
    """Does the unit compute in the weights' nominal format? (FP4 needs an FP4 rate, FP8 an FP8 rate.)"""
    nominal = nominal_weight_bits(weight_bits)
    return nominal == 16 or {4: hardware.fp4_tflops, 8: hardware.fp8_tflops}[nominal] is not None


def base_interactivity(model: Model, hardware: Hardware, assumptions: Assumptions) -> float:
    """WSE-3 output tok/s per request: catalog override, else ``3322 / A_B^0.294``."""
    override = model.interactivity_tps.get(hardware.name)
    if override is not None:
        return override
    active_b = model.active_params / 1e9
    return assumptions.interactivity_fit_coefficient / active_b**assumptions.interactivity_fit_exponent


def link_bandwidth(hardware: Hardware, units: int, assumptions: Assumptions) -> float:
    """Per-direction bandwidth between the units: scale-up inside the domain, else scale-out."""
    if hardware.scaleup_link_gbs_per_dir is not None and fits_domain(units, hardware.scaleup_domain):
        return hardware.scaleup_link_gbs_per_dir * 1e9
    return assumptions.scaleout_bw_gbs * 1e9


def comm_time(
    model: Model, hardware: Hardware, parallelism: str, units: int, tokens: float, assumptions: Assumptions
) -> float:
    """Collectives of one forward pass over ``tokens`` tokens (bandwidth + latency per collective).

    - ``tp``: two all-reduces of the activations per layer, ``2(n-1)/n x tokens x hidden x 2 B`` each;
    - ``tp-ep``: one all-reduce per layer (attention) and, per MoE layer, an all-to-all pair
      (dispatch, combine) of ``(n-1)/n x tokens x k x hidden x 2 B`` each;
    - ``dp-ep``: only the all-to-all pair per MoE layer (a dense model has none: pure data parallel);
    - one unit, or a wafer pipeline: none.
    """
    if units <= 1 or hardware.kind == "wafer":
        return 0.0
    link = link_bandwidth(hardware, units, assumptions)
    latency = assumptions.allreduce_latency_s
    allreduce = 2.0 * (units - 1) / units * tokens * model.hidden_size * 2.0 / link + latency
    moe_layers = model.layers if routed_expert_params(model) > 0.0 else 0
    alltoall = (units - 1) / units * tokens * model.experts_per_token * model.hidden_size * 2.0 / link + latency
    if parallelism == "tp":
        return 2.0 * model.layers * allreduce
    if parallelism == "tp-ep":
        return model.layers * allreduce + 2.0 * moe_layers * alltoall
    return 2.0 * moe_layers * alltoall


def cost_per_mtok(usd_per_hour: float, tokens_per_s: float) -> float:
    """``CPM = $/hr / (tok/s x 3600) x 1e6``."""
    return usd_per_hour / (tokens_per_s * 3600.0) * 1e6


# --------------------------------------------------------------------------- one grid point
def evaluate_point(point: Point) -> dict[str, float]:
    """Every cube variable at one grid point, composed from the formulas above.

    Beyond the model's context window, or where the replica cannot hold weights plus KV,
    every figure that needs a replica is NaN (``within_context`` and ``replica_fits`` say
    which); ``units_needed`` is 0 when no number of units holds the replica.
    """
    model, hardware, workload, a = point.model, point.hardware, point.workload, point.assumptions
    isl, osl, concurrency = point.isl, point.osl, point.concurrency
    weight_bits, kv_bits = point.weight_bits, point.kv_bits
    nan = math.nan
    out: dict[str, float] = {}
    out["within_context"] = within_context(model, isl, osl)
    inside = out["within_context"] or a.context_limit == "none"
    context = reserved_context(isl, osl)
    out["weight_bytes"] = weight_bytes(model.total_params, weight_bits)
    out["kv_bytes_per_request"] = kv_bytes_per_request(model, context, kv_bits) if inside else nan
    out["kv_bytes"] = kv_bytes(concurrency, out["kv_bytes_per_request"])
    out["total_bytes"] = out["weight_bytes"] + out["kv_bytes"]
    out["kv_share"] = kv_share(out["kv_bytes"], out["total_bytes"])

    capacity = hardware.memory_gb * 1e9 * usable_fraction(hardware, a)
    needed = units_needed(model, hardware, a.parallelism, weight_bits, out["kv_bytes"], capacity) if inside else 0
    units = int(a.replica_units) or needed
    fits = inside and needed > 0 and units >= needed
    out["units_needed"] = needed
    out["units_per_replica"] = units if fits else 0
    out["replica_fits"] = fits
    if not fits:
        out.update(dict.fromkeys(("layers_per_unit", "capex_usd", "stranded_fraction"), nan))
        out["fits_domain"] = False
        return _not_served(out)
    out["layers_per_unit"] = model.layers / units
    out["capex_usd"] = units * hardware.capex_usd
    held = bytes_per_unit(model, hardware, a.parallelism, units, weight_bits, out["kv_bytes"])
    out["stranded_fraction"] = 1.0 - held / capacity
    out["fits_domain"] = fits_domain(units, hardware.scaleup_domain)

    # Decode: bytes streamed, FLOPs, emulated formats, collectives ---------------------
    mean_context = isl + osl / 2.0
    cache_read, cache_write, fresh = input_split(isl, workload)
    prefill_tokens = cache_write + fresh
    peak = compute_peak(hardware, weight_bits)
    unit_bw = hardware.memory_bw_tbs * 1e12 * a.memory_bw_efficiency
    kv_read = concurrency * kv_bytes_per_request(model, mean_context, kv_bits)
    streamed = streamed_bytes_per_unit(model, hardware, a.parallelism, units, concurrency, weight_bits, kv_read)
    t_mem = streamed / unit_bw
    t_flop = concurrency * flops_per_token(model, mean_context) / (units * peak * a.mfu_decode)
    weight_streamed = streamed_bytes_per_unit(model, hardware, a.parallelism, units, concurrency, weight_bits, 0.0)
    t_dequant = 0.0
    if not native_weight_format(hardware, weight_bits):  # weights converted to BF16 as they stream
        t_dequant = weight_streamed * 8.0 / weight_bits * a.dequant_flops_per_weight / (hardware.bf16_tflops * 1e12)
    t_comm = comm_time(model, hardware, a.parallelism, units, concurrency, a)
    overhead = a.step_overhead_s + model.layers * a.layer_overhead_s

    # Prefill and cached prefixes: one physics on every hardware -----------------------
    # A cache read is a prefix whose KV is resident (HBM or SRAM: read once at the unit's
    # bandwidth) or held in the host tier (loaded at its bandwidth); the new tokens attend
    # over it (its positions are in the prefill FLOPs). Prefill runs at its compute.
    prefill_context = cache_read + prefill_tokens / 2.0
    t_pre = prefill_tokens * flops_per_token(model, prefill_context) / (units * peak * a.mfu_prefill)
    if prefill_tokens > 0:
        t_pre += comm_time(model, hardware, a.parallelism, units, prefill_tokens, a)
    cache_bw = units * unit_bw if a.cache_tier == "hbm" else units * a.host_cache_bw_gbs * 1e9
    t_cr = kv_bytes_per_request(model, cache_read, kv_bits) / cache_bw

    wafer = hardware.kind == "wafer"
    if wafer:  # the published interactivity anchors decode; each request owns a pipeline slot
        step_bound = max(1.0 / base_interactivity(model, hardware, a), t_mem, t_flop)
        step = step_bound
    else:
        step_bound = max(t_mem, t_flop) + t_comm
        step = max(t_mem, t_flop, t_dequant) + t_comm + overhead
    if a.prefill_model == "calculator":  # every non-output token at cache_read_speedup x decode
        ingest_bound, ingest = isl * step_bound / a.cache_read_speedup, isl * step / a.cache_read_speedup
        parts = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh}
        times = {k: v * step / a.cache_read_speedup for k, v in parts.items()}
    else:
        ingest_bound = ingest = t_pre + t_cr
        share = 0.0 if prefill_tokens == 0 else t_pre / prefill_tokens
        times = {"cache_read": t_cr, "cache_write": cache_write * share, "input": fresh * share}

    # Turn: each request's cycle. A GPU's prefills stall the batch (every request's once per
    # cycle); a wafer's run in the request's own pipeline slot. Time to first token is the
    # off-accelerator overhead (which the batch does not wait for), the prefill and the step
    # that emits the first token.
    # The calculator's convention is per request on every hardware: each ingests at its own rate.
    stalls = 1.0 if wafer or a.prefill_model == "calculator" else concurrency
    turn_bound = osl * step_bound + stalls * ingest_bound
    turn = osl * step + stalls * ingest + a.ttft_overhead_s
    ttft = a.ttft_overhead_s + ingest + step  # the first token leaves with the step that ran the prefill
    out["interactivity_bound_tps"] = 1.0 / step_bound
    out["throughput_bound_tps"] = concurrency * (isl + osl) / turn_bound
    out["ttft_bound_s"] = ingest_bound
    # Time per output token: the cycle's decode steps and the prefills of the others, per token.
    out["decode_step_s"] = (turn - ttft + step) / osl
    out["interactivity_tps"] = 1.0 / out["decode_step_s"]
    out["ttft_s"] = ttft
    out["turn_time_s"] = turn
    out["throughput_tps"] = concurrency * (isl + osl) / turn
    out["output_throughput_tps"] = concurrency * osl / turn
    rate = units * unit_usd_per_hour(hardware, a)  # catalog rental rate, else TCO (engine.model.pricing)
    out["usd_per_hour"] = rate
    out["cost_per_mtok_usd"] = cost_per_mtok(rate, out["throughput_tps"])
    out["cost_per_mtok_output_usd"] = cost_per_mtok(rate, out["output_throughput_tps"])
    out["cost_per_turn_usd"] = rate * turn / 3600.0 / concurrency
    # By token type: a cycle's time, charged to each type (the off-accelerator overhead and
    # decode to output; prefill and cache loads to their types; on a GPU each stall counts R times).
    time = {k: stalls * v for k, v in times.items()}
    time["output"] = osl * step + a.ttft_overhead_s
    tokens = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh, "output": osl}
    by_type = {}
    for kind in TOKEN_TYPES:
        if tokens[kind] > 0:
            by_type[kind] = rate * time[kind] / 3600.0 / (concurrency * tokens[kind]) * 1e6
        else:
            by_type[kind] = math.nan  # no tokens of this type in the mix
    out["cost_per_mtok_by_type_usd"] = by_type
    return out


PERFORMANCE = (
    "interactivity_bound_tps", "throughput_bound_tps", "ttft_bound_s", "decode_step_s", "interactivity_tps", "ttft_s",
    "turn_time_s", "throughput_tps", "output_throughput_tps", "usd_per_hour", "cost_per_mtok_usd",
    "cost_per_mtok_output_usd", "cost_per_turn_usd",
)  # fmt: skip


def _not_served(out: dict) -> dict:
    """No replica: every performance and cost figure is NaN."""
    out.update(dict.fromkeys(PERFORMANCE, math.nan))
    out["cost_per_mtok_by_type_usd"] = dict.fromkeys(TOKEN_TYPES, math.nan)
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
