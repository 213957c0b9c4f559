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
from engine.model.assumptions import CacheTier, ContextLimit, Parallelism, PrefillModel, PriceMode
from engine.model.records import HardwareCode
from engine.model.tables import GC, HW, LAYOUT_FINGERPRINT, MC, MIX, P
from engine.model.variables import BY_NAME, FAMILIES, TOKEN_TYPES, Variable, family

WAFER = float(HardwareCode.wafer)
ON_DEMAND = int(PriceMode.on_demand)
SPOT = int(PriceMode.spot)
HOST_TIER = int(CacheTier.host)
CALCULATOR = int(PrefillModel.calculator)
NO_LIMIT = int(ContextLimit["none"])
TP = int(Parallelism["tp"])
TP_EP = int(Parallelism["tp-ep"])
DP_EP = int(Parallelism["dp-ep"])
MAX_UNITS = 1e12  # replicas beyond this many units are reported as not fitting (no integer overflow)
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
def comm_time(hardware, h, parallelism, units, tokens, layers, moe_layers, hidden, per_token, parameters):
    """Collectives of one forward pass over `tokens` tokens (reference.comm_time)."""
    if units <= 1 or hardware[h, HW.kind] == WAFER:
        return 0.0
    domain = hardware[h, HW.scaleup_domain]
    link = hardware[h, HW.scaleup_link_bw]
    if link <= 0.0 or (domain > 0.0 and units > domain):
        link = parameters[P.scaleout_bw_gbs] * 1e9
    latency = parameters[P.allreduce_latency_s]
    allreduce = 2.0 * (units - 1) / units * tokens * hidden * 2.0 / link + latency
    alltoall = (units - 1) / units * tokens * per_token * hidden * 2.0 / link + latency
    if parallelism == TP:
        return 2.0 * layers * allreduce
    if parallelism == TP_EP:
        return layers * allreduce + 2.0 * moe_layers * alltoall
    return 2.0 * moe_layers * alltoall


@helper
def units_needed_for(wafer, parallelism, dense, experts, kv_total, capacity, kv_shards):
    """Fewest units holding the replica in its layout; 0 when none does (reference.units_needed)."""
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


@helper
def per_unit(wafer, parallelism, units, dense, experts, kv_total, kv_shards):
    """Bytes one unit holds (or streams) in the layout (reference.bytes_per_unit)."""
    if wafer:
        return (dense + experts + kv_total) / units
    if parallelism == DP_EP:
        return dense + (experts + kv_total) / units
    return (dense + experts) / units + kv_total / min(units, kv_shards)


@helper
def routed_params(models, m):
    experts = models[m, MC.experts]
    per_token = models[m, MC.experts_per_token]
    if experts <= per_token:
        return 0.0
    return (models[m, MC.total_params] - models[m, MC.active_params]) / (1.0 - per_token / experts)


# --------------------------------------------------------------------------- kernels
@bound("memory")
def memory_kernel(
    models, group_offsets, groups, hardware, isl, osl, concurrency, weight_bits, kv_bits, parameters,
    weight_bytes, within_context, kv_bytes_per_request, kv_bytes, total_bytes, kv_share,
    units_needed, units_per_replica, replica_fits, layers_per_unit, capex_usd, stranded_fraction, fits_domain,
):  # fmt: skip
    """Memory footprint and the replica over model x context x R x wbits x kbits x hardware."""
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    parallelism = int(parameters[P.parallelism])
    replica = parameters[P.replica_units]
    extrapolate = int(parameters[P.context_limit]) == NO_LIMIT
    capacity = np.empty(n_hw)
    for h in range(n_hw):
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        layers = models[m, MC.layers]
        kv_shards = models[m, MC.kv_shards]
        experts_params = routed_params(models, m)
        for w in range(n_wb):
            weight_bytes[m, w] = models[m, MC.total_params] * weight_bits[w] / 8.0
        for c in range(n_ctx):
            within_context[m, c] = isl[c] + osl[c] <= models[m, MC.max_context]
            inside = within_context[m, c] or extrapolate
            elements = kv_elements(groups, start, stop, isl[c] + osl[c]) if inside else math.nan
            for k in range(n_kb):
                kv_bytes_per_request[m, c, k] = elements * kv_bits[k] / 8.0
            for r in range(n_conc):
                for k in range(n_kb):
                    kv_bytes[m, c, r, k] = concurrency[r] * kv_bytes_per_request[m, c, k]
                for w in range(n_wb):
                    dense = (models[m, MC.total_params] - experts_params) * weight_bits[w] / 8.0
                    experts = experts_params * weight_bits[w] / 8.0
                    for k in range(n_kb):
                        kv_total = kv_bytes[m, c, r, k]
                        total = weight_bytes[m, w] + kv_total
                        total_bytes[m, c, r, w, k] = total
                        kv_share[m, c, r, w, k] = kv_total / total
                        for h in range(n_hw):
                            wafer = hardware[h, HW.kind] == WAFER
                            needed = 0
                            if inside:
                                needed = units_needed_for(
                                    wafer, parallelism, dense, experts, kv_total, capacity[h], kv_shards
                                )
                            units = int(replica) if replica > 0.0 else needed
                            fits = inside and needed > 0 and units >= needed
                            units_needed[m, c, r, w, k, h] = needed
                            replica_fits[m, c, r, w, k, h] = fits
                            if fits:
                                held = per_unit(wafer, parallelism, units, dense, experts, kv_total, kv_shards)
                                domain = hardware[h, HW.scaleup_domain]
                                units_per_replica[m, c, r, w, k, h] = units
                                layers_per_unit[m, c, r, w, k, h] = layers / units
                                capex_usd[m, c, r, w, k, h] = units * hardware[h, HW.capex]
                                stranded_fraction[m, c, r, w, k, h] = 1.0 - held / capacity[h]
                                fits_domain[m, c, r, w, k, h] = domain == 0.0 or units <= domain
                            else:
                                units_per_replica[m, c, r, w, k, h] = 0
                                layers_per_unit[m, c, r, w, k, h] = math.nan
                                capex_usd[m, c, r, w, k, h] = math.nan
                                stranded_fraction[m, c, r, w, k, h] = math.nan
                                fits_domain[m, c, r, w, k, h] = False


@bound("performance")
def performance_kernel(
    models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits, parameters, mix,
    interactivity_bound_tps, throughput_bound_tps, ttft_bound_s, interactivity_tps, decode_step_s, ttft_s,
    turn_time_s, throughput_tps, output_throughput_tps, usd_per_hour, cost_per_mtok_usd, cost_per_mtok_output_usd,
    cost_per_turn_usd, cost_per_mtok_by_type_usd,
):  # fmt: skip
    """Roofline bounds, expected serving figures and costs over model x context x R x wbits x kbits x hardware.

    Mirrors reference.evaluate_point; everything that does not depend on the hardware is
    computed outside the innermost loop.
    """
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    eta = parameters[P.memory_bw_efficiency]
    mfu_decode = parameters[P.mfu_decode]
    mfu_prefill = parameters[P.mfu_prefill]
    speedup = parameters[P.cache_read_speedup]
    host_tier = int(parameters[P.cache_tier]) == HOST_TIER
    calculator = int(parameters[P.prefill_model]) == CALCULATOR
    extrapolate = int(parameters[P.context_limit]) == NO_LIMIT
    parallelism = int(parameters[P.parallelism])
    replica = parameters[P.replica_units]
    step_overhead = parameters[P.step_overhead_s]
    layer_overhead = parameters[P.layer_overhead_s]
    dequant = parameters[P.dequant_flops_per_weight]
    ttft_overhead = parameters[P.ttft_overhead_s]
    inputs = mix[MIX.cache_read] + mix[MIX.cache_write] + mix[MIX.input]
    unit_rates = np.empty(n_hw)
    capacity = np.empty(n_hw)
    unit_bw = np.empty(n_hw)
    peaks = np.empty((n_hw, n_wb))
    emulated = np.empty((n_hw, n_wb))  # 1 where the weights are converted as they stream
    for h in range(n_hw):
        unit_rates[h] = unit_rate(hardware, h, parameters)
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
        unit_bw[h] = hardware[h, HW.bandwidth] * eta
        for w in range(n_wb):
            peaks[h, w] = nominal_peak(hardware, h, weight_bits[w])
            native = True
            if weight_bits[w] <= 4.5:
                native = hardware[h, HW.native_fp4] > 0.0
            elif weight_bits[w] <= 8.5:
                native = hardware[h, HW.native_fp8] > 0.0
            emulated[h, w] = 0.0 if native else 1.0
    inv_base = np.empty(n_hw)
    # Flat views: one index per point instead of six strided ones per store.
    f_interactivity_bound_tps = interactivity_bound_tps.reshape(-1)
    f_throughput_bound_tps = throughput_bound_tps.reshape(-1)
    f_ttft_bound_s = ttft_bound_s.reshape(-1)
    f_interactivity_tps = interactivity_tps.reshape(-1)
    f_decode_step_s = decode_step_s.reshape(-1)
    f_ttft_s = ttft_s.reshape(-1)
    f_turn_time_s = turn_time_s.reshape(-1)
    f_throughput_tps = throughput_tps.reshape(-1)
    f_output_throughput_tps = output_throughput_tps.reshape(-1)
    f_usd_per_hour = usd_per_hour.reshape(-1)
    f_cost_per_mtok_usd = cost_per_mtok_usd.reshape(-1)
    f_cost_per_mtok_output_usd = cost_per_mtok_output_usd.reshape(-1)
    f_cost_per_turn_usd = cost_per_turn_usd.reshape(-1)
    f_by_type = cost_per_mtok_by_type_usd.reshape(-1)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        total_params = models[m, MC.total_params]
        active = models[m, MC.active_params]
        layers = models[m, MC.layers]
        hidden = models[m, MC.hidden_size]
        query_width = models[m, MC.query_width]
        per_token = models[m, MC.experts_per_token]
        kv_shards = models[m, MC.kv_shards]
        routed = routed_params(models, m)
        moe_layers = layers if routed > 0.0 else 0.0
        share_per_token = per_token / models[m, MC.experts] if routed > 0.0 else 0.0
        fit = parameters[P.interactivity_fit_coefficient] / (active / 1e9) ** parameters[P.interactivity_fit_exponent]
        for h in range(n_hw):
            base = overrides[m, h]
            inv_base[h] = 1.0 / (fit if math.isnan(base) else base)
        overhead = step_overhead + layers * layer_overhead
        for c in range(n_ctx):
            isl_c, osl_c = isl[c], osl[c]
            inside = isl_c + osl_c <= models[m, MC.max_context] or extrapolate
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
            for r in range(n_conc):
                conc = concurrency[r]
                touched = 0.0
                if routed > 0.0:
                    touched = routed * (1.0 - (1.0 - share_per_token) ** conc)
                decode_flops = conc * decode_fpt
                for w in range(n_wb):
                    wbits = weight_bits[w]
                    dense = (total_params - routed) * wbits / 8.0
                    experts = routed * wbits / 8.0
                    experts_touched = touched * wbits / 8.0
                    for k in range(n_kb):
                        kbits = kv_bits[k]
                        kv_total = conc * (held_elements * kbits / 8.0)
                        kv_read = conc * (mean_elements * kbits / 8.0)
                        cache_read_bytes = cache_read_elements * kbits / 8.0
                        base_index = (((m * n_ctx + c) * n_conc + r) * n_wb + w) * n_kb + k
                        for h in range(n_hw):
                            i = base_index * n_hw + h
                            wafer = hardware[h, HW.kind] == WAFER
                            needed = 0
                            if inside:
                                needed = units_needed_for(
                                    wafer, parallelism, dense, experts, kv_total, capacity[h], kv_shards
                                )
                            units = int(replica) if replica > 0.0 else needed
                            if not (inside and needed > 0 and units >= needed):
                                f_interactivity_bound_tps[i] = math.nan
                                f_throughput_bound_tps[i] = math.nan
                                f_ttft_bound_s[i] = math.nan
                                f_interactivity_tps[i] = math.nan
                                f_decode_step_s[i] = math.nan
                                f_ttft_s[i] = math.nan
                                f_turn_time_s[i] = math.nan
                                f_throughput_tps[i] = math.nan
                                f_output_throughput_tps[i] = math.nan
                                f_usd_per_hour[i] = math.nan
                                f_cost_per_mtok_usd[i] = math.nan
                                f_cost_per_mtok_output_usd[i] = math.nan
                                f_cost_per_turn_usd[i] = math.nan
                                for t in range(N_TYPES):
                                    f_by_type[N_TYPES * i + t] = math.nan
                                continue
                            if wafer:
                                streamed = (dense + experts + kv_read) / units
                                weights_streamed = (dense + experts) / units
                            else:
                                streamed = per_unit(
                                    False, parallelism, units, dense, experts_touched, kv_read, kv_shards
                                )
                                weights_streamed = per_unit(
                                    False, parallelism, units, dense, experts_touched, 0.0, kv_shards
                                )
                            t_mem = streamed / unit_bw[h]
                            t_flop = decode_flops / (units * peaks[h, w] * mfu_decode)
                            t_dequant = (
                                emulated[h, w] * weights_streamed * 8.0 / wbits * dequant / hardware[h, HW.peak_bf16]
                            )
                            t_pre = prefill_flops / (units * peaks[h, w] * mfu_prefill)
                            if prefill_tokens > 0.0:
                                t_pre += comm_time(hardware, h, parallelism, units, prefill_tokens, layers, moe_layers,
                                                   hidden, per_token, parameters)  # fmt: skip
                            cache_bw = units * unit_bw[h]
                            if host_tier:
                                cache_bw = units * parameters[P.host_cache_bw_gbs] * 1e9
                            t_cr = cache_read_bytes / cache_bw
                            if wafer:
                                step_bound = max(inv_base[h], t_mem, t_flop)
                                step = step_bound
                                stalls = 1.0
                            else:
                                t_comm = comm_time(hardware, h, parallelism, units, conc, layers, moe_layers, hidden,
                                                   per_token, parameters)  # fmt: skip
                                step_bound = max(t_mem, t_flop) + t_comm
                                step = max(t_mem, t_flop, t_dequant) + t_comm + overhead
                                stalls = 1.0 if calculator else conc
                            if calculator:
                                ingest_bound = isl_c * step_bound / speedup
                                ingest = isl_c * step / speedup
                                time_cache_read = cache_read * step / speedup
                                time_cache_write = cache_write * step / speedup
                                time_input = fresh * step / speedup
                            else:
                                ingest_bound = t_pre + t_cr
                                ingest = ingest_bound
                                share = 0.0 if prefill_tokens == 0.0 else t_pre / prefill_tokens
                                time_cache_read = t_cr
                                time_cache_write = cache_write * share
                                time_input = fresh * share
                            turn_bound = osl_c * step_bound + stalls * ingest_bound
                            turn = osl_c * step + stalls * ingest + ttft_overhead
                            ttft = ttft_overhead + ingest + step
                            per_output = (turn - ttft + step) / osl_c
                            rate = units * unit_rates[h]
                            tokens = conc * (isl_c + osl_c)
                            f_interactivity_bound_tps[i] = 1.0 / step_bound
                            f_throughput_bound_tps[i] = tokens / turn_bound
                            f_ttft_bound_s[i] = ingest_bound
                            f_interactivity_tps[i] = 1.0 / per_output
                            f_decode_step_s[i] = per_output
                            f_ttft_s[i] = ttft
                            f_turn_time_s[i] = turn
                            f_throughput_tps[i] = tokens / turn
                            f_output_throughput_tps[i] = conc * osl_c / turn
                            f_usd_per_hour[i] = rate
                            f_cost_per_mtok_usd[i] = rate / (tokens / turn * 3600.0) * 1e6
                            f_cost_per_mtok_output_usd[i] = rate / (conc * osl_c / turn * 3600.0) * 1e6
                            f_cost_per_turn_usd[i] = rate * turn / 3600.0 / conc
                            for t, (seconds, count) in enumerate(
                                (
                                    (stalls * time_cache_read, cache_read),
                                    (stalls * time_cache_write, cache_write),
                                    (stalls * time_input, fresh),
                                    (osl_c * step + ttft_overhead, osl_c),
                                )
                            ):
                                if count > 0.0:
                                    f_by_type[N_TYPES * i + t] = rate * seconds / 3600.0 / (conc * count) * 1e6
                                else:
                                    f_by_type[N_TYPES * i + t] = math.nan


#: The kernel of each family (every family of the registry has one).
KERNELS: dict[str, BoundKernel] = {k.family: k for k in (memory_kernel, performance_kernel)}
assert set(KERNELS) == set(FAMILIES), "every variable family needs a kernel"
