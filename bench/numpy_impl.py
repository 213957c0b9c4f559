"""The cost model as numpy broadcasting: the baseline the compiled kernels are measured against.

Same formulas, inputs (by name) and output shapes as :mod:`engine.model.kernels`, written
the way one would without Numba: every axis becomes a broadcast dimension and every
intermediate is materialised at up to full grid size. :func:`evaluate_arrays` has the
array core's signature; the bench checks it equals the kernels on its grids before timing
it. It covers the default serving path (no speculative decoding) and leaves out the
``bound_by`` label; it is a speed baseline, not part of the package.
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np

from engine.model.assumptions import (
    AT_PEAK,
    CacheTier,
    ContextLimit,
    Parallelism,
    PrefillModel,
    PriceMode,
    WaferBatching,
)
from engine.model.core import kernel_inputs
from engine.model.formulas import MAX_UNITS
from engine.model.records import HardwareCode
from engine.model.tables import GC, HW, MC, MIX, P
from engine.model.variables import FAMILIES


def _padded_groups(group_offsets, groups):
    """(M, G) arrays of group fields, zero layers where a model has fewer groups."""
    counts = np.diff(group_offsets)
    width = int(counts.max())
    fields = np.zeros((len(counts), width, len(GC)))
    fields[:, :, GC.window] = np.inf
    fields[:, :, GC.ratio] = 1.0
    for m, (start, stop) in enumerate(itertools.pairwise(group_offsets)):
        fields[m, : stop - start] = groups[start:stop]
    return fields[..., GC.layers], fields[..., GC.elements], fields[..., GC.window], fields[..., GC.ratio]


def _per_context(layers, elements, window, ratio, context, with_elements=True):
    """sum_g n_g (e_g) min(c, W_g) / r_g as an (M, C) array."""
    held = np.minimum(context[None, :, None], window[:, None, :])
    weight = layers * elements / ratio if with_elements else layers / ratio
    return (weight[:, None, :] * held).sum(axis=2)


def _axis(values, position):
    """A 1-D vector as a broadcastable 6-D array along grid axis ``position`` (M, C, R, W, K, H)."""
    shape = [1] * 6
    shape[position] = -1
    return np.reshape(values, shape)


def _layout(hardware, models, parameters, weight_bits):
    """Broadcast pieces shared by both families: capacity, dense/expert bytes, KV shards, codes."""
    usable = parameters[P.usable_memory_fraction]
    capacity = hardware[:, HW.memory_bytes] * (hardware[:, HW.usable_fraction] if usable <= 0 else usable)
    total, active = models[:, MC.total_params], models[:, MC.active_params]
    experts, per_token = models[:, MC.experts], models[:, MC.experts_per_token]
    moe = experts > per_token
    routed = np.where(moe, (total - active) / np.where(moe, 1.0 - per_token / experts, 1.0), 0.0)
    wb = _axis(weight_bits, 3) / 8.0
    return {
        "capacity": _axis(capacity, 5),
        "wafer": _axis(hardware[:, HW.kind] == HardwareCode.wafer, 5),
        "dense": _axis(total - routed, 0) * wb,
        "experts": _axis(routed, 0) * wb,
        "routed": routed,
        "shards": _axis(models[:, MC.kv_shards], 0),
        "parallelism": int(parameters[P.parallelism]),
        "replica": parameters[P.replica_units],
    }


def _per_unit(x, units, experts, kv):
    """Bytes one unit holds or streams (reference.bytes_per_unit), broadcast."""
    dp = x["parallelism"] == Parallelism["dp-ep"]
    gpu = (x["dense"] + experts) / units + kv / np.minimum(units, x["shards"])
    if dp:
        gpu = x["dense"] + (experts + kv) / units
    return np.where(x["wafer"], (x["dense"] + experts + kv) / units, gpu)


def _replica(x, inside, kv_total):
    """(units needed, units per replica, fits) as in reference.units_needed."""
    dense, experts, capacity, shards = x["dense"], x["experts"], x["capacity"], x["shards"]
    total = dense + experts + kv_total
    plain = total / capacity
    dp = x["parallelism"] == Parallelism["dp-ep"]
    if dp:
        gpu = np.where(capacity > dense, (experts + kv_total) / (capacity - dense), np.inf)
    else:
        room = capacity - kv_total / shards
        gpu = np.where(
            shards >= plain, plain, np.where(room > 0, (dense + experts) / np.where(room > 0, room, 1.0), np.inf)
        )
    needed = np.where(x["wafer"], plain, gpu)
    ok = inside & (needed <= MAX_UNITS)
    needed = np.where(ok, np.maximum(1, np.ceil(np.where(ok, needed, 1.0))), 0).astype(np.int64)
    units = np.full_like(needed, int(x["replica"])) if x["replica"] > 0 else needed
    fits = ok & (needed > 0) & (units >= needed)
    if x["replica"] > 0 and np.any(inside & ~fits):
        raise NotImplementedError(
            "the numpy baseline has no admission queue (a fixed replica smaller than its requests)"
        )
    return needed, units, fits


def memory_numpy(models, group_offsets, groups, hardware, isl, osl, concurrency, weight_bits, kv_bits, parameters):
    layers, elements, window, ratio = _padded_groups(group_offsets, groups)
    within = (isl + osl)[None, :] <= models[:, MC.max_context, None]
    inside_mc = within | (int(parameters[P.context_limit]) == ContextLimit["none"])
    elems = np.where(inside_mc, _per_context(layers, elements, window, ratio, isl + osl), np.nan)
    weight_bytes = models[:, MC.total_params, None] * weight_bits[None, :] / 8.0
    kv_per_request = elems[:, :, None] * kv_bits[None, None, :] / 8.0
    kv = concurrency[None, None, :, None] * kv_per_request[:, :, None, :]
    total = weight_bytes[:, None, None, :, None] + kv[:, :, :, None, :]
    x = _layout(hardware, models, parameters, weight_bits)
    kv6 = kv[:, :, :, None, :, None]
    inside = inside_mc[:, :, None, None, None, None]
    needed, units, fits = _replica(x, inside, kv6)
    held = _per_unit(x, np.where(fits, units, 1), x["experts"], kv6)
    domain = hardware[:, HW.scaleup_domain]
    shape = needed.shape
    return {
        "weight_bytes": weight_bytes,
        "within_context": within,
        "kv_bytes_per_request": kv_per_request,
        "kv_bytes": kv,
        "total_bytes": total,
        "kv_share": kv[:, :, :, None, :] / total,
        "units_needed": needed,
        "units_per_replica": np.where(fits, units, 0),
        "replica_fits": fits,
        "admitted_requests": np.where(fits, np.broadcast_to(_axis(concurrency, 2), shape), 0).astype(np.int64),
        "layers_per_unit": np.where(fits, _axis(models[:, MC.layers], 0) / units, np.nan),
        "capex_usd": np.where(fits, units * hardware[:, HW.capex], np.nan),
        "stranded_fraction": np.where(fits, 1.0 - np.broadcast_to(held, shape) / x["capacity"], np.nan),
        "fits_domain": fits & ((domain == 0.0) | (units <= domain)),
    }


def _comm(x, hardware, parameters, units, tokens, layers, hidden, per_token, moe_layers):
    """reference.comm_time, broadcast (zero for one unit and on wafers)."""
    domain, link = _axis(hardware[:, HW.scaleup_domain], 5), _axis(hardware[:, HW.scaleup_link_bw], 5)
    link = np.where((link <= 0.0) | ((domain > 0.0) & (units > domain)), parameters[P.scaleout_bw_gbs] * 1e9, link)
    latency = parameters[P.allreduce_latency_s]
    allreduce = 2.0 * (units - 1) / units * tokens * hidden * 2.0 / link + latency
    alltoall = (units - 1) / units * tokens * per_token * hidden * 2.0 / link + latency
    if x["parallelism"] == Parallelism["tp"]:
        time = 2.0 * layers * allreduce
    elif x["parallelism"] == Parallelism["tp-ep"]:
        time = layers * allreduce + 2.0 * moe_layers * alltoall
    else:
        time = 2.0 * moe_layers * alltoall
    return np.where((units <= 1) | x["wafer"], 0.0, time)


def performance_numpy(
    models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits, parameters, mix
):
    """The performance family; the bounds are the same turn at the roofline's values (AT_PEAK)."""
    inputs = (models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits)
    peak_parameters = parameters.copy()
    for name, value in AT_PEAK.items():
        peak_parameters[getattr(P, name)] = value
    figures, _ = _performance(*inputs, parameters, mix)
    at_peak, (step, first_token) = _performance(*inputs, peak_parameters, mix)
    figures["interactivity_bound_tps"] = 1.0 / step
    figures["throughput_bound_tps"] = at_peak["throughput_tps"]
    figures["ttft_bound_s"] = first_token
    return figures


def _performance(
    models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits, parameters, mix
):
    a = parameters
    layers_g, elements, window, ratio = _padded_groups(group_offsets, groups)
    active = models[:, MC.active_params]
    x = _layout(hardware, models, a, weight_bits)
    routed = x["routed"]
    share_per_token = np.where(routed > 0, models[:, MC.experts_per_token] / models[:, MC.experts], 0.0)
    fit = a[P.interactivity_fit_coefficient] / (active / 1e9) ** a[P.interactivity_fit_exponent]
    inputs = mix[MIX.cache_read] + mix[MIX.cache_write] + mix[MIX.input]
    cache_read, cache_write, fresh = (isl * mix[f] / inputs for f in (MIX.cache_read, MIX.cache_write, MIX.input))
    prefill = cache_write + fresh
    mean_context = isl + osl / 2.0
    inside = (_axis((isl + osl), 1) <= _axis(models[:, MC.max_context], 0)) | (
        int(a[P.context_limit]) == ContextLimit["none"]
    )
    held = _per_context(layers_g, elements, window, ratio, isl + osl)
    mean_elems = _per_context(layers_g, elements, window, ratio, mean_context)
    cr_elems = _per_context(layers_g, elements, window, ratio, cache_read)
    qw = models[:, MC.query_width, None]
    decode_qw = models[:, MC.decode_query_width, None]  # MLA decodes over its latent (absorbed)
    decode_fpt = 2.0 * active[:, None] + 4.0 * decode_qw * _per_context(
        layers_g, elements, window, ratio, mean_context, False
    )
    prefill_fpt = 2.0 * active[:, None] + 4.0 * qw * _per_context(
        layers_g, elements, window, ratio, cache_read + prefill / 2.0, False
    )

    def mc6(v):
        return v.reshape(v.shape[0], v.shape[1], 1, 1, 1, 1)

    R, wb, kb = _axis(concurrency, 2), _axis(weight_bits, 3), _axis(kv_bits, 4)
    isl6, osl6 = _axis(isl, 1), _axis(osl, 1)
    touched = _axis(routed, 0) * (1.0 - (1.0 - _axis(share_per_token, 0)) ** R) * wb / 8.0
    kv_total = R * (mc6(held) * kb / 8.0)
    kv_read = R * (mc6(mean_elems) * kb / 8.0)
    cache_read_bytes = mc6(cr_elems) * kb / 8.0
    decode_flops = R * mc6(decode_fpt)
    _needed, units, fits = _replica(x, inside, kv_total)
    units = np.where(fits, units, 1).astype(np.float64)
    peak = np.where(
        wb <= 4.5,
        _axis(hardware[:, HW.peak_fp4], 5),
        np.where(wb <= 8.5, _axis(hardware[:, HW.peak_fp8], 5), _axis(hardware[:, HW.peak_bf16], 5)),
    )
    native = np.where(
        wb <= 4.5,
        _axis(hardware[:, HW.native_fp4], 5) > 0,
        np.where(wb <= 8.5, _axis(hardware[:, HW.native_fp8], 5) > 0, True),
    )
    unit_bw = _axis(hardware[:, HW.bandwidth], 5) * a[P.memory_bw_efficiency]
    wafer = x["wafer"]
    streamed = np.where(
        wafer, (x["dense"] + x["experts"] + kv_read) / units, _per_unit({**x, "wafer": False}, units, touched, kv_read)
    )
    weights_streamed = np.where(
        wafer, (x["dense"] + x["experts"]) / units, _per_unit({**x, "wafer": False}, units, touched, 0.0)
    )
    t_mem = streamed / unit_bw
    t_flop = decode_flops / (units * peak * a[P.mfu_decode])
    t_dequant = np.where(
        native, 0.0, weights_streamed * 8.0 / wb * a[P.dequant_flops_per_weight] / _axis(hardware[:, HW.peak_bf16], 5)
    )
    layers = _axis(models[:, MC.layers], 0)
    hidden = _axis(models[:, MC.hidden_size], 0)
    per_token = _axis(models[:, MC.experts_per_token], 0)
    moe_layers = np.where(_axis(routed, 0) > 0, layers, 0.0)
    batch = (
        R / np.maximum(units, 1) if x["parallelism"] == Parallelism["dp-ep"] else R
    )  # the tokens one unit dispatches
    comm = _comm(x, hardware, a, units, batch, layers, hidden, per_token, moe_layers)
    t_pre = _axis(prefill, 1) * mc6(prefill_fpt) / (units * peak * a[P.mfu_prefill])
    # The prompt's passes (chunked prefill): each streams the weights its tokens touch, at the bandwidth.
    chunks = np.where(prefill > 0.0, np.ceil(prefill / a[P.prefill_chunk_tokens]), 0.0)
    pass_share = np.where(
        chunks > 0.0, 1.0 - (1.0 - share_per_token[:, None]) ** (prefill / np.maximum(chunks, 1.0))[None, :], 0.0
    )
    chunks6 = _axis(chunks, 1)
    written = mc6(_per_context(layers_g, elements, window, ratio, isl) - cr_elems) * kb / 8.0
    kv_moved = np.where(chunks6 > 1.0, written * (1.0 + (chunks6 - 1.0) / 2.0), written)
    pass_experts = np.where(wafer, x["experts"], _axis(routed, 0) * mc6(pass_share) * wb / 8.0)
    pre_bytes = _per_unit({**x, "dense": chunks6 * x["dense"]}, units, chunks6 * pass_experts, kv_moved)
    t_pre_mem = pre_bytes / unit_bw
    t_pre = np.maximum(t_pre, t_pre_mem)
    t_pre = t_pre + np.where(
        _axis(prefill, 1) > 0.0,
        _comm(x, hardware, a, units, _axis(prefill, 1), layers, hidden, per_token, moe_layers),
        0.0,
    )
    cache_bw = units * (a[P.host_cache_bw_gbs] * 1e9 if int(a[P.cache_tier]) == CacheTier.host else unit_bw)
    t_cr = cache_read_bytes / cache_bw
    base = np.where(np.isnan(overrides), fit[:, None], overrides).reshape(
        overrides.shape[0], 1, 1, 1, 1, overrides.shape[1]
    )
    if a[P.spec_draft_tokens] > 0:
        raise NotImplementedError("the numpy baseline has no speculative decoding")
    overhead = a[P.step_overhead_s] + layers * a[P.layer_overhead_s]
    batching = int(a[P.wafer_batching])
    latency = 1.0 / base
    if batching == WaferBatching.physics:
        latency = (
            a[P.wafer_token_latency_s] + layers * a[P.wafer_layer_latency_s] + (units - 1) * a[P.wafer_hop_latency_s]
        )
    link = _axis(hardware[:, HW.scaleup_link_bw], 5)
    t_link = np.where((units > 1) & (link > 0), R * hidden * 2.0 / np.where(link > 0, link, 1.0), 0.0)
    # single_stream: a step is one request's (engine.model.formulas.stream_terms)
    share_of = np.where(wafer & (batching == WaferBatching.single_stream), R, 1.0)
    t_kv = kv_read / units / unit_bw
    one_mem = t_mem - t_kv * (1.0 - 1.0 / share_of)
    wafer_step = np.maximum(np.maximum(np.maximum(latency, one_mem), t_flop / share_of), t_link / share_of)
    step = np.where(wafer, wafer_step, np.maximum(np.maximum(t_mem, t_flop), t_dequant) + comm + overhead)
    prefill6 = _axis(prefill, 1)
    t_pre = np.where(wafer & (prefill6 > 0.0), t_pre + latency, t_pre)
    stalls = np.where(wafer | (int(a[P.prefill_model]) == PrefillModel.calculator), 1.0, R)
    speedup = a[P.cache_read_speedup]
    if int(a[P.prefill_model]) == PrefillModel.calculator:
        ingest = isl6 * step / speedup
        times = [_axis(v, 1) * step / speedup for v in (cache_read, cache_write, fresh)]
    else:
        ingest = t_pre + t_cr
        share = _axis(np.where(prefill == 0.0, 0.0, 1.0 / np.where(prefill == 0.0, 1.0, prefill)), 1)
        times = [t_cr + 0 * t_pre, _axis(cache_write, 1) * t_pre * share, _axis(fresh, 1) * t_pre * share]
    # The closed loop (engine.model.formulas.closed_loop): the cycle stretched to what the resources need.
    t_pre_compute = prefill6 * mc6(prefill_fpt) / (units * peak * a[P.mfu_prefill])
    cycle = share_of * (osl6 * step + stalls * ingest)
    compute_s = R * t_pre_compute + osl6 * t_flop
    memory_s = osl6 * t_mem + R * (t_pre_mem + t_cr)
    link_s = np.where(
        wafer & (units > 1) & (link > 0), R * (prefill6 + osl6) * hidden * 2.0 / np.where(link > 0, link, 1.0), 0.0
    )
    floor = np.maximum(np.maximum(compute_s, memory_s), link_s)
    stretch = np.maximum(1.0, floor / cycle)
    scale = stretch * share_of
    ttft_overhead = a[P.ttft_overhead_s]
    turn = ttft_overhead + stretch * cycle
    queued = (
        0.0 if int(a[P.prefill_model]) == PrefillModel.calculator else a[P.prefill_burstiness] * (stalls - 1.0) / 2.0
    )
    ttft = ttft_overhead + scale * (queued * ingest + ingest + step)
    per_output = (turn - ttft + scale * step) / osl6
    # A GPU framework's scheduler holds the request (engine.model.formulas.held_by_scheduler).
    hold = np.where(wafer, 0.0, (a[P.ttft_scheduler_factor] - 1.0) * ttft)
    turn, ttft = turn + hold, ttft + hold
    tokens = R * (isl6 + osl6)
    mode = int(a[P.price])
    rent = np.full(len(hardware), np.nan)
    if mode == PriceMode.on_demand:
        rent = hardware[:, HW.rent_on_demand]
    elif mode == PriceMode.spot:
        rent = hardware[:, HW.rent_spot]
    tco = (
        hardware[:, HW.capex] / (a[P.amortisation_years] * 8760.0)
        + hardware[:, HW.power_kw] * a[P.pue] * a[P.usd_per_kwh]
    )
    rate = units * _axis(np.where(np.isnan(rent), tco, rent), 5)
    shape = np.broadcast_shapes(turn.shape, rate.shape, fits.shape)
    by_type = []
    for time_t, count in zip(
        [scale * stalls * t for t in times] + [scale * osl6 * step + ttft_overhead + hold],
        (cache_read, cache_write, fresh, osl),
    ):
        value = rate * time_t / 3600.0 / (R * _axis(count, 1)) * 1e6
        by_type.append(np.where(fits & (_axis(count, 1) > 0.0), value, np.nan))

    def served(v):
        return np.where(fits, np.broadcast_to(v, shape), np.nan)

    return {
        "interactivity_tps": served(1.0 / per_output),
        "decode_step_s": served(per_output),
        "ttft_s": served(ttft),
        "turn_time_s": served(turn),
        "throughput_tps": served(tokens / turn),
        "output_throughput_tps": served(R * osl6 / turn),
        "usd_per_hour": served(rate),
        "cost_per_mtok_usd": served(rate / (tokens / turn * 3600.0) * 1e6),
        "cost_per_mtok_output_usd": served(rate / (R * osl6 / turn * 3600.0) * 1e6),
        "cost_per_turn_usd": served(rate * turn / 3600.0 / R),
        "cost_per_mtok_by_type_usd": np.stack([np.broadcast_to(b, shape) for b in by_type], axis=-1),
    }, (served(share_of * step), served(share_of * (ingest + step)))


def evaluate_arrays(
    models, hardware, isl, osl, concurrency, weight_bits, kv_bits, workload, assumptions, families=FAMILIES, out=None
):
    """Same signature and results as :func:`engine.model.core.evaluate_arrays`, in numpy."""
    x = kernel_inputs(models, hardware, isl, osl, concurrency, weight_bits, kv_bits, workload, assumptions)
    result = {}
    with np.errstate(all="ignore"):  # like the kernels: x/0 gives inf/NaN, masked where the formulas say
        _fill(result, x, families)
    return result


def _fill(result, x, families):
    if "memory" in families:
        result.update(memory_numpy(**{name: x[name] for name in _MEMORY_INPUTS}))
    if "performance" in families:
        result.update(performance_numpy(**{name: x[name] for name in _PERFORMANCE_INPUTS}))


_MEMORY_INPUTS = tuple(inspect.signature(memory_numpy).parameters)
_PERFORMANCE_INPUTS = tuple(inspect.signature(performance_numpy).parameters)
