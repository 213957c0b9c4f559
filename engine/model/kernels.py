"""Numba kernels: every formula of the cost model over the Cartesian product of 1-D axes.

Two kernel families, each filling preallocated outputs that span only the axes they
depend on (the cube contract):

- :func:`memory_kernel`: weight and KV bytes, footprint, units needed, capex, layers per
  unit, stranded memory, scale-up fit;
- :func:`performance_kernel`: interactivity, decode step, TTFT, turn time, throughput,
  hourly cost and cost per Mtok (blended, output-only, per turn, by token type).

The grid is ``model x context x concurrency x weight_bits x kv_bits x hardware``, where a
*context* is one (ISL, OSL) pair: the caller passes paired vectors, either ISL with its
derived OSL or the flattened product of an ISL and an OSL axis. Kernels loop over the
axes (no broadcast inputs) and hoist everything that does not depend on the inner loops.
Each mirrors :mod:`engine.model.reference` formula by formula and is tested equal to it.

Binding by name: :func:`bound` derives a kernel's Numba signature from its parameter
names, inputs from :data:`KERNEL_INPUTS` and outputs from the variable registry (rank from
the variable's dims, dtype declared once), and refuses at import a kernel whose output
parameters are not exactly its family's variables. Callers pass inputs and outputs as
mappings by name (:class:`BoundKernel`), so no order is shared by convention.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numba as nb
import numpy as np

from engine.jit import helper, kernel, layout_cache
from engine.model.assumptions import CacheTier, PriceMode
from engine.model.records import HardwareCode
from engine.model.tables import GC, HW, LAYOUT_FINGERPRINT, MC, MIX, P
from engine.model.variables import BY_NAME, FAMILIES, TOKEN_TYPES, Variable, family

WAFER = float(HardwareCode.wafer)
ON_DEMAND = int(PriceMode.on_demand)
SPOT = int(PriceMode.spot)
HOST_TIER = int(CacheTier.host)
N_TYPES = len(TOKEN_TYPES)

# --------------------------------------------------------------------------- binding
f8_1d = nb.float64[::1]
f8_2d = nb.float64[:, ::1]

#: Every kernel input, by parameter name, with its Numba type.
KERNEL_INPUTS = {
    "models": f8_2d,  # model table (M, len(MC))
    "group_offsets": nb.int64[::1],  # (M + 1,)
    "groups": f8_2d,  # KV group table (G, len(GC))
    "hardware": f8_2d,  # hardware table (H, len(HW))
    "overrides": f8_2d,  # interactivity overrides (M, H), NaN = fit
    "isl": f8_1d,  # paired with osl: one context per position
    "osl": f8_1d,
    "concurrency": f8_1d,
    "weight_bits": f8_1d,
    "kv_bits": f8_1d,
    "parameters": f8_1d,  # numeric assumptions then choice codes (P)
    "mix": f8_1d,  # workload fractions (MIX)
}


def output_type(var: Variable):
    """Numba array type of a variable's kernel output: C-contiguous, rank from its dims."""
    return nb.types.Array(nb.from_dtype(np.dtype(var.dtype)), var.rank, "C")


@dataclass(frozen=True)
class BoundKernel:
    """A compiled kernel with its inputs and outputs named; called with mappings by name."""

    name: str
    family: str
    dispatcher: object
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __call__(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        self.dispatcher(*(inputs[n] for n in self.inputs), *(outputs[n] for n in self.outputs))


def bound(family_name: str):
    """Compile a kernel whose trailing parameters are exactly the family's variables, by name."""

    def decorate(py_func) -> BoundKernel:
        names = list(inspect.signature(py_func).parameters)
        expected = {v.name for v in family(family_name)}
        outputs = [n for n in names if n in BY_NAME]
        if set(outputs) != expected:
            missing, extra = sorted(expected - set(outputs)), sorted(set(outputs) - expected)
            raise TypeError(
                f"kernel {py_func.__name__}: outputs differ from the {family_name} variables "
                f"(missing {missing}, not in the family {extra})"
            )
        inputs = names[: len(names) - len(outputs)]
        if names[len(inputs) :] != outputs:
            raise TypeError(f"kernel {py_func.__name__}: output parameters must follow the inputs")
        unknown = [n for n in inputs if n not in KERNEL_INPUTS]
        if unknown:
            raise TypeError(f"kernel {py_func.__name__}: unknown inputs {unknown} (known: {', '.join(KERNEL_INPUTS)})")
        signature = nb.void(*(KERNEL_INPUTS[n] for n in inputs), *(output_type(BY_NAME[n]) for n in outputs))
        with layout_cache(LAYOUT_FINGERPRINT):
            dispatcher = kernel(signature)(py_func)
        return BoundKernel(py_func.__name__, family_name, dispatcher, tuple(inputs), tuple(outputs))

    return decorate


# --------------------------------------------------------------------------- scalar helpers
@helper
def kv_elements(groups, start, stop, context):
    """sum_g n_g e_g min(c, W_g) / r_g over one model's groups."""
    total = 0.0
    for g in range(start, stop):
        held = min(context, groups[g, GC.window])
        total += groups[g, GC.layers] * groups[g, GC.elements] * held / groups[g, GC.ratio]
    return total


@helper
def attended_positions(groups, start, stop, context):
    """sum_g n_g min(c, W_g) / r_g: positions attended per token over all layers."""
    total = 0.0
    for g in range(start, stop):
        held = min(context, groups[g, GC.window])
        total += groups[g, GC.layers] * held / groups[g, GC.ratio]
    return total


@helper
def usable_fraction(hardware, h, parameters):
    override = parameters[P.usable_memory_fraction]
    return override if override > 0.0 else hardware[h, HW.usable_fraction]


@helper
def nominal_peak(hardware, h, weight_bits):
    if weight_bits <= 4.5:
        return hardware[h, HW.peak_fp4]
    if weight_bits <= 8.5:
        return hardware[h, HW.peak_fp8]
    return hardware[h, HW.peak_bf16]


@helper
def unit_rate(hardware, h, parameters):
    """Hourly rate of one unit: the scenario's rental rate, else TCO."""
    mode = int(parameters[P.price])
    rent = math.nan
    if mode == ON_DEMAND:
        rent = hardware[h, HW.rent_on_demand]
    elif mode == SPOT:
        rent = hardware[h, HW.rent_spot]
    if not math.isnan(rent):
        return rent
    amortised = hardware[h, HW.capex] / (parameters[P.amortisation_years] * 8760.0)
    return amortised + hardware[h, HW.power_kw] * parameters[P.pue] * parameters[P.usd_per_kwh]


@helper
def comm_time(hardware, h, units, tokens, layers, hidden, parameters):
    """Tensor-parallel all-reduce time for one forward pass over `tokens` tokens."""
    if units <= 1:
        return 0.0
    domain = hardware[h, HW.scaleup_domain]
    link = hardware[h, HW.scaleup_link_bw]
    if link <= 0.0 or (domain > 0.0 and units > domain):
        link = parameters[P.scaleout_bw_gbs] * 1e9
    per_allreduce = 2.0 * (units - 1) / units * tokens * hidden * 2.0 / link
    return 2.0 * layers * (per_allreduce + parameters[P.allreduce_latency_s])


# --------------------------------------------------------------------------- kernels
@bound("memory")
def memory_kernel(
    models,
    group_offsets,
    groups,
    hardware,
    isl,
    osl,
    concurrency,
    weight_bits,
    kv_bits,
    parameters,
    weight_bytes,
    kv_bytes_per_request,
    kv_bytes,
    total_bytes,
    kv_share,
    units_needed,
    layers_per_unit,
    capex_usd,
    stranded_fraction,
    fits_domain,
):
    """Memory footprint and units needed over model x context x R x wbits x kbits x hardware."""
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    capacity = np.empty(n_hw)
    for h in range(n_hw):
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        layers = models[m, MC.layers]
        for w in range(n_wb):
            weight_bytes[m, w] = models[m, MC.total_params] * weight_bits[w] / 8.0
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
                            domain = hardware[h, HW.scaleup_domain]
                            units_needed[m, c, r, w, k, h] = units
                            layers_per_unit[m, c, r, w, k, h] = layers * inv_units
                            capex_usd[m, c, r, w, k, h] = units * hardware[h, HW.capex]
                            stranded_fraction[m, c, r, w, k, h] = 1.0 - filled * inv_units
                            fits_domain[m, c, r, w, k, h] = domain == 0.0 or units <= domain


@bound("performance")
def performance_kernel(
    models,
    group_offsets,
    groups,
    hardware,
    overrides,
    isl,
    osl,
    concurrency,
    weight_bits,
    kv_bits,
    parameters,
    mix,
    interactivity_tps,
    decode_step_s,
    ttft_s,
    turn_time_s,
    throughput_tps,
    output_throughput_tps,
    usd_per_hour,
    cost_per_mtok_usd,
    cost_per_mtok_output_usd,
    cost_per_turn_usd,
    cost_per_mtok_by_type_usd,
):
    """Throughput and cost over model x context x R x wbits x kbits x hardware.

    Divisions are the cost of this kernel, so everything that does not depend on the
    hardware is turned into a multiplier outside the innermost loop (units needed keeps
    its exact division: it feeds a ceil).
    """
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    eta = parameters[P.memory_bw_efficiency]
    mfu_decode = parameters[P.mfu_decode]
    mfu_prefill = parameters[P.mfu_prefill]
    inv_speedup = 1.0 / parameters[P.cache_read_speedup]
    host_tier = int(parameters[P.cache_tier]) == HOST_TIER
    inputs = mix[MIX.cache_read] + mix[MIX.cache_write] + mix[MIX.input]
    # Per hardware: hourly rate per unit, bandwidth and capacity, scale-up limits.
    unit_rates = np.empty(n_hw)
    capacity = np.empty(n_hw)
    inv_bandwidth = np.empty(n_hw)  # 1 / (one unit's memory bandwidth x efficiency)
    inv_cache_bw = np.empty(n_hw)  # 1 / one unit's cache-read bandwidth
    inv_decode_peak = np.empty((n_hw, n_wb))  # 1 / (peak x mfu_decode), by weight width
    inv_prefill_peak = np.empty((n_hw, n_wb))
    for h in range(n_hw):
        unit_rates[h] = unit_rate(hardware, h, parameters)
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
        inv_bandwidth[h] = 1.0 / (hardware[h, HW.bandwidth] * eta)
        inv_cache_bw[h] = 1.0 / (parameters[P.host_cache_bw_gbs] * 1e9) if host_tier else inv_bandwidth[h]
        for w in range(n_wb):
            peak = nominal_peak(hardware, h, weight_bits[w])
            inv_decode_peak[h, w] = 1.0 / (peak * mfu_decode)
            inv_prefill_peak[h, w] = 1.0 / (peak * mfu_prefill)
    inv_base = np.empty(n_hw)
    type_scale = np.empty(N_TYPES)
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
        total_params = models[m, MC.total_params]
        active = models[m, MC.active_params]
        layers = models[m, MC.layers]
        hidden = models[m, MC.hidden_size]
        query_width = models[m, MC.query_width]
        experts = models[m, MC.experts]
        per_token = models[m, MC.experts_per_token]
        routed = 0.0
        if experts > per_token:
            routed = (total_params - active) / (1.0 - per_token / experts)
        dense = total_params - routed
        fit = parameters[P.interactivity_fit_coefficient] / (active / 1e9) ** parameters[P.interactivity_fit_exponent]
        for h in range(n_hw):
            base = overrides[m, h]
            inv_base[h] = 1.0 / (fit if math.isnan(base) else base)
        for c in range(n_ctx):
            isl_c, osl_c = isl[c], osl[c]
            held_elements = kv_elements(groups, start, stop, isl_c + osl_c)
            mean_context = isl_c + osl_c / 2.0
            mean_elements = kv_elements(groups, start, stop, mean_context)
            decode_fpt = 2.0 * active + 4.0 * query_width * attended_positions(groups, start, stop, mean_context)
            cache_read = isl_c * mix[MIX.cache_read] / inputs
            cache_write = isl_c * mix[MIX.cache_write] / inputs
            fresh = isl_c * mix[MIX.input] / inputs
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
                            if hardware[h, HW.kind] == WAFER:  # wafer: interactivity model
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
                                    + parameters[P.step_overhead_s]
                                    + comm_time(hardware, h, units, conc, layers, hidden, parameters)
                                )
                                t_pre = prefill_flops * inv_units * inv_prefill_peak[h, w]
                                if prefill_tokens > 0.0:
                                    t_pre += comm_time(hardware, h, units, prefill_tokens, layers, hidden, parameters)
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
                            f_by_type[N_TYPES * i] = rate * time_cache_read * type_scale[0]
                            f_by_type[N_TYPES * i + 1] = rate * time_cache_write * type_scale[1]
                            f_by_type[N_TYPES * i + 2] = rate * time_input * type_scale[2]
                            f_by_type[N_TYPES * i + 3] = rate * time_output * type_scale[3]


#: The kernel of each family (every family of the registry has one).
KERNELS: dict[str, BoundKernel] = {k.family: k for k in (memory_kernel, performance_kernel)}
assert set(KERNELS) == set(FAMILIES), "every variable family needs a kernel"
