"""`tokensweep plan / run / show / slice` in-process, and spec validation."""

from __future__ import annotations

import json
import os

import pytest
import xarray as xr

from engine.interfaces.cli import main
from engine.sweep.spec import load_spec
from tests.sweep_helpers import small, write_spec


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cube")
    spec = write_spec(tmp, small())
    assert main(["run", str(spec), "--output", str(tmp / "small.zarr"), "--no-progress"]) == 0
    return tmp / "small.zarr"


def test_plan_prints_the_grid_and_writes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, small())
    assert main(["plan", str(spec), "--output", str(tmp_path / "p.zarr")]) == 0
    out = capsys.readouterr().out
    for text in ("points        1,944", "blocks", "per block", "before compression", "estimated"):
        assert text in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_plan_says_when_its_own_time_went_into_compiling(tmp_path, capsys, monkeypatch):
    """A cold kernel cache makes plan's first block slow (a minute here): plan says so, once,
    and keeps it out of the run's estimate; a warm cache says nothing."""
    import time

    from engine.sweep import blocks

    spec = write_spec(tmp_path, small())
    assert main(["plan", str(spec)]) == 0
    assert "compiled" not in capsys.readouterr().out  # warm: the session's kernels are loaded
    evaluate, calls = blocks.evaluate_block, []

    def cold(plan, block):  # the first call pays a compile, as with an empty cache
        calls.append(block)
        if len(calls) == 1:
            time.sleep(1.5)
        return evaluate(plan, block)

    monkeypatch.setattr(blocks, "evaluate_block", cold)
    assert main(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert out.count("compiled      the kernels in") == 1 and "cached" in out
    estimate = float(out.split("estimated")[1].split()[0].replace(",", ""))
    assert estimate < 1.5  # the compile is not in the estimate


def test_show_lists_dims_variables_and_units(cube, capsys):
    assert main(["show", str(cube)]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "cost_per_mtok_usd" in out and "[USD/Mtok]" in out and "isl" in out
    assert "fixed assumptions:" in out


def test_show_separates_swept_assumptions_from_fixed_ones(tmp_path, capsys):
    spec = write_spec(tmp_path, small(axes={"isl": [1000], "parallelism": ["tp", "dp-ep"]}))
    assert main(["run", str(spec), "--output", str(tmp_path / "c.zarr"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "c.zarr")]) == 0
    out = capsys.readouterr().out
    fixed = next(line for line in out.splitlines() if line.startswith("fixed assumptions:"))
    assert '"parallelism"' not in fixed and '"price"' in fixed
    assert "assumptions swept as axes (their values are the dims above): parallelism" in out


def test_slice_nearest_with_human_units(cube, capsys):
    argv = [
        "slice",
        str(cube),
        "--var",
        "units_needed",
        "--sel",
        "isl=1M",
        "--nearest",
        "--sel",
        "model=gpt-oss-120b",
        "--sel",
        "hardware=wse3",
        "--sel",
        "concurrency=250",
        "--sel",
        "weight_bits=4",
        "--sel",
        "kv_bits=16",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    line = captured.out
    assert "is not on the axis; using the nearest" in captured.err
    ds = xr.open_zarr(cube)
    expected = (
        ds["units_needed"]
        .sel(isl=1e6, method="nearest")
        .sel(model="gpt-oss-120b", hardware="wse3", concurrency=250, weight_bits=4, kv_bits=16)
    )
    assert line.startswith(
        f"units_needed = {int(expected)} count at isl={float(expected['isl']):g}, model=gpt-oss-120b"
    )
    assert main([*argv[:-4], "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["kv_bits"] for r in records} == {8.0, 16.0}
    assert main([*argv[:-4], "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("units_needed")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--var", "cost"], "--var: unknown variable 'cost'"),
        (["--var", "units_needed", "--sel", "isll=1M"], "--sel: unknown dim 'isll' (did you mean 'isl'?"),
        (["--var", "units_needed", "--sel", "isl=1M"], "--sel: isl has no 1M (nearest: "),
        (
            ["--var", "units_needed", "--sel", "isl=1T", "--nearest"],
            "--sel: isl=1T is outside the cube's axis (16k to 10M)",
        ),
        (["--var", "units_needed", "--sel", "model=gpt-oss"], "--sel: model has no 'gpt-oss'"),
        (["--var", "units_needed", "--sel", "isl"], "--sel: expected DIM=VALUE"),
    ],
)
def test_slice_errors(cube, capsys, argv, message):
    assert main(["slice", str(cube), *argv]) == 2
    assert message in capsys.readouterr().err


def test_shipped_sweeps_are_valid():
    from pathlib import Path

    from engine.sweep.plan import make_plan

    for path in sorted(Path(__file__).parents[2].joinpath("sweeps").glob("*.yaml")):
        plan = make_plan(load_spec(path))
        assert plan.n_points > 0, path


def test_open_cube_api(cube):
    import engine

    ds = engine.open_cube(cube)
    assert int(ds.attrs["complete"]) == 1
    assert ds["units_needed"].attrs["units"] == "count"


def test_slice_takes_several_variables_and_keeps_the_selected_coordinates(tmp_path, capsys):
    import csv
    import io

    from tests.sweep_helpers import small, write_spec

    output = tmp_path / "cube.zarr"
    assert main(["run", str(write_spec(tmp_path, small())), "--output", str(output), "--no-progress"]) == 0
    capsys.readouterr()
    sel = ["--sel", "model=gpt-oss-120b", "--sel", "hardware=wse3", "--sel", "isl=16000"]
    assert main(["slice", str(output), "--var", "ttft_s", "--var", "units_needed", *sel, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and all(r["model"] == "gpt-oss-120b" and r["hardware"] == "wse3" for r in rows)
    assert {"ttft_s", "units_needed", "concurrency", "isl"} <= set(rows[0])
    assert main(["slice", str(output), "--var", "ttft_s", *sel, "--csv"]) == 0
    one = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["ttft_s"] for r in one] == [r["ttft_s"] for r in rows] and one[0]["model"] == "gpt-oss-120b"


def test_cube_attributes_follow_cf_and_record_provenance(tmp_path):
    import xarray as xr

    from tests.sweep_helpers import small, write_spec

    output = tmp_path / "cube.zarr"
    assert main(["run", str(write_spec(tmp_path, small())), "--output", str(output), "--no-progress"]) == 0
    attrs = xr.open_zarr(output).attrs
    assert attrs["Conventions"] == "CF-1.10" and "conventions" not in attrs
    assert isinstance(attrs["spec"], dict) and attrs["spec"]["name"] == "small"
    assert isinstance(attrs["assumptions"], dict) and isinstance(attrs["parameter_axes"], list)
    assert attrs["software"]["numba"] and attrs["software"]["zarr"]
    assert "run" in attrs["history"]


def test_a_price_scenario_missing_for_some_hardware_is_said_where_it_is_used(tmp_path, capsys):
    """spot has no listed rate for the WSE-3: run, point, best and diff each say its TCO rate is used."""
    spot = small(hardware=["wse3", "h100-sxm"], parameters={"workload": "agentic-coding", "price": "spot"})
    demand = small(hardware=["wse3", "h100-sxm"], parameters={"workload": "agentic-coding"}, name="demand")
    note = "price spot: no spot rate listed for wse3; their TCO rate is used"
    assert main(["run", str(write_spec(tmp_path, spot, "spot.yaml")), "--output", str(tmp_path / "s.zarr"),
                 "--no-progress"]) == 0  # fmt: skip
    assert note in capsys.readouterr().err
    assert main(["run", str(write_spec(tmp_path, demand, "d.yaml")), "--output", str(tmp_path / "d.zarr"),
                 "--no-progress"]) == 0  # fmt: skip
    assert "note" not in capsys.readouterr().err  # on-demand rates are listed for both
    assert main(["diff", str(tmp_path / "d.zarr"), str(tmp_path / "s.zarr"), "--var", "cost_per_mtok_usd"]) == 0
    assert f"B: {note}" in capsys.readouterr().err
    assert main(["best", str(tmp_path / "s.zarr"), "--json"]) == 0
    captured = capsys.readouterr()
    assert note in captured.err and note in json.loads(captured.out)["price_note"]
    assert main(["point", "--model", "llama-3.1-70b", "--price", "spot"]) == 0
    assert "(TCO rate: no spot rate listed for wse3)" in capsys.readouterr().out


def test_plot_says_when_it_replaces_a_figure(cube, capsys):
    """The default figure path is the one `run` draws to: replacing it is said, not silent."""
    target = cube.with_name(cube.stem + "_memory.png")
    target.unlink(missing_ok=True)
    assert main(["plot", "memory", str(cube)]) == 0
    assert "replaced" not in capsys.readouterr().out
    assert main(["plot", "memory", str(cube)]) == 0
    assert "(replaced the figure that was there; -o to keep both)" in capsys.readouterr().out
    assert target.stat().st_mode & 0o077 != 0 or os.umask(os.umask(0)) & 0o044 == 0o044  # the umask's mode, not 0600
