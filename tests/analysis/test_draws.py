"""Uncertain assumptions and prices as Monte Carlo draws (engine.model.uncertain).

The draw kernels must equal one ordinary kernel call per draw (each with that draw's
assumptions and prices), a variable without the draw dim must be the same in every draw,
and a cube's quantiles must equal a brute-force Monte Carlo in plain numpy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.axes import AXES, NUMERIC_PARAMETERS
from engine.model.core import evaluate_arrays
from engine.model.pricing import price_source
from engine.model.uncertain import NOT_DRAWN, Draws, Uncertain, summarise
from engine.model.variables import VARIABLES
from engine.sweep.blocks import evaluate_eager
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from tests.strategies import assumption_sets, axis, concurrencies, contexts, kv_bits, models, parameter_values
from tests.strategies import weight_bits as bits

DRAWABLE = [n for n in NUMERIC_PARAMETERS if n not in NOT_DRAWN]
N_DRAWS = 3


def per_draw(draws: Draws, hardware, assumptions, d: int):
    """The hardware and assumptions of draw ``d`` as plain records (what one ordinary call takes)."""
    update = {n: float(v[d]) for n, v in draws.values.items() if "." not in n}
    units = []
    for h in hardware:
        changed = h
        for name, values in draws.values.items():
            unit, _, field = name.rpartition(".")
            if unit != h.name:
                continue
            if field == "capex_usd":
                changed = changed.model_copy(update={"capex_usd": float(values[d])})
            else:
                rates = {**changed.usd_per_hour, assumptions.price: float(values[d])}
                changed = changed.model_copy(update={"usd_per_hour": rates})
        units.append(changed)
    return units, assumptions.model_copy(update=update)


@st.composite
def drawn(draw, catalog):
    """Random draws of a few assumptions and of the prices their scenario reads."""
    hardware = [catalog.get_hardware(n) for n in draw(st.lists(st.sampled_from(sorted(catalog.hardware)),
                                                               min_size=1, max_size=3, unique=True))]  # fmt: skip
    assumptions = draw(assumption_sets).model_copy(update={"replica_units": 0})
    names = draw(st.lists(st.sampled_from(DRAWABLE), max_size=4, unique=True))
    values = {n: np.array(draw(st.lists(parameter_values(n), min_size=N_DRAWS, max_size=N_DRAWS)), float)
              for n in names}  # fmt: skip
    for h in hardware:
        prices = st.lists(st.floats(1e-2, 1e7, allow_nan=False), min_size=N_DRAWS, max_size=N_DRAWS)
        if draw(st.booleans()):
            values[f"{h.name}.capex_usd"] = np.array(draw(prices))
        if price_source(h, assumptions.price) == "rental" and draw(st.booleans()):
            values[f"{h.name}.usd_per_hour"] = np.array(draw(prices))
    return hardware, assumptions, Draws(values, N_DRAWS)


@settings(max_examples=40)
@given(data=st.data())
def test_draw_kernels_equal_one_call_per_draw(catalog, agentic, kernels, data):
    hardware, assumptions, draws = data.draw(drawn(catalog))
    model = data.draw(models())
    isl = data.draw(axis(contexts, max_size=2))
    grid = (isl, [max(1.0, c / 10) for c in isl], data.draw(axis(concurrencies, max_size=2)),
            data.draw(axis(bits, max_size=2)), data.draw(axis(kv_bits, max_size=1)))  # fmt: skip
    together = evaluate_arrays([model], hardware, *grid, agentic, assumptions, draws=draws)
    for d in range(N_DRAWS):
        units, a = per_draw(draws, hardware, assumptions, d)
        # A disaggregated pool of one of these units is priced as drawn too (by name).
        pool = next((u for u in units if u.name == a.prefill_hardware), None)
        alone = evaluate_arrays([model], units, *grid, agentic, a, pool=pool)
        for name, values in alone.items():
            np.testing.assert_array_equal(together[name][d], values, err_msg=f"{name}, draw {d}")


@settings(max_examples=40)
@given(data=st.data())
def test_a_variable_without_the_draw_dim_is_the_same_in_every_draw(catalog, agentic, kernels, data):
    """Guards Uncertain.moves: a cube drops the draw dim only where no draw can move the value."""
    hardware, assumptions, draws = data.draw(drawn(catalog))
    model = data.draw(models())
    grid = ([8e3, 1e5], [1e3, 1e3], [1.0, 64.0], [4.0, 16.0], [8.0])
    arrays = evaluate_arrays([model], hardware, *grid, agentic, assumptions, draws=draws)
    uncertain = Uncertain(tuple((n, None) for n in draws.values), N_DRAWS)
    for var in VARIABLES:
        if not uncertain.moves(var.reads, var.name, hardware, [assumptions.price]):
            first = arrays[var.name][0]
            for d in range(1, N_DRAWS):
                np.testing.assert_array_equal(arrays[var.name][d], first, err_msg=var.name)


SPEC = {
    "name": "drawn",
    "models": ["llama-3.1-70b", "gpt-oss-120b"],
    "hardware": ["wse3", "h100-sxm", "b200"],
    "axes": {"isl": [1000, 64000], "concurrency": [1, 16, 128], "weight_bits": [4, 8], "kv_bits": [16]},
    "parameters": {"workload": "agentic-coding", "price": "tco"},
    "uncertain": {
        "draws": 40,
        "seed": 3,
        "quantiles": [0.05, 0.5, 0.95],
        "distributions": {
            "wse3.capex_usd": {"uniform": ["1M", "3M"]},
            "b200.capex_usd": {"lognormal": ["50k", 0.2]},
            "mfu_decode": {"triangular": [0.2, 0.33, 0.5]},
            "amortisation_years": {"uniform": [3, 6]},
        },
    },
}


@pytest.fixture(scope="module")
def drawn_cube():
    return make_plan(parse_spec(SPEC)), evaluate_eager(make_plan(parse_spec(SPEC)))


def test_cube_quantiles_equal_a_brute_force_monte_carlo(drawn_cube, catalog, agentic, kernels):
    plan, cube = drawn_cube
    spec = plan.spec
    assert cube["cost_per_mtok_usd"].dims[-1] == "quantile"
    assert "quantile" in cube["capex_usd"].dims and "quantile" in cube["interactivity_tps"].dims
    assert "quantile" not in cube["units_needed"].dims  # no draw moves the memory fit
    grid = ([1000, 64000], [spec.workload.output_length(i) for i in (1000, 64000)], [1, 16, 128], [4, 8], [16])
    draws = spec.draws
    runs = []
    for d in range(draws.n):  # one ordinary evaluation per draw, stacked by numpy
        units, a = per_draw(draws, spec.hardware, spec.assumptions, d)
        runs.append(evaluate_arrays(list(spec.models), units, *grid, agentic, a))
    for name in ("cost_per_mtok_output_usd", "capex_usd", "interactivity_tps", "usd_per_hour"):
        stacked = np.stack([r[name] for r in runs])  # (draw, model, context, R, wbits, kbits, hardware)
        expected = np.quantile(stacked, [0.05, 0.5, 0.95], axis=0)
        got = cube[name].transpose("quantile", "model", "isl", "concurrency", "weight_bits", "kv_bits", "hardware")
        np.testing.assert_allclose(got.values, expected, rtol=1e-12, equal_nan=True, err_msg=name)
    # The WSE-3's price (1-3M) and the amortisation (3-6 years) move its cost 2-5x from the low draws to the high.
    wse = cube["cost_per_mtok_output_usd"].sel(hardware="wse3", model="llama-3.1-70b", isl=1000, concurrency=16,
                                               weight_bits=8, kv_bits=16)  # fmt: skip
    assert 2.0 < float(wse.sel(quantile=0.95) / wse.sel(quantile=0.05)) < 5.0


def test_a_drawn_sweep_runs_through_the_store_as_eager(drawn_cube, tmp_path, monkeypatch):
    """Many blocks, written through the store (the YAML lists the distributions in another order)."""
    import engine
    from tests.sweep_helpers import same_cube, write_spec

    monkeypatch.chdir(tmp_path)
    chunked = {**SPEC, "chunks": {"isl": 1, "model": 1}}
    path = write_spec(tmp_path, chunked)
    written = engine.open_cube(engine.run(str(path)).path)
    eager = evaluate_eager(make_plan(parse_spec(chunked)))
    same_cube(written, eager)
    np.testing.assert_array_equal(written["cost_per_mtok_usd"].values, drawn_cube[1]["cost_per_mtok_usd"].values)


def test_every_draw_kept_without_quantiles(catalog):
    spec = {**SPEC, "uncertain": {**SPEC["uncertain"], "quantiles": None}}
    plan = make_plan(parse_spec(spec))
    assert list(plan.spec.axes["draw"]) == list(range(40))
    assert plan.chunks["draw"] == 40  # one block evaluates every draw
    assert plan.n_points == 2 * 2 * 3 * 2 * 3 * 40
    cube = evaluate_eager(plan)
    q = summarise(cube["cost_per_mtok_usd"].values, [0.05, 0.5, 0.95], cube["cost_per_mtok_usd"].dims.index("draw"))
    summary = evaluate_eager(make_plan(parse_spec(SPEC)))["cost_per_mtok_usd"]
    np.testing.assert_allclose(np.moveaxis(q, cube["cost_per_mtok_usd"].dims.index("draw"), -1), summary.values)


def test_the_draws_are_seeded_stratified_and_follow_their_distributions():
    u = Uncertain.parse({"draws": 4000, "seed": 7, "distributions": {
        "mfu_decode": {"uniform": [0.2, 0.6]}, "wse3.capex_usd": {"lognormal": ["2M", 0.3]},
        "usd_per_kwh": {"loguniform": [0.01, 1]}, "pue": {"triangular": [1.1, 1.2, 1.6]},
        "amortisation_years": {"normal": [4, 0.5]}}}, "uncertain")  # fmt: skip
    first, again = u.sample().values, u.sample().values
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    counts = np.histogram(first["mfu_decode"], bins=40, range=(0.2, 0.6))[0]
    assert counts.min() == counts.max() == 100  # a Latin hypercube: every stratum holds its share exactly
    assert abs(np.median(first["wse3.capex_usd"]) / 2e6 - 1) < 0.01  # lognormal: [median, sigma of the log]
    assert abs(np.std(np.log(first["wse3.capex_usd"])) - 0.3) < 0.01
    assert abs(np.mean(first["usd_per_kwh"] < 0.1) - 0.5) < 0.01  # log-uniform: half below the geometric mean
    assert first["pue"].min() >= 1.1 and first["pue"].max() <= 1.6
    assert abs(np.mean(first["pue"]) - (1.1 + 1.2 + 1.6) / 3) < 0.005
    assert abs(np.mean(first["amortisation_years"]) - 4) < 0.02
    listed = {"usd_per_kwh": {"loguniform": [0.01, 1]}, "mfu_decode": {"uniform": [0.2, 0.6]}}
    reordered = Uncertain.parse({"draws": 4000, "seed": 7, "distributions": listed}, "uncertain").sample().values
    for name in listed:  # the order names are listed in, and what else is drawn, change nothing
        np.testing.assert_array_equal(reordered[name], first[name])
    other = Uncertain.parse({"draws": 4000, "seed": 8, "distributions": {"mfu_decode": {"uniform": [0.2, 0.6]}}}, "u")
    assert not np.array_equal(other.sample().values["mfu_decode"], first["mfu_decode"])


def test_quantile_summaries_keep_missing_and_the_dtype():
    values = np.array([[1.0, 2.0, 3.0, np.nan], [1.0, 2.0, 3.0, 4.0]])
    q = summarise(values, [0.5], axis=1)
    assert np.isnan(q[0, 0]) and q[1, 0] == 2.5
    flags = np.array([[True, False, True]])
    assert summarise(flags, [0.5], axis=1).dtype == np.bool_
    counts = np.array([[1, 2, 3, 4]], dtype=np.int64)
    assert summarise(counts, [0.5], axis=1).tolist() == [[2]]  # an actual draw's value, not 2.5


def test_point_dist_prints_the_brute_force_quantiles(catalog, capsys):
    from engine.interfaces.cli import main
    from engine.model.evaluate import evaluate_point
    from engine.model.point import Point

    argv = ["point", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--isl", "8k", "--concurrency", "32",
            "--weight-bits", "8", "--kv-bits", "8", "--dist", "mfu_decode=uniform:0.25,0.45",
            "--dist", "h100-sxm.usd_per_hour=lognormal:2.9,0.2", "--draws", "64", "--json"]  # fmt: skip
    assert main(argv) == 0
    drawn = json.loads(capsys.readouterr().out)["drawn"]
    u = Uncertain.parse({"draws": 64, "seed": 0, "distributions": {"mfu_decode": {"uniform": [0.25, 0.45]},
                         "h100-sxm.usd_per_hour": {"lognormal": [2.9, 0.2]}}}, "--dist")  # fmt: skip
    draws = u.sample()
    point = Point(
        catalog.model("llama-3.1-70b"),
        catalog.get_hardware("h100-sxm"),
        catalog.workload("agentic-coding"),
        isl=8000,
        concurrency=32,
        weight_bits=8,
        kv_bits=8,
        assumptions=catalog.assumptions("calibrated", {}, "--set "),
    )
    values = []
    for d in range(64):
        units, a = per_draw(draws, [point.hardware], point.assumptions, d)
        values.append(evaluate_point(point.on(units[0]).at(assumptions=a))["cost_per_mtok_output_usd"])
    np.testing.assert_allclose(drawn["quantiles"]["cost_per_mtok_output_usd"], np.quantile(values, [0.05, 0.5, 0.95]),
                               rtol=1e-12)  # fmt: skip
    assert "capex_usd" not in drawn["quantiles"]  # no draw moves it under the rental scenario
    assert AXES["draw"].long_name.startswith("Monte Carlo draw")


def test_best_over_draws_equals_the_winners_draw_by_draw(drawn_cube):
    """best on a cube with every draw kept: median winner, win share and choices, against a loop over the draws."""
    from engine.analysis.decisions import cheapest, over_draws

    spec = {**SPEC, "uncertain": {**SPEC["uncertain"], "quantiles": None}}
    cube = evaluate_eager(make_plan(parse_spec(spec)))
    where = {"interactivity_tps": {"ge": 20}}
    over = ["concurrency", "weight_bits", "kv_bits"]
    per_draw = cheapest(cube, where=where, over=over, by=["model", "isl", "hardware", "draw"])
    summary = over_draws(per_draw, "cost_per_mtok_output_usd", over)
    cost = "cost_per_mtok_output_usd"
    for model in cube["model"].values:
        for isl in cube["isl"].values:
            winners = [cheapest(cube.sel(draw=d), where=where, over=over, by=["model", "isl", "hardware"])
                       .sel(model=model, isl=isl) for d in range(40)]  # fmt: skip
            costs = np.array([w[cost].values for w in winners])  # (draw, hardware)
            got = summary.sel(model=model, isl=isl)
            served = ~np.isnan(costs)
            np.testing.assert_allclose(got["qualifying_share"].values, served.mean(axis=0))
            with np.errstate(all="ignore"):
                np.testing.assert_allclose(got[cost].values, np.nanmedian(np.where(served, costs, np.nan), axis=0))
            filled = np.where(served, costs, np.inf)
            for h in range(filled.shape[1]):
                others = np.delete(filled, h, axis=1).min(axis=1)
                assert got["win_share"].values[h] == np.mean((filled[:, h] < others) & served[:, h])
            shares = got["win_share"].values
            assert shares.sum() <= 1 + 1e-12  # one winner per draw at most


def test_figures_draw_each_figure_as_its_median_over_the_draws():
    """Every figure reads a drawn cube through summarise_draws: medians (or the median quantile),
    never a figure's minimum over the draws (the advantage figure minimises over every dim it
    does not plot), and says so in its caption."""
    from engine.interfaces.figures.common import caption, fix_dims, summarise_draws

    spec = {**SPEC, "uncertain": {**SPEC["uncertain"], "quantiles": None}}
    cube = evaluate_eager(make_plan(parse_spec(spec)))
    summary = summarise_draws(cube)
    assert "draw" not in summary.dims
    np.testing.assert_allclose(summary["cost_per_mtok_usd"].values, cube["cost_per_mtok_usd"].median("draw").values)
    selected, fixed = fix_dims(summary, ("concurrency", "hardware"), {})
    assert "each figure the median of 40 Monte Carlo draws" in caption(selected, fixed)
    assert "draw" in summarise_draws(cube, {"draw": 3}).dims  # a chosen draw is left to the selection
    quantiles = summarise_draws(evaluate_eager(make_plan(parse_spec(SPEC))))
    assert float(quantiles["quantile"]) == 0.5 and "0.5 quantile" in quantiles.attrs["drawn_summary"]


def test_a_capex_draw_moves_costs_in_every_tco_scenario_of_a_price_axis():
    """The base scenario rents, but the axis also holds tco: costs there are made of the drawn price."""
    spec = {**SPEC, "axes": {**SPEC["axes"], "price": ["on_demand", "tco"]}, "parameters": {"workload": "agentic-coding"},
            "uncertain": {"draws": 8, "distributions": {"wse3.capex_usd": {"uniform": ["1M", "3M"]}}}}  # fmt: skip
    cube = evaluate_eager(make_plan(parse_spec(spec)))
    assert "draw" in cube["cost_per_mtok_usd"].dims
    tco = cube["cost_per_mtok_usd"].sel(price="tco", hardware="wse3", model="llama-3.1-70b", isl=1000, concurrency=16,
                                        weight_bits=8, kv_bits=16)  # fmt: skip
    assert float(tco.max() / tco.min()) > 1.5  # the system price moves the TCO cost
    rented = cube["cost_per_mtok_usd"].sel(price="on_demand", hardware="wse3")
    assert (rented == rented.isel(draw=0)).all()  # and leaves the rental cost alone
