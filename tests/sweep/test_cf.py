"""CF metadata a reader's tools understand: units pint parses, booleans as flags, provenance."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from engine.units import unit_registry
from tests.sweep_helpers import small


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("cf") / "cube.zarr"
    run_sweep(make_plan(parse_spec(small())), path, progress=False)
    return xr.open_zarr(path)


def test_every_units_attribute_parses_and_the_whole_cube_quantifies(cube):
    pint_xarray = pytest.importorskip("pint_xarray")
    ureg = unit_registry()
    with_units = [name for name in cube.variables if "units" in cube[name].attrs]
    assert len(with_units) > 40
    for name in with_units:
        ureg.parse_units(cube[name].attrs["units"])  # raises on any unit pint cannot read
    assert pint_xarray is not None
    quantified = cube.pint.quantify(unit_registry=ureg)
    cost = quantified["cost_per_mtok_usd"]
    assert str(cost.pint.units) == "USD / megatoken"
    per_token = cost.pint.to("USD / token").pint.dequantify()
    np.testing.assert_allclose(per_token.values, cube["cost_per_mtok_usd"].values / 1e6, rtol=1e-12)
    rate = quantified["interactivity_tps"].pint.to("token / hour").pint.dequantify()
    np.testing.assert_allclose(rate.values, cube["interactivity_tps"].values * 3600, rtol=1e-12)
    assert str(quantified["isl"].pint.units) == "token"


def test_booleans_are_cf_flags_without_units(cube):
    booleans = [name for name in cube.variables if cube[name].dtype == bool]
    assert {"replica_fits", "fits_domain", "within_context", "synthetic"} <= set(booleans)
    for name in booleans:
        attrs = cube[name].attrs
        assert "units" not in attrs, name
        assert attrs["flag_values"] == [0, 1] and attrs["flag_meanings"] == "false true", name


def test_label_coordinates_carry_no_empty_units(cube):
    for name in ("model", "hardware", "token_type"):
        assert "units" not in cube[name].attrs and cube[name].attrs["long_name"]
    assert cube.attrs["Conventions"] == "CF-1.10"


def test_provenance_names_the_packages_the_command_and_the_commit(cube):
    import subprocess
    from pathlib import Path

    assert {"numpy", "numba", "xarray", "zarr", "dask"} <= set(cube.attrs["software"])
    assert cube.attrs["history"].startswith(cube.attrs["created"] + " ") and len(cube.attrs["history"].split()) > 1
    root = Path(__file__).parents[2]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert cube.attrs["source_commit"].removesuffix("-dirty") == head.stdout.strip()


def test_every_units_attribute_parses_in_udunits_with_the_shipped_database(tmp_path, cube):
    pytest.importorskip("cf_units")
    import json
    import os
    import subprocess
    import sys

    from engine.units import udunits_database

    units = sorted({cube[name].attrs["units"] for name in cube.variables if "units" in cube[name].attrs})
    code = (
        "import json, sys, cf_units\n"
        "units = json.loads(sys.argv[1])\n"
        "print(json.dumps([str(cf_units.Unit(u)) for u in units]))\n"
        "print(cf_units.Unit('USD/Mtok').convert(0.6, 'USD/token'))\n"
    )
    env = {**os.environ, "UDUNITS2_XML_PATH": str(udunits_database(tmp_path))}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(units)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    parsed, converted = done.stdout.strip().splitlines()
    assert len(json.loads(parsed)) == len(units) and "tokens/s" in units
    assert float(converted) == pytest.approx(6e-7, rel=1e-12)


#: What every unit string the project writes must mean (pint would also read e.g. "units" as micro-nits).
MEANING = {
    "1": "dimensionless", "FLOP": "FLOP", "FLOP/s": "FLOP / second", "GB/s": "gigabyte / second", "USD": "USD",
    "USD/Mtok": "USD / megatoken", "USD/h": "USD / hour", "USD/kWh": "USD / kilowatt_hour", "bits": "bit",
    "bytes": "byte", "bytes/s": "byte / second", "count": "count", "elements": "element", "kW": "kilowatt",
    "layers": "layer",
    "params": "parameter", "requests": "request", "s": "second", "tok/s": "token / second", "tokens": "token",
    "tokens/s": "token / second", "year": "year",
}  # fmt: skip


def test_every_unit_string_in_the_registries_means_what_it_says(cube):
    from engine.axes import AXES
    from engine.model.variables import VARIABLES

    ureg = unit_registry()
    used = {a.units for a in AXES.values()} | {v.units for v in VARIABLES}
    used |= {cube[n].attrs["units"] for n in cube.variables if "units" in cube[n].attrs}
    used = {u for u in used if u not in ("", "bool") and not u.startswith("flags:")}  # flags: CF flag_meanings
    assert used <= set(MEANING), sorted(used - set(MEANING))
    for text in used:
        assert str(ureg.parse_units(text)) == MEANING[text], text
