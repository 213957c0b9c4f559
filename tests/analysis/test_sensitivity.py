"""Sensitivity: each swing is the model evaluated again at that value, prices move cost exactly
in proportion, the ranking is by effect, and bad requests are one line."""

from __future__ import annotations

import json

import pytest

from engine.analysis.sensitivity import sensitivity
from engine.axes import AXES
from engine.interfaces.cli import main
from engine.model.evaluate import evaluate_point
from engine.model.point import Point


@pytest.fixture(scope="module")
def point(catalog, agentic):
    return Point(catalog.model("llama-3.1-70b"), catalog.get_hardware("h100-sxm"), agentic, isl=16e3, concurrency=32,
                 weight_bits=8, kv_bits=16, assumptions=catalog.assumptions("calibrated", {}, ""))  # fmt: skip


def test_each_swing_is_the_point_evaluated_again_at_that_value(point):
    base, rows, unmoved, _ = sensitivity(point, "interactivity_tps")
    assert base == evaluate_point(point)["interactivity_tps"]
    assert rows and [r.spread for r in rows] == sorted((r.spread for r in rows), reverse=True)
    for r in rows[:3]:
        again = evaluate_point(point.at(assumptions=point.assumptions.model_copy(update={r.name: r.high})))
        assert r.figure_high == again["interactivity_tps"], r.name
        # x1.25, held inside the assumption's bounds (a bandwidth efficiency of 0.85 swings to 1)
        assert r.high == pytest.approx(min(getattr(point.assumptions, r.name) * 1.25, AXES[r.name].high))
    assert "wafer_layer_latency_s" in unmoved and "h100-sxm.usd_per_hour" in unmoved  # price: no effect on speed
    assert "memory_bw_efficiency" in [r.name for r in rows]


def test_a_price_moves_cost_in_proportion_and_a_ratio_against_the_rival(point, catalog):
    base, rows, _, _ = sensitivity(point, "cost_per_mtok_usd", ranges={"h100-sxm.usd_per_hour": (1.0, 4.0)})
    price = next(r for r in rows if r.name == "h100-sxm.usd_per_hour")
    rate = point.hardware.usd_per_hour[point.assumptions.price]
    assert price.figure_low == pytest.approx(base * 1.0 / rate, rel=1e-12)
    assert price.figure_high == pytest.approx(base * 4.0 / rate, rel=1e-12)
    wafer = catalog.get_hardware("wse3")
    ratio, rows, _, _ = sensitivity(point, "cost_per_mtok_usd", rival=wafer, ranges={"wse3.usd_per_hour": (20.0, 80.0)})
    theirs = next(r for r in rows if r.name == "wse3.usd_per_hour")
    listed = wafer.usd_per_hour[point.assumptions.price]
    assert theirs.figure_low == pytest.approx(ratio * listed / 20.0, rel=1e-12)  # a cheaper rival: a higher ratio


def test_the_command_prints_the_table_json_and_the_tornado(tmp_path, capsys):
    argv = ["sensitivity", "--model", "gpt-oss-120b", "--vs", "h100-sxm", "--range", "wse3.usd_per_hour=20:80"]
    out = tmp_path / "t.png"
    assert main([*argv, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[3].split()[0] == "wse3.usd_per_hour" and out.stat().st_size > 10_000
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"][0]["name"] == "wse3.usd_per_hour" and doc["rows"][0]["low"] == 20.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--range", "mfu=0.1:0.2"], "--range: 'mfu' is not a numeric assumption or a price here"),
        (["--range", "mfu_decode=0.3:0.1"], "LOW must be below HIGH"),
        (["--range", "replica_units=1:8"], "is a choice or a count"),
        (["--swing", "1"], "--swing: must be a finite factor > 1"),
        (["--figure", "speed"], "--figure: 'speed' is not a numeric figure of a point"),
        (["--top", "0"], "--top: must be at least 1"),
        (["--swing", "inf"], "--swing: must be a finite factor > 1"),
        (["--range", "h100-sxm.usd_per_hour=-5:3"], "a price must be > 0"),
        (["--range", "pue=0:0.5"], "--range pue: LOW and HIGH must lie within 1 to 10"),
        (["--range", "mfu_decode=0.1:0.2", "--range", "mfu-decode=0.2:0.3"], "'mfu_decode' is given twice"),
        (["--figure", "bound_by"], "--figure: 'bound_by' is not a numeric figure"),
        (["--figure", "replica_fits"], "--figure: 'replica_fits' is not a numeric figure"),
        (["--vs", "h100-sxm"], "--vs: h100-sxm is the --hardware itself"),
        (["--vs", "groq-lpu"], "no groq-lpu replica serves it"),
        (["-o", "tornado.txt"], "must end in .png, .svg, .pdf"),
        (["-o", ""], "must end in .png, .svg, .pdf"),
    ],
)
def test_requests_that_cannot_give_honest_swings_are_one_line(extra, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sensitivity", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_zero_valued_assumption_is_said_not_swung_and_moves_with_a_range(point):
    _, rows, unmoved, unswung = sensitivity(point, "interactivity_tps")
    assert "usable_memory_fraction" in unswung and "usable_memory_fraction" not in unmoved
    _, rows, _, unswung = sensitivity(point, "cost_per_mtok_usd", ranges={"usable_memory_fraction": (0.7, 0.95)})
    assert "usable_memory_fraction" not in unswung
    assert next(r for r in rows if r.name == "usable_memory_fraction").low == 0.7


def test_json_output_stays_json_with_a_figure(tmp_path, capsys):
    out = tmp_path / "t.svg"
    assert main(["sensitivity", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", "--json", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["base"] > 0 and "figure:" in captured.err and out.exists()
