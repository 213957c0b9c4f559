"""`tokensweep point`: the panel, the JSON keys, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from engine.interfaces.cli import main
from engine.model.variables import VARIABLES

POINT = [
    "point",
    "--model",
    "gpt-oss-120b",
    "--isl",
    "96.3k",
    "--concurrency",
    "250",
    "--weight-bits",
    "4",
    "--kv-bits",
    "16",
    "--hardware",
    "wse3",
]


def test_panel_states_units(capsys):
    assert main(POINT) == 0
    out = capsys.readouterr().out
    for text in ("58.4 GB", "systems needed         22", "layers per unit", "$22M", "tokens/s", "/Mtok", "stranded"):
        assert text in out


def test_json_has_every_cube_variable_in_base_units(capsys):
    assert main([*POINT, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {v.name for v in VARIABLES} <= set(data)
    assert data["weight_bytes"] == pytest.approx(58.4e9)
    assert data["capex_usd"] == 22e6


def test_osl_override_and_assumption_override(capsys):
    calculator = ["--set", "prefill_model=calculator"]  # the speedup is the calculator's convention
    assert main([*POINT, "--osl", "1k", "--set", "cache_read_speedup=20", *calculator, "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert fast["osl"] == 1000
    assert main([*POINT, "--osl", "1k", *calculator, "--json"]) == 0
    slow = json.loads(capsys.readouterr().out)
    assert fast["turn_time_s"] < slow["turn_time_s"]


def test_vs_prints_both_hardware_and_the_break_even(capsys):
    argv = [
        "point",
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "h100-sxm",
        "--weight-bits",
        "8",
        "--kv-bits",
        "8",
        "--concurrency",
        "1",
        "--isl",
        "1k",
        "--vs",
        "wse3",
        "--api-price",
        "0.60",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "h100-sxm" in out and "wse3" in out and "Break-even concurrency" in out
    assert "OSL 2 tokens (from the agentic-coding mix" in out.splitlines()[0]  # where the tiny OSL comes from
    assert main([*argv, "--osl", "100"]) == 0
    assert "OSL 100 tokens, 1 concurrent" in capsys.readouterr().out  # given, so no note
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["hardware"]) == {"h100-sxm", "wse3"}
    assert "h100-sxm below API price" in data["break_even_concurrency"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["point", "--model", "gpt-oss-12b"], "model: unknown model 'gpt-oss-12b' (did you mean 'gpt-oss-120b'?"),
        (["point", "--model", "gpt-oss-120b", "--hardware", "h100"], "did you mean 'h100-sxm'"),
        (["point", "--model", "gpt-oss-120b", "--kv-bits", "0"], "--kv-bits: 0 is out of range (allowed: 1 to 32)"),
        (["point", "--model", "gpt-oss-120b", "--weight-bits", "nan"], "--weight-bits: cannot read 'nan' as a number"),
        (["point", "--model", "gpt-oss-120b", "--isl", "12q"], "--isl: cannot read '12q' as a number"),
        (["point", "--model", "gpt-oss-120b", "--concurrency", "2.5"], "--concurrency: 2.5 must be a whole number"),
        (["point", "--model", "gpt-oss-120b", "--set", "mfu=0.4"], "--set: unknown assumption 'mfu'"),
        (
            ["point", "--model", "gpt-oss-120b", "--set", "mfu_decode=2"],
            "--set mfu_decode: 2 is out of range (allowed: 0.001 to 1)",
        ),
        (
            ["point", "--model", "gpt-oss-120b", "--price", "reserved"],
            "--set price: unknown value 'reserved' (allowed: on_demand, spot, tco)",
        ),
        (["point", "--params", "120B", "--layers", "36"], "--model: required (or the ad-hoc fields"),
        (["point"], "--model: required"),
        (["pointz"], "invalid choice: 'pointz'"),
        (["point", "--model", "gpt-oss-120b", "--workload", "agentic"], "workload: unknown workload 'agentic'"),
    ],
)
def test_bad_values_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


def test_point_panel_says_where_osl_comes_from_and_units_every_cost(capsys):
    from engine.interfaces.cli import main

    assert (
        main(["point", "--model", "gpt-oss-120b", "--isl", "1k", "--hardware", "h100-sxm", "--concurrency", "64"]) == 0
    )
    out = capsys.readouterr().out
    assert "OSL 2 tokens (from the agentic-coding mix: output is 0.22% of tokens; --osl to set it)" in out
    by_type = next(line for line in out.splitlines() if "by type (each type's share of the time" in line)
    assert by_type.count("/Mtok") == 4
    assert "per output Mtok" in out and "(the whole turn's cost over its output tokens)" in out
    assert "64 concurrent requests" in out
    assert "(within one scale-up domain of 8)" in out
    assert main(["point", "--model", "gpt-oss-120b", "--isl", "1k", "--osl", "100"]) == 0
    out = capsys.readouterr().out
    assert "OSL 100 tokens," in out and "--osl to set it" not in out and "no scale-up domain limits it" in out
    assert "1 concurrent request," in out


def test_units_apply_to_the_hardware_they_name_and_vs_units_to_the_other(capsys):
    """--units sets the --hardware replica; the --vs side is the fewest that fit unless --vs-units says."""
    base = ["point", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--weight-bits", "8", "--kv-bits", "8",
            "--isl", "1k", "--concurrency", "8", "--units", "8", "--vs", "wse3", "--json"]  # fmt: skip
    assert main(base) == 0
    sides = json.loads(capsys.readouterr().out)["hardware"]
    assert sides["h100-sxm"]["units_per_replica"] == 8
    assert sides["wse3"]["units_per_replica"] == sides["wse3"]["units_needed"] < 8
    assert main([*base, "--vs-units", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["hardware"]["wse3"]["units_per_replica"] == 6
    assert main(base[:-1]) == 0
    assert "--units sets the first side, --vs-units the second" in capsys.readouterr().out
