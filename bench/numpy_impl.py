"""The cost model as numpy broadcasting: the baseline the compiled kernels are measured against.

Same formulas, inputs (by name) and output shapes as :mod:`engine.model.kernels`, written
the way one would without Numba: every axis becomes a broadcast dimension and every
intermediate is materialised at up to full grid size. :func:`evaluate_arrays` has the
array core's signature, so the oracle tests check it against the reference too.
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np

from engine.model.assumptions import CacheTier, PriceMode
from engine.model.core import kernel_inputs
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


def _grid(M, C, R, W, K, H):
    return [np.reshape(a, shape) for a, shape in zip((M, C, R, W, K, H), _shapes())]


def _shapes():
    return [
        (-1, 1, 1, 1, 1, 1),
        (1, -1, 1, 1, 1, 1),
        (1, 1, -1, 1, 1, 1),
        (1, 1, 1, -1, 1, 1),
        (1, 1, 1, 1, -1, 1),
        (1, 1, 1, 1, 1, -1),
    ]


def _units(total, hardware, parameters):
    usable = (
        hardware[:, HW.usable_fraction]
        if parameters[P.usable_memory_fraction] <= 0
        else np.full(len(hardware), parameters[P.usable_memory_fraction])
    )
    memory = hardware[:, HW.memory_bytes]
    units = np.maximum(1, np.ceil(total[..., None] / (memory * usable)))
    return units, memory, usable


def memory_numpy(models, group_offsets, groups, hardware, isl, osl, concurrency, weight_bits, kv_bits, parameters):
    layers, elements, window, ratio = _padded_groups(group_offsets, groups)
    elems = _per_context(layers, elements, window, ratio, isl + osl)
    weight_bytes = models[:, MC.total_params, None] * weight_bits[None, :] / 8.0
    kv_per_request = elems[:, :, None] * kv_bits[None, None, :] / 8.0
    kv = concurrency[None, None, :, None] * kv_per_request[:, :, None, :]
    total = weight_bytes[:, None, None, :, None] + kv[:, :, :, None, :]
    units, memory, usable = _units(total, hardware, parameters)
    domain = hardware[:, HW.scaleup_domain]
    return {
        "weight_bytes": weight_bytes,
        "kv_bytes_per_request": kv_per_request,
        "kv_bytes": kv,
        "total_bytes": total,
        "kv_share": kv[:, :, :, None, :] / total,
        "units_needed": units.astype(np.int64),
        "layers_per_unit": models[:, MC.layers].reshape(-1, 1, 1, 1, 1, 1) / units,
        "capex_usd": units * hardware[:, HW.capex],
        "stranded_fraction": 1.0 - total[..., None] / (units * memory * usable),
        "fits_domain": (domain == 0.0) | (units <= domain),
    }


def performance_numpy(
    models, group_offsets, groups, hardware, overrides, isl, osl, concurrency, weight_bits, kv_bits, parameters, mix
):
    a = parameters
    layers_g, elements, window, ratio = _padded_groups(group_offsets, groups)
    total, A = models[:, MC.total_params], models[:, MC.active_params]
    E, k = models[:, MC.experts], models[:, MC.experts_per_token]
    moe = k < E
    routed = np.where(moe, (total - A) / np.where(moe, 1.0 - k / E, 1.0), 0.0)
    dense = total - routed
    fit = a[P.interactivity_fit_coefficient] / (A / 1e9) ** a[P.interactivity_fit_exponent]
    inputs = mix[MIX.cache_read] + mix[MIX.cache_write] + mix[MIX.input]
    cache_read, cache_write, fresh = (isl * mix[f] / inputs for f in (MIX.cache_read, MIX.cache_write, MIX.input))
    prefill = cache_write + fresh
    mean_context = isl + osl / 2.0
    held = _per_context(layers_g, elements, window, ratio, isl + osl)
    mean_elems = _per_context(layers_g, elements, window, ratio, mean_context)
    cr_elems = _per_context(layers_g, elements, window, ratio, cache_read)
    qw = models[:, MC.query_width, None]
    decode_fpt = 2.0 * A[:, None] + 4.0 * qw * _per_context(layers_g, elements, window, ratio, mean_context, False)
    prefill_fpt = 2.0 * A[:, None] + 4.0 * qw * _per_context(
        layers_g, elements, window, ratio, cache_read + prefill / 2.0, False
    )

    m6 = lambda x: x.reshape(-1, 1, 1, 1, 1, 1)  # noqa: E731
    mc6 = lambda x: x.reshape(x.shape[0], x.shape[1], 1, 1, 1, 1)  # noqa: E731
    c6 = lambda x: x.reshape(1, -1, 1, 1, 1, 1)  # noqa: E731
    R = concurrency.reshape(1, 1, -1, 1, 1, 1)
    wb = weight_bits.reshape(1, 1, 1, -1, 1, 1)
    kb = kv_bits.reshape(1, 1, 1, 1, -1, 1)
    hw = lambda col: hardware[:, col].reshape(1, 1, 1, 1, 1, -1)  # noqa: E731

    touched = np.where(m6(routed) != 0.0, m6(routed) * (1.0 - (1.0 - m6(k) / m6(E)) ** R), 0.0)
    weights = m6(total) * wb / 8.0
    weights_touched = (m6(dense) + touched) * wb / 8.0
    total = weights + R * (mc6(held) * kb / 8.0)
    decode_kv = R * (mc6(mean_elems) * kb / 8.0)
    cache_read_bytes = mc6(cr_elems) * kb / 8.0
    decode_flops = R * mc6(decode_fpt)
    units, _, _ = _units(total[..., 0], hardware, a)
    peak = np.where(wb <= 4.5, hw(HW.peak_fp4), np.where(wb <= 8.5, hw(HW.peak_fp8), hw(HW.peak_bf16)))
    bandwidth = units * hw(HW.bandwidth) * a[P.memory_bw_efficiency]
    wafer = hw(HW.kind) == HardwareCode.wafer
    speedup = a[P.cache_read_speedup]

    base = np.where(np.isnan(overrides), fit[:, None], overrides).reshape(-1, 1, 1, 1, 1, overrides.shape[1])
    t_mem = (weights + decode_kv) / bandwidth
    t_flop = decode_flops / (units * peak * a[P.mfu_decode])
    w_inter = 1.0 / np.maximum(np.maximum(1.0 / base, t_mem), t_flop)
    ingest = speedup * w_inter

    def comm(tokens):
        domain, link = hw(HW.scaleup_domain), hw(HW.scaleup_link_bw)
        link = np.where((link <= 0.0) | ((domain > 0.0) & (units > domain)), a[P.scaleout_bw_gbs] * 1e9, link)
        per = 2.0 * (units - 1) / units * tokens * m6(models[:, MC.hidden_size]) * 2.0 / link
        return np.where(units <= 1, 0.0, 2.0 * m6(models[:, MC.layers]) * (per + a[P.allreduce_latency_s]))

    t_dec = np.maximum((weights_touched + decode_kv) / bandwidth, t_flop)
    step = t_dec + a[P.step_overhead_s] + comm(R)
    t_pre = c6(prefill) * mc6(prefill_fpt) / (units * peak * a[P.mfu_prefill])
    t_pre = t_pre + np.where(c6(prefill) > 0.0, comm(c6(prefill)), 0.0)
    cache_bw = units * a[P.host_cache_bw_gbs] * 1e9 if int(a[P.cache_tier]) == CacheTier.host else bandwidth
    t_cr = cache_read_bytes / cache_bw
    share = np.where(prefill == 0.0, 0.0, 1.0 / np.where(prefill == 0.0, 1.0, prefill))

    isl6, osl6 = c6(isl), c6(osl)
    interactivity = np.where(wafer, w_inter, 1.0 / step)
    turn = np.where(wafer, osl6 / w_inter + isl6 / ingest, osl6 * step + R * (t_pre + t_cr))
    ttft = np.where(wafer, isl6 / ingest, t_pre + t_cr)
    step_out = np.where(wafer, 1.0 / w_inter, step)
    times = [
        np.where(wafer, c6(cache_read) / ingest, R * t_cr),
        np.where(wafer, c6(cache_write) / ingest, R * t_pre * c6(cache_write) * c6(share)),
        np.where(wafer, c6(fresh) / ingest, R * t_pre * c6(fresh) * c6(share)),
        np.where(wafer, osl6 / w_inter, osl6 * step),
    ]
    throughput = R * (isl6 + osl6) / turn
    output_throughput = R * osl6 / turn
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
    rate = units * np.where(np.isnan(rent), tco, rent)
    by_type = []
    for time_t, tokens in zip(times, (cache_read, cache_write, fresh, osl)):
        with np.errstate(divide="ignore", invalid="ignore"):
            value = rate * time_t / 3600.0 / (R * c6(tokens)) * 1e6
        by_type.append(np.where(c6(tokens) > 0.0, value, np.nan))
    shape = throughput.shape
    return {
        "interactivity_tps": np.broadcast_to(interactivity, shape),
        "decode_step_s": np.broadcast_to(step_out, shape),
        "ttft_s": np.broadcast_to(ttft, shape),
        "turn_time_s": turn,
        "throughput_tps": throughput,
        "output_throughput_tps": output_throughput,
        "usd_per_hour": np.broadcast_to(rate, shape),
        "cost_per_mtok_usd": rate / (throughput * 3600.0) * 1e6,
        "cost_per_mtok_output_usd": rate / (output_throughput * 3600.0) * 1e6,
        "cost_per_turn_usd": rate * turn / 3600.0 / R,
        "cost_per_mtok_by_type_usd": np.stack([np.broadcast_to(b, shape) for b in by_type], axis=-1),
    }


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
