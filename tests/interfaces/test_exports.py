"""Whole cubes as tables (Parquet with units in the schema, CSV), and two cubes compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine.interfaces.cli import main
from engine.sweep.cube import open_cube
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from tests.sweep_helpers import small


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """The small sweep on demand and on spot prices (same grid), and one over other ISLs."""
    folder = tmp_path_factory.mktemp("cubes")
    spot = small()
    spot["parameters"] = {**spot["parameters"], "price": "spot"}
    other = small(axes={**small()["axes"], "isl": [16000, 100000, 250000]})
    paths = {}
    for name, spec in (("demand", small()), ("spot", spot), ("other", other)):
        paths[name] = folder / f"{name}.zarr"
        run_sweep(make_plan(parse_spec(spec)), paths[name], progress=False)
    return paths


def test_parquet_export_is_the_whole_cube_with_units_in_the_schema(tmp_path, capsys, cubes):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "cube.parquet"
    assert main(["export", str(cubes["demand"]), "-o", str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    table = pq.read_table(out)
    ds = open_cube(cubes["demand"])
    dims = [d for d in ds.dims if d != "token_type"]
    assert table.num_rows == int(np.prod([ds.sizes[d] for d in dims]))
    schema = table.schema
    assert schema.field("cost_per_mtok_usd").metadata[b"units"] == b"USD/Mtok"
    assert schema.field("isl").metadata[b"units"] == b"tokens"
    assert schema.field("replica_fits").metadata[b"units"] == b"bool"
    assert "cost_per_mtok_by_type_usd" not in schema.names  # by-type only when asked for
    frame = table.to_pandas().set_index(dims)
    expected = ds["cost_per_mtok_usd"].to_series().reorder_levels(dims)
    pd.testing.assert_series_equal(frame["cost_per_mtok_usd"].loc[expected.index], expected, check_names=False)
    weights = ds["weight_bytes"].broadcast_like(ds["cost_per_mtok_usd"]).to_series().reorder_levels(dims)
    np.testing.assert_array_equal(frame["weight_bytes"].loc[weights.index].values, weights.values)


def test_csv_export_of_chosen_variables_names_units_in_the_header(tmp_path, cubes):
    out = tmp_path / "cube.csv"
    args = ["export", str(cubes["demand"]), "--format", "csv", "-o", str(out)]
    assert main([*args, "--var", "ttft_s", "--var", "cost_per_mtok_by_type_usd"]) == 0
    frame = pd.read_csv(out)
    assert {"ttft_s [s]", "cost_per_mtok_by_type_usd [USD/Mtok]", "token_type", "isl [tokens]"} <= set(frame.columns)
    ds = open_cube(cubes["demand"])
    assert len(frame) == ds["cost_per_mtok_by_type_usd"].size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xlsx"], "--format: 'xlsx' is not one of parquet, csv"),
        (["--var", "nope"], "--var: unknown variable 'nope'"),
        (["-o", "no/such/folder/x.parquet"], "-o: folder no/such/folder does not exist"),
    ],
)
def test_bad_export_requests_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, cubes, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(cubes["demand"]), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_diff_gives_the_ratio_of_shared_variables_over_shared_labels(tmp_path, capsys, cubes):
    out = tmp_path / "ratio.zarr"
    code = main(["diff", str(cubes["demand"]), str(cubes["spot"]), "--var", "cost_per_mtok_usd", "--output", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "cost_per_mtok_usd" in text and "B < A in" in text
    a, b = open_cube(cubes["demand"]), open_cube(cubes["spot"])
    ratio = xr.open_zarr(out)["cost_per_mtok_usd"]
    expected = b["cost_per_mtok_usd"] / a["cost_per_mtok_usd"]
    np.testing.assert_allclose(ratio.values, expected.values, equal_nan=True)
    finite = ratio.values[np.isfinite(ratio.values)]
    assert finite.size and (finite < 1).mean() > 0.5  # spot capacity costs less than on demand
    # Over shared labels only: the other cube's ISLs meet this one's at 16k and 100k... if present.
    capsys.readouterr()
    assert main(["diff", str(cubes["demand"]), str(cubes["other"]), "--var", "kv_bytes", "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    shared = np.intersect1d(a["isl"].values, open_cube(cubes["other"])["isl"].values)
    assert summary["variables"][0]["cells"] == a["kv_bytes"].sel(isl=shared).size
    assert summary["variables"][0]["min"] == summary["variables"][0]["max"] == 1.0  # KV does not depend on price


def test_diff_refuses_cubes_with_nothing_to_compare(tmp_path, capsys, cubes):
    reduced = open_cube(cubes["demand"])[["kv_bytes"]].isel(isl=slice(0, 2))
    reduced = reduced.assign_coords(isl=reduced["isl"] + 0.5)
    path = tmp_path / "shifted.zarr"
    reduced.to_zarr(path, zarr_format=3, consolidated=False)
    assert main(["diff", str(cubes["demand"]), str(path)]) == 2
    assert "diff: no isl label is in both cubes" in capsys.readouterr().err
    assert main(["diff", str(cubes["demand"]), str(cubes["spot"]), "--var", "replica_fits"]) == 2
    assert "is not numeric" in capsys.readouterr().err


def test_token_counts_are_whole_numbers_selected_exactly(cubes, capsys):
    ds = open_cube(cubes["demand"])
    assert ds["isl"].dtype == np.int64
    assert np.all(ds["isl"].values == np.round(np.geomspace(16e3, 10e6, 9)))
    assert float(ds["kv_bytes"].sel(isl=16000, model="gpt-oss-120b", concurrency=1, kv_bits=16)) > 0
    sel = ["--sel", "isl=16k", "--sel", "model=gpt-oss-120b", "--sel", "concurrency=1", "--sel", "kv_bits=16"]
    assert main(["slice", str(cubes["demand"]), "--var", "kv_bytes", *sel, "--json"]) == 0
    assert '"isl": 16000' in capsys.readouterr().out


def test_slice_json_says_what_produced_each_number(cubes, capsys):
    """Units, the OSL and its origin, the replica's units, the price source and the profile."""
    import json

    ds = open_cube(cubes["spot"])
    sel = ["--sel", "isl=16k", "--sel", "model=gpt-oss-120b", "--sel", "concurrency=1", "--sel", "kv_bits=16",
           "--sel", "weight_bits=4"]  # fmt: skip
    assert main(["slice", str(cubes["spot"]), "--var", "cost_per_mtok_output_usd", *sel, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["hardware"] for r in rows} == {str(h) for h in ds["hardware"].values}
    for row in rows:
        at = {"isl": 16000, "model": "gpt-oss-120b", "concurrency": 1, "kv_bits": 16, "weight_bits": 4,
              "hardware": row["hardware"]}  # fmt: skip
        assert row["cost_per_mtok_output_usd_units"] == "USD/Mtok"
        assert row["osl"] == int(ds["osl"].sel(isl=16000)) and "derived from" in row["osl_origin"]
        assert row["units_per_replica"] == int(ds["units_per_replica"].sel(at))
        assert row["price_source"] == str(ds["price_source"].sel(hardware=row["hardware"]).values)
        assert (row["profile"], row["price"]) == ("calibrated", "spot")
    assert {r["price_source"] for r in rows} >= {"tco"}  # spot: a hardware without a spot rate says so


def test_export_slabs_stay_bounded_over_every_dim(monkeypatch):
    """A cube whose inner dims alone exceed a slab is cut along them too, rows in order."""
    import xarray as xr

    from engine.interfaces import export as ex

    monkeypatch.setattr(ex, "SLAB_ROWS", 10)
    ds = xr.Dataset({"v": (("a", "b", "c"), np.arange(2 * 7 * 5).reshape(2, 7, 5))})
    slabs = list(ex._slabs(ds, ["a", "b", "c"]))
    sizes = [ds["v"].isel(slab).size for slab in slabs]
    assert max(sizes) <= 10 and sum(sizes) == ds["v"].size
    values = np.concatenate([ds["v"].isel(slab).values.ravel() for slab in slabs])
    np.testing.assert_array_equal(values, np.arange(70))
