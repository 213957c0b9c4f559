"""Decisions from cubes: the frontier and the argmin against brute force on random cubes, the
`best` command, the frontier and advantage figures (the advantage ratio against pointwise minima)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.analysis.decisions import cheapest, frontier
from engine.interfaces import figures
from engine.interfaces.cli import main
from tests.sweep_helpers import write_spec

DIMS = {"hardware": ["a", "b"], "concurrency": [1, 4, 16], "replica_units": [0, 8]}


@st.composite
def random_cubes(draw):
    shape = tuple(len(v) for v in DIMS.values())
    n = int(np.prod(shape))
    values = st.one_of(st.just(np.nan), st.floats(0.01, 100.0))
    cost = np.array(draw(st.lists(values, min_size=n, max_size=n))).reshape(shape)
    speed = np.array(draw(st.lists(st.floats(1.0, 1000.0), min_size=n, max_size=n))).reshape(shape)
    fits = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))).reshape(shape)
    dims = tuple(DIMS)
    return xr.Dataset(
        {"cost_per_mtok_output_usd": (dims, cost), "interactivity_tps": (dims, speed), "replica_fits": (dims, fits)},
        coords=DIMS,
    )


@settings(max_examples=150)
@given(ds=random_cubes(), target=st.floats(1.0, 1000.0))
def test_cheapest_equals_brute_force(ds, target):
    best = cheapest(ds, where={"interactivity_tps": {"ge": target}}, by=["hardware"])
    for h in DIMS["hardware"]:
        candidates = []
        for r, n in itertools.product(DIMS["concurrency"], DIMS["replica_units"]):
            point = ds.sel(hardware=h, concurrency=r, replica_units=n)
            cost = float(point["cost_per_mtok_output_usd"])
            if bool(point["replica_fits"]) and float(point["interactivity_tps"]) >= target and not np.isnan(cost):
                candidates.append((cost, r, n))
        got = best.sel(hardware=h)
        if not candidates:
            assert np.isnan(float(got["cost_per_mtok_output_usd"]))
            continue
        cost, r, n = min(candidates)
        assert float(got["cost_per_mtok_output_usd"]) == cost
        chosen = ds.sel(hardware=h, concurrency=got["concurrency"].item(), replica_units=got["replica_units"].item())
        assert float(chosen["cost_per_mtok_output_usd"]) == cost  # a winner (ties may pick another with equal cost)


@settings(max_examples=150)
@given(ds=random_cubes())
def test_frontier_equals_brute_force(ds):
    table = frontier(ds, by=["hardware"])
    for h in DIMS["hardware"]:
        points = []
        for r, n in itertools.product(DIMS["concurrency"], DIMS["replica_units"]):
            p = ds.sel(hardware=h, concurrency=r, replica_units=n)
            if bool(p["replica_fits"]) and not np.isnan(float(p["cost_per_mtok_output_usd"])):
                points.append((float(p["cost_per_mtok_output_usd"]), float(p["interactivity_tps"]), r, n))
        optimal = {
            (r, n)
            for c, s, r, n in points
            if not any(s2 >= s and c2 < c for c2, s2, _, _ in points)
            and not any(s2 > s and c2 == c for c2, s2, _, _ in points)
        }
        got = table[table["hardware"] == h]
        assert {(int(r), int(n)) for r, n in zip(got["concurrency"], got["replica_units"])} == optimal
        assert (np.diff(got["interactivity_tps"].to_numpy()) >= 0).all()
        assert (np.diff(got["cost_per_mtok_output_usd"].to_numpy()) >= 0).all()  # faster costs more on a frontier


FRONTIER = {
    "name": "frontier",
    "models": ["llama-3.1-70b"],
    "synthetic": {"reference": "deepseek-v3", "params": [300e9, 1.2e12]},
    "hardware": ["wse3", "h100-sxm", "b200"],
    "axes": {
        "isl": [8000, 64000],
        "concurrency": [1, 8, 64],
        "weight_bits": [8],
        "kv_bits": [8],
        "parallelism": ["tp", "dp-ep"],
        "replica_units": [0, 16],
    },
    "parameters": {"workload": "chat", "context_limit": "none"},
}


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frontier")
    assert main(["run", str(write_spec(tmp, FRONTIER)), "--output", str(tmp / "f.zarr"), "--no-progress"]) == 0
    return tmp / "f.zarr"


def test_accessor_and_module_functions_agree(cube):
    ds = engine.open_cube(cube).load()
    where = {"interactivity_tps": {"ge": 20.0}}
    a = ds.tokensweep.cheapest(where=where, by=["hardware", "model", "isl"])
    b = engine.cheapest(ds, where=where, by=["hardware", "model", "isl"])
    xr.testing.assert_identical(a, b)
    assert set(a["parallelism"].values.ravel()) - {np.nan} <= {"tp", "dp-ep"}


def test_best_prints_the_winner_per_hardware_with_units(cube, capsys):
    argv = ["best", str(cube), "--min-interactivity", "20", "--max-ttft", "2s", "--sel", "model=llama-3.1-70b",
            "--sel", "isl=8000"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cost_per_mtok_output_usd [USD/Mtok]" in out and "interactivity_tps [tokens/s]" in out
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["hardware"]: r for r in data["best"]}
    ds = engine.open_cube(cube).load().sel(model="llama-3.1-70b", isl=8000)
    wse = ds.sel(hardware="wse3")
    ok = wse["replica_fits"] & (wse["interactivity_tps"] >= 20) & (wse["ttft_s"] <= 2)
    assert rows["wse3"]["cost_per_mtok_output_usd"] == pytest.approx(
        float(wse["cost_per_mtok_output_usd"].where(ok).min())
    )
    assert data["units"]["ttft_s"] == "s"
    assert main([*argv, "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("hardware,cost_per_mtok_output_usd [USD/Mtok]")


def test_best_never_compares_workloads_and_says_what_it_chose_over(cube, capsys):
    """Model and ISL stay apart (only deployment dims are chosen), the output says so, and a winner
    at the end of a searched axis is flagged."""
    assert main(["best", str(cube), "--min-interactivity", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ds = engine.open_cube(cube)
    assert set(data["per"]) == {"model", "isl", "hardware"}
    assert set(data["minimised_over"]) == set(ds.dims) - {"model", "isl", "hardware", "token_type"}
    assert len(data["best"]) == ds.sizes["model"] * ds.sizes["isl"] * ds.sizes["hardware"]
    top = int(ds["concurrency"].max())
    for row in data["best"]:
        at_top = row["concurrency"] == top
        assert (f"concurrency={top} (max)" in row["at_axis_edge"]) == at_top
        assert "concurrency=1 (min)" not in row["at_axis_edge"]  # one request is no edge: nothing is below it
    assert main(["best", str(cube), "--by", "parallelism", "--json"]) == 0
    assert "parallelism" in json.loads(capsys.readouterr().out)["per"]


def test_frontier_figure_is_drawn(cube, tmp_path):
    out = tmp_path / "frontier.png"
    assert (
        main(["plot", "frontier", str(cube), "--sel", "model=llama-3.1-70b", "--sel", "isl=8000", "-o", str(out)]) == 0
    )
    assert out.stat().st_size > 10_000
    table, fixed = figures.frontier_data(engine.open_cube(cube), {"model": "llama-3.1-70b", "isl": 8000.0})
    assert set(table["hardware"]) <= {"wse3", "h100-sxm", "b200"} and fixed["model"] == "llama-3.1-70b"


def test_advantage_ratio_equals_pointwise_minima(cube, tmp_path):
    ds = engine.open_cube(cube).load()
    ratio = figures.advantage_data(ds, targets=(20.0,))
    cost = ds["cost_per_mtok_output_usd"]
    ok = ds["replica_fits"] & (ds["interactivity_tps"] >= 20.0)
    for model, isl in itertools.product(ds["model"].values, ds["isl"].values):
        allowed = cost.where(ok).sel(model=model, isl=isl)
        wafer = float(allowed.sel(hardware="wse3").min())
        gpu = float(allowed.drop_sel(hardware="wse3").min())
        got = float(ratio.sel(target=20.0, model=model, isl=isl))
        if np.isnan(wafer) and np.isnan(gpu):
            assert np.isnan(got)
        elif np.isnan(gpu):
            assert got == 0.0
        elif np.isnan(wafer):
            assert got == np.inf
        else:
            assert got == pytest.approx(wafer / gpu)
            assert (got < 1) == (wafer < gpu)  # the equal-cost contour separates exactly these points
    out = tmp_path / "advantage.png"
    assert main(["plot", "advantage", str(cube), "--targets", "20,100", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cost", "price"], "--cost: the cube has no variable 'price'"),
        (["--max-ttft", "0ms"], "--max-ttft: must be > 0"),
        (["--by", "isll"], "--by: 'isll' is not a dim of the cube"),
    ],
)
def test_best_errors_are_one_line(cube, capsys, argv, message):
    assert main(["best", str(cube), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
