"""Conservation laws of every served point: on every hardware kind, layout, mix, profile,
prefill model, wafer batching mode and speculative setting.

For each served point, from the cube's own figures:

- implied FLOP/s (prefill and decode of every request, drafts and rejected tokens included)
  never exceed units x peak of the format the weights run at;
- bytes read per second (weights and KV of every decode step and of every prefill chunk,
  cached prefixes loaded) never exceed units x memory bandwidth (or the host tier's, for
  prefixes held there), and no first token comes sooner than its prefill's bytes allow;
- bytes held per unit never exceed the unit's capacity;
- concurrency = throughput x turn time (Little's law);
- on a fixed replica, more concurrency never makes time to first token, time per output
  token or turn time shorter;
- the roofline bounds are the same under every profile and serving efficiency, and no
  expected figure is faster than its bound.
"""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.axes import AXES
from engine.model import reference as ref
from engine.model.assumptions import AT_PEAK, Assumptions, at_peak
from engine.model.catalog import load_catalog
from engine.model.evaluate import evaluate_point
from engine.model.point import Point

CATALOG = load_catalog()
models = st.sampled_from(sorted(CATALOG.models)).map(CATALOG.model)
units_ = st.sampled_from(sorted(CATALOG.hardware)).map(CATALOG.get_hardware)
workloads = st.sampled_from(sorted(CATALOG.workloads)).map(CATALOG.workload)
profiles = st.sampled_from(sorted(CATALOG.profiles))
isls = st.integers(100, 2_000_000)
bits = st.sampled_from([4.0, 4.25, 8.0, 16.0])


@st.composite
def settings_(draw):
    profile = CATALOG.profile(draw(profiles)).parameters
    choices = {
        name: draw(st.sampled_from(AXES[name].choices))
        for name in ("parallelism", "prefill_model", "wafer_batching", "cache_tier", "price", "speculative")
    }
    spec = {}
    if draw(st.booleans()):
        spec = {
            "spec_draft_tokens": draw(st.integers(1, 8)),
            "spec_acceptance": draw(st.floats(0.0, 0.99)),
            "spec_draft_ratio": draw(st.floats(0.001, 0.5)),
        }
    # A fixed replica, often smaller than its requests need: it holds what fits, the rest queue.
    spec["replica_units"] = draw(st.sampled_from([0, 0, 1, 2, 4, 8, 16]))
    spec["prefill_burstiness"] = draw(st.floats(0.0, 1.0))
    spec["ttft_scheduler_factor"] = draw(st.one_of(st.just(1.0), st.floats(1.0, 5.0)))
    mfu = {}
    if draw(st.booleans()):  # any efficiency up to the ideal one
        mfu = {"mfu_decode": draw(st.floats(0.05, 1.0)), "mfu_prefill": draw(st.floats(0.05, 1.0))}
    return Assumptions(**{**profile, **choices, **spec, **mfu, "context_limit": "none"})


def prefill_bytes(point: Point, units: int) -> float:
    """Bytes one unit moves for one request's prefill: every chunk of at most the token budget
    streams the weights its tokens touch; the prompt's KV is written once and read back by the
    chunks after it."""
    model, a = point.model, point.assumptions
    cache_read, cache_write, fresh = ref.input_split(point.isl, point.workload)
    tokens = cache_write + fresh
    if tokens <= 0:
        return 0.0
    chunks = math.ceil(tokens / a.prefill_chunk_tokens)
    dense, experts = ref.weight_split(model, point.weight_bits, a, point.hardware)
    wafer = point.hardware.kind == "wafer"
    touched = experts if wafer else experts * ref.touched_expert_fraction(model, tokens / chunks)
    written = ref.kv_bytes_per_request(model, point.isl, point.kv_bits) - ref.kv_bytes_per_request(
        model, cache_read, point.kv_bits
    )
    kv = written * (1 + (chunks - 1) / 2)
    layout = ref._parallelism(a.parallelism)
    return ref.F.bytes_per_unit(wafer, layout, units, chunks * dense, chunks * touched, kv, model.kv_shards)


def implied_rates(point: Point, p: dict) -> tuple[float, float, float]:
    """(FLOP/s, bytes/s from memory, bytes/s from the host tier) the served point implies."""
    model, a = point.model, point.assumptions
    isl, osl = point.isl, point.osl
    conc = p["admitted_requests"]  # the requests the replica holds at once; the others wait for a slot
    cache_read, cache_write, fresh = ref.input_split(isl, point.workload)
    prefill = cache_write + fresh
    drafted, acceptance, ratio = ref.speculation(model, point.hardware, a)
    per_step = ref.F.speculative_tokens_per_step(acceptance, drafted)
    steps = osl / per_step
    mean = isl + osl / 2
    decode_fpt = ref.flops_per_token(model, mean, decode=True)
    flops_turn = prefill * ref.flops_per_token(model, cache_read + prefill / 2) + steps * decode_fpt * (
        drafted + 1 + drafted * ratio
    )
    units = p["units_per_replica"]
    dense, experts = ref.weight_split(model, point.weight_bits, a, point.hardware)
    kv_read = conc * ref.kv_bytes_per_request(model, mean, point.kv_bits)
    if point.hardware.kind == "wafer":
        per_step_bytes = units * ref.F.bytes_per_unit(True, 0, units, dense, experts, kv_read, model.kv_shards)
    else:
        touched = experts * ref.touched_expert_fraction(model, conc)
        layout = ref._parallelism(a.parallelism)
        per_step_bytes = units * ref.F.bytes_per_unit(False, layout, units, dense, touched, kv_read, model.kv_shards)
    cache_bytes = conc * ref.kv_bytes_per_request(model, cache_read, point.kv_bits)
    memory_bytes = steps * per_step_bytes * (1 + drafted * ratio) + conc * units * prefill_bytes(point, units)
    host_bytes = 0.0
    if a.cache_tier == "hbm":
        memory_bytes += cache_bytes
    else:
        host_bytes = cache_bytes
    served = p["turn_time_s"] * conc / point.concurrency  # the turn without the wait for a slot
    held = p["ttft_s"] - (p["turn_time_s"] - served)  # its time to first token, held by the scheduler
    factor = 1.0 if point.hardware.kind == "wafer" else a.ttft_scheduler_factor  # a GPU framework's
    hold = (1.0 - 1.0 / factor) * held  # the scheduler's extra wait, off the accelerator
    turn = served - a.ttft_overhead_s - hold  # the accelerator's share of the turn
    return conc * flops_turn / turn, memory_bytes / turn, host_bytes / turn


@settings(max_examples=400)
@given(models, units_, workloads, isls, st.integers(1, 2048), bits, bits, settings_())
def test_served_points_respect_compute_bandwidth_capacity_and_littles_law(model, unit, workload, isl, r, wb, kb, a):
    point = Point(model, unit, workload, isl, None, r, wb, kb, a)
    p = evaluate_point(point)
    assume(p["replica_fits"])
    units = p["units_per_replica"]
    flops, memory, host = implied_rates(point, p)
    peak = units * ref.compute_peak(unit, wb)
    assert flops <= peak * (1 + 1e-9), f"implied {flops:.3g} FLOP/s > {peak:.3g} peak on {units} {unit.name}"
    assert flops <= peak * max(a.mfu_decode, a.mfu_prefill) * (1 + 1e-9)
    bandwidth = units * unit.memory_bw_tbs * 1e12
    assert memory <= bandwidth * (1 + 1e-9), f"{memory:.3g} B/s > {bandwidth:.3g} on {units} {unit.name}"
    assert host <= units * a.host_cache_bw_gbs * 1e9 * (1 + 1e-9)
    capacity = unit.memory_gb * 1e9 * ref.usable_fraction(unit, a)
    assert p["stranded_fraction"] >= -1e-9  # bytes held per unit <= capacity
    held = p["admitted_requests"] * p["kv_bytes_per_request"] + p["weight_bytes"]
    assert held <= units * capacity * (1 + 1e-9) or unit.kind != "wafer"
    assert 1 <= p["admitted_requests"] <= r
    # A prefill pass moves its bytes at most at the bandwidth: the first token is never sooner.
    if a.prefill_model == "physics":
        moved = prefill_bytes(point, units)
        assert p["ttft_bound_s"] >= moved / (unit.memory_bw_tbs * 1e12) * (1 - 1e-9)
        assert p["ttft_s"] >= moved / (unit.memory_bw_tbs * 1e12 * a.memory_bw_efficiency) * (1 - 1e-9)
    # Little's law: concurrency = throughput x turn time, per token of a turn.
    tokens = point.isl + point.osl
    assert math.isclose(p["throughput_tps"] * p["turn_time_s"] / tokens, r, rel_tol=1e-9)
    assert math.isclose(p["output_throughput_tps"] * p["turn_time_s"] / point.osl, r, rel_tol=1e-9)
    assert p["bound_by"] in range(4)


@settings(max_examples=300)
@given(models, units_, workloads, isls, st.integers(1, 1024), st.integers(1, 1024), bits, bits, settings_())
def test_more_load_on_a_fixed_replica_never_makes_it_faster(model, unit, workload, isl, r1, r2, wb, kb, a):
    lo, hi = sorted((r1, r2))
    big = evaluate_point(Point(model, unit, workload, isl, None, hi, wb, kb, a))
    assume(big["replica_fits"])
    fixed = a.model_copy(update={"replica_units": big["units_per_replica"]})
    small = evaluate_point(Point(model, unit, workload, isl, None, lo, wb, kb, fixed))
    large = evaluate_point(Point(model, unit, workload, isl, None, hi, wb, kb, fixed))
    assert small["replica_fits"] and large["replica_fits"]
    for name in ("ttft_s", "decode_step_s", "turn_time_s", "ttft_bound_s"):
        assert large[name] >= small[name] * (1 - 1e-9), f"{name}: R={hi} {large[name]:.4g} < R={lo} {small[name]:.4g}"
    assert large["interactivity_bound_tps"] <= small["interactivity_bound_tps"] * (1 + 1e-9)


BOUNDS = ("interactivity_bound_tps", "throughput_bound_tps", "ttft_bound_s")


@st.composite
def serving_efficiencies(draw):
    """Any values of the assumptions the roofline must not read (AT_PEAK's), within their bounds."""
    values = {}
    for name in AT_PEAK:
        axis = AXES[name]
        high = min(axis.high, 1e-2) if axis.units == "s" else min(axis.high, 1e3)
        values[name] = draw(st.floats(max(axis.low, 1e-3) if axis.low_open or name.startswith("m") else axis.low, high))
    return values


@settings(max_examples=200)
@given(models, units_, workloads, isls, st.integers(1, 2048), bits, bits, settings_(), serving_efficiencies())
def test_bounds_are_the_same_under_every_profile_and_never_beaten(model, unit, workload, isl, r, wb, kb, a, other):
    point = Point(model, unit, workload, isl, None, r, wb, kb, a)
    p = evaluate_point(point)
    assume(p["replica_fits"])
    moved = evaluate_point(Point(model, unit, workload, isl, None, r, wb, kb, a.model_copy(update=other)))
    for name in BOUNDS:  # the roofline reads no serving efficiency: identical, not merely close
        assert moved[name] == p[name] or not moved["replica_fits"], name
    slack = 1 + 1e-9
    assert p["interactivity_tps"] <= p["interactivity_bound_tps"] * slack
    assert p["throughput_tps"] <= p["throughput_bound_tps"] * slack
    assert p["ttft_s"] * slack >= p["ttft_bound_s"]
    # The throughput bound is the closed-loop turn at the hardware's peak: the expected
    # throughput with AT_PEAK's values; the others are one unshared step and prefill at peak.
    peak = evaluate_point(Point(model, unit, workload, isl, None, r, wb, kb, at_peak(a)))
    assert math.isclose(peak["throughput_tps"], p["throughput_bound_tps"], rel_tol=1e-9)
    assert peak["interactivity_tps"] <= p["interactivity_bound_tps"] * slack
    assert peak["ttft_s"] * slack >= p["ttft_bound_s"]


def test_wafer_prefill_shares_the_wafers_compute(catalog):
    """The issue's case: Llama-3.1-70B, 16-bit, ISL 100k, OSL 1k, long documents, R = 64 on a
    wafer replica: the throughput implies at most the wafers' peak, and TTFT grows with R."""
    model, wse = catalog.model("llama-3.1-70b"), catalog.get_hardware("wse3")
    docs = catalog.workload("long-document-batch")
    a = Assumptions(context_limit="none")
    one = evaluate_point(Point(model, wse, docs, 100_000, 1000, 1, 16, 16, a))
    many = evaluate_point(Point(model, wse, docs, 100_000, 1000, 64, 16, 16, a))
    flops, _, _ = implied_rates(Point(model, wse, docs, 100_000, 1000, 64, 16, 16, a), many)
    peak = many["units_per_replica"] * wse.bf16_tflops * 1e12
    assert flops <= peak * a.mfu_prefill * (1 + 1e-9)
    assert many["bound_by"] == 1  # compute
    fixed = a.model_copy(update={"replica_units": many["units_per_replica"]})
    alone = evaluate_point(Point(model, wse, docs, 100_000, 1000, 1, 16, 16, fixed))
    assert many["ttft_s"] > 3 * alone["ttft_s"] > 0  # 64 prefills share the compute one had alone
    assert one["interactivity_tps"] > many["interactivity_tps"]


def test_batching_modes_order_the_wafer_throughput(catalog, agentic):
    """At the calculator's default point, one request at a time (single_stream) serves far less
    than R requests in their own pipeline slots (calculator, physics), and exactly the
    published speed over the decode share of a turn."""
    model, wse = catalog.model("gpt-oss-120b"), catalog.get_hardware("wse3")
    figures = {}
    for mode in AXES["wafer_batching"].choices:
        a = Assumptions(wafer_batching=mode, prefill_model="calculator")
        figures[mode] = evaluate_point(Point(model, wse, agentic, 96_300, None, 250, 4, 16, a))
    out = {m: f["output_throughput_tps"] for m, f in figures.items()}
    assert min(out["calculator"], out["physics"]) > 100 * out["single_stream"]
    published = model.interactivity_tps["wse3"]
    turn_share = figures["single_stream"]["output_throughput_tps"]
    # one request at a time: output tok/s of the replica = the published speed x the decode share of a turn
    decode_share = 213 / (213 + 96_300 / 10)
    assert math.isclose(turn_share, published * decode_share, rel_tol=0.01)


def test_a_scheduler_that_holds_requests_longer_delays_the_first_token_and_the_turn_alike(catalog, agentic):
    """ttft_scheduler_factor f: f x the modelled time to first token, the turn longer by the
    same wait, the time per output token unchanged, Little's law kept."""
    model, h100 = catalog.model("llama-3.1-70b"), catalog.get_hardware("h100-sxm")
    base = catalog.assumptions("calibrated", {}, "")
    one, three = (
        evaluate_point(
            Point(model, h100, agentic, 8000, 500, 32, 8, 8, base.model_copy(update={"ttft_scheduler_factor": f}))
        )
        for f in (1.0, 3.0)
    )
    assert one["ttft_s"] > 0.1  # a wait worth holding: 32 prompts of 8k tokens
    assert math.isclose(three["ttft_s"], 3 * one["ttft_s"], rel_tol=1e-9)
    assert math.isclose(three["turn_time_s"] - one["turn_time_s"], 2 * one["ttft_s"], rel_tol=1e-9)
    assert math.isclose(three["decode_step_s"], one["decode_step_s"], rel_tol=1e-12)
    for p in (one, three):
        assert math.isclose(p["throughput_tps"] * p["turn_time_s"], 32 * (8000 + 500), rel_tol=1e-9)
    assert three["cost_per_mtok_usd"] > one["cost_per_mtok_usd"]
    wse = catalog.get_hardware("wse3")  # the factor is fitted to GPU frameworks: a wafer is not held
    on_wafer = [
        evaluate_point(
            Point(model, wse, agentic, 8000, 500, 32, 8, 8, base.model_copy(update={"ttft_scheduler_factor": f}))
        )
        for f in (1.0, 3.0)
    ]
    assert on_wafer[0]["ttft_s"] == on_wafer[1]["ttft_s"] and on_wafer[0]["turn_time_s"] == on_wafer[1]["turn_time_s"]
