"""The lazy Dask cube equals the eager one, whatever the chunking, and builds lazily."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sweep import blocks
from engine.sweep.blocks import evaluate_eager, to_dataset
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from tests.sweep_helpers import small


@pytest.fixture(scope="module")
def plan():
    return make_plan(parse_spec(small()))


@pytest.fixture(scope="module")
def eager(plan):
    return evaluate_eager(plan)


def test_dask_result_equals_eager_numpy_result(plan, eager):
    assert plan.n_blocks > 10
    xr.testing.assert_identical(to_dataset(plan).compute(scheduler="threads"), eager)


def test_building_the_graph_computes_nothing(monkeypatch):
    calls = []
    real = blocks.evaluate_block
    monkeypatch.setattr(blocks, "evaluate_block", lambda p, b: calls.append(b) or real(p, b))
    plan = make_plan(parse_spec(small()))
    ds = to_dataset(plan)
    ds["cost_per_mtok_usd"].sel(hardware="wse3").mean()  # building more graph on top
    assert calls == []
    ds["weight_bytes"].compute(scheduler="sync")
    assert 0 < len(calls) < plan.n_blocks  # only the blocks that own weight_bytes chunks


TINY_AXES = {"isl": [16e3, 1e5, 1e6, 1e7], "concurrency": [1, 64], "weight_bits": [4, 8], "kv_bits": [16]}
TINY = {
    "models": ["gpt-oss-120b"],
    "hardware": ["wse3", "h100-sxm"],
    "axes": TINY_AXES,
    "synthetic": {"reference": "deepseek-v3", "params": [2e11, 2e12]},
}


@pytest.fixture(scope="module")
def tiny_eager():
    return evaluate_eager(make_plan(parse_spec(small(**TINY, chunks={}))))


@settings(max_examples=25)
@given(
    model=st.integers(1, 3),
    isl=st.integers(1, 4),
    concurrency=st.integers(1, 2),
    weight_bits=st.integers(1, 2),
    hardware=st.integers(1, 2),
)
def test_results_do_not_depend_on_chunking(tiny_eager, model, isl, concurrency, weight_bits, hardware):
    chunks = {"model": model, "isl": isl, "concurrency": concurrency, "weight_bits": weight_bits, "hardware": hardware}
    plan = make_plan(parse_spec(small(**TINY, chunks=chunks)))
    chunked = to_dataset(plan).compute(scheduler="sync")
    assert chunked.attrs["spec_fingerprint"] != tiny_eager.attrs["spec_fingerprint"]  # chunks are part of the spec
    chunked.attrs = tiny_eager.attrs
    xr.testing.assert_identical(chunked, tiny_eager)


def test_each_variable_spans_only_its_dims(eager):
    assert eager["weight_bytes"].dims == ("model", "weight_bits")
    assert eager["kv_bytes_per_request"].dims == ("model", "isl", "kv_bits")
    assert eager["total_bytes"].dims == ("model", "isl", "concurrency", "weight_bits", "kv_bits")
    assert eager["units_needed"].dims[-1] == "hardware"
    assert eager["cost_per_mtok_by_type_usd"].dims[-1] == "token_type"
    for name in list(eager.variables):
        attrs = eager[name].attrs
        assert "long_name" in attrs, name
        assert "units" in attrs or "flag_values" in attrs or eager[name].dtype.kind in "OTU", name


def test_catalog_fields_are_non_index_coordinates(eager):
    assert eager["layers"].dims == ("model",)
    assert int(eager["layers"].sel(model="gpt-oss-120b")) == 36
    assert bool(eager["synthetic"].sel(model="deepseek-v3@4T"))
    assert eager["memory_bytes"].sel(hardware="wse3") == 44e9
    assert eager["osl"].dims == ("isl",)


def test_synthetic_only_sweep_uses_a_params_axis():
    spec = small(models=[], chunks={"params": 2})
    ds = evaluate_eager(make_plan(parse_spec(spec)))
    assert "params" in ds.dims and "model" not in ds.dims
    assert ds["params"].attrs["units"] == "params"
    np.testing.assert_allclose(ds["params"].values, np.geomspace(125e9, 4e12, 4))


def test_osl_axis_and_parameter_axis(eager):
    spec = small(
        axes={**small()["axes"], "osl": [100, 1000], "cache_read_speedup": [5, 20]},
        parameters={"workload": "agentic-coding", "prefill_model": "calculator", "context_limit": "none"},
    )
    plan = make_plan(parse_spec(spec))
    ds = to_dataset(plan).compute(scheduler="sync")
    xr.testing.assert_identical(ds, evaluate_eager(plan))
    assert ds["kv_bytes"].dims == ("model", "isl", "osl", "concurrency", "kv_bits")
    assert "cache_read_speedup" in ds["turn_time_s"].dims
    assert "cache_read_speedup" not in ds["units_needed"].dims
    wse = ds["turn_time_s"].sel(hardware="wse3", model="gpt-oss-120b")
    assert (wse.sel(cache_read_speedup=20) < wse.sel(cache_read_speedup=5)).all()


def test_deployment_axes_are_one_value_per_block_and_only_where_read():
    spec = small(axes={**small()["axes"], "parallelism": ["tp", "dp-ep"], "replica_units": [0, 8]}, chunks={})
    plan = make_plan(parse_spec(spec))
    assert plan.chunks["parallelism"] == 1 and plan.chunks["replica_units"] == 1
    ds = to_dataset(plan).compute(scheduler="sync")
    xr.testing.assert_identical(ds, evaluate_eager(plan))
    assert list(ds["parallelism"].values) == ["tp", "dp-ep"]
    assert "parallelism" in ds["units_needed"].dims and "replica_units" not in ds["units_needed"].dims
    assert "replica_units" in ds["cost_per_mtok_usd"].dims and "parallelism" not in ds["weight_bytes"].dims
    fixed = ds["units_per_replica"].sel(replica_units=8, hardware="h100-sxm")
    assert set(np.unique(fixed.values)) <= {0, 8}  # eight GPUs, or no replica (NaN figures, flagged)
    unfit = ~ds["replica_fits"].sel(replica_units=8, hardware="h100-sxm")
    assert ds["cost_per_mtok_usd"].sel(replica_units=8, hardware="h100-sxm").where(unfit).isnull().all()


def test_float32_precision_halves_the_store(plan):
    single = make_plan(parse_spec(small(precision="float32")))
    assert to_dataset(single)["cost_per_mtok_usd"].dtype == np.float32
    assert single.bytes_on_disk() < 0.6 * plan.bytes_on_disk()
