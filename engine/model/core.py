"""Array core: run the kernels on 1-D axes and return numpy arrays, no labels.

This is the layer Dask blocks, ``tokensweep point`` and the benchmarks call. Labelling
(xarray) lives in :mod:`engine.sweep`. Inputs and outputs travel as mappings by name
(:func:`kernel_inputs`, the variable registry), never by position.
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
    speculation_table,
    workload_vector,
)
from engine.model.variables import CONTEXT, FAMILIES, TOKEN_TYPE, TOKEN_TYPES, Variable, family


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
) -> dict[str, np.ndarray]:
    """Every kernel input by name (tables, paired context vectors, axes, parameters, mix)."""
    isl, osl = _vector(isl), _vector(osl)
    if isl.shape != osl.shape:
        raise ValueError("isl and osl must be paired vectors of the same length")
    tables = model_table(models)
    return {
        "models": tables.table,
        "group_offsets": tables.group_offsets,
        "groups": tables.groups,
        "hardware": hardware_table(hardware),
        "overrides": interactivity_overrides(models, hardware),
        "speculation": speculation_table(models, hardware),
        "isl": isl,
        "osl": osl,
        "concurrency": _vector(concurrency),
        "weight_bits": _vector(weight_bits),
        "kv_bits": _vector(kv_bits),
        "parameters": parameter_vector(assumptions),
        "mix": workload_vector(workload),
    }


def kernel_shape(var: Variable, inputs: dict[str, np.ndarray]) -> tuple[int, ...]:
    """A variable's array shape in kernel layout, from its dims and the inputs' sizes."""
    sizes = {
        "model": inputs["models"].shape[0],
        CONTEXT: inputs["isl"].size,
        "concurrency": inputs["concurrency"].size,
        "weight_bits": inputs["weight_bits"].size,
        "kv_bits": inputs["kv_bits"].size,
        "hardware": inputs["hardware"].shape[0],
        TOKEN_TYPE: len(TOKEN_TYPES),
    }
    return tuple(sizes[d] for d in var.dims)


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
) -> dict[str, np.ndarray]:
    """Every variable of the requested families over the Cartesian product of the axes.

    ``isl`` and ``osl`` are paired (one context per position). Arrays come back in kernel
    layout: ``(model, context, concurrency, weight_bits, kv_bits, hardware[, token_type])``
    restricted to each variable's dims. ``out`` may hold preallocated C-contiguous arrays
    (by variable name) to fill instead of allocating: repeated calls then skip the page
    faults of fresh memory.

    >>> from engine.model.catalog import load_catalog
    >>> cat = load_catalog()
    >>> arrays = evaluate_arrays([cat.model("qwen3-32b")], [cat.unit("h100-sxm")], [1e3], [100], [1, 8],
    ...                          [16], [16], cat.workload("chat"), Assumptions())
    >>> arrays["units_needed"].shape
    (1, 1, 2, 1, 1, 1)
    """
    from engine.model.kernels import KERNELS  # compiled on first use (or loaded from the cache)

    inputs = kernel_inputs(models, hardware, isl, osl, concurrency, weight_bits, kv_bits, workload, assumptions)
    given = out or {}
    result: dict[str, np.ndarray] = {}
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
        KERNELS[name](inputs, outputs)
        result.update(outputs)
    return result
