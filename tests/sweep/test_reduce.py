"""Reductions inside a sweep: a reduced cube equals reducing the full cube (argmin and frontier
form, any dims, any chunking), and the store's guarantees hold for it (resume after SIGKILL,
processes, rerun, bad specs write nothing)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.analysis.decisions import cheapest
from engine.interfaces.cli import main
from engine.model.variables import VARIABLES
from engine.sweep.blocks import evaluate_eager
from engine.sweep.cube import CubeSchema
from engine.sweep.plan import make_plan
from engine.sweep.reduce import ReducedSchema, combine, reduce_eager
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from tests.sweep_helpers import BASE, kill_after, same_cube, write_spec
from tests.sweep_helpers import run_cli as _run_cli

DIMS = ("model", "isl", "concurrency", "weight_bits", "kv_bits", "hardware", "replica_units")


def spec_with(**reduce) -> dict:
    spec = copy.deepcopy(BASE)
    spec["reduce"].update(reduce)
    return spec


def full_cube(plan):
    """The same grid written in full (every variable), evaluated eagerly."""
    spec = dataclasses.replace(plan.spec, reduction=None, variables=VARIABLES)
    return evaluate_eager(dataclasses.replace(plan, spec=spec, schema=CubeSchema(spec)))


def assert_same(reduced: xr.Dataset, expected: xr.Dataset, names) -> None:
    for name in names:
        got, want = reduced[name].transpose(*expected[name].dims).values, expected[name].values
        if got.dtype.kind == "O" or want.dtype.kind == "O":
            clean = np.vectorize(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            np.testing.assert_array_equal(clean(got), clean(want), err_msg=name)
        else:
            np.testing.assert_allclose(got.astype(float), want.astype(float), rtol=1e-12, err_msg=name)


@settings(max_examples=25)
@given(
    over=st.lists(st.sampled_from(DIMS), min_size=1, max_size=4, unique=True),
    target=st.sampled_from([10.0, 50.0, 200.0, 1000.0]),
    chunks=st.fixed_dictionaries({"isl": st.integers(1, 3), "concurrency": st.integers(1, 4)}),
    frontier=st.booleans(),
)
def test_a_reduction_equals_reducing_the_full_cube(over, target, chunks, frontier):
    levels = [20.0, 100.0, 400.0]
    spec = spec_with(over=over, where={"interactivity_tps": {"ge": target}})
    spec["chunks"] = chunks
    if frontier:
        spec["reduce"]["frontier"] = {"speed": "interactivity_tps", "levels": levels}
    plan = make_plan(parse_spec(spec))
    reduced = reduce_eager(plan)
    full = full_cube(plan)
    carried = ["ttft_s", "units_per_replica", "interactivity_tps"]
    for i, level in enumerate(levels if frontier else [None]):
        bound = target if level is None else max(target, level)
        # ttft and units conditions always hold where a replica fits: they make cheapest() report them.
        where = {"interactivity_tps": {"ge": bound}, "ttft_s": {"ge": 0.0}, "units_per_replica": {"ge": 0}}
        expected = cheapest(full, where=where, over=over)
        got = reduced.isel(min_interactivity_tps=i) if level is not None else reduced
        assert_same(got, expected, ["cost_per_mtok_output_usd", *over, *carried])


def test_a_reduction_finds_something_and_leaves_the_rest_missing():
    plan = make_plan(parse_spec(spec_with(where={"interactivity_tps": {"ge": 300}})))
    reduced = reduce_eager(plan)
    cost = reduced["cost_per_mtok_output_usd"]
    assert cost.notnull().any() and cost.isnull().any()  # a real search, not all or nothing
    missing = cost.isnull()
    assert (reduced["concurrency"].isnull() == missing).all()
    assert ((reduced["interactivity_tps"] >= 300) | missing).all()
    assert reduced.sizes == {"model": 2, "isl": 3, "hardware": 3}


def test_costs_not_nan_where_nothing_fits_are_constrained_to_fitting_replicas():
    """units_needed is 0 (not NaN) where no replica fits: the reduction adds the fit condition."""
    spec = spec_with(min="units_needed", over=["concurrency", "kv_bits"], where={}, keep=[])
    del spec["axes"]["replica_units"]
    spec["axes"]["isl"] = {"geomspace": ["1k", "10M", 3]}
    plan = make_plan(parse_spec(spec))
    reduced = reduce_eager(plan)
    expected = cheapest(full_cube(plan), cost="units_needed", over=["concurrency", "kv_bits"])
    assert_same(reduced, expected, ["units_needed", "concurrency", "kv_bits"])
    assert (reduced["units_needed"] > 0).any() and reduced["units_needed"].isnull().any()
    assert ["replica_fits", "eq", 1.0] in reduced.attrs["reduction"]["where"]


@pytest.fixture(scope="module")
def many_chunks():
    spec = spec_with(over=["replica_units", "weight_bits", "kv_bits"])
    spec["chunks"] = {"isl": 1, "model": 1, "concurrency": 1}
    return spec


@pytest.fixture(scope="module")
def eager(many_chunks):
    return reduce_eager(make_plan(parse_spec(many_chunks)))


def test_run_writes_the_reduced_cube(tmp_path, many_chunks, eager, capsys):
    spec_path = write_spec(tmp_path, many_chunks)
    output = tmp_path / "reduced.zarr"
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    assert "24/24 output chunks computed" in capsys.readouterr().out
    ds = engine.open_cube(output)
    assert int(ds.attrs["complete"]) == 1
    same_cube(ds, eager)
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    assert "already complete" in capsys.readouterr().out
    sel = ["--sel", "model=gpt-oss-120b", "--sel", "isl=1000", "--sel", "concurrency=8"]
    assert main(["slice", str(output), "--var", "weight_bits", *sel, "--csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4 and "hardware" in rows[0]
    winners = eager["weight_bits"].sel(model="gpt-oss-120b", isl=1000, concurrency=8).values
    assert [float(r.split(",")[-1]) for r in rows[1:]] == pytest.approx(list(winners), nan_ok=True)


def test_plan_shows_the_reduced_output(tmp_path, many_chunks, capsys):
    spec_path = write_spec(tmp_path, many_chunks)
    assert main(["plan", str(spec_path), "--output", str(tmp_path / "x.zarr")]) == 0
    out = capsys.readouterr().out
    plan = make_plan(parse_spec(many_chunks))
    cells = ReducedSchema(plan).n_points
    assert cells == 2 * 3 * 4 * 3
    assert f"= {cells:,} cells" in out and "24 output chunks" in out
    assert "min cost_per_mtok_output_usd over replica_units, weight_bits, kv_bits" in out
    assert not (tmp_path / "x.zarr").exists()


def test_sigkill_mid_reduction_then_resume_gives_the_same_cube(tmp_path, many_chunks, eager):

    spec_path = write_spec(tmp_path, many_chunks)
    output = tmp_path / "killed.zarr"
    recorded = kill_after(_run_cli(spec_path, output, "--workers", "1"), output, blocks=8)
    assert 0 < recorded < 24, "the run was not killed mid-way"
    resumed = _run_cli(spec_path, output)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"{24 - recorded}/24 output chunks computed" in out
    same_cube(engine.open_cube(output), eager)


def test_processes_give_the_same_reduced_cube(tmp_path, many_chunks, eager):
    from engine.sweep.cluster import resolve

    output = tmp_path / "procs.zarr"
    run_sweep(make_plan(parse_spec(many_chunks)), output, resolve("processes", 2), progress=False)
    same_cube(engine.open_cube(output), eager)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min": "cost_per_mtok"}, "reduce.min: unknown variable 'cost_per_mtok'"),
        ({"min": "cost_per_mtok_by_type_usd"}, "one value per token type"),
        ({"over": ["osl"]}, "reduce.over: 'osl' is not a dim of this sweep"),
        ({"over": []}, "reduce.over: list at least one dim"),
        ({"where": {"ttft_s": {"below": 2}}}, "unknown comparison 'below'"),
        ({"where": {"ttft_s": {"le": "soon"}}}, "reduce.where"),
        ({"frontier": {"levels": [100, 10]}}, "strictly increasing"),
        ({"frontier": {"speed": "ttft", "levels": [1]}}, "unknown variable 'ttft'"),
        ({"sort": "yes"}, "reduce.sort: unknown key"),
    ],
)
def test_bad_reductions_are_one_line_and_write_nothing(tmp_path, capsys, change, message):
    spec_path = write_spec(tmp_path, spec_with(**change))
    output = tmp_path / "bad.zarr"
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not output.exists()


FOLDED = ("cost_per_mtok_output_usd", "cost_per_mtok_usd", "usd_per_hour", "ttft_s", "interactivity_tps",
          "units_per_replica", "admitted_requests", "turn_time_s", "bound_by")  # fmt: skip


#: Serving settings that change which formulas a point takes (and so the search's bounds).
SETTINGS = {
    "parallelism": st.sampled_from(["tp", "tp-ep", "dp-ep"]),
    "prefill_model": st.sampled_from(["physics", "calculator"]),
    "cache_tier": st.sampled_from(["hbm", "host"]),
    "wafer_batching": st.sampled_from(["physics", "single_stream", "calculator"]),
    "speculative": st.sampled_from(["catalog", "off"]),
    "spec_draft_tokens": st.sampled_from([0, 3]),
    "ttft_overhead_s": st.sampled_from([0.0, 0.03]),
    "prefill_burstiness": st.sampled_from([0.0, 1.0]),
    "profile": st.sampled_from(["roofline", "calibrated"]),
    "workload": st.sampled_from(["agentic-coding", "chat"]),
    "serving": st.sampled_from(["colocated", "disaggregated"]),
    "prefill_hardware": st.sampled_from(["same", "b200", "wse3"]),
    "prefill_replicas": st.sampled_from([0.0, 0.5]),
}


@settings(max_examples=40)
@given(
    over=st.lists(st.sampled_from(DIMS), min_size=1, max_size=4, unique=True),
    # usd_per_hour: many ties; the three costs per token or turn: the ones the kernel prunes on
    cost=st.sampled_from(
        ["cost_per_mtok_output_usd", "cost_per_mtok_usd", "cost_per_turn_usd", "usd_per_hour", "ttft_s"]
    ),
    conditions=st.dictionaries(
        st.sampled_from((*FOLDED, "decode_step_s")),
        st.fixed_dictionaries(
            {}, optional={op: st.sampled_from([0, 0.02, 1, 2, 8, 30.0, 1e3]) for op in ("ge", "gt", "le", "lt", "eq")}
        ).filter(bool),
        max_size=3,
    ),
    keep=st.lists(st.sampled_from(FOLDED), max_size=3, unique=True),
    frontier=st.sampled_from([None, "interactivity_tps", "throughput_tps"]),
    chunks=st.fixed_dictionaries({"isl": st.integers(1, 3), "concurrency": st.integers(1, 4)}),
    parameters=st.fixed_dictionaries({}, optional=SETTINGS),
    # fixed replicas too small, just large enough and far too large (the kernel's bounds on a
    # fixed replica and its cuts over R), the layouts as an axis, another fleet
    replicas=st.sampled_from([[0, 8], [0, 1, 2, 8, 64], [1, 2, 64]]),
    concurrency=st.sampled_from([[1, 8, 64, 256], [1, 2, 3, 16, 1024]]),
    layouts=st.sampled_from([None, ["tp", "dp-ep"], ["dp-ep", "tp-ep"]]),
    fleet=st.sampled_from([None, (["deepseek-v3", "qwen3-32b"], ["gb200", "mi300x", "wse3"])]),
)
def test_the_fused_search_kernel_equals_the_unfused_reduction(
    over, cost, conditions, keep, frontier, chunks, parameters, replicas, concurrency, layouts, fleet
):
    """Output chunk by output chunk, what the fused kernel finds (best cost, tie-breaking rank,
    carried values; per level, the best at least as fast) equals the kernels-then-mask-then-fold
    path exactly, whatever is minimised, constrained or kept and whichever serving settings
    apply: the points the search kernel skips, as a run chains its blocks, could not have won."""
    from engine.sweep.reduce import ReducedSchema, block_partial, chain_partial, chains, suffix_best
    from engine.sweep.searchable import fusable

    spec = spec_with(min=cost, over=over, where=conditions, keep=[k for k in keep if k != cost])
    spec["chunks"] = chunks
    spec["parameters"] = {**spec["parameters"], **parameters}
    spec["axes"].update(replica_units=replicas, concurrency=concurrency)
    if layouts:
        spec["axes"]["parallelism"] = layouts
        spec["parameters"].pop("parallelism", None)
    if fleet:
        spec["models"], spec["hardware"] = fleet
    if frontier:
        levels = [20.0, 100.0, 400.0] if frontier == "interactivity_tps" else [10.0, 1e3, 1e5]
        spec["reduce"]["frontier"] = {"speed": frontier, "levels": levels}
    plan = make_plan(parse_spec(spec))
    assert fusable(plan.spec)
    found = 0
    for blocks in ReducedSchema(plan).groups().values():
        fused = suffix_best(combine(*(chain_partial(plan, chain) for chain in chains(blocks))))
        unfused = suffix_best(combine(*(block_partial(plan, b, fused=False) for b in blocks)))
        np.testing.assert_array_equal(fused.cost, unfused.cost)
        np.testing.assert_array_equal(fused.rank, unfused.rank)
        assert fused.values.keys() == unfused.values.keys()
        for name, values in unfused.values.items():
            np.testing.assert_array_equal(fused.values[name], values, err_msg=name)
        found += int(np.isfinite(fused.cost).sum())
    assert found or conditions  # with no condition something always qualifies


@pytest.mark.parametrize("frontier", [False, True])
def test_the_search_kernel_skips_points_that_cannot_win(frontier):
    """On the shipped kind of search (cheapest per output token at an interactivity floor, or a
    frontier of floors), the kernel leaves many points once a bound shows they lose, and the
    result is still the unfused reduction's, exactly."""
    from engine.sweep.reduce import block_partial, suffix_best

    spec = copy.deepcopy(BASE)
    spec["axes"]["concurrency"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    spec["axes"]["replica_units"] = [0, 1, 8]
    if frontier:
        spec["reduce"]["frontier"] = {"speed": "interactivity_tps", "levels": [30.0, 100.0, 300.0]}
    plan = make_plan(parse_spec(spec))
    blocks = list(plan.blocks())
    fused = suffix_best(combine(*(block_partial(plan, b, fused=True) for b in blocks)))
    unfused = suffix_best(combine(*(block_partial(plan, b, fused=False) for b in blocks)))
    np.testing.assert_array_equal(fused.cost, unfused.cost)
    np.testing.assert_array_equal(fused.rank, unfused.rank)
    assert unfused.skipped == 0
    share = 0.1 if frontier else 0.3  # a frontier point may reach a level no one has reached yet
    assert share * fused.points < fused.skipped < fused.points, (fused.skipped, fused.points)


@pytest.mark.slow
def test_the_plan_estimates_a_search_within_a_tolerant_factor(tmp_path, capsys):
    """plan times a few blocks spread over the sweep (blocks differ in cost) and scales their
    cost per point; on the shipped search sweep its estimate lands near the run's time. Tolerant
    (a factor of 2 either way): the bench reports the ratio itself (python -m bench --search)."""
    import re

    output = tmp_path / "search.zarr"
    assert main(["plan", "sweeps/wse_vs_gpu_search.yaml", "--output", str(output), "--workers", "2"]) == 0
    estimate = float(re.search(r"estimated\s+([0-9,.]+) s", capsys.readouterr().out).group(1).replace(",", ""))
    assert main(["run", "sweeps/wse_vs_gpu_search.yaml", "--output", str(output), "--no-progress", "--workers", "2",
                 "--no-figures"]) == 0  # fmt: skip
    took = float(re.search(r"computed in ([0-9.]+) s", capsys.readouterr().out).group(1))
    assert 0.5 < estimate / took < 2.0, (estimate, took)


def test_cuts_over_concurrency_leave_a_wide_search_exact():
    """A search as users run them (replica sizes from 1 unit to 64, layouts, MoE, MLA and dense
    models, wafers and GPUs, a dense concurrency axis): the kernel's cuts over R and its fixed
    replica bounds leave nine points in ten after one comparison, and the answer is the unfused
    reduction's, exactly."""
    from engine.sweep.reduce import ReducedSchema, block_partial, chain_partial, chains

    spec = copy.deepcopy(BASE)
    spec["models"] = ["gpt-oss-120b", "llama-3.1-70b", "deepseek-v3", "qwen3-32b"]
    spec["hardware"] = ["wse3", "h100-sxm", "b200", "gb200", "mi300x"]
    spec["axes"].update(
        isl={"geomspace": ["1k", "300k", 4]},
        concurrency=[1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256, 512],
        replica_units=[0, 1, 2, 4, 8, 16, 64],
        parallelism=["tp", "dp-ep"],
    )
    plan = make_plan(parse_spec(spec))
    points = skipped = 0
    for blocks in ReducedSchema(plan).groups().values():
        fused = combine(*(chain_partial(plan, chain) for chain in chains(blocks)))
        unfused = combine(*(block_partial(plan, b, fused=False) for b in blocks))
        np.testing.assert_array_equal(fused.cost, unfused.cost)
        np.testing.assert_array_equal(fused.rank, unfused.rank)
        for name, values in unfused.values.items():
            np.testing.assert_array_equal(fused.values[name], values, err_msg=name)
        points, skipped = points + fused.points, skipped + fused.skipped
    assert np.isfinite(fused.cost).any()
    assert skipped > 0.9 * points, (skipped, points)
