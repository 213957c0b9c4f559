"""Disaggregated prefill and decode (``serving: disaggregated``): the conservation laws of
every served point, on every decode and prefill unit, layout, mix, profile and pool size.

From the point's own figures (the pool's size read back from its hourly rate):

- the prefill pool's implied FLOP/s and bytes/s never exceed its units' peak and bandwidth;
  the decode replica's never exceed its own;
- the KV link carries at most its bandwidth; a prefill replica holds at most its capacity;
- concurrency = throughput x turn time (Little's law), and the bill by token type adds up;
- on a fixed deployment (both replicas and the pool's ratio fixed), more load never makes
  TTFT, time per output token or the turn shorter; a smaller pool never makes them shorter;
- the roofline bounds are the same under every profile and never beaten;
- taking the prefills off a replica never slows its decode.
"""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.axes import AXES
from engine.model import reference as ref
from engine.model.assumptions import Assumptions, at_peak
from engine.model.evaluate import evaluate_point
from engine.model.point import Point
from engine.model.pricing import unit_usd_per_hour
from tests.model.test_conservation import (
    bits,
    isls,
    models,
    serving_efficiencies,
    settings_,
    units_,
    workloads,
)

SLACK = 1 + 1e-9


@st.composite
def disaggregated(draw, pool=None):
    """Random settings with the prompts on a pool of their own: any prefill unit (or the same),
    its replica sized or fixed, the pool balanced or of any ratio."""
    a = draw(settings_())
    update = {
        "serving": "disaggregated",
        "prefill_hardware": draw(st.sampled_from(AXES["prefill_hardware"].choices)),
        "prefill_units": draw(st.sampled_from([0, 0, 1, 2, 8])),
        "prefill_replicas": draw(st.one_of(st.just(0.0), st.floats(0.01, 50.0))) if pool is None else pool,
    }
    return a.model_copy(update=update)


def pool_of(point: Point, p: dict) -> tuple[Point, int, float]:
    """(the prefill unit, units of one prefill replica, prefill replicas per decode replica),
    the last read back from the point's hourly rate."""
    unit = ref.prefill_unit(point)
    pool_units, pool_unit_rate = ref.prefill_pool(point)
    decode_rate = p["units_per_replica"] * unit_usd_per_hour(point.hardware, point.assumptions)
    return unit, pool_units, (p["usd_per_hour"] - decode_rate) / pool_unit_rate


def prompt_work(point: Point, unit, pool_units: int) -> tuple[float, float, float]:
    """(FLOP, bytes per unit, KV bytes sent) of one prompt on a prefill replica: its chunks each
    stream the weights their tokens touch (no draft on the pool), its KV written and read back."""
    model, a = point.model, point.assumptions
    cache_read, cache_write, fresh = ref.input_split(point.isl, point.workload)
    tokens = cache_write + fresh
    written = ref.kv_bytes_per_request(model, point.isl, point.kv_bits) - ref.kv_bytes_per_request(
        model, cache_read, point.kv_bits
    )
    if tokens <= 0:
        return 0.0, 0.0, written
    chunks = math.ceil(tokens / a.prefill_chunk_tokens)
    dense, experts = ref.weight_split(model, point.weight_bits)
    wafer = unit.kind == "wafer"
    touched = experts if wafer else experts * ref.touched_expert_fraction(model, tokens / chunks)
    kv = written * (1 + (chunks - 1) / 2)
    layout = ref._parallelism(a.parallelism)
    moved = ref.F.bytes_per_unit(wafer, layout, pool_units, chunks * dense, chunks * touched, kv, model.kv_shards)
    return tokens * ref.flops_per_token(model, cache_read + tokens / 2), moved, written


def served(point: Point) -> dict:
    p = evaluate_point(point)
    assume(p["replica_fits"] and p["turn_time_s"] is not None)  # None: not served (NaN)
    return p


@settings(max_examples=300)
@given(models, units_, workloads, isls, st.integers(1, 2048), bits, bits, disaggregated())
def test_both_pools_respect_compute_bandwidth_capacity_and_littles_law(model, unit, workload, isl, r, wb, kb, a):
    point = Point(model, unit, workload, isl, None, r, wb, kb, a)
    p = served(point)
    n = p["admitted_requests"]
    turn = p["turn_time_s"] * n / r  # the turn without the wait for a KV slot
    prompts = n / turn  # prompts per second one decode replica takes in, so the pool serves
    pre_unit, pool_units, pool = pool_of(point, p)
    assert pool_units >= 1 and pool > 0
    flops, moved, sent = prompt_work(point, pre_unit, pool_units)
    pool_peak = pool * pool_units * ref.compute_peak(pre_unit, wb)
    assert prompts * flops <= pool_peak * a.mfu_prefill * SLACK, "the prefill pool above its compute"
    pool_bandwidth = pool * pre_unit.memory_bw_tbs * 1e12 * a.memory_bw_efficiency
    assert prompts * moved <= pool_bandwidth * SLACK, "the prefill pool above its memory bandwidth"
    # The KV of every prompt crosses the narrower side's links, one transfer at a time.
    together = pool_units + p["units_per_replica"] if a.prefill_hardware == "same" else math.inf
    link_p, link_d = (
        ref.F.transfer_link(u.kind == "wafer", (u.scaleup_link_gbs_per_dir or 0) * 1e9, u.scaleup_domain or 0,
                            together, a.scaleout_bw_gbs * 1e9)
        for u in (pre_unit, unit)
    )  # fmt: skip
    link = min(pool_units * link_p, p["units_per_replica"] * link_d)
    assert prompts * sent <= link * SLACK, "the KV link above its bandwidth"
    # A prefill replica holds the weights and one prompt's KV.
    capacity = pre_unit.memory_gb * 1e9 * ref.usable_fraction(pre_unit, a)
    dense, experts = ref.weight_split(model, wb)
    held = ref.F.bytes_per_unit(
        pre_unit.kind == "wafer", ref._parallelism(a.parallelism), pool_units, dense, experts,
        ref.kv_bytes_per_request(model, isl, kb), model.kv_shards,
    )  # fmt: skip
    assert held <= capacity * SLACK
    # The decode replica: its decode FLOPs and bytes within its own units.
    decode_flops = n * point.osl * ref.flops_per_token(model, isl + point.osl / 2, decode=True)
    drafted, _, _ = ref.speculation(model, unit, a)
    if drafted == 0:
        units = p["units_per_replica"]
        assert decode_flops / turn <= units * ref.compute_peak(unit, wb) * a.mfu_decode * SLACK
    # Little's law, per token of a turn; the first token after the prompt's prefill and transfer.
    assert math.isclose(p["throughput_tps"] * p["turn_time_s"] / (isl + point.osl), r, rel_tol=1e-9)
    assert p["ttft_s"] * SLACK >= p["ttft_bound_s"] >= 0
    assert p["bound_by"] in range(4)
    tokens = dict(zip(("cache_read", "cache_write", "input"), ref.input_split(isl, workload)), output=point.osl)
    billed = sum((p["cost_per_mtok_by_type_usd"][t] or 0.0) * tokens[t] / 1e6 for t in tokens)
    assert abs(billed - p["cost_per_turn_usd"]) <= 1e-9 * p["cost_per_turn_usd"]


@settings(max_examples=200)
@given(models, units_, workloads, isls, st.integers(1, 1024), st.integers(1, 1024), bits, bits,
       disaggregated(pool=None))  # fmt: skip
def test_more_load_or_a_smaller_pool_never_makes_a_fixed_deployment_faster(
    model, unit, workload, isl, r1, r2, wb, kb, a
):
    lo, hi = sorted((r1, r2))
    big = served(Point(model, unit, workload, isl, None, hi, wb, kb, a))
    _, pool_units, pool = pool_of(Point(model, unit, workload, isl, None, hi, wb, kb, a), big)
    fixed = a.model_copy(
        update={"replica_units": big["units_per_replica"], "prefill_units": pool_units, "prefill_replicas": pool}
    )
    small = evaluate_point(Point(model, unit, workload, isl, None, lo, wb, kb, fixed))
    large = evaluate_point(Point(model, unit, workload, isl, None, hi, wb, kb, fixed))
    fewer = evaluate_point(
        Point(model, unit, workload, isl, None, hi, wb, kb, fixed.model_copy(update={"prefill_replicas": pool / 3}))
    )
    for name in ("ttft_s", "decode_step_s", "turn_time_s", "ttft_bound_s"):
        assert large[name] >= small[name] / SLACK, f"{name}: R={hi} {large[name]:.4g} < R={lo} {small[name]:.4g}"
        assert fewer[name] >= large[name] / SLACK, f"{name}: a third of the pool is faster"
    assert math.isclose(large["throughput_tps"], big["throughput_tps"], rel_tol=1e-9)  # the same deployment
    assert fewer["throughput_tps"] <= large["throughput_tps"] * SLACK


@settings(max_examples=150)
@given(models, units_, workloads, isls, st.integers(1, 2048), bits, bits, disaggregated(), serving_efficiencies())
def test_bounds_are_the_same_under_every_profile_and_never_beaten(model, unit, workload, isl, r, wb, kb, a, other):
    p = served(Point(model, unit, workload, isl, None, r, wb, kb, a))
    moved = evaluate_point(Point(model, unit, workload, isl, None, r, wb, kb, a.model_copy(update=other)))
    for name in ("interactivity_bound_tps", "throughput_bound_tps", "ttft_bound_s"):
        assert moved[name] == p[name] or moved["turn_time_s"] is None, name
    assert p["interactivity_tps"] <= p["interactivity_bound_tps"] * SLACK
    assert p["throughput_tps"] <= p["throughput_bound_tps"] * SLACK
    peak = evaluate_point(Point(model, unit, workload, isl, None, r, wb, kb, at_peak(a)))
    assert math.isclose(peak["throughput_tps"], p["throughput_bound_tps"], rel_tol=1e-9)


@settings(max_examples=200)
@given(models, units_, workloads, isls, st.integers(1, 2048), bits, bits, settings_())
def test_taking_the_prefills_off_a_replica_never_slows_its_decode(model, unit, workload, isl, r, wb, kb, a):
    colocated = served(Point(model, unit, workload, isl, None, r, wb, kb, a))
    fixed = a.model_copy(update={"replica_units": colocated["units_per_replica"], "serving": "disaggregated"})
    alone = served(Point(model, unit, workload, isl, None, r, wb, kb, fixed))
    assert alone["interactivity_tps"] >= colocated["interactivity_tps"] / SLACK


def test_a_wafer_decode_fed_by_gpu_prefill_is_priced_over_both_fleets(catalog, agentic):
    """The mixed fleet: gpt-oss-120b decoded on WSE-3 systems, its prompts prefilled on B200s.
    Its bill is the wafers' plus the GPUs' the balanced pool needs; its decode runs at the
    wafers' decode-only speed; its first token waits for the GPUs' prefill and the KV's trip."""
    profile = catalog.profile("calibrated").parameters
    model, wse, b200 = catalog.model("gpt-oss-120b"), catalog.get_hardware("wse3"), catalog.get_hardware("b200")
    mixed = Assumptions(**{**profile, "serving": "disaggregated", "prefill_hardware": "b200"})
    same = mixed.model_copy(update={"prefill_hardware": "same"})
    point = Point(model, wse, agentic, 96_300, None, 64, 4.25, 16, mixed)
    p = evaluate_point(point)
    wafers = evaluate_point(point.at(assumptions=same))
    _, gpus, pool = pool_of(point, p)
    assert gpus == ref.F.units_needed(False, 0, *ref.weight_split(model, 4.25),
                                      ref.kv_bytes_per_request(model, 96_300, 16), b200.memory_gb * 1e9 * 0.9, model.kv_shards)  # fmt: skip
    gpu_rate = gpus * unit_usd_per_hour(b200, mixed)
    assert math.isclose(p["usd_per_hour"], p["units_per_replica"] * 41.96 + pool * gpu_rate, rel_tol=1e-12)
    # Same decode replica, same decode speed: only the prefill moved.
    assert p["units_per_replica"] == wafers["units_per_replica"]
    assert math.isclose(p["interactivity_tps"], wafers["interactivity_tps"], rel_tol=1e-12)
    assert p["ttft_s"] > wafers["ttft_s"]  # B200s prefill slower than wafers, and the KV travels
    # At R = 64 the KV's trip paces the turns: one B200's 50 GB/s NIC carries each prompt's KV
    # (4.3k new tokens) to the wafers one after another, so requests wait for it, and the
    # balanced pool is as many B200s as the prompts need over that longer turn.
    transfer = transfer_time(point, gpus, p)
    assert p["bound_by"] == 3  # link
    assert math.isclose(p["turn_time_s"] - mixed.ttft_overhead_s, 64 * transfer, rel_tol=1e-9)
    cheap = evaluate_point(point.at(concurrency=8))
    assert cheap["bound_by"] != 3 and cheap["ttft_s"] < p["ttft_s"]


def transfer_time(point: Point, pool_units: int, p: dict) -> float:
    """A prompt's KV from a GPU prefill replica to the wafers: the GPUs' NICs are the narrower side."""
    a = point.assumptions
    _, _, sent = prompt_work(point, ref.prefill_unit(point), pool_units)
    link = min(pool_units * a.scaleout_bw_gbs * 1e9, p["units_per_replica"] * 150e9)
    return sent / link + a.allreduce_latency_s


def test_a_catalog_that_redefines_the_pool_unit_is_refused_and_nothing_written(tmp_path, monkeypatch, capsys):
    """A prefill pool runs on the shipped record: a catalog file that redefines that unit would
    make the pool and the sweep's own record of it disagree, so the point and the sweep refuse."""
    from engine.interfaces.cli import main

    monkeypatch.chdir(tmp_path)
    catalog = tmp_path / "cheap-b200.yaml"
    catalog.write_text("hardware:\n  b200: {inherits: b200, usd_per_hour: {on_demand: 1.0}}\n")
    argv = ["point", "--model", "gpt-oss-120b", "--hardware", "wse3", "--catalog", str(catalog)]
    assert main([*argv, "--set", "serving=disaggregated", "--set", "prefill_hardware=wse3"]) == 0  # left as shipped
    capsys.readouterr()
    assert main([*argv, "--set", "serving=disaggregated", "--set", "prefill_hardware=b200"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prefill_hardware: 'b200' is redefined by a catalog file" in err, err
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        "name: mixed\nmodels: [gpt-oss-120b]\nhardware: [wse3, b200]\n"
        "axes: {isl: [8k], concurrency: [8], serving: [disaggregated], prefill_hardware: [same, b200]}\n"
    )
    assert main(["run", str(spec), "--catalog", str(catalog)]) == 2
    assert "axes.prefill_hardware: 'b200' is redefined" in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()


@settings(max_examples=60)
@given(model=models, unit=units_, workload=workloads, ratio=st.floats(5e-324, 1e-300), wb=bits)
def test_a_vanishing_pool_serves_nothing_and_costs_without_bound(model, unit, workload, ratio, wb):
    """A pool ratio so small the turn overflows: throughput 0, cost per token infinite (not an error)."""
    a = Assumptions(serving="disaggregated", prefill_replicas=ratio)
    p = ref.compose_point(Point(model, unit, workload, 1e3, None, 8, wb, 16, a))
    assume(p["replica_fits"] and not math.isnan(p["throughput_tps"]))
    assert p["throughput_tps"] <= 8 / 1e290
    assert p["cost_per_mtok_usd"] > 1e280
