"""The registries are the single source: kernels bind to them by name, the cube's dims follow
what each variable reads, the docs are rendered from them, and the production path stands
apart from the reference oracle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.axes import AXES, CHOICE_PARAMETERS, GRID_AXES, NUMERIC_PARAMETERS, PARAMETERS
from engine.model import reference
from engine.model.assumptions import Assumptions, CacheTier, PriceMode
from engine.model.catalog import load_catalog
from engine.model.point import Point
from engine.model.variables import BY_NAME, FAMILIES, VARIABLES, family
from tests.strategies import parameter_values

ROOT = Path(__file__).parents[2]
CATALOG = load_catalog()


# ---------------------------------------------------------------------- assumptions from the registry
def test_assumptions_are_the_registry_parameters_with_its_defaults():
    defaults = Assumptions()
    assert tuple(Assumptions.model_fields) == PARAMETERS
    for name in PARAMETERS:
        assert getattr(defaults, name) == AXES[name].default, name
    assert [m.name for m in PriceMode] == list(AXES["price"].choices)
    assert [m.name for m in CacheTier] == list(AXES["cache_tier"].choices)


def test_a_prefill_pool_may_use_every_shipped_unit(catalog):
    """``prefill_hardware`` lists the decode replica's own kind, then the shipped catalog's units."""
    assert AXES["prefill_hardware"].choices == ("same", *catalog.hardware)


@pytest.mark.parametrize("name", NUMERIC_PARAMETERS)
def test_registry_bounds_are_enforced_everywhere(name):
    from engine.errors import UserError
    from engine.model.assumptions import parse_assumptions

    axis = AXES[name]
    beyond = axis.high * 2 if axis.high > 0 else 1.0
    with pytest.raises(UserError, match=rf"^--set {name}: .* is out of range \(allowed: "):
        parse_assumptions({name: beyond}, "--set ")
    assert getattr(parse_assumptions({name: axis.high}, "--set "), name) == axis.high


def test_point_flags_come_from_the_grid_axes(capsys):
    from engine.interfaces.cli import main

    with pytest.raises(SystemExit):
        main(["point", "--help"])
    text = capsys.readouterr().out
    for name in GRID_AXES:
        assert f"--{name.replace('_', '-')}" in text
        assert AXES[name].bounds_text() in text


# ---------------------------------------------------------------------- kernels bound by name
def test_each_family_has_a_kernel_whose_outputs_are_its_variables():
    import numba

    from engine.model.kernels import KERNELS

    assert set(KERNELS) == set(FAMILIES)
    for name, kernel in KERNELS.items():
        assert set(kernel.outputs) == {v.name for v in family(name)}
        signature = kernel.dispatcher.signatures[0]
        for arg, output in zip(signature[len(kernel.inputs) :], kernel.outputs):
            assert arg.ndim == BY_NAME[output].rank, output
            assert arg.dtype == numba.from_dtype(np.dtype(BY_NAME[output].dtype)), output


def test_a_kernel_whose_outputs_are_not_its_family_is_refused_at_import():
    from engine.model.kernels import bound

    def swapped(models, isl, weight_bytes, kv_share):  # two memory variables, most missing
        pass

    with pytest.raises(
        TypeError, match=r"outputs differ from the memory variables \(missing \['admitted_requests', 'capex_usd'"
    ):
        bound("memory")(swapped)

    names = ", ".join(v.name for v in family("memory"))
    namespace: dict = {}
    exec(f"def unknown_input(modles, {names}):\n    pass", namespace)  # a typo in one input's name
    unknown_input = namespace["unknown_input"]

    with pytest.raises(TypeError, match=r"unknown inputs \['modles'\]"):
        bound("memory")(unknown_input)


def test_outputs_bind_by_name_not_by_order(catalog, agentic):
    """Handing the kernel its outputs in another order changes nothing."""
    from engine.model.core import kernel_inputs, kernel_shape
    from engine.model.kernels import KERNELS

    inputs = kernel_inputs(
        [catalog.model("glm-5")],
        [catalog.get_hardware("b200"), catalog.get_hardware("wse3")],
        [1e3, 1e5],
        [10.0, 1e2],
        [1, 64],
        [4, 8],
        [16],
        agentic,
        Assumptions(),
    )
    for name, kernel in KERNELS.items():
        forward = {v.name: np.empty(kernel_shape(v, inputs), v.dtype) for v in family(name)}
        backward = {v.name: np.empty(kernel_shape(v, inputs), v.dtype) for v in reversed(family(name))}
        kernel(inputs, forward)
        kernel(inputs, backward)
        for var in forward:
            np.testing.assert_array_equal(forward[var], backward[var])


def test_the_kernel_cache_is_keyed_by_the_layout(tmp_path, monkeypatch):
    import numba

    from engine.jit import layout_cache
    from engine.model import tables

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    before = numba.config.CACHE_DIR
    with layout_cache("abc123"):
        assert str(tmp_path / "layout-abc123") == numba.config.CACHE_DIR
    assert before == numba.config.CACHE_DIR
    layout = tables._layout()
    layout["enums"]["HW"] = list(reversed(layout["enums"]["HW"]))  # a reordered column layout
    assert layout != tables._layout()


# ---------------------------------------------------------------------- what each variable reads
def _other_value(name, current, draw):
    if AXES[name].role == "choice":
        return draw(st.sampled_from([c for c in AXES[name].choices if c != current]))
    return draw(parameter_values(name).filter(lambda v: v != current))


@settings(max_examples=150)
@given(data=st.data())
def test_a_variable_does_not_move_with_an_assumption_it_does_not_read(data):
    """So a cube may leave out an assumption axis a variable does not read."""
    model = CATALOG.model(data.draw(st.sampled_from(sorted(CATALOG.models))))
    hardware = CATALOG.get_hardware(data.draw(st.sampled_from(sorted(CATALOG.hardware))))
    workload = CATALOG.workload(data.draw(st.sampled_from(sorted(CATALOG.workloads))))
    name = data.draw(st.sampled_from(PARAMETERS))
    base = Point(
        model,
        hardware,
        workload,
        isl=data.draw(st.floats(1e3, 1e6)),
        concurrency=data.draw(st.integers(1, 512)),
        weight_bits=data.draw(st.sampled_from([4, 8, 16])),
        kv_bits=data.draw(st.sampled_from([8, 16])),
    )
    changed = base.at(assumptions=Assumptions(**{name: _other_value(name, getattr(base.assumptions, name), data.draw)}))
    a, b = reference.compose_point(base), reference.compose_point(changed)
    for var in VARIABLES:
        if name not in var.reads:
            assert a[var.name] == b[var.name] or (a[var.name] != a[var.name] and b[var.name] != b[var.name]), (
                var.name,
                name,
            )


def test_every_assumption_is_read_by_some_variable():
    read = set().union(*(v.reads for v in VARIABLES))
    assert read == set(PARAMETERS)


def test_assumption_axes_appear_only_on_variables_that_read_them():
    from engine.sweep.plan import make_plan
    from engine.sweep.spec import parse_spec
    from tests.sweep_helpers import small

    plan = make_plan(parse_spec(small(axes={**small()["axes"], "pue": [1.1, 1.5], "mfu_prefill": [0.4, 0.8]})))
    for var in VARIABLES:
        dims = plan.schema.var_dims(var)
        assert ("pue" in dims) == ("pue" in var.reads), var.name
        assert ("mfu_prefill" in dims) == ("mfu_prefill" in var.reads), var.name


# ---------------------------------------------------------------------- docs and layout
def test_docs_model_tables_are_rendered_from_the_registries():
    from engine.interfaces.docs import render

    text = (ROOT / "docs" / "model.md").read_text()
    assert render(text) == text, "docs/model.md is out of date: run python -m engine.interfaces.docs"
    for name in (*PARAMETERS, *GRID_AXES, *BY_NAME):
        assert f"`{name}`" in text, name


def test_choice_parameters_are_documented_with_their_choices():
    text = (ROOT / "docs" / "model.md").read_text()
    for name in CHOICE_PARAMETERS:
        assert ", ".join(AXES[name].choices) in text


def test_the_production_path_never_imports_the_reference_oracle(tmp_path):
    code = (
        "import sys\n"
        "from engine.interfaces.cli import main\n"
        "assert main(['point', '--model', 'gpt-oss-120b', '--json']) == 0\n"
        "assert main(['point', '--model', 'llama-3.1-70b', '--hardware', 'h100-sxm', '--vs', 'wse3']) == 0\n"
        f"assert main(['run', {str(ROOT / 'sweeps' / 'quantization.yaml')!r}, '--output', {str(tmp_path / 'q.zarr')!r},"
        " '--no-progress', '--no-figures', '--max-points', '1e9']) == 0\n"
        "assert 'engine.model.reference' not in sys.modules, 'the oracle was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]


def test_docs_and_code_refer_only_to_files_in_the_repository():
    pattern = ("../shared", "shared/reference", "shared/calibration", "SPEC.md")
    for path in [
        ROOT / "README.md",
        *ROOT.glob("docs/**/*.md"),
        *ROOT.glob("engine/**/*.py"),
        *ROOT.glob("engine/data/*.yaml"),
    ]:
        text = path.read_text()
        for needle in pattern:
            assert needle not in text, f"{path.relative_to(ROOT)} points outside the repository ({needle})"
