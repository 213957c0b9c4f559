"""Every per-point formula of the cost model, written once as a plain scalar function.

Each function takes numbers and integer codes (never catalog records or arrays) and
returns one quantity in base units. They are compiled as inlined Numba helpers, so the
kernels (:mod:`engine.model.kernels`) call them inside their loop nests, and the readable
reference (:mod:`engine.model.reference`) calls the very same functions on catalog
records: a formula changes in one place, for every backend (the way ``scikit-hep/vector``
writes each quantity once). The oracle tests then check the composition (hoisting,
indexing, NaN masks); the published figures and the conservation property tests guard
the formulas themselves.

>>> kv_group_elements(layers=64, elements=2048, window=math.inf, ratio=1, context=1000)
131072000.0
>>> round(speculative_tokens_per_step(acceptance=0.8, draft_tokens=4), 4)
3.3616
"""

from __future__ import annotations

import math
import types

from engine.jit import helper as formula
from engine.model.assumptions import Parallelism, WaferBatching
from engine.model.variables import BOUND_BY

TP = int(Parallelism["tp"])
TP_EP = int(Parallelism["tp-ep"])
DP_EP = int(Parallelism["dp-ep"])
PHYSICS = int(WaferBatching.physics)
SINGLE_STREAM = int(WaferBatching.single_stream)
#: Replicas beyond this many units are reported as not fitting (no integer overflow).
MAX_UNITS = 1e12

#: Codes of the resource that sets a point's turn time (the ``bound_by`` variable).
LATENCY, COMPUTE, MEMORY_BANDWIDTH, LINK = range(len(BOUND_BY))


# --------------------------------------------------------------------------- memory
@formula
def kv_group_elements(layers, elements, window, ratio, context):
    """KV elements one request holds in one group: ``n_g x e_g x min(c, W_g) / r_g`` (W = inf: none)."""
    return layers * elements * min(context, window) / ratio


@formula
def group_attended_positions(layers, window, ratio, context):
    """Positions one new token attends over in one group: ``n_g x min(c, W_g) / r_g``."""
    return layers * min(context, window) / ratio


@formula
def weight_bytes(params, weight_bits):
    """``P x wbits / 8`` (bytes)."""
    return params * weight_bits / 8.0


@formula
def routed_expert_params(total_params, active_params, experts, experts_per_token):
    """``P_experts = (P - A) / (1 - k/E)``; zero for dense models (shared experts count as dense)."""
    if experts <= experts_per_token:
        return 0.0
    return (total_params - active_params) / (1.0 - experts_per_token / experts)


@formula
def touched_expert_fraction(experts, experts_per_token, tokens):
    """Expected share of routed experts a batch of ``tokens`` tokens touches: ``1 - (1 - k/E)^tokens``."""
    if experts <= experts_per_token:
        return 0.0
    return 1.0 - (1.0 - experts_per_token / experts) ** tokens


@formula
def draft_params(active_params, draft_tokens, draft_ratio):
    """Parameters of the speculative draft (a draft model or MTP heads): ``ratio x A``; 0 when off."""
    if draft_tokens <= 0:
        return 0.0
    return draft_ratio * active_params


@formula
def units_needed(wafer, parallelism, dense, experts, kv_total, capacity, kv_shards):
    """The fewest units whose memory holds the replica in its layout; 0 when no number does.

    Wafers and tensor parallelism within the KV heads split everything; past ``kv_shards``
    units the KV share stops shrinking; ``dp-ep`` keeps the dense weights on every unit.
    """
    total = dense + experts + kv_total
    if wafer or (parallelism != DP_EP and kv_shards >= total / capacity):
        needed = total / capacity
    elif parallelism == DP_EP:
        if capacity <= dense:
            return 0
        needed = (experts + kv_total) / (capacity - dense)
    else:
        room = capacity - kv_total / kv_shards
        if room <= 0.0:
            return 0
        needed = (dense + experts) / room
    if not needed <= MAX_UNITS:
        return 0
    return max(1, math.ceil(needed))


@formula
def bytes_per_unit(wafer, parallelism, units, dense, experts, kv_total, kv_shards):
    """Bytes one unit holds (or streams) in the layout.

    - wafer: layers pipelined over the wafers, everything split ``units`` ways;
    - ``tp`` / ``tp-ep``: weights split ``units`` ways, the KV cache by KV head (at most
      ``kv_shards`` ways; a latent MLA cache is replicated);
    - ``dp-ep``: dense weights on every unit, routed experts and requests split ``units`` ways.
    """
    if wafer:
        return (dense + experts + kv_total) / units
    if parallelism == DP_EP:
        return dense + (experts + kv_total) / units
    return (dense + experts) / units + kv_total / min(units, kv_shards)


@formula
def admitted_requests(wafer, parallelism, units, dense, experts, kv_per_request, kv_shards, capacity, concurrency):
    """Requests a replica of ``units`` units holds at once: every one of the R, or as many as
    the KV room beside the weights takes (0: not one). The others wait for a slot (queue_wait).
    """
    base = bytes_per_unit(wafer, parallelism, units, dense, experts, 0.0, kv_shards)
    per_request = bytes_per_unit(wafer, parallelism, units, dense, experts, kv_per_request, kv_shards) - base
    if base > capacity:
        return 0.0
    if per_request <= 0.0:
        return concurrency
    return min(concurrency, math.floor((capacity - base) / per_request))


@formula
def requests_held(inside, wafer, parallelism, units, needed, dense, experts, kv_per_request, kv_shards, capacity, conc):
    """Requests the replica holds at once: all R when it holds them (the fewest units that fit,
    or a fixed replica at least that large), else :func:`admitted_requests`; 0 outside the context."""
    if not inside or units <= 0:
        return 0.0
    if needed > 0 and units >= needed:
        return conc
    return admitted_requests(wafer, parallelism, units, dense, experts, kv_per_request, kv_shards, capacity, conc)


@formula
def queue_wait(served_turn, concurrency, admitted):
    """Time a request waits for a KV slot when only ``admitted`` of the R fit (closed loop:
    R = throughput x (wait + served turn), so wait = served turn x (R / admitted - 1))."""
    return served_turn * (concurrency / admitted - 1.0)


@formula
def fits_domain(units, domain):
    """The replica fits the scale-up domain (NVLink island); domain 0 = none, always fits."""
    return domain == 0.0 or units <= domain


# --------------------------------------------------------------------------- compute
@formula
def flops_per_token(active_params, query_width, attended_positions):
    """``2 x A + 4 x q_width x sum_g n_g min(c, W_g) / r_g`` (FLOP per token).

    Ignores embeddings beyond the active parameters, sparse top-k selection (an upper bound
    for indexer models) and the softmax itself.
    """
    return 2.0 * active_params + 4.0 * query_width * attended_positions


@formula
def nominal_weight_bits(weight_bits):
    """4 for wbits <= 4.5 (MXFP4 at 4.25 counts as 4), 8 for <= 8.5, else 16."""
    if weight_bits <= 4.5:
        return 4
    if weight_bits <= 8.5:
        return 8
    return 16


@formula
def compute_peak(weight_bits, peak_fp4, peak_fp8, peak_bf16):
    """Dense FLOP/s of the narrowest format the unit supports that holds the weights (table peaks
    already fall back to the next wider native format)."""
    nominal = nominal_weight_bits(weight_bits)
    if nominal == 4:
        return peak_fp4
    if nominal == 8:
        return peak_fp8
    return peak_bf16


@formula
def emulated_format(weight_bits, native_fp4, native_fp8):
    """1.0 where the unit has no native path for the weights' format (converted as they stream)."""
    nominal = nominal_weight_bits(weight_bits)
    if nominal == 4:
        return 0.0 if native_fp4 else 1.0
    if nominal == 8:
        return 0.0 if native_fp8 else 1.0
    return 0.0


@formula
def dequant_time(emulated, weights_streamed, weight_bits, flops_per_weight, peak_bf16):
    """Converting streamed weights to BF16 at the BF16 peak (a unit without the native format)."""
    return emulated * weights_streamed * 8.0 / weight_bits * flops_per_weight / peak_bf16


# --------------------------------------------------------------------------- links
@formula
def link_bandwidth(scaleup_link, domain, units, scaleout_bw):
    """Per-direction bandwidth between units: scale-up inside the domain, else scale-out (bytes/s)."""
    if scaleup_link <= 0.0 or (domain > 0.0 and units > domain):
        return scaleout_bw
    return scaleup_link


@formula
def collective_bytes_time(parallelism, units, tokens, layers, moe_layers, hidden, experts_per_token, link):
    """Bandwidth time of the collectives of one forward pass over ``tokens`` tokens (s).

    ``tp``: two all-reduces of ``2(n-1)/n x tokens x hidden x 2 B`` per layer; ``tp-ep``: one
    all-reduce per layer and an all-to-all pair of ``(n-1)/n x tokens x k x hidden x 2 B`` per
    MoE layer; ``dp-ep``: the all-to-all pair only, of the tokens one unit holds
    (:func:`dispatched_tokens`); one unit: none.
    """
    if units <= 1:
        return 0.0
    allreduce = 2.0 * (units - 1) / units * tokens * hidden * 2.0 / link
    alltoall = (units - 1) / units * tokens * experts_per_token * hidden * 2.0 / link
    if parallelism == TP:
        return 2.0 * layers * allreduce
    if parallelism == TP_EP:
        return layers * allreduce + 2.0 * moe_layers * alltoall
    return 2.0 * moe_layers * alltoall


@formula
def dispatched_tokens(parallelism, units, tokens):
    """Tokens each unit sends to the experts in a forward pass over a batch of ``tokens`` spread
    over the replica's requests: attention data parallel (``dp-ep``) places each request on one
    unit, so a unit dispatches its share of the batch (balanced), not the whole batch; tensor-
    parallel attention holds every token on every unit. (One prompt's prefill sits on one unit:
    it dispatches all its tokens.)"""
    if parallelism == DP_EP and units > 1:
        return tokens / units
    return tokens


@formula
def collective_count(parallelism, units, layers, moe_layers):
    """Collectives in one forward pass (each pays the per-collective latency); none on one unit."""
    if units <= 1:
        return 0.0
    if parallelism == TP:
        return 2.0 * layers
    if parallelism == TP_EP:
        return layers + 2.0 * moe_layers
    return 2.0 * moe_layers


@formula
def comm_time(parallelism, units, tokens, layers, moe_layers, hidden, experts_per_token, link, latency):
    """Collectives of one forward pass over ``tokens`` tokens of a GPU replica (s): their
    bandwidth time plus ``latency`` per collective (the roofline takes the first alone)."""
    return collective_bytes_time(parallelism, units, tokens, layers, moe_layers, hidden, experts_per_token, link) + (
        collective_count(parallelism, units, layers, moe_layers) * latency
    )


@formula
def activation_link_time(units, tokens, hidden, link):
    """Wafer pipeline: every token's activations (``hidden x 2 B``) cross each wafer-to-wafer link."""
    if units <= 1 or link <= 0.0:
        return 0.0
    return tokens * hidden * 2.0 / link


# --------------------------------------------------------------------------- wafer serving
@formula
def wafer_pipeline_latency(layers, units, token_latency, layer_latency, hop_latency):
    """Time one token takes through a wafer pipeline: a fixed part, each layer, each wafer hop (s)."""
    return token_latency + layers * layer_latency + (units - 1) * hop_latency


@formula
def fit_interactivity(active_params, coefficient, exponent):
    """The published calculator's fit ``3322 / A_B^0.294`` (output tok/s per request)."""
    return coefficient / (active_params / 1e9) ** exponent


@formula
def speculation(tokens, acceptance, ratio, use_catalog, listed_tokens, listed_acceptance, listed_ratio):
    """The speculative setting in force, as (drafted tokens, acceptance, draft ratio): the
    assumptions' where they turn it on (``tokens > 0``), else the catalog's entry for the model
    on this hardware where ``use_catalog`` (NaN: none), else off (0, 0, 0)."""
    if tokens > 0.0:
        return tokens, acceptance, ratio
    if use_catalog and listed_tokens > 0.0:
        return listed_tokens, listed_acceptance, listed_ratio
    return 0.0, 0.0, 0.0


@formula
def speculative_tokens_per_step(acceptance, draft_tokens):
    """Expected tokens a target step emits with ``k`` drafted tokens accepted with probability a
    each: ``(1 - a^(k+1)) / (1 - a)`` (1 with no draft)."""
    if draft_tokens <= 0:
        return 1.0
    if acceptance >= 1.0:
        return draft_tokens + 1.0
    return (1.0 - acceptance ** (draft_tokens + 1)) / (1.0 - acceptance)


# --------------------------------------------------------------------------- prices
@formula
def tco_rate(capex, amortisation_years, power_kw, pue, usd_per_kwh):
    """``capex / (years x 8760) + power_kW x PUE x $/kWh`` per unit (USD/h)."""
    return capex / (amortisation_years * 8760.0) + power_kw * pue * usd_per_kwh


@formula
def hourly_rate(rent, capex, amortisation_years, power_kw, pue, usd_per_kwh):
    """One unit's hourly rate: the scenario's rental rate where one is listed (NaN: none), else TCO."""
    if not math.isnan(rent):
        return rent
    return tco_rate(capex, amortisation_years, power_kw, pue, usd_per_kwh)


@formula
def cost_per_mtok(usd_per_hour, tokens_per_s):
    """``CPM = $/hr / (tok/s x 3600) x 1e6``; infinite where nothing is served (a throughput that
    underflows to zero, e.g. a prefill pool so small its turn overflows), as in the kernels."""
    if tokens_per_s == 0.0:
        return math.inf
    return usd_per_hour / (tokens_per_s * 3600.0) * 1e6


@formula
def cost_per_mtok_of_type(usd_per_hour, seconds, requests, tokens):
    """One token type's cost per Mtok: its share of the cycle's time, ``$/hr x s / 3600``, over
    the ``requests x tokens`` of that type the cycle serves; NaN where the mix has none."""
    if tokens > 0.0:
        return usd_per_hour * seconds / 3600.0 / (requests * tokens) * 1e6
    return math.nan


@formula
def break_even_rate(unit_rate, cost, reference_cost):
    """The unit's hourly rate at which ``cost`` would equal ``reference_cost``: ``r x ref / cost``.

    Exact, not a linearisation: a replica's cost per token is its units' hourly rate times a
    factor that does not depend on the rate (units / tokens per second), so every deployment
    of one hardware scales alike and the cheapest stays the cheapest as the rate moves."""
    return unit_rate * reference_cost / cost


@formula
def capex_for_rate(rate, amortisation_years, power_kw, pue, usd_per_kwh):
    """The capital cost per unit whose TCO rate is ``rate`` (the inverse of :func:`tco_rate`):
    ``(rate - power_kW x PUE x $/kWh) x years x 8760``. Negative: power alone costs more."""
    return (rate - power_kw * pue * usd_per_kwh) * amortisation_years * 8760.0


# --------------------------------------------------------------------------- the prefill
@formula
def prefill_chunks(tokens, budget):
    """Forward passes a prompt of ``tokens`` prefill tokens takes under a token budget per step
    (chunked prefill): ``ceil(tokens / budget)``, one for any prompt within the budget, 0 with
    nothing to prefill."""
    if tokens <= 0.0:
        return 0.0
    return float(math.ceil(tokens / budget))


@formula
def prefill_kv_moved(written, chunks):
    """KV bytes a chunked prefill moves: it writes the prompt's KV once, and chunk ``j`` reads the
    ``j - 1`` chunks before it back (on average half the prompt per chunk past the first)."""
    return written * (1.0 + (chunks - 1.0) / 2.0) if chunks > 1.0 else written


@formula
def prefill_time(compute_s, moved_bytes, bandwidth):
    """A prefill's time at the roofline of its own passes: its compute, or the bytes it moves
    (every chunk streams the weights its tokens touch; the KV it writes and reads back), at
    the unit's bandwidth, whichever is longer. A short prompt through a large mixture of
    experts touches nearly every expert for a few tokens each: memory-bound, like decode."""
    return max(compute_s, moved_bytes / bandwidth)


@formula
def prefill_resource(t_pre_compute, t_pre_mem, t_cr):
    """Which resource sets a turn whose prefills outlast its decode: compute, unless the bytes
    the prefill passes move or the cached prefix loaded take longer."""
    if t_pre_compute >= t_pre_mem and t_pre_compute >= t_cr:
        return COMPUTE
    return MEMORY_BANDWIDTH


# --------------------------------------------------------------------------- the decode step
@formula
def gpu_steps(t_mem, t_flop1, t_dequant, t_comm1, t_comm, overhead, verified):
    """A GPU decode step, as (one token per request, the target step checking ``verified``).

    The larger of memory, compute and the emulated formats' conversion, plus the collectives
    and the fixed overheads. The target step checks ``verified`` tokens per request
    (speculative decoding: ``k + 1``; collectives over them in ``t_comm``).
    """
    step1 = max(t_mem, t_flop1, t_dequant) + t_comm1 + overhead
    verify = max(t_mem, t_flop1 * verified, t_dequant) + t_comm + overhead
    return step1, verify


@formula
def stream_terms(t_mem, t_kv, t_flop1, t_link1, streams):
    """A wafer step's memory, compute and link terms for the requests it serves at once: all R
    (``streams`` 1), or one of the ``streams`` (``single_stream``: the weights once, its own
    KV, its own token's FLOPs and activations), from the batch's terms (``t_kv``: the KV's
    share of ``t_mem``). So R one-request steps do at least the batch step's work, never less."""
    if streams <= 1.0:
        return t_mem, t_flop1, t_link1
    return t_mem - t_kv * (1.0 - 1.0 / streams), t_flop1 / streams, t_link1 / streams


@formula
def wafer_steps(latency, t_mem, t_flop1, t_link1, verified):
    """A wafer decode step, as (one token per request, the target step checking ``verified``): the
    pipeline latency, or the time the compute, SRAM or wafer links need for the R tokens."""
    return max(latency, t_mem, t_flop1, t_link1), max(latency, t_mem, t_flop1 * verified, t_link1 * verified)


@formula
def time_per_output_token(verify, step1, drafted, draft_ratio, tokens_per_step):
    """The target step and the draft's own ``k`` steps (each ``draft_ratio`` of a one-token step),
    over the tokens a target step emits."""
    return (verify + drafted * draft_ratio * step1) / tokens_per_step


# --------------------------------------------------------------------------- the turn, closed loop
@formula
def resource_demands(
    concurrency, t_pre_compute, t_pre_mem, steps_per_turn, t_flop1, verified, drafted, draft_ratio, t_mem, t_cr
):
    """Replica time a cycle of R turns needs of (compute, memory bandwidth): every prefill's
    compute and bytes, every checked and drafted token, every weight and KV read and cached
    prefix loaded."""
    compute_s = concurrency * t_pre_compute + steps_per_turn * t_flop1 * (verified + drafted * draft_ratio)
    memory_s = steps_per_turn * t_mem * (1.0 + drafted * draft_ratio) + concurrency * (t_pre_mem + t_cr)
    return compute_s, memory_s


@formula
def turn_times(cycle, stretch, share_of, ingest, step, osl, ttft_overhead, queued):
    """(turn time, time to first token, time per output token) of the stretched cycle.

    The off-accelerator overhead is not stretched; a request first waits for the ``queued``
    prefills of others ahead of it, then its own, and its first token leaves with the step
    that ran it; the time per output token holds the prefills of the others it did not wait
    for. The turn (one cycle) is the same either way: concurrency = throughput x turn.
    """
    scale = stretch * share_of
    turn = ttft_overhead + stretch * cycle
    ttft = ttft_overhead + scale * (queued * ingest + ingest + step)
    return turn, ttft, (turn - ttft + scale * step) / osl


@formula
def held_by_scheduler(wafer, turn, ttft, factor):
    """(turn, time to first token) where a GPU serving framework's scheduler holds a new request
    ``factor`` times its modelled time to first token: the extra wait is before the first token
    and lengthens the turn by as much, so the time per output token is unchanged and
    concurrency = throughput x turn still holds (the R requests stay in the batch:
    conservative). The factor is fitted to GPU frameworks: a wafer replica's stack is not held."""
    if wafer:
        return turn, ttft
    extra = (factor - 1.0) * ttft
    return turn + extra, ttft + extra


@formula
def prefills_ahead(stalls, burstiness):
    """Prefills of others a request waits for before its own, on average: ``burstiness`` x half
    of the other ``stalls - 1`` (1: arrivals in lockstep, as a closed loop of equal lengths
    keeps them, so the request is on average in the middle of the queue; 0: spread out)."""
    return burstiness * (stalls - 1.0) / 2.0


@formula
def step_resource(t_mem, t_flop, t_link, t_latency):
    """Which resource sets a step: the largest of its terms (ties go to the first)."""
    code = LATENCY
    longest = t_latency
    if t_flop > longest:
        code, longest = COMPUTE, t_flop
    if t_mem > longest:
        code, longest = MEMORY_BANDWIDTH, t_mem
    if t_link > longest:
        code = LINK
    return code


@formula
def resource_floor(compute_s, memory_s, link_s):
    """The replica time the resources need for one cycle: the largest, and which resource it is."""
    if compute_s >= memory_s and compute_s >= link_s:
        return compute_s, COMPUTE
    if memory_s >= link_s:
        return memory_s, MEMORY_BANDWIDTH
    return link_s, LINK


@formula
def closed_loop(cycle, floor):
    """Stretch of a serving cycle when the resources need more time than the schedule gives.

    ``cycle``: the accelerator time of one cycle of the R concurrent turns as the serving
    schedule lays it out; ``floor``: the time the replica's compute, memory bandwidth and
    links need for the same work. Every phase of the cycle is stretched by the same factor
    (the replica is shared, processor-sharing style), so the served point never exceeds a
    resource and Little's law holds. Returns the factor (>= 1).
    """
    if floor > cycle:
        return floor / cycle
    return 1.0


# --------------------------------------------------------------------------- disaggregated serving
@formula
def prefill_ingest(wafer, prefill_tokens, t_pre_compute, pre_bytes, bandwidth, t_pre_comm, fill_latency, t_cr):
    """One prompt's time on a prefill replica of its own (``serving: disaggregated``): its passes
    at their roofline (:func:`prefill_time`), then a GPU's collectives or the wafer pipeline's
    fill, and the cached prefix loaded. The replica runs one prompt at a time."""
    t_pre = 0.0
    if prefill_tokens > 0.0:
        t_pre = prefill_time(t_pre_compute, pre_bytes, bandwidth)
        t_pre += fill_latency if wafer else t_pre_comm
    return t_pre + t_cr


@formula
def transfer_link(wafer, link, domain, together, scaleout_bw):
    """A unit's bandwidth to the other pool's replica (bytes/s): a wafer's own I/O links; a GPU's
    scale-up link where both replicas fit in one scale-up domain (``together`` units, +inf when
    the pools are different hardware), else its scale-out NIC."""
    if wafer and link > 0.0:
        return link
    if not wafer and link > 0.0 and domain > 0.0 and together <= domain:
        return link
    return scaleout_bw


@formula
def kv_transfer_time(kv_bytes, prefill_units, prefill_link, decode_units, decode_link, latency):
    """Sending a prompt's KV from the prefill replica to the decode replica: its bytes at the
    narrower side's aggregate link, plus one message latency; nothing to send, no time."""
    if kv_bytes <= 0.0:
        return 0.0
    return kv_bytes / min(prefill_units * prefill_link, decode_units * decode_link) + latency


@formula
def balanced_pool(concurrency, ingest, transfer, served):
    """Prefill replicas per decode replica that keep it fed and no more: a turn's ``R`` prompts
    take ``R x ingest`` of prefill-replica time, spread over the turn (at least ``served``, the
    turn unqueued; at least ``R x transfer``, when the KV link is what paces the turns)."""
    return concurrency * ingest / max(served, concurrency * transfer)


@formula
def disaggregated_turn(ingest, transfer, decode_cycle, scale, step, osl, concurrency, pool, ttft_overhead):
    """(turn, time to first token, time per output token) of a decode replica fed by ``pool``
    prefill replicas, closed loop.

    A request is prefilled (``ingest``), its KV sent (``transfer``), then decoded with the
    others (``decode_cycle``: the decode replica's own cycle, stretched by its own resources'
    floor; ``scale x step`` per output token). In steady state the ``R`` prompts of one turn
    need ``R x ingest / pool`` of the pool and ``R x transfer`` of the link: where either is
    longer than the turn unqueued, turns stretch to it and the difference is time a request
    waits for prefill, before its first token. So no pool or link runs above its capacity and
    concurrency = throughput x turn. Time per output token is the decode cycle's, over its
    tokens: a request waits for its prompt before its first token, not between its tokens.
    """
    served = ingest + transfer + decode_cycle
    busy = max(served, concurrency * transfer)
    if pool > 0.0:
        busy = max(busy, concurrency * ingest / pool)
    turn = ttft_overhead + busy
    ttft = ttft_overhead + (busy - served) + ingest + transfer + scale * step
    return turn, ttft, decode_cycle / osl


@formula
def disaggregated_resource(waiting, link_paced, stretched, floor_code, prefill_longer, prefill_code, step_code):
    """What sets a disaggregated turn: the KV link or the prefill pool's resource where requests
    wait for them; else the decode replica's floor where it stretched; else the prompt's resource
    where prefill and transfer outlast the decode; else the decode step's largest term."""
    if waiting:
        return LINK if link_paced else prefill_code
    if stretched:
        return floor_code
    if prefill_longer:
        return prefill_code
    return step_code


@formula
def pool_share(calculator, cached, tokens, prefill_tokens, isl, t_cr, ingest):
    """A token type's share of a prompt's time on the prefill pool (its cost by type): the
    cached prefix's load for cache reads, the rest by prefill tokens (``calculator``: by tokens,
    every input token at one rate); 0 where a prompt takes no time."""
    if ingest <= 0.0:
        return 0.0
    if calculator:
        return tokens / isl
    if cached:
        return t_cr / ingest
    if prefill_tokens <= 0.0:
        return 0.0
    return (ingest - t_cr) * tokens / prefill_tokens / ingest


@formula
def roofline_figures(
    wafer, t_mem, t_kv, t_flop1, t_link1, t_comm1, t_comm, t_pre_compute, t_pre_mem, t_pre_comm, t_cr, link_s, latency,
    prefill_tokens, verified, drafted, draft_ratio, per_step, conc, isl, osl, stalls, share_of, calculator, speedup,
):  # fmt: skip
    """The roofline bound of a turn: (interactivity tokens/s, throughput tokens/s, TTFT s).

    The schedule of the expected figures on times taken at the hardware's peak (full memory
    bandwidth, full compute, link bandwidth, collectives without latency; no overheads or
    format conversion; the wafer pipeline's latency only in the modes that define it by a
    published speed). It reads no serving-efficiency assumption, so a bound is a property of
    the hardware, the model and the deployment, the same under every profile, and no expected
    figure is faster than it: interactivity is one decode step of the R requests and TTFT the
    prefill and first step, both unshared (in the closed loop a slower prefill leaves fewer
    requests decoding, so a shared figure would not bound); throughput is the closed-loop
    cycle, which only grows as any time grows.
    """
    t_pass = max(t_pre_compute, t_pre_mem)
    if wafer:
        s_mem, s_flop1, s_link1 = stream_terms(t_mem, t_kv, t_flop1, t_link1, share_of)
        step1, verify = wafer_steps(latency, s_mem, s_flop1, s_link1, verified)
        t_pre = t_pass + latency if prefill_tokens > 0.0 else 0.0
    else:
        step1, verify = gpu_steps(t_mem, t_flop1, 0.0, t_comm1, t_comm, 0.0, verified)
        t_pre = t_pass + t_pre_comm
    step = time_per_output_token(verify, step1, drafted, draft_ratio, per_step)
    ingest = isl * step / speedup if calculator else t_pre + t_cr
    cycle = share_of * (osl * step + stalls * ingest)
    compute_s, memory_s = resource_demands(
        conc, t_pre_compute, t_pre_mem, osl / per_step, t_flop1, verified, drafted, draft_ratio, t_mem, t_cr
    )
    floor, _ = resource_floor(compute_s, memory_s, link_s)
    stretch = closed_loop(cycle, floor)
    return 1.0 / (share_of * step), conc * (isl + osl) / (stretch * cycle), share_of * (ingest + step)


def _plain(value):
    return getattr(value, "py_func", value)


def _pure_python() -> types.SimpleNamespace:
    """Every formula as plain Python whose calls to other formulas are plain Python too."""
    plain: dict = {"__builtins__": __builtins__}
    for name, value in list(globals().items()):
        if name.startswith("_") or name == "python":
            continue
        func = _plain(value)
        if func is not value:  # a compiled formula: rebind its globals to the plain versions
            func = types.FunctionType(func.__code__, plain, name, func.__defaults__, func.__closure__)
            func.__doc__ = value.__doc__
        plain[name] = func
    return types.SimpleNamespace(**plain)


#: The same formulas as plain Python functions (and the module's constants): what the readable
#: reference composes, so the oracle the kernels are tested against runs without any JIT.
python = _pure_python()
