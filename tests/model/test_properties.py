"""Properties the cost model must have whatever the inputs (catalog models and hardware)."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.axes import AXES
from engine.model.assumptions import Assumptions
from engine.model.catalog import load_catalog
from engine.model.evaluate import evaluate_point
from engine.model.point import Point
from tests import strategies as s

CATALOG = load_catalog()
models = st.sampled_from(sorted(CATALOG.models)).map(CATALOG.model)
units_ = st.sampled_from(sorted(CATALOG.hardware)).map(CATALOG.get_hardware)
workloads = st.sampled_from(sorted(CATALOG.workloads)).map(CATALOG.workload)
isls = st.floats(1e3, 1e7, allow_nan=False)


@settings(max_examples=200)
@given(models, units_, workloads, isls, st.integers(1, 512), st.integers(1, 512), s.weight_bits, s.kv_bits)
def test_cost_per_mtok_non_increasing_in_concurrency_at_fixed_units(model, unit, workload, isl, r1, r2, wbits, kbits):
    lo, hi = sorted((r1, r2))
    ideal_compute = Assumptions(mfu_decode=1.0, mfu_prefill=1.0)
    a = evaluate_point(Point(model, unit, workload, isl, None, lo, wbits, kbits, ideal_compute))
    b = evaluate_point(Point(model, unit, workload, isl, None, hi, wbits, kbits, ideal_compute))
    assume(a["replica_fits"] and b["replica_fits"] and a["units_needed"] == b["units_needed"])
    # Keep to memory-bound decode: bytes per step / bandwidth above FLOPs per step / peak.
    if unit.kind != "wafer":
        from engine.model import reference as ref

        for p, r in ((a, lo), (b, hi)):
            mean = isl + p["osl"] / 2
            bytes_ = ref.weights_touched_bytes(model, r, wbits) + r * ref.kv_bytes_per_request(model, mean, kbits)
            flops = r * ref.flops_per_token(model, mean, decode=True)
            bw = unit.memory_bw_tbs * 1e12 * 0.8
            assume(bytes_ / bw >= flops / ref.compute_peak(unit, wbits))
    assert b["cost_per_mtok_usd"] <= a["cost_per_mtok_usd"] * (1 + 1e-12)


layouts = st.sampled_from(AXES["parallelism"].choices).map(lambda p: Assumptions(parallelism=p, context_limit="none"))


def units(values) -> float:
    """Units needed, with "no number of units holds it" (0) counted as infinitely many."""
    return values["units_needed"] or math.inf


@settings(max_examples=200)
@given(models, units_, isls, st.integers(1, 2048), s.weight_bits, s.weight_bits, s.kv_bits, s.kv_bits, layouts)
def test_more_bits_never_fewer_units(model, unit, isl, r, w1, w2, k1, k2, layout):
    workload = CATALOG.workload("agentic-coding")
    (wlo, whi), (klo, khi) = sorted((w1, w2)), sorted((k1, k2))
    small = evaluate_point(Point(model, unit, workload, isl, None, r, wlo, klo, layout))
    large = evaluate_point(Point(model, unit, workload, isl, None, r, whi, khi, layout))
    assert units(large) >= units(small)


@settings(max_examples=200)
@given(models, units_, isls, isls, st.integers(1, 2048), s.weight_bits, s.kv_bits, layouts)
def test_longer_isl_never_fewer_units(model, unit, i1, i2, r, wbits, kbits, layout):
    workload = CATALOG.workload("agentic-coding")
    lo, hi = sorted((i1, i2))
    long = evaluate_point(Point(model, unit, workload, hi, None, r, wbits, kbits, layout))
    short = evaluate_point(Point(model, unit, workload, lo, None, r, wbits, kbits, layout))
    assert units(long) >= units(short)


@settings(max_examples=100)
@given(models, units_, workloads, isls, st.integers(1, 1024), s.weight_bits, s.kv_bits)
def test_cost_by_type_adds_up_to_the_cost_of_a_turn(model, unit, workload, isl, r, wbits, kbits):
    """Charging each token type its share of the time recovers the whole bill."""
    from engine.model.reference import input_split

    p = evaluate_point(Point(model, unit, workload, isl, None, r, wbits, kbits, Assumptions(context_limit="none")))
    assume(p["replica_fits"])
    tokens = dict(zip(("cache_read", "cache_write", "input"), input_split(isl, workload)), output=p["osl"])
    billed = sum((p["cost_per_mtok_by_type_usd"][t] or 0.0) * tokens[t] / 1e6 for t in tokens)
    assert abs(billed - p["cost_per_turn_usd"]) <= 1e-9 * p["cost_per_turn_usd"]


moe_models = st.sampled_from(sorted(n for n, m in CATALOG.models.items() if m.experts)).map(CATALOG.model)
gpus = st.sampled_from(sorted(n for n, h in CATALOG.hardware.items() if h.kind == "gpu")).map(CATALOG.get_hardware)


@settings(max_examples=150)
@given(moe_models, gpus, isls, st.integers(1, 4096), st.integers(2, 72), st.integers(2, 72), s.weight_bits, s.kv_bits)
def test_a_data_parallel_batch_spread_over_more_units_never_decodes_slower(model, unit, isl, r, n1, n2, wbits, kbits):
    """Attention data parallel, experts expert parallel (``dp-ep``): each unit holds its share of the
    requests, so a fixed batch spread over more units (within one scale-up domain) streams fewer
    bytes, computes less and dispatches fewer tokens to the experts per unit. (Charging every unit
    the whole batch's dispatch made a wide replica slower the wider it was.)"""
    lo, hi = sorted((n1, n2))
    assume(hi <= (unit.scaleup_domain or 0))
    workload = CATALOG.workload("chat")
    few, many = (
        evaluate_point(Point(model, unit, workload, isl, None, r, wbits, kbits,
                             Assumptions(parallelism="dp-ep", replica_units=n, context_limit="none")))
        for n in (lo, hi)
    )  # fmt: skip
    assume(few["replica_fits"] and few["admitted_requests"] == r)
    assert many["interactivity_bound_tps"] >= few["interactivity_bound_tps"] * (1 - 1e-9)
