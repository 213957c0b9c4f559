"""Compiled kernels equal the reference implementation, point by point, on random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model import core, reference
from engine.model.assumptions import Assumptions
from engine.model.core import evaluate_arrays
from engine.model.point import Point
from engine.model.records import Workload
from engine.model.synthetic import synthetic_model
from engine.model.variables import TOKEN_TYPES, family
from tests import strategies as s

RTOL = 1e-9
# 1 - (bytes / capacity) cancels when a replica is almost exactly full: compare absolutely.
ABSOLUTE = {"stranded_fraction": 1e-12}

#: Every implementation of the array core, checked against the reference on the same inputs
#: (bench/numpy_impl.py is a speed baseline only, outside the package, and not an oracle).
IMPLEMENTATIONS = {"compiled": core.evaluate_arrays}


@st.composite
def workloads(draw):
    output = draw(st.floats(0.0005, 0.95, **s.finite))
    parts = [draw(st.sampled_from([0.0, 0.01, 1.0]) | st.floats(1e-6, 1, **s.finite)) for _ in range(3)]
    parts[2] = max(parts[2], 0.01)
    scale = (1.0 - output) / sum(parts)
    return Workload(
        name="random", cache_read=parts[0] * scale, cache_write=parts[1] * scale, input=parts[2] * scale, output=output
    )


def assert_matches(kernel_value, reference_value, where, absolute=1e-300):
    if isinstance(reference_value, (bool, np.bool_)):
        assert bool(kernel_value) == reference_value, where
    elif isinstance(reference_value, int):
        assert int(kernel_value) == reference_value, where
    elif math.isnan(reference_value):
        assert math.isnan(kernel_value), where
    else:
        assert kernel_value == pytest.approx(reference_value, rel=RTOL, abs=absolute), where


def grid_case(catalog):
    return st.tuples(
        s.axis(s.models(), max_size=2),
        s.axis(s.hardware(catalog), max_size=3),
        s.axis(s.contexts),
        s.axis(s.contexts.map(lambda v: max(1.0, v / 100))),
        s.axis(s.concurrencies),
        s.axis(s.weight_bits),
        s.axis(s.kv_bits),
        workloads(),
        s.assumption_sets,
    )


def check_family(implementation, name, case):
    models, units, isl, osl, conc, wbits, kbits, workload, assumptions = case
    n = min(len(isl), len(osl))
    isl, osl = isl[:n], osl[:n]
    arrays = IMPLEMENTATIONS[implementation](
        models, units, isl, osl, conc, wbits, kbits, workload, assumptions, families=[name]
    )
    for m, model in enumerate(models):
        for c in range(n):
            for r, R in enumerate(conc):
                for w, wb in enumerate(wbits):
                    for k, kb in enumerate(kbits):
                        for h, unit in enumerate(units):
                            ref = reference.compose_point(
                                Point(model, unit, workload, isl[c], osl[c], R, wb, kb, assumptions)
                            )
                            index = {
                                "model": m,
                                "<context>": c,
                                "concurrency": r,
                                "weight_bits": w,
                                "kv_bits": k,
                                "hardware": h,
                            }
                            for var in family(name):
                                at = tuple(index[d] for d in var.dims if d != "token_type")
                                where = (
                                    f"{var.name} at model {m}, isl {isl[c]}, R {R}, wbits {wb}, kbits {kb}, {unit.name}"
                                )
                                if var.name == "cost_per_mtok_by_type_usd":
                                    for t, kind in enumerate(TOKEN_TYPES):
                                        assert_matches(
                                            arrays[var.name][(*at, t)], ref[var.name][kind], f"{where} ({kind})"
                                        )
                                else:
                                    assert_matches(
                                        arrays[var.name][at], ref[var.name], where, ABSOLUTE.get(var.name, 1e-300)
                                    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@settings(max_examples=250)
@given(data=st.data())
def test_memory_family_equals_reference(kernels, catalog, implementation, data):
    check_family(implementation, "memory", data.draw(grid_case(catalog)))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@settings(max_examples=250)
@given(data=st.data())
def test_performance_family_equals_reference(kernels, catalog, implementation, data):
    check_family(implementation, "performance", data.draw(grid_case(catalog)))


@settings(max_examples=200)
@given(
    reference_model=s.models(),
    total=st.floats(1e8, 1e13, **s.finite),
    context=s.contexts,
)
def test_synthetic_models_scale_kv_per_token_as_two_thirds_power(reference_model, total, context):
    """Layers (rounded) x per-layer width: KV per token follows s^(2/3) up to the layer rounding."""
    model = synthetic_model(reference_model, total)
    scale = total / reference_model.total_params
    layer_ratio = model.layers / reference_model.layers
    expected = reference.kv_elements_per_request(reference_model, context) * layer_ratio * scale ** (1 / 3)
    assert reference.kv_elements_per_request(model, context) == pytest.approx(expected, rel=1e-9)
    assert model.layers == max(1, round(reference_model.layers * scale ** (1 / 3)))
    assert model.active_params / model.total_params == pytest.approx(
        reference_model.active_params / reference_model.total_params
    )
    assert [g.window for g in model.kv_groups] == [g.window for g in reference_model.kv_groups]


def test_kernels_handle_one_request_and_1e8_token_contexts(catalog, agentic):
    models = [catalog.model("deepseek-v4-pro"), catalog.model("gpt-oss-120b")]
    units = [catalog.get_hardware("wse3"), catalog.get_hardware("b200")]
    extrapolate = Assumptions(context_limit="none", parallelism="dp-ep")
    arrays = evaluate_arrays(models, units, [1e8], [1e5], [1], [4.25], [16], agentic, extrapolate)
    assert not arrays["within_context"].any()  # 1e8 tokens is past both windows, yet computed
    for name, values in arrays.items():
        if name != "cost_per_mtok_by_type_usd":
            assert np.all(np.isfinite(values.astype(float))), name
    limited = evaluate_arrays(models, units, [1e8], [1e5], [1], [4.25], [16], agentic, Assumptions())
    assert np.isnan(limited["cost_per_mtok_usd"]).all() and not limited["replica_fits"].any()
    assert (limited["units_needed"] == 0).all()
    # 18 full layers x 1024 elements x 2 bytes x (1e8 + 1e5) tokens, plus 18 windows of 128
    expected = 18 * 1024 * 2 * (1e8 + 1e5) + 18 * 1024 * 2 * 128
    assert arrays["kv_bytes_per_request"][1, 0, 0] == pytest.approx(expected, rel=1e-12)


def test_preallocated_outputs_are_filled_in_place(catalog, agentic):
    args = (
        [catalog.model("glm-5")],
        [catalog.get_hardware("b200"), catalog.get_hardware("wse3")],
        [1e3, 1e5],
        [10.0, 100.0],
        [1, 64],
        [4, 8],
        [16],
        agentic,
        Assumptions(),
    )
    fresh = evaluate_arrays(*args)
    buffers = {name: np.full_like(array, 7) for name, array in fresh.items()}
    filled = evaluate_arrays(*args, out=buffers)
    for name, array in fresh.items():
        assert filled[name] is buffers[name]
        np.testing.assert_array_equal(filled[name], array)
    with pytest.raises(ValueError, match="must be a C-contiguous float64 array of shape"):
        evaluate_arrays(*args, out={"ttft_s": np.empty(3)})
