"""Numba kernels: every formula of the cost model over the Cartesian product of 1-D axes.

Two kernel families, each filling preallocated outputs that span only the axes they
depend on (SPEC "cube contract"):

- :func:`memory_kernel`: weight and KV bytes, footprint, units needed, capex, layers per
  unit, stranded memory, scale-up fit;
- :func:`performance_kernel`: interactivity, decode step, TTFT, turn time, throughput,
  hourly cost and cost per Mtok (blended, output-only, per turn, by token type).

The grid is ``model x context x concurrency x weight_bits x kv_bits x hardware``, where a
*context* is one (ISL, OSL) pair: the wrapper passes paired vectors, either ISL with its
derived OSL or the flattened product of an ISL and an OSL axis. Kernels loop over the
axes (no broadcast inputs) and hoist everything that does not depend on the inner loops.
Each mirrors :mod:`engine.reference` formula by formula, in the same floating-point
order, and is tested equal to it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from engine.jit import helper, kernel
from engine.tables import (
    A_CACHE_TIER,
    A_INDEX,
    A_PRICE_MODE,
    G_ELEMENTS,
    G_LAYERS,
    G_RATIO,
    G_WINDOW,
    H_BANDWIDTH,
    H_CAPEX,
    H_DOMAIN,
    H_KIND,
    H_LINK_BW,
    H_MEMORY_BYTES,
    H_PEAK4,
    H_PEAK8,
    H_PEAK16,
    H_POWER_KW,
    H_RENT_ON_DEMAND,
    H_RENT_SPOT,
    H_USABLE,
    M_ACTIVE_PARAMS,
    M_EXPERTS,
    M_EXPERTS_PER_TOKEN,
    M_HIDDEN,
    M_LAYERS,
    M_QUERY_WIDTH,
    M_TOTAL_PARAMS,
    W_CACHE_READ,
    W_CACHE_WRITE,
    W_INPUT,
)

A_CACHE_READ_SPEEDUP = A_INDEX["cache_read_speedup"]
A_BW_EFFICIENCY = A_INDEX["memory_bw_efficiency"]
A_MFU_DECODE = A_INDEX["mfu_decode"]
A_MFU_PREFILL = A_INDEX["mfu_prefill"]
A_STEP_OVERHEAD = A_INDEX["step_overhead_s"]
A_ALLREDUCE_LATENCY = A_INDEX["allreduce_latency_s"]
A_SCALEOUT_BW = A_INDEX["scaleout_bw_gbs"]
A_HOST_CACHE_BW = A_INDEX["host_cache_bw_gbs"]
A_USABLE = A_INDEX["usable_memory_fraction"]
A_YEARS = A_INDEX["amortisation_years"]
A_PUE = A_INDEX["pue"]
A_USD_PER_KWH = A_INDEX["usd_per_kwh"]
A_FIT_COEFFICIENT = A_INDEX["interactivity_fit_coefficient"]
A_FIT_EXPONENT = A_INDEX["interactivity_fit_exponent"]

# --------------------------------------------------------------------------- signatures
f8_1d = nb.float64[::1]
f8_2d = nb.float64[:, ::1]
i8_1d = nb.int64[::1]
_tables = (f8_2d, i8_1d, f8_2d)  # model table, group offsets, group table
_axes = (f8_1d,) * 5  # isl, osl (paired), concurrency, weight_bits, kv_bits

MEMORY_SIGNATURE = nb.void(
    *_tables,
    f8_2d,  # hardware table
    *_axes,
    f8_1d,  # assumptions
    f8_2d,  # weight_bytes (M, WB)
    nb.float64[:, :, ::1],  # kv_bytes_per_request (M, C, KB)
    nb.float64[:, :, :, ::1],  # kv_bytes (M, C, R, KB)
    nb.float64[:, :, :, :, ::1],  # total_bytes (M, C, R, WB, KB)
    nb.float64[:, :, :, :, ::1],  # kv_share
    nb.int64[:, :, :, :, :, ::1],  # units_needed (M, C, R, WB, KB, H)
    nb.float64[:, :, :, :, :, ::1],  # layers_per_unit
    nb.float64[:, :, :, :, :, ::1],  # capex_usd
    nb.float64[:, :, :, :, :, ::1],  # stranded_fraction
    nb.boolean[:, :, :, :, :, ::1],  # fits_domain
)

f8_6d = nb.float64[:, :, :, :, :, ::1]
PERFORMANCE_SIGNATURE = nb.void(
    *_tables,
    f8_2d,  # hardware table
    f8_2d,  # interactivity overrides (M, H), NaN = fit
    *_axes,
    f8_1d,  # assumptions
    f8_1d,  # workload mix
    *(f8_6d,) * 10,  # interactivity .. cost_per_turn (M, C, R, WB, KB, H)
    nb.float64[:, :, :, :, :, :, ::1],  # cost_per_mtok_by_type (M, C, R, WB, KB, H, 4)
)


# --------------------------------------------------------------------------- scalar helpers
@helper
def kv_elements(groups, start, stop, context):
    """sum_g n_g e_g min(c, W_g) / r_g over one model's groups."""
    total = 0.0
    for g in range(start, stop):
        held = min(context, groups[g, G_WINDOW])
        total += groups[g, G_LAYERS] * groups[g, G_ELEMENTS] * held / groups[g, G_RATIO]
    return total


@helper
def attended_positions(groups, start, stop, context):
    """sum_g n_g min(c, W_g) / r_g: positions attended per token over all layers."""
    total = 0.0
    for g in range(start, stop):
        held = min(context, groups[g, G_WINDOW])
        total += groups[g, G_LAYERS] * held / groups[g, G_RATIO]
    return total


@helper
def usable_fraction(hardware, h, assumptions):
    override = assumptions[A_USABLE]
    return override if override > 0.0 else hardware[h, H_USABLE]


@helper
def nominal_peak(hardware, h, weight_bits):
    if weight_bits <= 4.5:
        return hardware[h, H_PEAK4]
    if weight_bits <= 8.5:
        return hardware[h, H_PEAK8]
    return hardware[h, H_PEAK16]


@helper
def unit_rate(hardware, h, assumptions):
    """Hourly rate of one unit: the scenario's rental rate, else TCO."""
    mode = assumptions[A_PRICE_MODE]
    rent = math.nan
    if mode == 0.0:
        rent = hardware[h, H_RENT_ON_DEMAND]
    elif mode == 1.0:
        rent = hardware[h, H_RENT_SPOT]
    if not math.isnan(rent):
        return rent
    amortised = hardware[h, H_CAPEX] / (assumptions[A_YEARS] * 8760.0)
    return amortised + hardware[h, H_POWER_KW] * assumptions[A_PUE] * assumptions[A_USD_PER_KWH]


@helper
def comm_time(hardware, h, units, tokens, layers, hidden, assumptions):
    """Tensor-parallel all-reduce time for one forward pass over `tokens` tokens."""
    if units <= 1:
        return 0.0
    domain = hardware[h, H_DOMAIN]
    link = hardware[h, H_LINK_BW]
    if link <= 0.0 or (domain > 0.0 and units > domain):
        link = assumptions[A_SCALEOUT_BW] * 1e9
    per_allreduce = 2.0 * (units - 1) / units * tokens * hidden * 2.0 / link
    return 2.0 * layers * (per_allreduce + assumptions[A_ALLREDUCE_LATENCY])


# --------------------------------------------------------------------------- kernels
@kernel(MEMORY_SIGNATURE)
def memory_kernel(
    models, group_offsets, groups, hardware, isl, osl, concurrency, weight_bits, kv_bits, assumptions,
    weight_bytes, kv_bytes_per_request, kv_bytes, total_bytes, kv_share,
    units_needed, layers_per_unit, capex_usd, stranded_fraction, fits_domain,
):  # fmt: skip
    """Memory footprint and units needed over model x context x R x wbits x kbits x hardware."""
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    capacity = np.empty(n_hw)
    for h in range(n_hw):
        capacity[h] = hardware[h, H_MEMORY_BYTES] * usable_fraction(hardware, h, assumptions)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        layers = models[m, M_LAYERS]
        for w in range(n_wb):
            weight_bytes[m, w] = models[m, M_TOTAL_PARAMS] * weight_bits[w] / 8.0
        for c in range(n_ctx):
            elements = kv_elements(groups, start, stop, isl[c] + osl[c])
            for k in range(n_kb):
                kv_bytes_per_request[m, c, k] = elements * kv_bits[k] / 8.0
            for r in range(n_conc):
                for k in range(n_kb):
                    kv_bytes[m, c, r, k] = concurrency[r] * kv_bytes_per_request[m, c, k]
                for w in range(n_wb):
                    for k in range(n_kb):
                        total = weight_bytes[m, w] + kv_bytes[m, c, r, k]
                        total_bytes[m, c, r, w, k] = total
                        kv_share[m, c, r, w, k] = kv_bytes[m, c, r, k] / total
                        for h in range(n_hw):
                            filled = total / capacity[h]  # units of memory the replica fills
                            units = max(1, math.ceil(filled))
                            inv_units = 1.0 / units
                            domain = hardware[h, H_DOMAIN]
                            units_needed[m, c, r, w, k, h] = units
                            layers_per_unit[m, c, r, w, k, h] = layers * inv_units
                            capex_usd[m, c, r, w, k, h] = units * hardware[h, H_CAPEX]
                            stranded_fraction[m, c, r, w, k, h] = 1.0 - filled * inv_units
                            fits_domain[m, c, r, w, k, h] = domain == 0.0 or units <= domain


@kernel(PERFORMANCE_SIGNATURE)
def performance_kernel(
    models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits,
    assumptions, mix,
    interactivity_tps, decode_step_s, ttft_s, turn_time_s, throughput_tps, output_throughput_tps,
    usd_per_hour, cost_per_mtok_usd, cost_per_mtok_output_usd, cost_per_turn_usd, cost_per_mtok_by_type_usd,
):  # fmt: skip
    """Throughput and cost over model x context x R x wbits x kbits x hardware.

    Divisions are the cost of this kernel, so everything that does not depend on the
    hardware is turned into a multiplier outside the innermost loop (units needed keeps
    its exact division: it feeds a ceil).
    """
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    eta = assumptions[A_BW_EFFICIENCY]
    mfu_decode = assumptions[A_MFU_DECODE]
    mfu_prefill = assumptions[A_MFU_PREFILL]
    inv_speedup = 1.0 / assumptions[A_CACHE_READ_SPEEDUP]
    host_tier = assumptions[A_CACHE_TIER] == 1.0
    inputs = mix[W_CACHE_READ] + mix[W_CACHE_WRITE] + mix[W_INPUT]
    # Per hardware: hourly rate per unit, bandwidth and capacity, scale-up limits.
    unit_rates = np.empty(n_hw)
    capacity = np.empty(n_hw)
    inv_bandwidth = np.empty(n_hw)  # 1 / (one unit's memory bandwidth x efficiency)
    inv_cache_bw = np.empty(n_hw)  # 1 / one unit's cache-read bandwidth
    inv_decode_peak = np.empty((n_hw, n_wb))  # 1 / (peak x mfu_decode), by weight width
    inv_prefill_peak = np.empty((n_hw, n_wb))
    for h in range(n_hw):
        unit_rates[h] = unit_rate(hardware, h, assumptions)
        capacity[h] = hardware[h, H_MEMORY_BYTES] * usable_fraction(hardware, h, assumptions)
        inv_bandwidth[h] = 1.0 / (hardware[h, H_BANDWIDTH] * eta)
        inv_cache_bw[h] = 1.0 / (assumptions[A_HOST_CACHE_BW] * 1e9) if host_tier else inv_bandwidth[h]
        for w in range(n_wb):
            peak = nominal_peak(hardware, h, weight_bits[w])
            inv_decode_peak[h, w] = 1.0 / (peak * mfu_decode)
            inv_prefill_peak[h, w] = 1.0 / (peak * mfu_prefill)
    inv_base = np.empty(n_hw)
    type_scale = np.empty(4)
    # Flat views: one index per point instead of six strided ones per store.
    f_interactivity = interactivity_tps.reshape(-1)
    f_step = decode_step_s.reshape(-1)
    f_ttft = ttft_s.reshape(-1)
    f_turn = turn_time_s.reshape(-1)
    f_throughput = throughput_tps.reshape(-1)
    f_output_throughput = output_throughput_tps.reshape(-1)
    f_rate = usd_per_hour.reshape(-1)
    f_cost = cost_per_mtok_usd.reshape(-1)
    f_cost_output = cost_per_mtok_output_usd.reshape(-1)
    f_cost_turn = cost_per_turn_usd.reshape(-1)
    f_by_type = cost_per_mtok_by_type_usd.reshape(-1)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        total_params = models[m, M_TOTAL_PARAMS]
        active = models[m, M_ACTIVE_PARAMS]
        layers = models[m, M_LAYERS]
        hidden = models[m, M_HIDDEN]
        query_width = models[m, M_QUERY_WIDTH]
        experts = models[m, M_EXPERTS]
        per_token = models[m, M_EXPERTS_PER_TOKEN]
        routed = 0.0
        if experts > per_token:
            routed = (total_params - active) / (1.0 - per_token / experts)
        dense = total_params - routed
        fit = assumptions[A_FIT_COEFFICIENT] / (active / 1e9) ** assumptions[A_FIT_EXPONENT]
        for h in range(n_hw):
            base = overrides[m, h]
            inv_base[h] = 1.0 / (fit if math.isnan(base) else base)
        for c in range(n_ctx):
            isl_c, osl_c = isl[c], osl[c]
            held_elements = kv_elements(groups, start, stop, isl_c + osl_c)
            mean_context = isl_c + osl_c / 2.0
            mean_elements = kv_elements(groups, start, stop, mean_context)
            decode_fpt = 2.0 * active + 4.0 * query_width * attended_positions(groups, start, stop, mean_context)
            cache_read = isl_c * mix[W_CACHE_READ] / inputs
            cache_write = isl_c * mix[W_CACHE_WRITE] / inputs
            fresh = isl_c * mix[W_INPUT] / inputs
            prefill_tokens = cache_write + fresh
            prefill_context = cache_read + prefill_tokens / 2.0
            prefill_flops = prefill_tokens * (
                2.0 * active + 4.0 * query_width * attended_positions(groups, start, stop, prefill_context)
            )
            cache_read_elements = kv_elements(groups, start, stop, cache_read)
            share = 0.0 if prefill_tokens == 0.0 else 1.0 / prefill_tokens
            wafer_turn_factor = osl_c + isl_c * inv_speedup  # turn = step x this
            for r in range(n_conc):
                conc = concurrency[r]
                touched = 0.0
                if routed != 0.0:
                    touched = routed * (1.0 - (1.0 - per_token / experts) ** conc)
                decode_flops = conc * decode_fpt
                # Cost multipliers: cost = rate x seconds x scale (1e6 tokens / 3600 s per token count).
                blended_scale = 1e6 / 3600.0 / (conc * (isl_c + osl_c))
                output_scale = 1e6 / 3600.0 / (conc * osl_c)
                turn_scale = 1.0 / 3600.0 / conc
                for t, tokens in enumerate((cache_read, cache_write, fresh, osl_c)):
                    type_scale[t] = 1e6 / 3600.0 / (conc * tokens) if tokens > 0.0 else math.nan
                for w in range(n_wb):
                    wbits = weight_bits[w]
                    weights = total_params * wbits / 8.0
                    weights_touched = (dense + touched) * wbits / 8.0
                    for k in range(n_kb):
                        kbits = kv_bits[k]
                        total = weights + conc * (held_elements * kbits / 8.0)
                        decode_kv = conc * (mean_elements * kbits / 8.0)
                        cache_read_bytes = cache_read_elements * kbits / 8.0
                        base_index = (((m * n_ctx + c) * n_conc + r) * n_wb + w) * n_kb + k
                        for h in range(n_hw):
                            i = base_index * n_hw + h
                            units = max(1, math.ceil(total / capacity[h]))
                            inv_units = 1.0 / units
                            if hardware[h, H_KIND] == 0.0:  # wafer: interactivity model
                                t_mem = (weights + decode_kv) * inv_units * inv_bandwidth[h]
                                t_flop = decode_flops * inv_units * inv_decode_peak[h, w]
                                step = max(inv_base[h], t_mem, t_flop)
                                turn = step * wafer_turn_factor
                                ttft = isl_c * step * inv_speedup
                                time_cache_read = cache_read * step * inv_speedup
                                time_cache_write = cache_write * step * inv_speedup
                                time_input = fresh * step * inv_speedup
                                time_output = osl_c * step
                            else:  # GPU roofline
                                t_dec = max(
                                    (weights_touched + decode_kv) * inv_units * inv_bandwidth[h],
                                    decode_flops * inv_units * inv_decode_peak[h, w],
                                )
                                step = (
                                    t_dec
                                    + assumptions[A_STEP_OVERHEAD]
                                    + comm_time(hardware, h, units, conc, layers, hidden, assumptions)
                                )
                                t_pre = prefill_flops * inv_units * inv_prefill_peak[h, w]
                                if prefill_tokens > 0.0:
                                    t_pre += comm_time(hardware, h, units, prefill_tokens, layers, hidden, assumptions)
                                t_cr = cache_read_bytes * inv_units * inv_cache_bw[h]
                                turn = osl_c * step + conc * (t_pre + t_cr)
                                ttft = t_pre + t_cr
                                time_cache_read = conc * t_cr
                                time_cache_write = conc * t_pre * cache_write * share
                                time_input = conc * t_pre * fresh * share
                                time_output = osl_c * step
                            inv_turn = 1.0 / turn
                            rate = units * unit_rates[h]
                            f_interactivity[i] = 1.0 / step
                            f_step[i] = step
                            f_ttft[i] = ttft
                            f_turn[i] = turn
                            f_throughput[i] = conc * (isl_c + osl_c) * inv_turn
                            f_output_throughput[i] = conc * osl_c * inv_turn
                            f_rate[i] = rate
                            f_cost[i] = rate * turn * blended_scale
                            f_cost_output[i] = rate * turn * output_scale
                            f_cost_turn[i] = rate * turn * turn_scale
                            f_by_type[4 * i] = rate * time_cache_read * type_scale[0]
                            f_by_type[4 * i + 1] = rate * time_cache_write * type_scale[1]
                            f_by_type[4 * i + 2] = rate * time_input * type_scale[2]
                            f_by_type[4 * i + 3] = rate * time_output * type_scale[3]
