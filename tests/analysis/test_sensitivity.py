"""Sensitivity: each swing is the model evaluated again at that value, prices move cost exactly
in proportion, the ranking is by effect, and bad requests are one line."""

from __future__ import annotations

import json

import pytest

from engine.analysis.sensitivity import sensitivity
from engine.interfaces.cli import main
from engine.model.evaluate import evaluate_point
from engine.model.point import Point


@pytest.fixture(scope="module")
def point(catalog, agentic):
    return Point(catalog.model("llama-3.1-70b"), catalog.get_hardware("h100-sxm"), agentic, isl=16e3, concurrency=32,
                 weight_bits=8, kv_bits=16, assumptions=catalog.assumptions("calibrated", {}, ""))  # fmt: skip


def test_each_swing_is_the_point_evaluated_again_at_that_value(point):
    base, rows, unmoved = sensitivity(point, "interactivity_tps")
    assert base == evaluate_point(point)["interactivity_tps"]
    assert rows and [r.spread for r in rows] == sorted((r.spread for r in rows), reverse=True)
    for r in rows[:3]:
        again = evaluate_point(point.at(assumptions=point.assumptions.model_copy(update={r.name: r.high})))
        assert r.figure_high == again["interactivity_tps"], r.name
        assert r.high == pytest.approx(getattr(point.assumptions, r.name) * 1.25)
    assert "wafer_layer_latency_s" in unmoved and "h100-sxm.usd_per_hour" in unmoved  # price: no effect on speed
    assert "memory_bw_efficiency" in [r.name for r in rows]


def test_a_price_moves_cost_in_proportion_and_a_ratio_against_the_rival(point, catalog):
    base, rows, _ = sensitivity(point, "cost_per_mtok_usd", ranges={"h100-sxm.usd_per_hour": (1.0, 4.0)})
    price = next(r for r in rows if r.name == "h100-sxm.usd_per_hour")
    rate = point.hardware.usd_per_hour[point.assumptions.price]
    assert price.figure_low == pytest.approx(base * 1.0 / rate, rel=1e-12)
    assert price.figure_high == pytest.approx(base * 4.0 / rate, rel=1e-12)
    wafer = catalog.get_hardware("wse3")
    ratio, rows, _ = sensitivity(point, "cost_per_mtok_usd", rival=wafer, ranges={"wse3.usd_per_hour": (20.0, 80.0)})
    theirs = next(r for r in rows if r.name == "wse3.usd_per_hour")
    listed = wafer.usd_per_hour[point.assumptions.price]
    assert theirs.figure_low == pytest.approx(ratio * listed / 20.0, rel=1e-12)  # a cheaper rival: a higher ratio


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--range", "mfu=0.1:0.2"], "--range: 'mfu' is not a numeric assumption or a price here"),
        (["--range", "mfu_decode=0.3:0.1"], "LOW must be below HIGH"),
        (["--range", "replica_units=1:8"], "is a choice or a count"),
        (["--swing", "1"], "--swing: must be a factor > 1"),
        (["--figure", "speed"], "--figure: 'speed' is not a figure of a point"),
        (["--top", "0"], "--top: must be at least 1"),
    ],
)
def test_bad_sensitivity_requests_are_one_line(extra, message, capsys):
    assert main(["sensitivity", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_command_prints_the_table_json_and_the_tornado(tmp_path, capsys):
    argv = ["sensitivity", "--model", "gpt-oss-120b", "--vs", "h100-sxm", "--range", "wse3.usd_per_hour=20:80"]
    out = tmp_path / "t.png"
    assert main([*argv, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[3].split()[0] == "wse3.usd_per_hour" and out.stat().st_size > 10_000
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"][0]["name"] == "wse3.usd_per_hour" and doc["rows"][0]["low"] == 20.0
