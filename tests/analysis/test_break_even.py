"""Break-even prices: the closed form against pointwise re-evaluation at that price.

The formulas are inverses of the cost formulas (property tests); priced at its break-even
rate (or system price), a point's cost equals its rival's when the whole model is evaluated
again; `best` and `point --vs` report the same numbers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.analysis.compare import compare_point
from engine.interfaces.cli import main
from engine.model import formulas
from engine.model.evaluate import evaluate_point
from engine.model.point import Point
from tests.sweep_helpers import write_spec

positive = st.floats(1e-3, 1e6, allow_nan=False)


@given(rate=positive, units=st.integers(1, 4096), tokens=positive, reference=positive)
def test_at_its_break_even_rate_a_replica_costs_the_reference(rate, units, tokens, reference):
    cost = formulas.cost_per_mtok(units * rate, tokens)
    at = formulas.break_even_rate(rate, cost, reference)
    assert math.isclose(formulas.cost_per_mtok(units * at, tokens), reference, rel_tol=1e-9)


@given(rate=positive, years=st.floats(0.5, 10), power=st.floats(0.01, 100), pue=st.floats(1, 3), kwh=st.floats(0, 1))
def test_the_break_even_capex_is_the_inverse_of_the_tco_rate(rate, years, power, pue, kwh):
    capex = formulas.capex_for_rate(rate, years, power, pue, kwh)
    assert math.isclose(formulas.tco_rate(capex, years, power, pue, kwh), rate, rel_tol=1e-9, abs_tol=1e-9)
    assert (capex > 0) == (rate > power * pue * kwh)  # a rate under the power bill needs a negative price


@pytest.mark.parametrize("price", ["on_demand", "tco"])
def test_priced_at_its_break_even_the_point_costs_what_the_rival_does(catalog, agentic, price):
    wafer, gpu = catalog.get_hardware("wse3"), catalog.get_hardware("h100-sxm")
    point = Point(catalog.model("gpt-oss-120b"), wafer, agentic, isl=32e3, concurrency=64,
                  assumptions=catalog.assumptions("calibrated", {"price": price}, ""))  # fmt: skip
    comparison = compare_point(point, gpu)
    rival_cost = comparison["hardware"]["h100-sxm"]["cost_per_mtok_usd"]
    found = comparison["break_even_price"]["wse3"]
    assert found["rival"] == "h100-sxm"
    if price == "on_demand":  # the rental rate itself moved to the break-even
        repriced = wafer.model_copy(
            update={"usd_per_hour": {**wafer.usd_per_hour, price: found["usd_per_hour_per_unit"]}}
        )
    else:  # the system price moved (the TCO rate follows)
        repriced = wafer.model_copy(update={"capex_usd": found["capex_usd_per_unit"]})
    again = evaluate_point(point.on(repriced))["cost_per_mtok_usd"]
    assert again == pytest.approx(rival_cost, rel=1e-9)
    assert comparison["hardware"]["wse3"]["cost_per_mtok_usd"] != pytest.approx(rival_cost, rel=1e-3)


SPEC = """
name: breakeven
models: [gpt-oss-120b, llama-3.1-70b]
hardware: [wse3, h100-sxm, b200]
axes:
  isl: [8k, 64k]
  concurrency: [1, 16, 128]
  weight_bits: [8]
  kv_bits: [16]
  replica_units: [0, 16]
parameters:
  price: tco
variables: [cost_per_mtok_output_usd, interactivity_tps, usd_per_hour, units_per_replica, replica_fits]
"""


def test_best_reports_each_winners_break_even_against_its_rival(tmp_path, capsys, catalog):
    spec = write_spec(tmp_path, yaml.safe_load(SPEC))
    cube = tmp_path / "b.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["best", str(cube), "--json", "--min-interactivity", "50"]) == 0
    rows = json.loads(capsys.readouterr().out)["best"]
    checked = 0
    for row in rows:
        group = [r for r in rows if (r["model"], r["isl"]) == (row["model"], row["isl"]) and r is not row]
        costs = {
            r["hardware"]: r["cost_per_mtok_output_usd"] for r in group if r["cost_per_mtok_output_usd"] is not None
        }
        if row["cost_per_mtok_output_usd"] is None or not costs:
            continue
        rival = min(costs, key=costs.get)  # brute force: the cheapest other hardware in the group
        assert row["rival"] == rival and row["rival_cost"] == pytest.approx(costs[rival])
        unit = catalog.get_hardware(row["hardware"])
        a = catalog.assumptions("calibrated", {"price": "tco"}, "")
        rate = formulas.tco_rate(unit.capex_usd, a.amortisation_years, unit.power_kw, a.pue, a.usd_per_kwh)
        # Cost is proportional to the rate: at the break-even rate the winner costs the rival's.
        scaled = row["cost_per_mtok_output_usd"] * row["break_even_usd_per_hour"] / rate
        assert scaled == pytest.approx(costs[rival], rel=1e-9)
        capex = row["break_even_capex_usd"]
        if capex is not None:
            tco = formulas.tco_rate(capex, a.amortisation_years, unit.power_kw, a.pue, a.usd_per_kwh)
            assert tco == pytest.approx(row["break_even_usd_per_hour"], rel=1e-9)
        checked += 1
    assert checked >= 6
    from engine.analysis import uncertainty as unc

    profile = catalog.profile("calibrated").model_dump(mode="json")
    for row in rows:
        if row["rival"]:
            mine = unc.cost_error(profile, catalog.get_hardware(row["hardware"]).kind)
            theirs = unc.cost_error(profile, catalog.get_hardware(row["rival"]).kind)
            expected = unc.win_probability(row["cost_per_mtok_output_usd"], row["rival_cost"], *mine, *theirs)
            assert row["win_probability"] == pytest.approx(float(expected), abs=1e-12)
            assert (row["win_probability"] > 0.5) == (row["cost_per_mtok_output_usd"] < row["rival_cost"]) or (
                abs(row["win_probability"] - 0.5) < 0.2  # a biased side can lose a near tie
            )
    assert not np.isnan([r["break_even_usd_per_hour"] for r in rows if r["rival"]]).any()


@pytest.mark.parametrize("pool", ["same", "b200"])
def test_a_disaggregated_point_is_priced_at_its_own_units_rate_unless_its_pool_is_other_hardware(
    catalog, agentic, pool
):
    """A pool of its own kind moves with the unit's price (the cost stays proportional to it);
    a pool of other hardware does not, so no break-even price is given for that side."""
    wafer, gpu = catalog.get_hardware("wse3"), catalog.get_hardware("h100-sxm")
    a = catalog.assumptions("calibrated", {"serving": "disaggregated", "prefill_hardware": pool}, "")
    point = Point(catalog.model("gpt-oss-120b"), wafer, agentic, isl=32e3, concurrency=64, assumptions=a)
    comparison = compare_point(point, gpu)
    if pool != "same":
        assert "wse3" not in comparison["break_even_price"]
        return
    found = comparison["break_even_price"]["wse3"]
    repriced = wafer.model_copy(
        update={"usd_per_hour": {**wafer.usd_per_hour, a.price: found["usd_per_hour_per_unit"]}}
    )
    again = evaluate_point(point.on(repriced))["cost_per_mtok_usd"]
    assert again == pytest.approx(comparison["hardware"]["h100-sxm"]["cost_per_mtok_usd"], rel=1e-9)


def test_best_gives_no_break_even_to_a_winner_fed_by_other_hardware(tmp_path, capsys, catalog):
    raw = yaml.safe_load(SPEC)
    raw["axes"].update(serving=["colocated", "disaggregated"], prefill_hardware=["same", "b200"])
    raw["variables"].append("cost_per_mtok_usd")
    spec = write_spec(tmp_path, raw)
    cube = tmp_path / "d.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["best", str(cube), "--json", "--min-interactivity", "50"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out)["best"] if r["rival"]]
    a = catalog.assumptions("calibrated", {"price": "tco"}, "")
    foreign = own = 0
    for row in rows:
        if row["serving"] == "disaggregated" and row["prefill_hardware"] not in ("same", row["hardware"]):
            assert row["break_even_usd_per_hour"] is None
            foreign += 1
        else:
            unit = catalog.get_hardware(row["hardware"])
            rate = formulas.tco_rate(unit.capex_usd, a.amortisation_years, unit.power_kw, a.pue, a.usd_per_kwh)
            scaled = row["cost_per_mtok_output_usd"] * row["break_even_usd_per_hour"] / rate
            assert scaled == pytest.approx(row["rival_cost"], rel=1e-9)
            own += 1
    assert foreign and own
