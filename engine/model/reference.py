"""Reference implementation: the cost model composed, readably, from catalog records.

Every formula lives once, in :mod:`engine.model.formulas`; this module applies those
formulas to one point's records, step by step, in the order ``docs/model.md`` tells them.
It is the oracle the compiled kernels (:mod:`engine.model.kernels`, the same formulas
inside loop nests with hoisting) are tested against, so the tests check the composition,
while the published figures and the conservation property tests check the formulas.
The production path never imports this module.

>>> from engine.model.catalog import load_catalog
>>> cat = load_catalog()
>>> kv_bytes_per_request(cat.model("qwen3-32b"), context=1000, kv_bits=16)
262144000.0
"""

from __future__ import annotations

import math
from typing import NamedTuple

from engine.model.assumptions import Assumptions, Parallelism
from engine.model.formulas import python as F
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
    return sum(F.kv_group_elements(g.layers, g.elements, _window(g), g.ratio, context) for g in model.kv_groups)


def kv_bytes_per_request(model: Model, context: float, kv_bits: float) -> float:
    """``kv_req(c) = sum_g n_g e_g min(c, W_g) / r_g x kbits / 8`` (bytes)."""
    return kv_elements_per_request(model, context) * kv_bits / 8.0


def attended_positions(model: Model, context: float) -> float:
    """``sum_g n_g min(c, W_g) / r_g``: positions one token attends over, all layers."""
    return sum(F.group_attended_positions(g.layers, _window(g), g.ratio, context) for g in model.kv_groups)


def _window(group) -> float:
    return math.inf if group.window is None else group.window


def reserved_context(isl: float, osl: float) -> float:
    """Context reserved per request: ``ISL + OSL``."""
    return isl + osl


# --------------------------------------------------------------------------- deployment: units, layout


def usable_fraction(hardware: Hardware, assumptions: Assumptions) -> float:
    """The assumption where set (> 0), else the catalog's figure for the unit."""
    return assumptions.usable_memory_fraction or hardware.usable_fraction


def within_context(model: Model, isl: float, osl: float) -> bool:
    """A turn fits the model's context window (``ISL + OSL <= max_context``; no limit: always)."""
    return model.max_context is None or isl + osl <= model.max_context


def routed_expert_params(model: Model) -> float:
    """``P_experts = (P - A) / (1 - k/E)``; zero for dense models."""
    return F.routed_expert_params(model.total_params, model.active_params, model.experts, model.experts_per_token)


def speculation(model: Model, hardware: Hardware, a: Assumptions) -> tuple[float, float, float]:
    """(drafted tokens, acceptance, draft ratio) in force: the assumptions' where they turn it on,
    else how the catalog says the model is served on this hardware (``speculative: catalog``)."""
    listed = model.speculative.get(hardware.name)
    return F.speculation(
        a.spec_draft_tokens, a.spec_acceptance, a.spec_draft_ratio, a.speculative == "catalog",
        listed.draft_tokens if listed else math.nan, listed.acceptance if listed else math.nan,
        listed.draft_ratio if listed else math.nan,
    )  # fmt: skip


def draft_params(model: Model, hardware: Hardware, a: Assumptions) -> float:
    """Parameters of the speculative draft held on the replica (0 when speculative decoding is off)."""
    drafted, _, ratio = speculation(model, hardware, a)
    return F.draft_params(model.active_params, drafted, ratio)


def weight_split(
    model: Model, weight_bits: float, a: Assumptions | None = None, hardware: Hardware | None = None
) -> tuple[float, float]:
    """(dense, routed-expert) weight bytes: shared experts, attention, embeddings and any draft are dense."""
    experts = routed_expert_params(model)
    draft = draft_params(model, hardware, a) if a is not None else 0.0
    return F.weight_bytes(model.total_params - experts + draft, weight_bits), F.weight_bytes(experts, weight_bits)


def _wafer(hardware: Hardware) -> bool:
    return hardware.kind == "wafer"


def _parallelism(name: str) -> int:
    return int(Parallelism[name])


def bytes_per_unit(
    model: Model, hardware: Hardware, parallelism: str, units: int, weight_bits: float, kv_total: float
) -> float:
    """Bytes one unit of an ``units``-unit replica holds, by memory layout (formulas.bytes_per_unit)."""
    dense, experts = weight_split(model, weight_bits)
    return F.bytes_per_unit(
        _wafer(hardware), _parallelism(parallelism), units, dense, experts, kv_total, model.kv_shards
    )


def units_needed(
    model: Model, hardware: Hardware, parallelism: str, weight_bits: float, kv_total: float, capacity: float
) -> int:
    """The fewest units whose memory holds the replica in this layout; 0 when no number does."""
    dense, experts = weight_split(model, weight_bits)
    return F.units_needed(
        _wafer(hardware), _parallelism(parallelism), dense, experts, kv_total, capacity, model.kv_shards
    )


# --------------------------------------------------------------------------- compute


def flops_per_token(model: Model, context: float, decode: bool = False) -> float:
    """``2 x A + 4 x q_width x sum_g n_g x min(c, W_g) / r_g`` (formulas.flops_per_token), with
    the decode step's attention width where ``decode`` (MLA: absorbed)."""
    width = model.decode_query_width if decode else model.query_width
    return F.flops_per_token(model.active_params, width, attended_positions(model, context))


def compute_peak(hardware: Hardware, weight_bits: float) -> float:
    """Dense FLOP/s of the narrowest supported format that can hold the weights."""
    return F.compute_peak(weight_bits, hardware.peak_flops(4), hardware.peak_flops(8), hardware.peak_flops(16))


def touched_expert_fraction(model: Model, tokens: float) -> float:
    """Expected share of routed experts a batch of ``tokens`` tokens touches (uniform routing)."""
    return F.touched_expert_fraction(model.experts, model.experts_per_token, tokens)


def weights_touched_bytes(model: Model, concurrency: float, weight_bits: float) -> float:
    """Weight bytes read by one decode step of R tokens: dense part plus the experts the batch touches."""
    dense, experts = weight_split(model, weight_bits)
    return dense + experts * touched_expert_fraction(model, concurrency)


def base_interactivity(model: Model, hardware: Hardware, assumptions: Assumptions) -> float:
    """Published single-stream speed (catalog), else the calculator's fit ``3322 / A_B^0.294``."""
    override = model.interactivity_tps.get(hardware.name)
    if override is not None:
        return override
    return F.fit_interactivity(
        model.active_params, assumptions.interactivity_fit_coefficient, assumptions.interactivity_fit_exponent
    )


def wafer_single_stream_latency(model: Model, hardware: Hardware, units: int, a: Assumptions) -> float:
    """Time per token of one request alone on a wafer replica, in the chosen batching mode (s)."""
    if a.wafer_batching == "physics":
        return F.wafer_pipeline_latency(
            model.layers, units, a.wafer_token_latency_s, a.wafer_layer_latency_s, a.wafer_hop_latency_s
        )
    return 1.0 / base_interactivity(model, hardware, a)


def link_bandwidth(hardware: Hardware, units: int, assumptions: Assumptions) -> float:
    """Per-direction bandwidth between GPUs: scale-up inside the domain, else scale-out (bytes/s)."""
    return F.link_bandwidth(
        (hardware.scaleup_link_gbs_per_dir or 0.0) * 1e9,
        hardware.scaleup_domain or 0,
        units,
        assumptions.scaleout_bw_gbs * 1e9,
    )


def comm_time(
    model: Model,
    hardware: Hardware,
    parallelism: str,
    units: int,
    tokens: float,
    assumptions: Assumptions,
    latency: float | None = None,
) -> float:
    """Collectives of one forward pass over ``tokens`` tokens (none on a wafer pipeline); ``latency``
    replaces the assumptions' per-collective latency (the roofline takes 0)."""
    if _wafer(hardware):
        return 0.0
    moe_layers = model.layers if routed_expert_params(model) > 0.0 else 0
    return F.comm_time(
        _parallelism(parallelism), units, tokens, model.layers, moe_layers, model.hidden_size,
        model.experts_per_token, link_bandwidth(hardware, units, assumptions),
        assumptions.allreduce_latency_s if latency is None else latency,
    )  # fmt: skip


def cost_per_mtok(usd_per_hour: float, tokens_per_s: float) -> float:
    """``CPM = $/hr / (tok/s x 3600) x 1e6``."""
    return F.cost_per_mtok(usd_per_hour, tokens_per_s)


# --------------------------------------------------------------------------- one grid point
def compose_point(point: Point) -> dict[str, float]:
    """Every cube variable at one grid point, composed from the formulas above.

    Beyond the model's context window, or where the replica cannot hold the weights plus the
    KV of one request, every figure that needs a replica is NaN (``within_context`` and
    ``replica_fits`` say which); ``units_needed`` is 0 when no number of units holds all R.
    A fixed replica (``replica_units``) too small for all R holds ``admitted_requests`` of them;
    the others wait for a slot.
    """
    model, hardware, a = point.model, point.hardware, point.assumptions
    isl, osl, concurrency = point.isl, point.osl, point.concurrency
    weight_bits, kv_bits = point.weight_bits, point.kv_bits
    nan = math.nan
    out: dict[str, float] = {}
    out["within_context"] = within_context(model, isl, osl)
    inside = out["within_context"] or a.context_limit == "none"
    context = reserved_context(isl, osl)
    out["weight_bytes"] = F.weight_bytes(model.total_params, weight_bits)
    out["kv_bytes_per_request"] = kv_bytes_per_request(model, context, kv_bits) if inside else nan
    out["kv_bytes"] = concurrency * out["kv_bytes_per_request"]
    out["total_bytes"] = out["weight_bytes"] + out["kv_bytes"]
    out["kv_share"] = out["kv_bytes"] / out["total_bytes"]

    wafer = _wafer(hardware)
    layout = _parallelism(a.parallelism)
    dense, experts = weight_split(model, weight_bits, a, hardware)
    capacity = hardware.memory_gb * 1e9 * usable_fraction(hardware, a)
    needed = 0
    if inside:
        needed = F.units_needed(wafer, layout, dense, experts, out["kv_bytes"], capacity, model.kv_shards)
    units = int(a.replica_units) or needed
    admitted = F.requests_held(
        inside,
        wafer,
        layout,
        units,
        needed,
        dense,
        experts,
        out["kv_bytes_per_request"],
        model.kv_shards,
        capacity,
        float(concurrency),
    )
    fits = admitted >= 1
    out["units_needed"] = needed
    out["units_per_replica"] = units if fits else 0
    out["replica_fits"] = fits
    out["admitted_requests"] = int(admitted)
    if not fits:
        out.update(dict.fromkeys(("layers_per_unit", "capex_usd", "stranded_fraction"), nan))
        out["fits_domain"] = False
        return _not_served(out)
    out["layers_per_unit"] = model.layers / units
    out["capex_usd"] = units * hardware.capex_usd
    held = F.bytes_per_unit(
        wafer, layout, units, dense, experts, admitted * out["kv_bytes_per_request"], model.kv_shards
    )
    out["stranded_fraction"] = 1.0 - held / capacity
    out["fits_domain"] = F.fits_domain(units, hardware.scaleup_domain or 0)
    out.update(serve(point, units, admitted))
    return out


def serve(point: Point, units: int, admitted: float | None = None) -> dict:
    """Serving figures and costs of a replica of ``units`` units holding ``admitted`` of the
    point's R requests at once (default all; the closed-loop turn).

    1. One target decode step of all R requests: weights touched and KV read against the
       memory bandwidth, FLOPs of every checked token against the compute, collectives
       (GPUs) or the wafer pipeline latency and its wafer-to-wafer links; with speculative
       decoding, each step checks ``k + 1`` tokens per request, the draft runs ``k`` steps of
       its own, and a step emits ``(1 - a^(k+1)) / (1 - a)`` tokens.
    2. The turn as scheduled: a GPU's prefills stall the batch (each request's once per
       cycle); a wafer's run in the request's own pipeline slot (``wafer_batching: physics``
       and ``calculator``) or the replica serves one request at a time (``single_stream``).
    3. The closed loop: the cycle is stretched until the replica's compute, memory bandwidth
       and links can do its work (prefills, cache loads, decode of every request), so no
       served point exceeds a resource and concurrency = throughput x turn time.
    """
    model, hardware, workload, a = point.model, point.hardware, point.workload, point.assumptions
    isl, osl, requests = point.isl, point.osl, point.concurrency
    conc = requests if admitted is None else admitted  # the requests served at once; the others queue
    weight_bits, kv_bits = point.weight_bits, point.kv_bits
    wafer = _wafer(hardware)
    layout = _parallelism(a.parallelism)
    dense, experts = weight_split(model, weight_bits, a, hardware)
    touched = experts * touched_expert_fraction(model, conc)
    mean_context = isl + osl / 2.0
    cache_read, cache_write, fresh = input_split(isl, workload)
    prefill_tokens = cache_write + fresh
    peak = units * compute_peak(hardware, weight_bits)
    unit_bw = hardware.memory_bw_tbs * 1e12 * a.memory_bw_efficiency
    kv_read = conc * kv_bytes_per_request(model, mean_context, kv_bits)
    drafted, acceptance, draft_ratio = speculation(model, hardware, a)
    per_step = F.speculative_tokens_per_step(acceptance, drafted)
    verified = drafted + 1.0
    steps_per_turn = osl / per_step

    # One decode step of the R requests, term by term.
    if wafer:  # the wafer reads every resident weight; a GPU the dense part and the experts touched
        streamed = F.bytes_per_unit(True, layout, units, dense, experts, kv_read, model.kv_shards)
    else:
        streamed = F.bytes_per_unit(False, layout, units, dense, touched, kv_read, model.kv_shards)
    t_mem = streamed / unit_bw
    t_flop1 = conc * flops_per_token(model, mean_context, decode=True) / (peak * a.mfu_decode)
    prefill_flops = prefill_tokens * flops_per_token(model, cache_read + prefill_tokens / 2.0)
    t_pre_compute = prefill_flops / (peak * a.mfu_prefill)
    # The prompt's own passes (chunked prefill): each chunk streams the weights its tokens touch.
    chunks = F.prefill_chunks(prefill_tokens, a.prefill_chunk_tokens)
    kv_written = kv_bytes_per_request(model, isl, kv_bits) - kv_bytes_per_request(model, cache_read, kv_bits)
    pass_experts = (
        experts if wafer or chunks == 0 else experts * touched_expert_fraction(model, prefill_tokens / chunks)
    )
    pre_bytes = F.bytes_per_unit(
        wafer, layout, units, chunks * dense, chunks * pass_experts, F.prefill_kv_moved(kv_written, chunks),
        model.kv_shards,
    )  # fmt: skip
    t_pre_mem = pre_bytes / unit_bw
    t_pass = F.prefill_time(t_pre_compute, pre_bytes, unit_bw)
    cache_bw = units * unit_bw if a.cache_tier == "hbm" else units * a.host_cache_bw_gbs * 1e9
    t_cr = kv_bytes_per_request(model, cache_read, kv_bits) / cache_bw
    if wafer:
        link = (hardware.scaleup_link_gbs_per_dir or 0.0) * 1e9
        latency = wafer_single_stream_latency(model, hardware, units, a)
        t_link1 = F.activation_link_time(units, conc, model.hidden_size, link)
        share_of = conc if a.wafer_batching == "single_stream" else 1.0
        kv_streamed = kv_read / units  # the KV's share of what a unit streams per step
        t_step_mem, s_flop1, s_link1 = F.stream_terms(t_mem, kv_streamed / unit_bw, t_flop1, t_link1, share_of)
        step1, verify = F.wafer_steps(latency, t_step_mem, s_flop1, s_link1, verified)
        t_fixed, t_links, t_compute = latency, s_link1 * verified, s_flop1 * verified
        t_pre = t_pass + latency if prefill_tokens > 0 else 0.0  # the prompt fills the pipeline once
        passes = conc * (prefill_tokens + steps_per_turn * (verified + drafted))
        link_s = F.activation_link_time(units, passes, model.hidden_size, link)
        stalls = 1.0
    else:
        weights_streamed = F.bytes_per_unit(False, layout, units, dense, touched, 0.0, model.kv_shards)
        emulated = F.emulated_format(weight_bits, hardware.fp4_tflops is not None, hardware.fp8_tflops is not None)
        t_dequant = F.dequant_time(
            emulated, weights_streamed, weight_bits, a.dequant_flops_per_weight, hardware.bf16_tflops * 1e12
        )
        batch = F.dispatched_tokens(layout, units, conc)  # the decode batch's tokens one unit dispatches
        t_comm1 = comm_time(model, hardware, a.parallelism, units, batch, a)
        t_comm = comm_time(model, hardware, a.parallelism, units, batch * verified, a) if drafted > 0 else t_comm1
        overhead = a.step_overhead_s + model.layers * a.layer_overhead_s
        step1, verify = F.gpu_steps(t_mem, t_flop1, t_dequant, t_comm1, t_comm, overhead, verified)
        t_fixed, t_links, t_compute = overhead, t_comm, max(t_flop1 * verified, t_dequant)
        t_step_mem, kv_streamed = t_mem, 0.0
        t_pre = t_pass
        if prefill_tokens > 0:
            t_pre += comm_time(model, hardware, a.parallelism, units, prefill_tokens, a)
        link_s = 0.0  # collectives run inside the steps, already serialised
        stalls = 1.0 if a.prefill_model == "calculator" else conc
        share_of = 1.0
    # Time per output token: the target step plus the draft's own steps, per token emitted.
    step = F.time_per_output_token(verify, step1, drafted, draft_ratio, per_step)

    if a.prefill_model == "calculator":  # every non-output token at cache_read_speedup x decode
        ingest = isl * step / a.cache_read_speedup
        parts = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh}
        times = {k: v * step / a.cache_read_speedup for k, v in parts.items()}
    else:
        ingest = t_pre + t_cr
        share = 0.0 if prefill_tokens == 0 else t_pre / prefill_tokens
        times = {"cache_read": t_cr, "cache_write": cache_write * share, "input": fresh * share}

    # The roofline's terms: the same steps at the hardware's peak, whatever the serving profile.
    peak_unit_bw = hardware.memory_bw_tbs * 1e12
    if wafer:
        t_comm1_peak = t_comm_peak = t_pre_comm_peak = 0.0
        latency_peak = 0.0 if a.wafer_batching == "physics" else latency
    else:
        t_link1 = latency_peak = 0.0
        batch = F.dispatched_tokens(layout, units, conc)
        t_comm1_peak = comm_time(model, hardware, a.parallelism, units, batch, a, latency=0.0)
        t_comm_peak = comm_time(model, hardware, a.parallelism, units, batch * verified, a, latency=0.0)
        t_pre_comm_peak = comm_time(model, hardware, a.parallelism, units, prefill_tokens, a, latency=0.0)
    if a.serving == "disaggregated":  # prompts prefilled on a pool of their own
        decode = Decode(
            wafer, step, steps_per_turn, t_mem, t_flop1, verified, drafted, draft_ratio, per_step,
            link if wafer else 0.0, streamed, kv_streamed, t_link1, t_comm1_peak, t_comm_peak, latency_peak,
            t_compute, t_links, t_fixed, t_step_mem,
        )  # fmt: skip
        return _disaggregated(point, units, conc, decode)

    # The closed loop: the cycle as scheduled against what the resources need for its work.
    cycle = share_of * (osl * step + stalls * ingest)
    compute_s, memory_s = F.resource_demands(
        conc, t_pre_compute, t_pre_mem, steps_per_turn, t_flop1, verified, drafted, draft_ratio, t_mem, t_cr
    )
    floor, floor_code = F.resource_floor(compute_s, memory_s, link_s)
    stretch = F.closed_loop(cycle, floor)
    if stretch > 1.0:
        code = floor_code
    elif a.prefill_model != "calculator" and stalls * ingest > osl * step:
        code = F.prefill_resource(t_pre_compute, t_pre_mem, t_cr)
    else:
        code = F.step_resource(t_step_mem, t_compute, t_links, t_fixed)
    scale = stretch * share_of
    queued = 0.0 if a.prefill_model == "calculator" else F.prefills_ahead(stalls, a.prefill_burstiness)
    turn, ttft, per_output = F.turn_times(cycle, stretch, share_of, ingest, step, osl, a.ttft_overhead_s, queued)
    scheduled = turn
    turn, ttft = F.held_by_scheduler(wafer, turn, ttft, a.ttft_scheduler_factor)
    wait = F.queue_wait(turn, requests, conc)  # for a KV slot, where the replica holds fewer than R
    out: dict = {}
    # The roofline: the same turn at the hardware's peak, whatever the serving profile.
    cache_read_bytes = kv_bytes_per_request(model, cache_read, kv_bits)
    peak_bound = F.roofline_figures(
        wafer, streamed / peak_unit_bw, kv_streamed / peak_unit_bw, conc * flops_per_token(model, mean_context, decode=True) / peak, t_link1, t_comm1_peak,
        t_comm_peak, prefill_flops / peak, pre_bytes / peak_unit_bw, t_pre_comm_peak if prefill_tokens > 0 else 0.0,
        cache_read_bytes / (units * peak_unit_bw) if a.cache_tier == "hbm" else t_cr, link_s, latency_peak, prefill_tokens, verified, drafted,
        draft_ratio, per_step, conc, isl, osl, stalls, share_of, a.prefill_model == "calculator", a.cache_read_speedup,
    )  # fmt: skip
    out["interactivity_bound_tps"], out["throughput_bound_tps"], out["ttft_bound_s"] = peak_bound
    # Time per output token: the cycle's decode steps and the prefills of the others, per token.
    out["decode_step_s"] = per_output
    out["interactivity_tps"] = 1.0 / out["decode_step_s"]
    out["ttft_s"] = wait + ttft
    out["turn_time_s"] = wait + turn
    out["throughput_tps"] = conc * (isl + osl) / turn
    out["output_throughput_tps"] = conc * osl / turn
    out["bound_by"] = code
    rate = units * unit_usd_per_hour(hardware, a)  # catalog rental rate, else TCO (engine.model.pricing)
    out["usd_per_hour"] = rate
    out["cost_per_mtok_usd"] = F.cost_per_mtok(rate, out["throughput_tps"])
    out["cost_per_mtok_output_usd"] = F.cost_per_mtok(rate, out["output_throughput_tps"])
    out["cost_per_turn_usd"] = rate * turn / 3600.0 / conc
    # By token type: a cycle's time charged to each type (the off-accelerator overhead and
    # decode to output; prefill and cache loads to their types; on a GPU each stall counts R times).
    time = {k: scale * stalls * v for k, v in times.items()}
    time["output"] = scale * osl * step + a.ttft_overhead_s + (turn - scheduled)  # off-accelerator times to output
    tokens = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh, "output": osl}
    # NaN for a type absent from the mix
    out["cost_per_mtok_by_type_usd"] = {k: F.cost_per_mtok_of_type(rate, time[k], conc, tokens[k]) for k in TOKEN_TYPES}
    return out


def prefill_unit(point: Point) -> Hardware:
    """The unit of a disaggregated prefill pool: the decode replica's own (``same``), else the
    shipped catalog's entry of that name (:func:`engine.model.catalog.pool_unit`)."""
    name = point.assumptions.prefill_hardware
    if name == "same":
        return point.hardware
    from engine.model.catalog import pool_unit

    return pool_unit(name)


def prefill_pool(point: Point) -> tuple[int, float]:
    """(units of one prefill replica, their hourly rate): ``prefill_units``, else the fewest that
    hold the weights (no draft: the pool does not decode) and one prompt's KV; 0 units where
    none do or the fixed size is too small."""
    model, a = point.model, point.assumptions
    unit = prefill_unit(point)
    wafer, layout = _wafer(unit), _parallelism(a.parallelism)
    dense, experts = weight_split(model, point.weight_bits)
    prompt = kv_bytes_per_request(model, point.isl, point.kv_bits)
    capacity = unit.memory_gb * 1e9 * usable_fraction(unit, a)
    needed = F.units_needed(wafer, layout, dense, experts, prompt, capacity, model.kv_shards)
    units = int(a.prefill_units) or needed
    held = F.requests_held(True, wafer, layout, units, needed, dense, experts, prompt, model.kv_shards, capacity, 1.0)
    return (units if held >= 1.0 else 0), units * unit_usd_per_hour(unit, a)


class Decode(NamedTuple):
    """A decode replica's step, term by term (what :func:`serve` computed for it)."""

    wafer: bool
    step: float  # time per output token
    steps_per_turn: float
    t_mem: float
    t_flop1: float
    verified: float
    drafted: float
    draft_ratio: float
    per_step: float
    link: float  # a wafer replica's wafer-to-wafer link (bytes/s)
    streamed: float  # bytes one unit reads per step
    kv_streamed: float  # the KV's share of them (a wafer's; 0 on a GPU)
    t_link1: float
    t_comm1_peak: float
    t_comm_peak: float
    latency_peak: float
    t_compute: float
    t_links: float
    t_fixed: float
    t_step_mem: float  # the step's memory term (one request's under single_stream)


def _disaggregated(point: Point, units: int, conc: float, dec: Decode) -> dict:
    """:func:`serve` for ``serving: disaggregated``: the decode replica decodes only (``dec``);
    each prompt is prefilled on a replica of the prefill pool and its KV sent over the links;
    ``prefill_replicas`` pool replicas per decode replica (0: as many as keep it fed,
    formulas.balanced_pool). The turn is formulas.disaggregated_turn; cost is over both pools."""
    model, hardware, workload, a = point.model, point.hardware, point.workload, point.assumptions
    isl, osl, requests = point.isl, point.osl, point.concurrency
    pool_units, pool_unit_rate = prefill_pool(point)
    if pool_units < 1:
        return _not_served({})
    unit = prefill_unit(point)
    wafer_p, calculator, host = _wafer(unit), a.prefill_model == "calculator", a.cache_tier == "host"
    dense_p, experts = weight_split(model, point.weight_bits)  # no draft on the prefill pool
    cache_read, cache_write, fresh = input_split(isl, workload)
    prefill_tokens = cache_write + fresh
    chunks = F.prefill_chunks(prefill_tokens, a.prefill_chunk_tokens)
    kv_written = kv_bytes_per_request(model, isl, point.kv_bits) - kv_bytes_per_request(
        model, cache_read, point.kv_bits
    )
    prefill_flops = prefill_tokens * flops_per_token(model, cache_read + prefill_tokens / 2.0)
    peak_p = pool_units * compute_peak(unit, point.weight_bits)
    bw_p = unit.memory_bw_tbs * 1e12
    pass_experts = (
        experts if wafer_p or chunks == 0 else experts * touched_expert_fraction(model, prefill_tokens / chunks)
    )
    pre_bytes = F.bytes_per_unit(
        wafer_p, _parallelism(a.parallelism), pool_units, chunks * dense_p, chunks * pass_experts,
        F.prefill_kv_moved(kv_written, chunks), model.kv_shards,
    )  # fmt: skip
    cache_read_bytes = kv_bytes_per_request(model, cache_read, point.kv_bits)
    fill = F.wafer_pipeline_latency(
        model.layers, pool_units, a.wafer_token_latency_s, a.wafer_layer_latency_s, a.wafer_hop_latency_s
    )
    together = pool_units + units if a.prefill_hardware == "same" else math.inf  # in one scale-up domain?
    link_p = F.transfer_link(
        wafer_p, (unit.scaleup_link_gbs_per_dir or 0.0) * 1e9, unit.scaleup_domain or 0, together,
        a.scaleout_bw_gbs * 1e9,
    )  # fmt: skip
    link_d = F.transfer_link(
        dec.wafer, (hardware.scaleup_link_gbs_per_dir or 0.0) * 1e9, hardware.scaleup_domain or 0, together,
        a.scaleout_bw_gbs * 1e9,
    )  # fmt: skip

    def prompt(peak: bool, decode_step: float) -> tuple[float, float, float, float]:
        """(ingest, its compute, its passes' memory time, its cache load) of one prompt on a
        prefill replica, as expected or at the roofline."""
        eta, mfu = (1.0, 1.0) if peak else (a.memory_bw_efficiency, a.mfu_prefill)
        compute = prefill_flops / (peak_p * mfu)
        memory = pre_bytes / (bw_p * eta)
        load = cache_read_bytes / (pool_units * (a.host_cache_bw_gbs * 1e9 if host else bw_p * eta))
        comm = comm_time(model, unit, a.parallelism, pool_units, prefill_tokens, a, latency=0.0 if peak else None)
        ingest = F.prefill_ingest(
            wafer_p, prefill_tokens, compute, pre_bytes, bw_p * eta, comm, 0.0 if peak else fill, load
        )
        if calculator:  # every non-output token at cache_read_speedup x the decode rate, within the pool's physics
            ingest = max(isl * decode_step / a.cache_read_speedup, ingest)
        return ingest, compute, memory, load

    # The decode replica alone: its cycle of R turns' decode, against its own resources.
    compute_s, memory_s = F.resource_demands(
        conc, 0.0, 0.0, dec.steps_per_turn, dec.t_flop1, dec.verified, dec.drafted, dec.draft_ratio, dec.t_mem, 0.0
    )
    link_s = 0.0
    if dec.wafer:
        passes = conc * dec.steps_per_turn * (dec.verified + dec.drafted)
        link_s = F.activation_link_time(units, passes, model.hidden_size, dec.link)
    share_of = conc if dec.wafer and a.wafer_batching == "single_stream" else 1.0
    cycle = share_of * osl * dec.step
    floor, floor_code = F.resource_floor(compute_s, memory_s, link_s)
    stretch = F.closed_loop(cycle, floor)
    ingest, t_pre_compute, t_pre_mem, t_cr = prompt(False, dec.step)
    transfer = F.kv_transfer_time(kv_written, pool_units, link_p, units, link_d, a.allreduce_latency_s)
    served = ingest + transfer + stretch * cycle
    pool = a.prefill_replicas or F.balanced_pool(conc, ingest, transfer, served)
    turn, ttft, per_output = F.disaggregated_turn(
        ingest, transfer, stretch * cycle, stretch * share_of, dec.step, osl, conc, pool, a.ttft_overhead_s
    )
    served_turn = turn  # what the pool and the link pace, before the scheduler's hold
    turn, ttft = F.held_by_scheduler(dec.wafer, turn, ttft, a.ttft_scheduler_factor)
    code = F.disaggregated_resource(
        served_turn - a.ttft_overhead_s > served, transfer * pool >= ingest, stretch > 1.0, floor_code,
        not calculator and ingest + transfer > stretch * cycle, F.prefill_resource(t_pre_compute, t_pre_mem, t_cr),
        F.step_resource(dec.t_step_mem, dec.t_compute, dec.t_links, dec.t_fixed),
    )  # fmt: skip
    wait = F.queue_wait(turn, requests, conc)  # for a KV slot on the decode replica
    out: dict = {}
    # The roofline: the decode replica's step and cycle at peak (no prefill on it), the pool's
    # prompt and the KV's transfer at peak, the pool as sized (balanced: at peak).
    peak_i, peak_x, _ = F.roofline_figures(
        dec.wafer, dec.streamed / (hardware.memory_bw_tbs * 1e12), dec.kv_streamed / (hardware.memory_bw_tbs * 1e12),
        conc * flops_per_token(model, isl + osl / 2.0, decode=True) / (units * compute_peak(hardware, point.weight_bits)),
        dec.t_link1, dec.t_comm1_peak, dec.t_comm_peak, 0.0, 0.0, 0.0, 0.0, link_s, dec.latency_peak, 0.0,
        dec.verified, dec.drafted, dec.draft_ratio, dec.per_step, conc, isl, osl, 0.0, share_of, False,
        a.cache_read_speedup,
    )  # fmt: skip
    ingest_peak = prompt(True, 1.0 / (peak_i * share_of))[0]
    transfer_peak = F.kv_transfer_time(kv_written, pool_units, link_p, units, link_d, 0.0)
    cycle_peak = conc * (isl + osl) / peak_x
    pool_peak = a.prefill_replicas or F.balanced_pool(
        conc, ingest_peak, transfer_peak, ingest_peak + transfer_peak + cycle_peak
    )
    turn_peak = F.disaggregated_turn(
        ingest_peak, transfer_peak, cycle_peak, share_of, 1.0 / (peak_i * share_of), osl, conc, pool_peak, 0.0
    )[0]
    out["interactivity_bound_tps"] = peak_i
    out["throughput_bound_tps"] = conc * (isl + osl) / turn_peak
    out["ttft_bound_s"] = ingest_peak + transfer_peak + 1.0 / peak_i
    out["decode_step_s"] = per_output
    out["interactivity_tps"] = 1.0 / per_output
    out["ttft_s"] = wait + ttft
    out["turn_time_s"] = wait + turn
    out["throughput_tps"] = conc * (isl + osl) / turn
    out["output_throughput_tps"] = conc * osl / turn
    out["bound_by"] = code
    decode_rate = units * unit_usd_per_hour(hardware, a)
    pool_rate = pool * pool_unit_rate
    rate = decode_rate + pool_rate
    out["usd_per_hour"] = rate
    out["cost_per_mtok_usd"] = F.cost_per_mtok(rate, out["throughput_tps"])
    out["cost_per_mtok_output_usd"] = F.cost_per_mtok(rate, out["output_throughput_tps"])
    out["cost_per_turn_usd"] = rate * turn / 3600.0 / conc
    # By token type: the pool's cost split by each type's share of a prompt's time on it (what
    # the cached prefix's load takes, the rest by prefill tokens); the decode replica's to output.
    parts = {"cache_read": cache_read, "cache_write": cache_write, "input": fresh}
    shares = {
        k: F.pool_share(calculator, k == "cache_read", v, prefill_tokens, isl, t_cr, ingest) for k, v in parts.items()
    }
    by_type = {k: F.cost_per_mtok_of_type(pool_rate, turn * shares[k], conc, parts[k]) for k in parts}
    by_type["output"] = F.cost_per_mtok_of_type(decode_rate + pool_rate * (ingest <= 0.0), turn, conc, osl)
    out["cost_per_mtok_by_type_usd"] = by_type
    return out


PERFORMANCE = (
    "interactivity_bound_tps", "throughput_bound_tps", "ttft_bound_s", "decode_step_s", "interactivity_tps", "ttft_s",
    "turn_time_s", "throughput_tps", "output_throughput_tps", "bound_by", "usd_per_hour", "cost_per_mtok_usd",
    "cost_per_mtok_output_usd", "cost_per_turn_usd",
)  # fmt: skip


def _not_served(out: dict) -> dict:
    """No replica: every performance and cost figure is NaN."""
    out.update(dict.fromkeys(PERFORMANCE, math.nan))
    out["bound_by"] = -1  # no resource: not served
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
