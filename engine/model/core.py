"""Array core: run the kernels on 1-D axes and return numpy arrays with named dims.

This is the layer Dask blocks, ``tokensweep point`` and the benchmarks call. Inputs and
outputs travel as mappings by name (:func:`kernel_inputs`, the variable registry), never by
position, and :class:`Arrays` gives any variable in the dims a caller names
(:meth:`Arrays.view`, :meth:`Arrays.at`): no module outside this one knows the kernels' axis
order, so adding a kernel dim touches the core alone. Labelling (xarray) lives in
:mod:`engine.sweep`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.model.assumptions import Assumptions
from engine.model.records import Hardware, Model, Workload
from engine.model.tables import (
    hardware_table,
    interactivity_overrides,
    model_table,
    parameter_vector,
    pool_units,
    speculation_table,
    workload_vector,
)
from engine.model.uncertain import Draws
from engine.model.variables import BY_NAME, CONTEXT, FAMILIES, TOKEN_TYPE, TOKEN_TYPES, Variable, family

#: The leading dim of every array evaluated with draws.
DRAW = "draw"


def _vector(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


def kernel_inputs(
    models: Sequence[Model],
    hardware: Sequence[Hardware],
    isl,
    osl,
    concurrency,
    weight_bits,
    kv_bits,
    workload: Workload,
    assumptions: Assumptions,
    draws: Draws | None = None,
    pool: Hardware | None = None,
) -> dict[str, np.ndarray]:
    """Every kernel input by name (tables, paired context vectors, axes, parameters, mix;
    with ``draws``, the parameter matrix and hardware tables of every draw as well). ``pool``:
    the prefill pool's record where it is not the shipped one (one draw's repriced unit)."""
    isl, osl = _vector(isl), _vector(osl)
    if isl.shape != osl.shape:
        raise ValueError("isl and osl must be paired vectors of the same length")
    tables = model_table(models)
    inputs = {
        "models": tables.table,
        "group_offsets": tables.group_offsets,
        "groups": tables.groups,
        "hardware": hardware_table(hardware),
        "overrides": interactivity_overrides(models, hardware),
        "speculation": speculation_table(models, hardware),
        "prefill_unit": hardware_table(pool_units(assumptions.prefill_hardware) if pool is None else [pool]),
        "isl": isl,
        "osl": osl,
        "concurrency": _vector(concurrency),
        "weight_bits": _vector(weight_bits),
        "kv_bits": _vector(kv_bits),
        "parameters": parameter_vector(assumptions),
        "mix": workload_vector(workload),
    }
    if draws is not None:
        inputs["parameter_draws"] = draws.parameter_matrix(inputs["parameters"])
        inputs["hardware_draws"] = draws.hardware_tables(inputs["hardware"], hardware, assumptions.price)
        # By name, as the decode units: a pool of one of the sweep's units moves with its draws in every block.
        named = pool_units(assumptions.prefill_hardware)
        inputs["prefill_unit_draws"] = draws.hardware_tables(inputs["prefill_unit"], named, assumptions.price)
    return inputs


def kernel_sizes(n_models: int, n_contexts: int, n_concurrency: int, n_wbits: int, n_kbits: int, n_hardware: int):
    """Extent of every kernel dim."""
    return {
        "model": n_models,
        CONTEXT: n_contexts,
        "concurrency": n_concurrency,
        "weight_bits": n_wbits,
        "kv_bits": n_kbits,
        "hardware": n_hardware,
        TOKEN_TYPE: len(TOKEN_TYPES),
    }


def kernel_shape(var: Variable, inputs: dict[str, np.ndarray]) -> tuple[int, ...]:
    """A variable's array shape in kernel layout, from its dims and the inputs' sizes (a
    leading draw dim when the inputs carry draws)."""
    sizes = kernel_sizes(
        inputs["models"].shape[0], inputs["isl"].size, inputs["concurrency"].size, inputs["weight_bits"].size,
        inputs["kv_bits"].size, inputs["hardware"].shape[0],
    )  # fmt: skip
    lead = (inputs["parameter_draws"].shape[0],) if "parameter_draws" in inputs else ()
    return lead + tuple(sizes[d] for d in var.dims)


def output_buffers(
    models, hardware, isl, concurrency, weight_bits, kv_bits, families, n_draws: int | None = None
) -> dict[str, np.ndarray]:
    """Empty output arrays of the families' variables for these axes (to reuse across calls)."""
    sizes = kernel_sizes(len(models), len(isl), len(concurrency), len(weight_bits), len(kv_bits), len(hardware))
    lead = (n_draws,) if n_draws is not None else ()
    return {
        v.name: np.empty(lead + tuple(sizes[d] for d in v.dims), dtype=v.dtype) for f in families for v in family(f)
    }


class Arrays(dict):
    """Variables by name (kernel layout), each viewable in the dims a caller names.

    ``view(name, dims)`` returns the variable's array with exactly ``dims``, in that order:
    kernel dims by name (the model dim may be called ``model_dim``; the context is ``isl``,
    or ``isl`` and ``osl`` when both are listed, with ``osl_size`` contexts per ISL), and
    extent 1 along any listed dim the variable does not have. A kernel dim left out must
    have extent 1. ``at(name, **index)`` is one value (0 along unnamed dims).

    Evaluated with draws (``n_draws`` set), every array leads with a ``draw`` dim: list it to
    keep it; left out, the view is of the first draw (for variables no draw moves).
    """

    n_draws: int | None = None

    def view(self, name: str, dims, model_dim: str = "model", osl_size: int = 1) -> np.ndarray:
        array = self[name]
        kernel_dims = BY_NAME[name].dims
        if self.n_draws is not None:
            if DRAW in dims:
                kernel_dims = (DRAW, *kernel_dims)
            else:
                array = array[0]
        split = "osl" in dims
        own, shape = [], []
        for d, n in zip(kernel_dims, array.shape):
            if d == CONTEXT and split:
                own += ["isl", "osl"]
                shape += [n // osl_size, osl_size]
            else:
                own.append({CONTEXT: "isl", "model": model_dim}.get(d, d))
                shape.append(n)
        array = array.reshape(shape)
        dropped = [i for i, d in enumerate(own) if d not in dims]
        if any(shape[i] != 1 for i in dropped):
            raise ValueError(f"{name}: dims {[own[i] for i in dropped]} are not listed and have extent > 1")
        array = array.reshape([n for i, n in enumerate(shape) if i not in dropped])
        own = [d for d in own if d in dims]
        present = [d for d in dims if d in own]
        array = array.transpose([own.index(d) for d in present])
        extents = dict(zip(present, array.shape))
        return array.reshape([extents.get(d, 1) for d in dims])

    def at(self, name: str, **index: int):
        """One value of a variable: the position along each named kernel dim, 0 along the others."""
        dims = BY_NAME[name].dims
        if self.n_draws is not None:
            dims = (DRAW, *dims)
        unknown = set(index) - set(dims)
        if unknown:
            raise KeyError(f"{name} has no dims {sorted(unknown)} (its dims: {dims})")
        return self[name][tuple(index.get(d, 0) for d in dims)]


def evaluate_arrays(
    models: Sequence[Model],
    hardware: Sequence[Hardware],
    isl,
    osl,
    concurrency,
    weight_bits,
    kv_bits,
    workload: Workload,
    assumptions: Assumptions,
    families: Sequence[str] = FAMILIES,
    out: dict[str, np.ndarray] | None = None,
    draws: Draws | None = None,
    pool: Hardware | None = None,
) -> Arrays:
    """Every variable of the requested families over the Cartesian product of the axes.

    ``isl`` and ``osl`` are paired (one context per position). The result maps each variable
    to its array in kernel layout; ask it for the dims you need with :meth:`Arrays.view`. ``out`` may hold preallocated C-contiguous arrays
    (by variable name) to fill instead of allocating: repeated calls then skip the page
    faults of fresh memory. ``draws`` (:class:`engine.model.uncertain.Draws`) evaluates every
    draw of the uncertain inputs in one compiled call: each array then leads with a draw dim.

    >>> from engine.model.catalog import load_catalog
    >>> cat = load_catalog()
    >>> arrays = evaluate_arrays([cat.model("qwen3-32b")], [cat.get_hardware("h100-sxm")], [1e3], [100], [1, 8],
    ...                          [16], [16], cat.workload("chat"), Assumptions())
    >>> arrays["units_needed"].shape
    (1, 1, 2, 1, 1, 1)
    """
    from engine.model.kernels import DRAW_KERNELS, KERNELS  # compiled on first use (or loaded from the cache)

    inputs = kernel_inputs(
        models, hardware, isl, osl, concurrency, weight_bits, kv_bits, workload, assumptions, draws, pool
    )
    kernels = KERNELS if draws is None else DRAW_KERNELS
    given = out or {}
    result = Arrays()
    result.n_draws = None if draws is None else draws.n
    for name in families:
        outputs = {}
        for v in family(name):
            shape = kernel_shape(v, inputs)
            array = given.get(v.name)
            if array is None:
                array = np.empty(shape, dtype=v.dtype)
            elif array.shape != shape or array.dtype != v.dtype or not array.flags.c_contiguous:
                raise ValueError(f"out[{v.name!r}] must be a C-contiguous {np.dtype(v.dtype)} array of shape {shape}")
            outputs[v.name] = array
        kernels[name](inputs, outputs)
        result.update(outputs)
    return result
