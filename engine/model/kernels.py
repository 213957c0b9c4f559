"""Numba kernels: every formula of the cost model over the Cartesian product of 1-D axes.

Two kernel families, each filling preallocated outputs that span only the axes they
depend on (the cube contract):

- :func:`memory_kernel`: weight and KV bytes, footprint, units needed, capex, layers per
  unit, stranded memory, scale-up fit;
- :func:`performance_kernel`: interactivity, decode step, TTFT, turn time, throughput,
  hourly cost and cost per Mtok (blended, output-only, per turn, by token type).

The performance formulas are composed once, in :func:`performance_points`, which hands
every point's figures to a sink: :func:`performance_kernel` stores them; the search kernel
(:func:`search_kernel`, for ``reduce:`` sweeps) folds them into the best configuration per
output cell and stores nothing. The draw kernels (:data:`DRAW_KERNELS`) run a family's
kernel once per Monte Carlo draw of uncertain inputs, inside compiled code.

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

import hashlib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numba as nb
import numpy as np

from engine.jit import helper, kernel, layout_cache
from engine.model import formulas as F
from engine.model.assumptions import (
    CacheTier,
    ContextLimit,
    PrefillModel,
    PriceMode,
    Serving,
    Speculative,
    WaferBatching,
)
from engine.model.records import HardwareCode
from engine.model.tables import GC, HW, LAYOUT_FINGERPRINT, MC, MIX, SPEC, P
from engine.model.variables import BY_NAME, FAMILIES, TOKEN_TYPES, Variable, family

WAFER = float(HardwareCode.wafer)
ON_DEMAND = int(PriceMode.on_demand)
SPOT = int(PriceMode.spot)
HOST_TIER = int(CacheTier.host)
CALCULATOR = int(PrefillModel.calculator)
CATALOG_SPECULATION = int(Speculative.catalog)
NO_LIMIT = int(ContextLimit["none"])
SINGLE_STREAM = int(WaferBatching.single_stream)
DISAGGREGATED = int(Serving.disaggregated)
PHYSICS_BATCHING = int(WaferBatching.physics)
N_TYPES = len(TOKEN_TYPES)

#: Numba keys its cache on the kernel's own file; the formulas it inlines live in another,
#: so their source is part of the cache folder's name (a changed formula recompiles).
FORMULAS_FINGERPRINT = hashlib.sha256(inspect.getsource(F).encode()).hexdigest()[:12]

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
    "speculation": nb.float64[:, :, ::1],  # catalog speculative settings (M, H, len(SPEC)), NaN = none
    "prefill_unit": f8_2d,  # serving: disaggregated: the prefill pool's unit (1, len(HW)); no row = the decode's own
    "isl": f8_1d,  # paired with osl: one context per position
    "osl": f8_1d,
    "concurrency": f8_1d,
    "weight_bits": f8_1d,
    "kv_bits": f8_1d,
    "parameters": f8_1d,  # numeric assumptions then choice codes (P)
    "mix": f8_1d,  # workload fractions (MIX)
    # The draw kernels: the same inputs, with a leading draw dim on what a draw moves.
    "hardware_draws": nb.float64[:, :, ::1],  # (D, H, len(HW))
    "prefill_unit_draws": nb.float64[:, :, ::1],  # (D, 0 or 1, len(HW)): the pool's unit as drawn, if swept
    "parameter_draws": f8_2d,  # (D, P)
}


def output_type(var: Variable, draws: bool = False):
    """Numba array type of a variable's kernel output: C-contiguous, rank from its dims (one
    more, leading, for the draw kernels)."""
    return nb.types.Array(nb.from_dtype(np.dtype(var.dtype)), var.rank + int(draws), "C")


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


def bound(family_name: str, draws: bool = False):
    """Compile a kernel whose trailing parameters are exactly the family's variables, by name
    (with ``draws``, each with a leading draw dim)."""

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
        signature = nb.void(*(KERNEL_INPUTS[n] for n in inputs), *(output_type(BY_NAME[n], draws) for n in outputs))
        with layout_cache(f"{LAYOUT_FINGERPRINT}-{FORMULAS_FINGERPRINT}"):
            dispatcher = kernel(signature)(py_func)
        return BoundKernel(py_func.__name__, family_name, dispatcher, tuple(inputs), tuple(outputs))

    return decorate


# --------------------------------------------------------------------------- table access
# Formulas live in engine.model.formulas; these helpers only read the tables for them.
@helper
def kv_elements(groups, start, stop, context):
    """KV elements one request holds: the formula summed over one model's groups."""
    total = 0.0
    for g in range(start, stop):
        total += F.kv_group_elements(
            groups[g, GC.layers], groups[g, GC.elements], groups[g, GC.window], groups[g, GC.ratio], context
        )
    return total


@helper
def attended_positions(groups, start, stop, context):
    """Positions one token attends over: the formula summed over one model's groups."""
    total = 0.0
    for g in range(start, stop):
        total += F.group_attended_positions(groups[g, GC.layers], groups[g, GC.window], groups[g, GC.ratio], context)
    return total


@helper
def usable_fraction(hardware, h, parameters):
    override = parameters[P.usable_memory_fraction]
    return override if override > 0.0 else hardware[h, HW.usable_fraction]


@helper
def unit_rate(hardware, h, parameters):
    """Hourly rate of one unit: the scenario's rental rate, else TCO (formulas.hourly_rate)."""
    mode = int(parameters[P.price])
    rent = math.nan
    if mode == ON_DEMAND:
        rent = hardware[h, HW.rent_on_demand]
    elif mode == SPOT:
        rent = hardware[h, HW.rent_spot]
    return F.hourly_rate(
        rent, hardware[h, HW.capex], parameters[P.amortisation_years], hardware[h, HW.power_kw], parameters[P.pue],
        parameters[P.usd_per_kwh],
    )  # fmt: skip


@helper
def routed_params(models, m):
    return F.routed_expert_params(
        models[m, MC.total_params], models[m, MC.active_params], models[m, MC.experts], models[m, MC.experts_per_token]
    )


@helper
def speculation_in_force(table, m, h, parameters):
    """(drafted tokens, acceptance, draft ratio) in force for model m on hardware h."""
    return F.speculation(
        parameters[P.spec_draft_tokens], parameters[P.spec_acceptance], parameters[P.spec_draft_ratio],
        int(parameters[P.speculative]) == CATALOG_SPECULATION, table[m, h, SPEC.draft_tokens],
        table[m, h, SPEC.acceptance], table[m, h, SPEC.draft_ratio],
    )  # fmt: skip


# --------------------------------------------------------------------------- kernels
@bound("memory")
def memory_kernel(
    models, group_offsets, groups, hardware, speculation, isl, osl, concurrency, weight_bits, kv_bits, parameters,
    weight_bytes, within_context, kv_bytes_per_request, kv_bytes, total_bytes, kv_share,
    units_needed, units_per_replica, replica_fits, admitted_requests, layers_per_unit, capex_usd, stranded_fraction,
    fits_domain,
):  # fmt: skip
    """Memory footprint and the replica over model x context x R x wbits x kbits x hardware."""
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    parallelism = int(parameters[P.parallelism])
    replica = parameters[P.replica_units]
    extrapolate = int(parameters[P.context_limit]) == NO_LIMIT
    capacity = np.empty(n_hw)
    draft = np.empty(n_hw)  # the speculative draft's parameters, per hardware
    for h in range(n_hw):
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        layers = models[m, MC.layers]
        kv_shards = models[m, MC.kv_shards]
        experts_params = routed_params(models, m)
        for h in range(n_hw):
            drafted, _, ratio = speculation_in_force(speculation, m, h, parameters)
            draft[h] = F.draft_params(models[m, MC.active_params], drafted, ratio)
        for w in range(n_wb):
            weight_bytes[m, w] = F.weight_bytes(models[m, MC.total_params], weight_bits[w])
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
                    dense_model = models[m, MC.total_params] - experts_params
                    experts = F.weight_bytes(experts_params, weight_bits[w])
                    for k in range(n_kb):
                        kv_total = kv_bytes[m, c, r, k]
                        total = weight_bytes[m, w] + kv_total
                        total_bytes[m, c, r, w, k] = total
                        kv_share[m, c, r, w, k] = kv_total / total
                        for h in range(n_hw):
                            wafer = hardware[h, HW.kind] == WAFER
                            dense = F.weight_bytes(dense_model + draft[h], weight_bits[w])
                            needed = 0
                            if inside:
                                needed = F.units_needed(
                                    wafer, parallelism, dense, experts, kv_total, capacity[h], kv_shards
                                )
                            units = int(replica) if replica > 0.0 else needed
                            admitted = F.requests_held(
                                inside, wafer, parallelism, units, needed, dense, experts,
                                kv_bytes_per_request[m, c, k], kv_shards, capacity[h], concurrency[r],
                            )  # fmt: skip
                            fits = admitted >= 1.0
                            units_needed[m, c, r, w, k, h] = needed
                            replica_fits[m, c, r, w, k, h] = fits
                            admitted_requests[m, c, r, w, k, h] = int(admitted)
                            if fits:
                                held = F.bytes_per_unit(
                                    wafer, parallelism, units, dense, experts, admitted * kv_bytes_per_request[m, c, k],
                                    kv_shards,
                                )  # fmt: skip
                                domain = hardware[h, HW.scaleup_domain]
                                units_per_replica[m, c, r, w, k, h] = units
                                layers_per_unit[m, c, r, w, k, h] = layers / units
                                capex_usd[m, c, r, w, k, h] = units * hardware[h, HW.capex]
                                stranded_fraction[m, c, r, w, k, h] = 1.0 - held / capacity[h]
                                fits_domain[m, c, r, w, k, h] = F.fits_domain(units, domain)
                            else:
                                units_per_replica[m, c, r, w, k, h] = 0
                                layers_per_unit[m, c, r, w, k, h] = math.nan
                                capex_usd[m, c, r, w, k, h] = math.nan
                                stranded_fraction[m, c, r, w, k, h] = math.nan
                                fits_domain[m, c, r, w, k, h] = False


# --------------------------------------------------------------------------- sinks
#: One point's figures as a sink receives them (:func:`put_figures`), in order: the replica
#: (as the memory family stores it), the performance family's single-valued variables, then
#: the four by-type costs (:data:`BY_TYPE` on).
SINK_FIGURES = (
    "interactivity_bound_tps", "throughput_bound_tps", "ttft_bound_s", "interactivity_tps", "decode_step_s", "ttft_s",
    "turn_time_s", "throughput_tps", "output_throughput_tps", "bound_by", "usd_per_hour", "cost_per_mtok_usd",
    "cost_per_mtok_output_usd", "cost_per_turn_usd",
)  # fmt: skip
#: What the search kernel can fold, by name: index = position in a point's figure vector.
SEARCH_FIGURES = ("units_per_replica", "admitted_requests", "replica_fits", *SINK_FIGURES)
#: A figure's slot in the vector, by name (``fig[FIG.ttft_s]``); the by-type costs from BY_TYPE on.
FIG = IntEnum("FIG", {name: i for i, name in enumerate(SEARCH_FIGURES)})
BY_TYPE = len(SEARCH_FIGURES)
N_FIGURES = BY_TYPE + N_TYPES
#: The roofline's figures among them (a search that reads none skips computing them).
FIRST_BOUND, LAST_BOUND = SEARCH_FIGURES.index("interactivity_bound_tps"), SEARCH_FIGURES.index("ttft_bound_s")
#: Comparison codes of the search kernel, in the order of :data:`engine.conditions.COMPARISONS`.
GE, GT, LE, LT, EQ = range(5)


@helper
def put_figures(
    fig, fits, units, admitted, bound_i, bound_x, bound_t, interactivity, per_output, ttft, turn, throughput,
    output_throughput, code, rate, cost, cost_output, cost_turn, t0, t1, t2, t3,
):  # fmt: skip
    """One point's figures into the vector a sink reads (:data:`SEARCH_FIGURES`, then by type)."""
    fig[FIG.units_per_replica] = float(units) if fits else 0.0
    fig[FIG.admitted_requests] = float(int(admitted))
    fig[FIG.replica_fits] = 1.0 if fits else 0.0
    fig[FIG.interactivity_bound_tps] = bound_i
    fig[FIG.throughput_bound_tps] = bound_x
    fig[FIG.ttft_bound_s] = bound_t
    fig[FIG.interactivity_tps] = interactivity
    fig[FIG.decode_step_s] = per_output
    fig[FIG.ttft_s] = ttft
    fig[FIG.turn_time_s] = turn
    fig[FIG.throughput_tps] = throughput
    fig[FIG.output_throughput_tps] = output_throughput
    fig[FIG.bound_by] = float(code)
    fig[FIG.usd_per_hour] = rate
    fig[FIG.cost_per_mtok_usd] = cost
    fig[FIG.cost_per_mtok_output_usd] = cost_output
    fig[FIG.cost_per_turn_usd] = cost_turn
    fig[BY_TYPE] = t0
    fig[BY_TYPE + 1] = t1
    fig[BY_TYPE + 2] = t2
    fig[BY_TYPE + 3] = t3


@helper
def no_figures(fig, fits, units, admitted):
    """The figures of a point not served: a replica that holds no request (outside the context or
    too small; ``fits`` False), or a disaggregated one whose prefill pool cannot hold a prompt: NaN."""
    nan = math.nan
    put_figures(fig, fits, units, admitted, nan, nan, nan, nan, nan, nan, nan, nan, nan, -1, nan, nan, nan, nan, nan,
                nan, nan, nan)  # fmt: skip


@helper
def store_figures(
    f_interactivity_bound_tps, f_throughput_bound_tps, f_ttft_bound_s, f_interactivity_tps, f_decode_step_s, f_ttft_s,
    f_turn_time_s, f_throughput_tps, f_output_throughput_tps, f_bound_by, f_usd_per_hour, f_cost_per_mtok_usd,
    f_cost_per_mtok_output_usd, f_cost_per_turn_usd, f_by_type, i, fig,
):  # fmt: skip
    """The full cube's sink: every figure into its flat output array."""
    f_interactivity_bound_tps[i] = fig[FIG.interactivity_bound_tps]
    f_throughput_bound_tps[i] = fig[FIG.throughput_bound_tps]
    f_ttft_bound_s[i] = fig[FIG.ttft_bound_s]
    f_interactivity_tps[i] = fig[FIG.interactivity_tps]
    f_decode_step_s[i] = fig[FIG.decode_step_s]
    f_ttft_s[i] = fig[FIG.ttft_s]
    f_turn_time_s[i] = fig[FIG.turn_time_s]
    f_throughput_tps[i] = fig[FIG.throughput_tps]
    f_output_throughput_tps[i] = fig[FIG.output_throughput_tps]
    f_bound_by[i] = int(fig[FIG.bound_by])
    f_usd_per_hour[i] = fig[FIG.usd_per_hour]
    f_cost_per_mtok_usd[i] = fig[FIG.cost_per_mtok_usd]
    f_cost_per_mtok_output_usd[i] = fig[FIG.cost_per_mtok_output_usd]
    f_cost_per_turn_usd[i] = fig[FIG.cost_per_turn_usd]
    for t in range(N_TYPES):
        f_by_type[N_TYPES * i + t] = fig[BY_TYPE + t]


@helper
def holds_scalar(value, op, bound):
    """``value op bound`` for a comparison code (:data:`GE` ...)."""
    if op == GE:
        return value >= bound
    if op == GT:
        return value > bound
    if op == LE:
        return value <= bound
    if op == LT:
        return value < bound
    return value == bound


# --------------------------------------------------------------------------- pruning a search
#: What a search minimises, as the kernel's bound on it knows it (:func:`cost_scale`): the three
#: costs are ``rate x turn / R`` times a factor of the context alone; anything else is not pruned.
NO_PRUNE, COST_PER_TURN, COST_PER_MTOK, COST_PER_MTOK_OUTPUT = range(4)
#: Relative slack of every pruning test: a bound is computed along another path than the figure
#: it bounds, so each may round differently (by about 1e-15 per operation).
SLACK = 1e-9
#: A search's gate (engine.sweep.reduce.pruning_gate), by slot: what it minimises (NO_PRUNE...),
#: the least interactivity, longest time per output token and TTFT a point must meet, 1 if a
#: frontier bins by interactivity; then the count of points skipped, written by the kernel.
GATE = IntEnum("GATE", {name: i for i, name in enumerate(
    ("kind", "least", "longest_step", "longest_ttft", "binned", "skipped"))})  # fmt: skip


@helper
def step_latency(wafer, physics, units, overhead, anchor, layers, token_latency, layer_latency, hop_latency):
    """The fixed latency of one decode step: a GPU step's overheads; a wafer's published (or
    fitted) single-stream step, or under physics batching its pipeline's latency for ``units``."""
    if not wafer:
        return overhead
    if physics:
        return F.wafer_pipeline_latency(layers, units, token_latency, layer_latency, hop_latency)
    return anchor


@helper
def cost_scale(gate, isl, osl):
    """The factor that turns a lower bound of ``rate x turn / R`` ($/hr x s per request) into
    one of the minimised cost; NaN (never prunes) for the full cube or another minimised figure."""
    kind = int(gate[GATE.kind])
    if kind == COST_PER_TURN:
        return 1.0 / 3600.0
    if kind == COST_PER_MTOK:
        return 1e6 / 3600.0 / (isl + osl)
    if kind == COST_PER_MTOK_OUTPUT:
        return 1e6 / 3600.0 / osl
    return math.nan


@helper
def cannot_win(lower, incumbent):
    """Whether a point whose minimised figure is at least ``lower`` loses to ``incumbent``
    (what it must beat to matter: see performance_points), strictly (a tie could win on rank)."""
    return lower > 0.0 and lower * (1.0 - SLACK) > incumbent


@helper
def too_slow(least, longest_step, longest_ttft, step, ttft):
    """Whether a point whose time per output token is at least ``step`` and whose time to first
    token is at least ``ttft`` fails a condition of the search (or the frontier's first level):
    interactivity (1 / time per output token) at least ``least``, time per output token at most
    ``longest_step``, time to first token at most ``longest_ttft``."""
    slow = step * (1.0 - SLACK)
    return 1.0 / slow < least or slow > longest_step or ttft * (1.0 - SLACK) > longest_ttft


def _performance_points(
    models, group_offsets, groups, hardware, overrides, speculation, prefill_unit, isl, osl, concurrency, weight_bits,
    kv_bits, parameters, mix, fold, stored, folded, bounds,
):  # fmt: skip
    """Bounds, expected serving figures and costs of every point of model x context x R x wbits x
    kbits x hardware, each put into one figure vector (:func:`put_figures`) and handed to a sink:
    the one composition of the performance formulas.

    :func:`performance_kernel` stores every figure (``fold`` False: :func:`store_figures` into
    ``stored``); :func:`search_kernel` folds them into the best configuration per output cell
    and stores nothing (``fold`` True: into ``folded``). Composes the formulas of
    :mod:`engine.model.formulas` as reference.compose_point does; everything that does not
    depend on the inner loops is hoisted out of them. One compiled function (not inlined into
    its callers: measured, inlining it made the kernel a third slower), compiled apart for each
    value of ``fold`` (a literal), so neither sink costs the other anything.

    **A search skips what cannot win** (exact: the reduction is the same, ties included). Its
    concurrencies run from the highest down, so each cell meets its cheap points first. A point
    is left once a bound shows it would be folded and lose:

    - before its replica is sized, when its cost per request, ``rate x turn / R``, is already
      above the dearest best of its output cell at the resources' floor without the replica:
      ``unit rate x (TTFT overhead / R + max(FLOP / (peak x MFU), bytes / bandwidth))`` per
      request, the FLOP and bytes of one turn of it (the weights shared by at most R, its own
      KV); a turn is never shorter (``closed_loop``: the resources' floor, the off-accelerator
      overhead on top; every layout streams at least the weights it holds);
    - a fixed replica (``replica_units`` > 0): when its weights alone overflow its units (not one
      request is held), or when its bill for one turn of floor steps over R, ``units x rate x
      (TTFT overhead + OSL x step floor) / R``, already loses (the step floor: the weights one
      request touches per unit at the bandwidth, plus a GPU step's fixed overheads);
    - once sized, at the replica's own floor ``rate x (overhead + max(compute, memory, schedule))
      / n`` (the schedule: OSL floor steps and the prefills that stall them, turn_times);
    - when a condition cannot hold: the time per output token is at least the largest term of
      its step (memory, compute, fixed overheads) plus, on a GPU, the others' prefills that stall
      it; the time to first token at least the overhead, the prefills ahead, its own and that
      step (``turn_times``: a stretched cycle never shortens).

    **Cuts over R**: where the search reduces over concurrency, every cost bound above falls as R
    grows (per request: the weights and overheads are shared by more), so a point that loses at
    R loses at every lower R of the same bits and hardware (the incumbent only falls); once
    sized, a fixed replica's floor falls as it holds more requests, so one that loses holding
    ``n`` loses at every R <= n. The loop over R runs from the highest down and skips what a cut
    covers (``cut``): most of a search's points cost one comparison.

    What a point must beat: the best of its output cell, or for a frontier the best of the level
    bins from the highest it can reach up (its speed's bound; the reduced cube's level ``L`` is
    the best of the bins ``>= L``, reduce.suffix_best, so a point dearer than a configuration at
    least as fast changes no level; it may leave its own bin's partial dearer than a full fold
    would, never the answer). Each test leaves a relative slack (:data:`SLACK`) for the
    different rounding of the bound.
    """
    n_ctx, n_conc, n_wb, n_kb, n_hw = isl.size, concurrency.size, weight_bits.size, kv_bits.size, hardware.shape[0]
    # The sinks' arrays, taken out of their tuples once: taking an array out of a tuple costs a
    # reference count (measured: per point, that cost more than the formulas).
    (s_interactivity_bound_tps, s_throughput_bound_tps, s_ttft_bound_s, s_interactivity_tps, s_decode_step_s, s_ttft_s,
     s_turn_time_s, s_throughput_tps, s_output_throughput_tps, s_bound_by, s_usd_per_hour, s_cost_per_mtok_usd,
     s_cost_per_mtok_output_usd, s_cost_per_turn_usd, s_by_type) = stored  # fmt: skip
    select, ops, limits, carried, levels, out, rank, rank_offset, best_cost, best_rank, best_values, gate = folded
    fig = np.empty(N_FIGURES)  # one point's figures (SEARCH_FIGURES, then by type), handed to the sink
    n_levels = levels.size
    least, longest_step, longest_ttft = gate[GATE.least], gate[GATE.longest_step], gate[GATE.longest_ttft]
    binned_by_interactivity = n_levels > 1 and gate[GATE.binned] > 0.0  # a frontier's level bins, by interactivity
    eta = parameters[P.memory_bw_efficiency]
    mfu_decode = parameters[P.mfu_decode]
    mfu_prefill = parameters[P.mfu_prefill]
    speedup = parameters[P.cache_read_speedup]
    host_tier = int(parameters[P.cache_tier]) == HOST_TIER
    calculator = int(parameters[P.prefill_model]) == CALCULATOR
    extrapolate = int(parameters[P.context_limit]) == NO_LIMIT
    batching = int(parameters[P.wafer_batching])
    parallelism = int(parameters[P.parallelism])
    replica = parameters[P.replica_units]
    step_overhead = parameters[P.step_overhead_s]
    physics = batching == PHYSICS_BATCHING
    token_latency = parameters[P.wafer_token_latency_s]
    layer_latency = parameters[P.wafer_layer_latency_s]
    hop_latency = parameters[P.wafer_hop_latency_s]
    layer_overhead = parameters[P.layer_overhead_s]
    dequant = parameters[P.dequant_flops_per_weight]
    ttft_overhead = parameters[P.ttft_overhead_s]
    burstiness = parameters[P.prefill_burstiness]
    held = parameters[P.ttft_scheduler_factor]
    chunk_budget = parameters[P.prefill_chunk_tokens]
    latency_s = parameters[P.allreduce_latency_s]
    scaleout = parameters[P.scaleout_bw_gbs] * 1e9
    inputs = mix[MIX.cache_read] + mix[MIX.cache_write] + mix[MIX.input]
    # serving: disaggregated: the prefill pool's unit per decode hardware (its own row for `same`)
    disaggregated = int(parameters[P.serving]) == DISAGGREGATED
    prefill_units = parameters[P.prefill_units]
    prefill_replicas = parameters[P.prefill_replicas]
    pre_hw = hardware.copy()
    own_pool = prefill_unit.shape[0] == 0  # `same`: the pool may share the decode replica's scale-up domain
    if not own_pool:
        for h in range(n_hw):
            pre_hw[h, :] = prefill_unit[0, :]
    pre_rates = np.empty(n_hw)
    pre_capacity = np.empty(n_hw)
    pre_bw = np.empty(n_hw)
    pre_peaks = np.empty((n_hw, n_wb))
    unit_rates = np.empty(n_hw)
    capacity = np.empty(n_hw)
    unit_bw = np.empty(n_hw)
    peak_bw = np.empty(n_hw)  # the roofline's: the full bandwidth
    peaks = np.empty((n_hw, n_wb))
    emulated = np.empty((n_hw, n_wb))  # 1 where the weights are converted as they stream
    for h in range(n_hw):
        unit_rates[h] = unit_rate(hardware, h, parameters)
        capacity[h] = hardware[h, HW.memory_bytes] * usable_fraction(hardware, h, parameters)
        peak_bw[h] = hardware[h, HW.bandwidth]
        unit_bw[h] = peak_bw[h] * eta
        pre_rates[h] = unit_rate(pre_hw, h, parameters)
        pre_capacity[h] = pre_hw[h, HW.memory_bytes] * usable_fraction(pre_hw, h, parameters)
        pre_bw[h] = pre_hw[h, HW.bandwidth]
        for w in range(n_wb):
            peaks[h, w] = F.compute_peak(
                weight_bits[w], hardware[h, HW.peak_fp4], hardware[h, HW.peak_fp8], hardware[h, HW.peak_bf16]
            )
            pre_peaks[h, w] = F.compute_peak(
                weight_bits[w], pre_hw[h, HW.peak_fp4], pre_hw[h, HW.peak_fp8], pre_hw[h, HW.peak_bf16]
            )
            emulated[h, w] = F.emulated_format(
                weight_bits[w], hardware[h, HW.native_fp4] > 0.0, hardware[h, HW.native_fp8] > 0.0
            )
    anchor = np.empty(n_hw)  # published (or fitted) single-stream step of the wafer modes that use it
    drafted_h = np.empty(n_hw)  # the speculative setting in force, per hardware
    ratio_h = np.empty(n_hw)
    per_step_h = np.empty(n_hw)
    draft_h = np.empty(n_hw)
    reach_h = np.empty(n_hw, np.int64)  # a search's highest level bin a point can reach, per hardware (-1: none)
    # A search's bound on a point's cost (see the docstring), in the minimised cost's units: per
    # request, a turn's FLOP at the profile's MFU; its decode's weight and KV passes; its prefill's.
    floor_compute = np.empty((n_hw, n_wb))
    floor_passes = np.empty(n_hw)
    floor_chunks = np.empty(n_hw)
    # A fixed replica's bounds (see the docstring): whether its units hold the weights at all; its
    # per-step floor; per request at concurrency R, its bill for a turn of such steps over R.
    fixed_units = fold and replica > 0.0
    no_room = np.zeros((n_hw, n_wb), np.bool_)
    step_lb = np.zeros((n_hw, n_wb))
    fixed_floor = np.zeros((n_hw, n_wb))
    dense_hw = np.empty((n_hw, n_wb))  # per model: the weights every unit of a layout streams (its draft's too)
    # Per bits and hardware in one (model, context): the concurrencies at or below which a point
    # is known to lose (every bound falls as R grows), so the descending R loop skips them.
    cut = np.zeros((n_wb, n_kb, n_hw))
    # A fixed replica's fewest requests held known to be too slow: its floors rise with what it holds.
    slow = np.full((n_wb, n_kb, n_hw), math.inf)
    # ... which holds only where the concurrencies share their output cell (the search reduces over R).
    shared = fold
    for r in range(n_conc):
        shared = shared and out[2, r] == 0
    for m in range(models.shape[0]):
        start, stop = group_offsets[m], group_offsets[m + 1]
        total_params = models[m, MC.total_params]
        active = models[m, MC.active_params]
        layers = models[m, MC.layers]
        hidden = models[m, MC.hidden_size]
        query_width = models[m, MC.query_width]
        decode_width = models[m, MC.decode_query_width]
        per_token = models[m, MC.experts_per_token]
        n_experts = models[m, MC.experts]
        kv_shards = models[m, MC.kv_shards]
        routed = routed_params(models, m)
        moe_layers = layers if routed > 0.0 else 0.0
        fit = F.fit_interactivity(
            active, parameters[P.interactivity_fit_coefficient], parameters[P.interactivity_fit_exponent]
        )
        for h in range(n_hw):
            base = overrides[m, h]
            anchor[h] = 1.0 / (fit if math.isnan(base) else base)
            drafted_h[h], acceptance, ratio_h[h] = speculation_in_force(speculation, m, h, parameters)
            per_step_h[h] = F.speculative_tokens_per_step(acceptance, drafted_h[h])
            draft_h[h] = F.draft_params(active, drafted_h[h], ratio_h[h])
        overhead = step_overhead + layers * layer_overhead
        if fold:
            # No step is shorter than its fixed part: the overheads of a GPU step, the published
            # step of a wafer that uses one (each target step and each drafted one, per token emitted).
            for h in range(n_hw):
                fixed = overhead
                if hardware[h, HW.kind] == WAFER:
                    fixed = 0.0 if physics else anchor[h]
                step_min = fixed * (1.0 + drafted_h[h] * ratio_h[h]) / per_step_h[h]
                reach_h[h] = n_levels - 1
                if too_slow(least, longest_step, longest_ttft, step_min, ttft_overhead + step_min):
                    reach_h[h] = -1
                elif binned_by_interactivity and step_min > 0.0:
                    reach_h[h] = np.searchsorted(levels, 1.0 / (step_min * (1.0 - SLACK)), side="right") - 1
        for h in range(n_hw):
            for w in range(n_wb):
                dense_hw[h, w] = F.weight_bytes(total_params - routed + draft_h[h], weight_bits[w])
        if fixed_units:
            units = int(replica)
            for h in range(n_hw):
                wafer = hardware[h, HW.kind] == WAFER
                fixed = 0.0 if wafer else overhead
                latency = step_latency(
                    wafer, physics, units, overhead, anchor[h], layers, token_latency, layer_latency, hop_latency
                )
                for w in range(n_wb):
                    dense = dense_hw[h, w]
                    experts = F.weight_bytes(routed, weight_bits[w])
                    # The weights alone overflow the units (requests_held: not one request fits);
                    # by a margin, so the rounding of units_needed cannot say otherwise.
                    base = F.bytes_per_unit(wafer, parallelism, units, dense, experts, 0.0, kv_shards)
                    no_room[h, w] = base > capacity[h] * (1.0 + SLACK)
                    # A step streams at least the weights one request touches (a GPU step adds its overheads).
                    spread = experts
                    if not wafer:
                        spread = F.weight_bytes(
                            routed * F.touched_expert_fraction(n_experts, per_token, 1.0), weight_bits[w]
                        )
                    t_mem = F.bytes_per_unit(wafer, parallelism, units, dense, spread, 0.0, kv_shards) / unit_bw[h]
                    extra = 1.0 + drafted_h[h] * ratio_h[h]
                    step_lb[h, w] = (max(latency - fixed, t_mem) + fixed) * extra / per_step_h[h]
        for c in range(n_ctx):
            isl_c, osl_c = isl[c], osl[c]
            inside = isl_c + osl_c <= models[m, MC.max_context] or extrapolate
            if fold and not inside:  # past the model's context: not one request is held (requests_held)
                gate[GATE.skipped] += n_conc * n_wb * n_kb * n_hw
                continue
            held_elements = kv_elements(groups, start, stop, isl_c + osl_c)
            mean_context = isl_c + osl_c / 2.0
            mean_elements = kv_elements(groups, start, stop, mean_context)
            decode_fpt = F.flops_per_token(active, decode_width, attended_positions(groups, start, stop, mean_context))
            cache_read = isl_c * mix[MIX.cache_read] / inputs
            cache_write = isl_c * mix[MIX.cache_write] / inputs
            fresh = isl_c * mix[MIX.input] / inputs
            prefill_tokens = cache_write + fresh
            prefill_context = cache_read + prefill_tokens / 2.0
            prefill_flops = prefill_tokens * F.flops_per_token(
                active, query_width, attended_positions(groups, start, stop, prefill_context)
            )
            cache_read_elements = kv_elements(groups, start, stop, cache_read)
            # The prompt's own passes (chunked prefill): each streams the weights its tokens touch.
            chunks = F.prefill_chunks(prefill_tokens, chunk_budget)
            prompt_elements = kv_elements(groups, start, stop, isl_c)
            written_elements = prompt_elements - cache_read_elements
            pass_fraction = 0.0
            if chunks > 0.0:
                pass_fraction = F.touched_expert_fraction(n_experts, per_token, prefill_tokens / chunks)
            # A search skips points that cannot win (see the docstring): its cost's factor, NaN for none.
            scale = cost_scale(gate, isl_c, osl_c)
            if disaggregated:  # the bounds below are of a colocated replica's cost
                scale = math.nan
            for h in range(n_hw):
                steps_h = osl_c / per_step_h[h]
                work = (
                    prefill_flops / mfu_prefill
                    + steps_h * decode_fpt * (drafted_h[h] + 1.0 + drafted_h[h] * ratio_h[h]) / mfu_decode
                )
                for w in range(n_wb):
                    floor_compute[h, w] = scale * unit_rates[h] * work / peaks[h, w]
                    if fixed_units:  # the bill of the whole replica for a turn of floor steps
                        fixed_floor[h, w] = scale * replica * unit_rates[h] * (ttft_overhead + osl_c * step_lb[h, w])
                floor_passes[h] = scale * unit_rates[h] * steps_h * (1.0 + drafted_h[h] * ratio_h[h]) / unit_bw[h]
                floor_chunks[h] = scale * unit_rates[h] * chunks / unit_bw[h]
                for w in range(n_wb):
                    for k in range(n_kb):  # none meets the search, or the weights alone overflow the units
                        cut[w, k, h] = math.inf if reach_h[h] < 0 or no_room[h, w] else 0.0
                        slow[w, k, h] = math.inf
            for rr in range(n_conc):
                r = n_conc - 1 - rr if fold else rr  # a search meets its cheapest points first
                conc = concurrency[r]
                per_request = 1.0 / conc
                touched = routed * F.touched_expert_fraction(n_experts, per_token, conc)
                decode_flops = conc * decode_fpt
                for w in range(n_wb):
                    wbits = weight_bits[w]
                    experts = F.weight_bytes(routed, wbits)
                    experts_touched = F.weight_bytes(touched, wbits)
                    pass_experts = F.weight_bytes(routed * pass_fraction, wbits)
                    for k in range(n_kb):
                        kbits = kv_bits[k]
                        kv_total = conc * (held_elements * kbits / 8.0)
                        kv_read = conc * (mean_elements * kbits / 8.0)
                        cache_read_bytes = cache_read_elements * kbits / 8.0
                        kv_request = mean_elements * kbits / 8.0  # the KV a request's step reads
                        kv_moved = F.prefill_kv_moved(written_elements * kbits / 8.0, chunks)
                        base_index = (((m * n_ctx + c) * n_conc + r) * n_wb + w) * n_kb + k
                        cell_k = out[0, m] + out[1, c] + out[2, r] + out[3, w] + out[4, k] if fold else 0
                        rank_k = rank[0, m] + rank[1, c] + rank[2, r] + rank[3, w] + rank[4, k] if fold else 0
                        for h in range(n_hw):
                            i = base_index * n_hw + h
                            wafer = hardware[h, HW.kind] == WAFER
                            dense = dense_hw[h, w]
                            incumbent = math.inf  # what the point must beat to matter (see the docstring)
                            if fold:
                                if conc <= cut[w, k, h]:  # known to lose (see cut)
                                    gate[GATE.skipped] += 1.0
                                    continue
                                cell = (cell_k + out[5, h]) * n_levels
                                for j in range(reach_h[h], n_levels):
                                    incumbent = min(incumbent, best_cost[cell + j])
                            if incumbent < math.inf and math.isfinite(scale):
                                # Cheaper than any serving of this point can be: the resources' floor
                                # per request without the replica (see the docstring).
                                spread = experts if wafer else experts_touched  # the experts a step reads
                                passes = floor_passes[h] * ((dense + spread) * per_request + kv_request)
                                lower = scale * unit_rates[h] * ttft_overhead * per_request + max(
                                    floor_compute[h, w], passes + floor_chunks[h] * dense
                                )
                                if cannot_win(lower, incumbent):  # and so does every lower R: the bound falls with R
                                    if shared:
                                        cut[w, k, h] = conc
                                    gate[GATE.skipped] += 1.0
                                    continue
                                if fixed_units and cannot_win(fixed_floor[h, w] * per_request, incumbent):
                                    if shared:  # the replica's bill over R falls with R
                                        cut[w, k, h] = conc
                                    gate[GATE.skipped] += 1.0
                                    continue
                            needed = 0
                            if inside:
                                needed = F.units_needed(
                                    wafer, parallelism, dense, experts, kv_total, capacity[h], kv_shards
                                )
                            units = int(replica) if replica > 0.0 else needed
                            n = F.requests_held(
                                inside, wafer, parallelism, units, needed, dense, experts, held_elements * kbits / 8.0,
                                kv_shards, capacity[h], conc,
                            )  # fmt: skip
                            if fixed_units and n >= slow[w, k, h]:  # holds at least as many as one too slow
                                gate[GATE.skipped] += 1.0
                                continue
                            if n < 1.0:
                                no_figures(fig, False, units, n)
                            else:
                                # A fixed replica that holds only n of the R requests serves those; the rest queue.
                                touched_n, flops_n, kv_read_n = experts_touched, decode_flops, kv_read
                                if n < conc:
                                    touched_n = F.weight_bytes(
                                        routed * F.touched_expert_fraction(n_experts, per_token, n), wbits
                                    )
                                    flops_n = n * decode_fpt
                                    kv_read_n = n * (mean_elements * kbits / 8.0)
                                # Decode: one target step of the n requests, each checking `verified` tokens.
                                drafted, draft_ratio, per_step = drafted_h[h], ratio_h[h], per_step_h[h]
                                verified = drafted + 1.0
                                steps_per_turn = osl_c / per_step
                                if wafer:
                                    streamed = F.bytes_per_unit(
                                        True, parallelism, units, dense, experts, kv_read_n, kv_shards
                                    )
                                    weights_streamed = (dense + experts) / units
                                else:
                                    streamed = F.bytes_per_unit(
                                        False, parallelism, units, dense, touched_n, kv_read_n, kv_shards
                                    )
                                    weights_streamed = F.bytes_per_unit(
                                        False, parallelism, units, dense, touched_n, 0.0, kv_shards
                                    )
                                peak = units * peaks[h, w]
                                t_mem = streamed / unit_bw[h]
                                t_flop1 = flops_n / (peak * mfu_decode)
                                t_pre_compute = prefill_flops / (peak * mfu_prefill)
                                pre_bytes = F.bytes_per_unit(
                                    wafer, parallelism, units, chunks * dense,
                                    chunks * (experts if wafer or chunks == 0.0 else pass_experts), kv_moved, kv_shards,
                                )  # fmt: skip
                                t_pre_mem = pre_bytes / unit_bw[h]
                                t_pass = F.prefill_time(t_pre_compute, pre_bytes, unit_bw[h])
                                cache_bw = units * unit_bw[h]
                                if host_tier:
                                    cache_bw = units * parameters[P.host_cache_bw_gbs] * 1e9
                                t_cr = cache_read_bytes / cache_bw
                                compute_s, memory_s = F.resource_demands(
                                    n, t_pre_compute, t_pre_mem, steps_per_turn, t_flop1, verified, drafted, draft_ratio,
                                    t_mem, t_cr,
                                )  # fmt: skip
                                latency = step_latency(
                                    wafer, physics, units, overhead, anchor[h], layers, token_latency, layer_latency,
                                    hop_latency,
                                )  # fmt: skip
                                if fold:
                                    # What the serving of this point is at least: its step and first token,
                                    # from their largest terms; its cost, from the resources' floor.
                                    fixed = 0.0 if wafer else overhead
                                    step_floor = (
                                        max(latency - fixed, t_mem, t_flop1 * verified)
                                        + drafted * draft_ratio * max(latency - fixed, t_mem, t_flop1)
                                        + fixed * (1.0 + drafted * draft_ratio)
                                    ) / per_step
                                    if calculator:
                                        ingest_floor = isl_c * step_floor / speedup
                                    else:
                                        ingest_floor = (t_pass if prefill_tokens > 0.0 else 0.0) + t_cr
                                        if disaggregated:  # its prefill is on another replica
                                            ingest_floor = 0.0
                                    # A GPU batch stalls for every prefill (turn_times): a request waits for those
                                    # ahead of it, and its time per output token holds the others'.
                                    ahead = output_floor = 0.0
                                    stalled = 1.0
                                    if not wafer and not calculator:
                                        stalled = n
                                        ahead = F.prefills_ahead(n, burstiness)
                                        output_floor = (n - 1.0 - ahead) * ingest_floor / osl_c
                                    output_floor += step_floor
                                    ttft_floor = ttft_overhead + (ahead + 1.0) * ingest_floor + step_floor
                                    if too_slow(least, longest_step, longest_ttft, output_floor, ttft_floor):
                                        if fixed_units:
                                            slow[w, k, h] = min(slow[w, k, h], n)
                                        gate[GATE.skipped] += 1.0
                                        continue
                                    if binned_by_interactivity:  # the level bins it can reach, not those above
                                        top = (
                                            np.searchsorted(levels, 1.0 / (output_floor * (1.0 - SLACK)), side="right")
                                            - 1
                                        )
                                        incumbent = math.inf
                                        for j in range(top, n_levels):
                                            incumbent = min(incumbent, best_cost[cell + j])
                                    # A turn is at least its resources' floor and at least its schedule (turn_times).
                                    schedule = osl_c * step_floor + stalled * ingest_floor
                                    floor_cost = (
                                        units * unit_rates[h] * (ttft_overhead + max(compute_s, memory_s, schedule)) / n
                                    )
                                    if cannot_win(floor_cost * scale, incumbent):
                                        # A fixed replica's floor per request falls as it holds more: so
                                        # does every R that holds at most n (not a frontier's: its bins move).
                                        if shared and fixed_units and not binned_by_interactivity:
                                            cut[w, k, h] = max(cut[w, k, h], n)
                                        gate[GATE.skipped] += 1.0
                                        continue
                                if wafer:
                                    link = hardware[h, HW.scaleup_link_bw]
                                    t_link1 = F.activation_link_time(units, n, hidden, link)
                                    share_of = n if batching == SINGLE_STREAM else 1.0
                                    kv_streamed = kv_read_n / units  # the KV's share of what a unit streams per step
                                    t_step_mem, s_flop1, s_link1 = F.stream_terms(
                                        t_mem, kv_streamed / unit_bw[h], t_flop1, t_link1, share_of
                                    )
                                    step1, verify = F.wafer_steps(latency, t_step_mem, s_flop1, s_link1, verified)
                                    latency_peak = 0.0 if physics else latency
                                    t_comm1_peak = t_comm_peak = t_pre_comm_peak = 0.0
                                    t_fixed, t_links, t_compute = latency, s_link1 * verified, s_flop1 * verified
                                    t_pre = t_pass + latency if prefill_tokens > 0.0 else 0.0
                                    passes = n * (prefill_tokens + steps_per_turn * (verified + drafted))
                                    link_s = F.activation_link_time(units, passes, hidden, link)
                                    stalls = 1.0
                                else:
                                    link = F.link_bandwidth(
                                        hardware[h, HW.scaleup_link_bw], hardware[h, HW.scaleup_domain], units, scaleout
                                    )
                                    t_dequant = F.dequant_time(
                                        emulated[h, w], weights_streamed, wbits, dequant, hardware[h, HW.peak_bf16]
                                    )
                                    # Collectives (formulas.comm_time): each bandwidth time once, the
                                    # roofline's as it is, the expected one plus the per-collective latency.
                                    collective_latency = (
                                        F.collective_count(parallelism, units, layers, moe_layers) * latency_s
                                    )
                                    batch = F.dispatched_tokens(parallelism, units, n)  # one unit's share
                                    t_comm1_peak = F.collective_bytes_time(
                                        parallelism, units, batch, layers, moe_layers, hidden, per_token, link
                                    )
                                    t_comm_peak = t_comm1_peak
                                    if drafted > 0.0:
                                        t_comm_peak = F.collective_bytes_time(
                                            parallelism,
                                            units,
                                            batch * verified,
                                            layers,
                                            moe_layers,
                                            hidden,
                                            per_token,
                                            link,
                                        )
                                    t_pre_comm_peak = F.collective_bytes_time(
                                        parallelism, units, prefill_tokens, layers, moe_layers, hidden, per_token, link
                                    )
                                    t_comm1 = t_comm1_peak + collective_latency
                                    t_comm = t_comm_peak + collective_latency
                                    step1, verify = F.gpu_steps(
                                        t_mem, t_flop1, t_dequant, t_comm1, t_comm, overhead, verified
                                    )
                                    t_link1 = latency_peak = 0.0
                                    t_fixed, t_links, t_compute = overhead, t_comm, max(t_flop1 * verified, t_dequant)
                                    t_step_mem, kv_streamed = t_mem, 0.0
                                    t_pre = t_pass
                                    if prefill_tokens > 0.0:
                                        t_pre += t_pre_comm_peak + collective_latency
                                    link_s = 0.0  # collectives run inside the steps, already serialised
                                    stalls = 1.0 if calculator else n
                                    share_of = 1.0
                                # Time per output token: the target step and the draft's own steps, per token emitted.
                                step = F.time_per_output_token(verify, step1, drafted, draft_ratio, per_step)
                                if disaggregated:
                                    # serving: disaggregated (reference._disaggregated): the replica decodes only; each prompt
                                    # is prefilled on a replica of the pool of its own, one at a time, and its KV sent over.
                                    wafer_p = pre_hw[h, HW.kind] == WAFER
                                    dense_p = F.weight_bytes(
                                        total_params - routed, wbits
                                    )  # no draft on the prefill pool
                                    prompt_bytes = prompt_elements * kbits / 8.0
                                    needed_p = F.units_needed(
                                        wafer_p, parallelism, dense_p, experts, prompt_bytes, pre_capacity[h], kv_shards
                                    )
                                    pool_units = int(prefill_units) if prefill_units > 0.0 else needed_p
                                    held_p = F.requests_held(
                                        True, wafer_p, parallelism, pool_units, needed_p, dense_p, experts, prompt_bytes, kv_shards,
                                        pre_capacity[h], 1.0,
                                    )  # fmt: skip
                                    if held_p < 1.0:  # no prefill replica holds the model and a prompt: not served
                                        no_figures(fig, True, units, n)
                                    else:
                                        peak_p = pool_units * pre_peaks[h, w]
                                        bw_p = pre_bw[h]
                                        pre_bytes_p = F.bytes_per_unit(
                                            wafer_p, parallelism, pool_units, chunks * dense_p,
                                            chunks * (experts if wafer_p or chunks == 0.0 else pass_experts), kv_moved, kv_shards,
                                        )  # fmt: skip
                                        fill = F.wafer_pipeline_latency(
                                            layers, pool_units, token_latency, layer_latency, hop_latency
                                        )
                                        together = pool_units + units if own_pool else math.inf
                                        link_p = F.transfer_link(
                                            wafer_p, pre_hw[h, HW.scaleup_link_bw], pre_hw[h, HW.scaleup_domain],
                                            together, scaleout,
                                        )  # fmt: skip
                                        link_d = F.transfer_link(
                                            wafer, hardware[h, HW.scaleup_link_bw], hardware[h, HW.scaleup_domain],
                                            together, scaleout,
                                        )  # fmt: skip
                                        kv_written = written_elements * kbits / 8.0
                                        comm_p = comm_p_peak = 0.0
                                        if not wafer_p:
                                            link_pool = F.link_bandwidth(
                                                pre_hw[h, HW.scaleup_link_bw],
                                                pre_hw[h, HW.scaleup_domain],
                                                pool_units,
                                                scaleout,
                                            )
                                            # As the replica's own collectives: the bandwidth time once, plus the latency.
                                            comm_p_peak = F.collective_bytes_time(
                                                parallelism, pool_units, prefill_tokens, layers, moe_layers, hidden, per_token, link_pool
                                            )  # fmt: skip
                                            comm_p = comm_p_peak + (
                                                F.collective_count(parallelism, pool_units, layers, moe_layers)
                                                * latency_s
                                            )
                                        # One prompt on a prefill replica, as expected.
                                        compute_p = prefill_flops / (peak_p * mfu_prefill)
                                        memory_p = pre_bytes_p / (bw_p * eta)
                                        load_bw = parameters[P.host_cache_bw_gbs] * 1e9 if host_tier else bw_p * eta
                                        load = cache_read_bytes / (pool_units * load_bw)
                                        ingest = F.prefill_ingest(
                                            wafer_p, prefill_tokens, compute_p, pre_bytes_p, bw_p * eta, comm_p, fill, load
                                        )  # fmt: skip
                                        if calculator:  # the calculator's rate, within the pool's physics
                                            ingest = max(isl_c * step / speedup, ingest)
                                        # The decode replica alone: its cycle of R turns' decode, against its own resources.
                                        compute_s, memory_s = F.resource_demands(
                                            n,
                                            0.0,
                                            0.0,
                                            steps_per_turn,
                                            t_flop1,
                                            verified,
                                            drafted,
                                            draft_ratio,
                                            t_mem,
                                            0.0,
                                        )
                                        link_s = 0.0
                                        if wafer:
                                            link_s = F.activation_link_time(
                                                units, n * steps_per_turn * (verified + drafted), hidden, link
                                            )
                                        cycle = share_of * osl_c * step
                                        floor, floor_code = F.resource_floor(compute_s, memory_s, link_s)
                                        stretch = F.closed_loop(cycle, floor)
                                        transfer = F.kv_transfer_time(
                                            kv_written, pool_units, link_p, units, link_d, latency_s
                                        )
                                        served_turn = ingest + transfer + stretch * cycle
                                        pool = prefill_replicas
                                        if pool <= 0.0:
                                            pool = F.balanced_pool(n, ingest, transfer, served_turn)
                                        turn, ttft, per_output = F.disaggregated_turn(
                                            ingest,
                                            transfer,
                                            stretch * cycle,
                                            stretch * share_of,
                                            step,
                                            osl_c,
                                            n,
                                            pool,
                                            ttft_overhead,
                                        )
                                        paced = turn - ttft_overhead > served_turn  # before the scheduler's hold
                                        turn, ttft = F.held_by_scheduler(wafer, turn, ttft, held)
                                        code = F.disaggregated_resource(
                                            paced, transfer * pool >= ingest, stretch > 1.0, floor_code,
                                            not calculator and ingest + transfer > stretch * cycle, F.prefill_resource(compute_p, memory_p, load),
                                            F.step_resource(t_step_mem, t_compute, t_links, t_fixed),
                                        )  # fmt: skip
                                        wait = F.queue_wait(turn, conc, n)  # for a KV slot on the decode replica
                                        decode_rate = units * unit_rates[h]
                                        pool_rate = pool * (pool_units * pre_rates[h])
                                        rate = decode_rate + pool_rate
                                        tokens = n * (isl_c + osl_c)
                                        bound_i = bound_x = bound_t = math.nan
                                        if bounds:  # the decode replica at peak (no prefill on it), the prompt and transfer at peak
                                            bound_i, peak_x, _ = F.roofline_figures(
                                                wafer, streamed / peak_bw[h], kv_streamed / peak_bw[h], flops_n / peak, t_link1, t_comm1_peak, t_comm_peak, 0.0,
                                                0.0, 0.0, 0.0, link_s, latency_peak, 0.0, verified, drafted, draft_ratio, per_step, n,
                                                isl_c, osl_c, 0.0, share_of, False, speedup,
                                            )  # fmt: skip
                                            step_peak = 1.0 / (bound_i * share_of)
                                            load_peak_bw = parameters[P.host_cache_bw_gbs] * 1e9 if host_tier else bw_p
                                            ingest_peak = F.prefill_ingest(
                                                wafer_p, prefill_tokens, prefill_flops / peak_p, pre_bytes_p, bw_p, comm_p_peak, 0.0,
                                                cache_read_bytes / (pool_units * load_peak_bw),
                                            )  # fmt: skip
                                            if calculator:
                                                ingest_peak = max(isl_c * step_peak / speedup, ingest_peak)
                                            transfer_peak = F.kv_transfer_time(
                                                kv_written, pool_units, link_p, units, link_d, 0.0
                                            )
                                            cycle_peak = n * (isl_c + osl_c) / peak_x
                                            pool_peak = prefill_replicas
                                            if pool_peak <= 0.0:
                                                pool_peak = F.balanced_pool(
                                                    n,
                                                    ingest_peak,
                                                    transfer_peak,
                                                    ingest_peak + transfer_peak + cycle_peak,
                                                )
                                            turn_peak, _, _ = F.disaggregated_turn(
                                                ingest_peak,
                                                transfer_peak,
                                                cycle_peak,
                                                share_of,
                                                step_peak,
                                                osl_c,
                                                n,
                                                pool_peak,
                                                0.0,
                                            )
                                            bound_x = n * (isl_c + osl_c) / turn_peak
                                            bound_t = ingest_peak + transfer_peak + 1.0 / bound_i
                                        t0 = t1 = t2 = t3 = math.nan
                                        if not fold:  # the pool's cost by each type's share of a prompt's time; the decode's to output
                                            t0 = F.cost_per_mtok_of_type(
                                                pool_rate, turn * F.pool_share(calculator, True, cache_read, prefill_tokens, isl_c, load, ingest),
                                                n, cache_read,
                                            )  # fmt: skip
                                            t1 = F.cost_per_mtok_of_type(
                                                pool_rate,
                                                turn * F.pool_share(calculator, False, cache_write, prefill_tokens, isl_c, load, ingest),
                                                n, cache_write,
                                            )  # fmt: skip
                                            t2 = F.cost_per_mtok_of_type(
                                                pool_rate, turn * F.pool_share(calculator, False, fresh, prefill_tokens, isl_c, load, ingest),
                                                n, fresh,
                                            )  # fmt: skip
                                            t3 = F.cost_per_mtok_of_type(
                                                decode_rate + pool_rate * (1.0 if ingest <= 0.0 else 0.0),
                                                turn,
                                                n,
                                                osl_c,
                                            )
                                        put_figures(
                                            fig, True, units, n, bound_i, bound_x, bound_t, 1.0 / per_output, per_output, wait + ttft,
                                            wait + turn, tokens / turn, n * osl_c / turn, code, rate, F.cost_per_mtok(rate, tokens / turn),
                                            F.cost_per_mtok(rate, n * osl_c / turn), rate * turn / 3600.0 / n, t0, t1, t2, t3,
                                        )  # fmt: skip
                                else:
                                    if calculator:
                                        ingest = isl_c * step / speedup
                                        time_cache_read = cache_read * step / speedup
                                        time_cache_write = cache_write * step / speedup
                                        time_input = fresh * step / speedup
                                    else:
                                        ingest = t_pre + t_cr
                                        share = 0.0 if prefill_tokens == 0.0 else t_pre / prefill_tokens
                                        time_cache_read = t_cr
                                        time_cache_write = cache_write * share
                                        time_input = fresh * share
                                    # Closed loop: one cycle of the R turns as scheduled, against what the
                                    # replica's compute, memory bandwidth and links need for the same work.
                                    cycle = share_of * (osl_c * step + stalls * ingest)
                                    floor, floor_code = F.resource_floor(compute_s, memory_s, link_s)
                                    stretch = F.closed_loop(cycle, floor)
                                    if stretch > 1.0:
                                        code = floor_code
                                    elif not calculator and stalls * ingest > osl_c * step:
                                        code = F.prefill_resource(t_pre_compute, t_pre_mem, t_cr)
                                    else:
                                        code = F.step_resource(t_step_mem, t_compute, t_links, t_fixed)
                                    stretched = stretch * share_of
                                    queued = 0.0 if calculator else F.prefills_ahead(stalls, burstiness)
                                    turn, ttft, per_output = F.turn_times(
                                        cycle, stretch, share_of, ingest, step, osl_c, ttft_overhead, queued
                                    )
                                    scheduled = turn
                                    turn, ttft = F.held_by_scheduler(wafer, turn, ttft, held)
                                    wait = F.queue_wait(turn, conc, n)  # for a KV slot: 0 when all R are held
                                    rate = units * unit_rates[h]
                                    tokens = n * (isl_c + osl_c)
                                    # The roofline: the same turn at the hardware's peak, whatever the profile.
                                    bound_i = bound_x = bound_t = math.nan  # a search that reads no bound skips them
                                    if bounds:
                                        bound_i, bound_x, bound_t = F.roofline_figures(
                                            wafer, streamed / peak_bw[h], kv_streamed / peak_bw[h], flops_n / peak, t_link1, t_comm1_peak,
                                            t_comm_peak, prefill_flops / peak, pre_bytes / peak_bw[h],
                                            t_pre_comm_peak if prefill_tokens > 0.0 else 0.0,
                                            t_cr if host_tier else cache_read_bytes / (units * peak_bw[h]), link_s, latency_peak,
                                            prefill_tokens, verified, drafted, draft_ratio, per_step, n, isl_c, osl_c, stalls,
                                            share_of, calculator, speedup,
                                        )  # fmt: skip
                                    t0 = t1 = t2 = t3 = math.nan  # a search reads no by-type cost (SEARCH_FIGURES)
                                    if not fold:
                                        served = stretched * stalls
                                        t0 = F.cost_per_mtok_of_type(rate, served * time_cache_read, n, cache_read)
                                        t1 = F.cost_per_mtok_of_type(rate, served * time_cache_write, n, cache_write)
                                        t2 = F.cost_per_mtok_of_type(rate, served * time_input, n, fresh)
                                        t3 = F.cost_per_mtok_of_type(
                                            rate,
                                            stretched * osl_c * step + ttft_overhead + (turn - scheduled),
                                            n,
                                            osl_c,
                                        )
                                    put_figures(
                                        fig, True, units, n, bound_i, bound_x, bound_t, 1.0 / per_output,
                                        per_output, wait + ttft, wait + turn, tokens / turn, n * osl_c / turn, code, rate,
                                        F.cost_per_mtok(rate, tokens / turn), F.cost_per_mtok(rate, n * osl_c / turn),
                                        rate * turn / 3600.0 / n, t0, t1, t2, t3,
                                    )  # fmt: skip
                            # The sink, written out here: an inlined helper that takes arrays and
                            # branches pays a reference count per array per point (measured: a
                            # third of the search's time).
                            if fold:  # the search: fold into the best of the output cell (and level bin)
                                value = fig[select[0]]
                                admissible = math.isfinite(value) and fig[select[1]] >= levels[0]
                                for q in range(ops.size):
                                    admissible = admissible and holds_scalar(fig[select[2 + q]], ops[q], limits[q])
                                if admissible:
                                    j = 0
                                    if n_levels > 1:
                                        j = np.searchsorted(levels, fig[select[1]], side="right") - 1
                                    o = (cell_k + out[5, h]) * n_levels + j
                                    position = rank_offset + rank_k + rank[5, h]
                                    if value < best_cost[o] or (value == best_cost[o] and position < best_rank[o]):
                                        best_cost[o] = value
                                        best_rank[o] = position
                                        for q in range(carried.size):
                                            best_values[o, q] = fig[carried[q]]
                            else:  # the full cube: store every figure
                                store_figures(
                                    s_interactivity_bound_tps, s_throughput_bound_tps, s_ttft_bound_s,
                                    s_interactivity_tps, s_decode_step_s, s_ttft_s, s_turn_time_s, s_throughput_tps,
                                    s_output_throughput_tps, s_bound_by, s_usd_per_hour, s_cost_per_mtok_usd,
                                    s_cost_per_mtok_output_usd, s_cost_per_turn_usd, s_by_type, i, fig,
                                )  # fmt: skip


with layout_cache(f"{LAYOUT_FINGERPRINT}-{FORMULAS_FINGERPRINT}"):  # its cache keyed like the kernels'
    performance_points = kernel()(_performance_points)


@helper
def no_fold():
    """An empty fold state (the full cube's kernel folds nothing)."""
    ints, floats = np.empty(0, np.int64), np.empty(0)
    return (ints, ints, floats, ints, floats, np.empty((0, 0), np.int64), np.empty((0, 0), np.int64), 0, floats, ints,
            np.empty((0, 0)), np.array([float(NO_PRUNE), -math.inf, math.inf, math.inf, 0.0, 0.0]))  # GATE  # fmt: skip


@helper
def no_store():
    """An empty store state (the search kernel stores nothing)."""
    f = np.empty(0)
    return (f, f, f, f, f, f, f, f, f, np.empty(0, np.int8), f, f, f, f, f)


@bound("performance")
def performance_kernel(
    models, group_offsets, groups, hardware, overrides, speculation, prefill_unit, isl, osl, concurrency, weight_bits,
    kv_bits, parameters, mix, interactivity_bound_tps, throughput_bound_tps, ttft_bound_s, interactivity_tps, decode_step_s, ttft_s,
    turn_time_s, throughput_tps, output_throughput_tps, bound_by, usd_per_hour, cost_per_mtok_usd,
    cost_per_mtok_output_usd, cost_per_turn_usd, cost_per_mtok_by_type_usd,
):  # fmt: skip
    """Bounds, expected serving figures and costs over model x context x R x wbits x kbits x
    hardware: :func:`performance_points` with every figure stored (flat views: one index per
    point instead of six strided ones per store)."""
    state = (
        interactivity_bound_tps.reshape(-1), throughput_bound_tps.reshape(-1), ttft_bound_s.reshape(-1),
        interactivity_tps.reshape(-1), decode_step_s.reshape(-1), ttft_s.reshape(-1), turn_time_s.reshape(-1),
        throughput_tps.reshape(-1), output_throughput_tps.reshape(-1), bound_by.reshape(-1), usd_per_hour.reshape(-1),
        cost_per_mtok_usd.reshape(-1), cost_per_mtok_output_usd.reshape(-1), cost_per_turn_usd.reshape(-1),
        cost_per_mtok_by_type_usd.reshape(-1),
    )  # fmt: skip
    performance_points(
        models, group_offsets, groups, hardware, overrides, speculation, prefill_unit, isl, osl, concurrency,
        weight_bits, kv_bits, parameters, mix, False, state, no_fold(), True,
    )  # fmt: skip


#: The kernel of each family (every family of the registry has one).
KERNELS: dict[str, BoundKernel] = {k.family: k for k in (memory_kernel, performance_kernel)}
assert set(KERNELS) == set(FAMILIES), "every variable family needs a kernel"

# --------------------------------------------------------------------------- search
with layout_cache(f"{LAYOUT_FINGERPRINT}-{FORMULAS_FINGERPRINT}"):

    @kernel()
    def search_kernel(
        models, group_offsets, groups, hardware, overrides, speculation, prefill_unit, isl, osl, concurrency,
        weight_bits, kv_bits, parameters, mix, select, ops, limits, carried, levels, out, rank, rank_offset, best_cost, best_rank,
        best_values, gate,
    ):  # fmt: skip
        """Evaluate and reduce one block in one loop, storing nothing per point: the figures of
        :func:`performance_points` folded into the best per output cell. ``select`` holds the figure
        indices (:data:`SEARCH_FIGURES`) of the minimised variable, the speed, then one per
        condition (``ops``, ``limits``); ``carried`` those kept at the winner (the roofline's
        bounds are computed only if one of these is a bound); ``out`` and
        ``rank`` (6 x longest kernel axis) each kernel index's share of its output cell and of
        its rank; ``gate`` what the kernel prunes on (:func:`engine.sweep.reduce.pruning_gate`).
        Compiled on first use (and cached)."""
        state = (select, ops, limits, carried, levels, out, rank, rank_offset, best_cost, best_rank, best_values, gate)
        bounds = False  # the roofline's figures only where the search reads one
        for q in range(select.size):
            bounds = bounds or FIRST_BOUND <= select[q] <= LAST_BOUND
        for q in range(carried.size):
            bounds = bounds or FIRST_BOUND <= carried[q] <= LAST_BOUND
        performance_points(
            models, group_offsets, groups, hardware, overrides, speculation, prefill_unit, isl, osl, concurrency,
            weight_bits, kv_bits, parameters, mix, True, no_store(), state, bounds,
        )  # fmt: skip


# --------------------------------------------------------------------------- draws
# Monte Carlo draws of uncertain assumptions and prices (engine.model.uncertain): the same
# compiled kernel once per draw, inside compiled code (no Python between draws), each draw
# with its own parameter vector and hardware table and its own slice of every output.
_memory = memory_kernel.dispatcher
_performance = performance_kernel.dispatcher


@bound("memory", draws=True)
def memory_draws(
    models, group_offsets, groups, hardware_draws, speculation, isl, osl, concurrency, weight_bits, kv_bits,
    parameter_draws, weight_bytes, within_context, kv_bytes_per_request, kv_bytes, total_bytes, kv_share,
    units_needed, units_per_replica, replica_fits, admitted_requests, layers_per_unit, capex_usd, stranded_fraction,
    fits_domain,
):  # fmt: skip
    """:func:`memory_kernel` for every draw."""
    for d in range(parameter_draws.shape[0]):
        _memory(
            models, group_offsets, groups, hardware_draws[d], speculation, isl, osl, concurrency, weight_bits,
            kv_bits, parameter_draws[d], weight_bytes[d], within_context[d], kv_bytes_per_request[d], kv_bytes[d],
            total_bytes[d], kv_share[d], units_needed[d], units_per_replica[d], replica_fits[d],
            admitted_requests[d], layers_per_unit[d], capex_usd[d], stranded_fraction[d], fits_domain[d],
        )  # fmt: skip


@bound("performance", draws=True)
def performance_draws(
    models, group_offsets, groups, hardware_draws, overrides, speculation, prefill_unit_draws, isl, osl, concurrency,
    weight_bits, kv_bits, parameter_draws, mix, interactivity_bound_tps, throughput_bound_tps, ttft_bound_s, interactivity_tps,
    decode_step_s, ttft_s, turn_time_s, throughput_tps, output_throughput_tps, bound_by, usd_per_hour,
    cost_per_mtok_usd, cost_per_mtok_output_usd, cost_per_turn_usd, cost_per_mtok_by_type_usd,
):  # fmt: skip
    """:func:`performance_kernel` for every draw."""
    for d in range(parameter_draws.shape[0]):
        _performance(
            models, group_offsets, groups, hardware_draws[d], overrides, speculation, prefill_unit_draws[d], isl, osl,
            concurrency, weight_bits, kv_bits, parameter_draws[d], mix, interactivity_bound_tps[d], throughput_bound_tps[d],
            ttft_bound_s[d], interactivity_tps[d], decode_step_s[d], ttft_s[d], turn_time_s[d], throughput_tps[d],
            output_throughput_tps[d], bound_by[d], usd_per_hour[d], cost_per_mtok_usd[d],
            cost_per_mtok_output_usd[d], cost_per_turn_usd[d], cost_per_mtok_by_type_usd[d],
        )  # fmt: skip


#: The draw kernel of each family.
DRAW_KERNELS: dict[str, BoundKernel] = {k.family: k for k in (memory_draws, performance_draws)}
assert set(DRAW_KERNELS) == set(FAMILIES), "every variable family needs a draw kernel"
