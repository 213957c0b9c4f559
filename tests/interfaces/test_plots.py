"""Figures: the data behind each one, and the files written."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis.compare import break_even_concurrency
from engine.interfaces import figures as plots
from engine.interfaces.cli import main
from tests.sweep_helpers import small, write_spec

PHASE = small(
    synthetic={"reference": "deepseek-v3", "params": {"geomspace": ["125B", "4T", 12]}},
    models=["gpt-oss-120b", "deepseek-v3", "kimi-k2.6"],
    axes={
        "isl": {"geomspace": ["16k", "10M", 16]},
        "concurrency": [1, 16, 64, 250],
        "weight_bits": [4],
        "kv_bits": [16],
    },
    chunks={},
)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    spec = write_spec(tmp, PHASE)
    assert main(["run", str(spec), "--output", str(tmp / "phase.zarr"), "--no-progress"]) == 0
    return tmp / "phase.zarr"


@pytest.fixture(scope="module")
def ds(cube):
    return xr.open_zarr(cube).load()


def test_phase_grid_is_the_cube_slice(ds):
    grid, _markers, fixed = plots.phase_data(ds)
    assert fixed == {"concurrency": 250, "weight_bits": 4.0, "kv_bits": 16.0, "hardware": "wse3"}
    synthetic = (
        ds["units_needed"]
        .sel(hardware="wse3", concurrency=250, weight_bits=4, kv_bits=16)
        .isel(model=ds["synthetic"].values)
    )
    np.testing.assert_array_equal(grid.values, synthetic.transpose("model", "isl").values)
    np.testing.assert_allclose(grid["params"].values, np.geomspace(125e9, 4e12, 12))


def test_phase_markers_sit_at_1m_isl_with_catalog_sizes(ds, catalog):
    _, markers, _ = plots.phase_data(ds)
    assert set(markers) == {"gpt-oss-120b", "deepseek-v3", "kimi-k2.6"}
    nearest = ds["isl"].values[np.argmin(np.abs(ds["isl"].values - 1e6))]
    for name, (params, isl, units) in markers.items():
        assert params == catalog.model(name).total_params
        assert isl == nearest
        expected = ds["units_needed"].sel(
            model=name, isl=isl, hardware="wse3", concurrency=250, weight_bits=4, kv_bits=16
        )
        assert units == int(expected)


def test_contours_sit_where_the_cube_crosses_their_levels(ds, tmp_path):
    grid, _, _ = plots.phase_data(ds)
    lines = plots.draw_phase(ds, tmp_path / "p.png")
    x, y, z = grid["isl"].values, grid["params"].values, grid.values.astype(float)
    checked = 0
    for level, segments in zip(lines.levels, lines.allsegs):
        assert z.min() < level < z.max()
        for segment in segments:
            for vx, vy in segment:
                # A vertex lies on a grid line, between two neighbours on either side of the level.
                i = np.searchsorted(x, vx, side="right") - 1
                j = np.searchsorted(y, vy, side="right") - 1
                i, j = min(i, len(x) - 2), min(j, len(y) - 2)
                cell = z[j : j + 2, i : i + 2]
                assert cell.min() <= level <= cell.max(), (level, vx, vy, cell)
                checked += 1
    assert checked > 10
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_cost_break_even_matches_the_function(ds):
    cost, break_even, fixed = plots.cost_data(ds, {"isl": 1e5}, model="gpt-oss-120b", api_price=0.60)
    wse, h100 = cost.sel(hardware="wse3"), cost.sel(hardware="h100-sxm")
    expected = break_even_concurrency(wse, 0.60)
    assert break_even["wse3 below API"] == (None if np.isnan(expected) else int(expected))
    expected = break_even_concurrency(h100, wse)
    assert break_even["h100-sxm below wse3"] == (None if np.isnan(expected) else int(expected))
    assert fixed["model"] == "gpt-oss-120b"


def test_break_even_is_the_smallest_concurrency_below():
    cost = xr.DataArray(
        [[3.0, 2.0, 0.5], [1.0, 1.0, 1.0]], dims=("hw", "concurrency"), coords={"concurrency": [1, 8, 64]}
    )
    assert break_even_concurrency(cost, 1.5).values.tolist() == [64.0, 1.0]
    assert break_even_concurrency(cost, 2.5).values.tolist() == [8.0, 1.0]
    assert np.isnan(break_even_concurrency(cost.isel(hw=1), 0.5))


def test_memory_data_and_every_figure_file(cube, ds, tmp_path, capsys):
    weights, kv, _units, fixed = plots.memory_data(ds, {"isl": 1e6})
    assert list(weights["model"].values) == ["gpt-oss-120b", "deepseek-v3", "kimi-k2.6"]
    assert (
        kv.sel(model="deepseek-v3").item()
        == ds["kv_bytes"].sel(model="deepseek-v3", isl=fixed["isl"], concurrency=250, kv_bits=16).item()
    )
    for kind in ("phase", "cost", "memory"):
        out = tmp_path / f"{kind}.svg"
        assert main(["plot", kind, str(cube), "-o", str(out), "--sel", "isl=1M", "--nearest"]) == 0
        assert out.read_text().startswith("<?xml")
    assert main(["plot", "phase", str(cube), "--sel", "hardwar=wse3"]) == 2
    assert "unknown dim 'hardwar'" in capsys.readouterr().err


@settings(max_examples=200)
@given(
    costs=st.lists(st.floats(0.001, 100, allow_nan=False), min_size=1, max_size=12),
    reference=st.one_of(
        st.floats(0.001, 100, allow_nan=False),
        st.lists(st.floats(0.001, 100, allow_nan=False), min_size=12, max_size=12),
    ),
)
def test_break_even_equals_the_reference(costs, reference):
    """The array version agrees with the plain-Python reference on random curves."""
    from engine.model import reference as ref

    concurrency = [2**i for i in range(len(costs))]
    other = reference if isinstance(reference, float) else reference[: len(costs)]
    expected = ref.break_even_concurrency(concurrency, costs, other)
    cost = xr.DataArray(costs, dims="concurrency", coords={"concurrency": concurrency})
    against = (
        other
        if isinstance(other, float)
        else xr.DataArray(other, dims="concurrency", coords={"concurrency": concurrency})
    )
    got = float(break_even_concurrency(cost, against))
    assert (np.isnan(got) and expected is None) or got == expected


def test_one_colour_per_hardware_in_every_figure(ds, tmp_path, monkeypatch):
    """The cost and the frontier figure draw each hardware in the colour hardware_color gives it."""
    from matplotlib.colors import to_hex

    from engine.interfaces.figures import common, cost, frontier

    drawn = {}
    for module in (cost, frontier):
        monkeypatch.setattr(module, "save", lambda fig, output, _m=module.__name__, **o: drawn.__setitem__(_m, fig))
    plots.draw_cost(ds, tmp_path / "c.png")
    plots.draw_frontier(ds, tmp_path / "f.png")
    names = [str(h) for h in ds["hardware"].values]
    expected = {common.display_name(h): common.hardware_color(h) for h in names}
    assert len(set(expected.values())) == len(expected)
    for module, fig in drawn.items():
        lines = {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
        for label, colour in expected.items():
            assert lines[label] == colour, (module, label)
