"""Array core: run the kernels on 1-D axes and return numpy arrays, no labels.

This is the layer Dask blocks, ``tokensweep point`` and the benchmarks call. Labelling
(xarray) lives in :mod:`engine.grid`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.assumptions import Assumptions
from engine.catalog import Hardware, Model, Workload
from engine.tables import (
    assumption_vector,
    hardware_table,
    interactivity_overrides,
    model_table,
    workload_vector,
)
from engine.variables import CONTEXT, FAMILIES, TOKEN_TYPES, family


def _shape(dims: tuple[str, ...], sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(sizes[d] for d in dims)


def _vector(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


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
    """
    from engine import kernels  # compiled on first use (or loaded from the cache)

    isl, osl = _vector(isl), _vector(osl)
    concurrency, weight_bits, kv_bits = _vector(concurrency), _vector(weight_bits), _vector(kv_bits)
    if isl.shape != osl.shape:
        raise ValueError("isl and osl must be paired vectors of the same length")
    mt = model_table(models)
    hw = hardware_table(hardware)
    av = assumption_vector(assumptions)
    sizes = {
        "model": len(models),
        CONTEXT: isl.size,
        "concurrency": concurrency.size,
        "weight_bits": weight_bits.size,
        "kv_bits": kv_bits.size,
        "hardware": len(hardware),
        "token_type": len(TOKEN_TYPES),
    }
    given = out or {}
    out = {}
    for name in families:
        outputs = []
        for v in family(name):
            shape = _shape(v.dims, sizes)
            array = given.get(v.name)
            if array is None:
                array = np.empty(shape, dtype=v.dtype)
            elif array.shape != shape or array.dtype != v.dtype or not array.flags.c_contiguous:
                raise ValueError(f"out[{v.name!r}] must be a C-contiguous {np.dtype(v.dtype)} array of shape {shape}")
            outputs.append(array)
        if name == "memory":
            kernels.memory_kernel(
                mt.table, mt.group_offsets, mt.groups, hw, isl, osl, concurrency, weight_bits, kv_bits, av, *outputs
            )
        else:
            kernels.performance_kernel(
                mt.table, mt.group_offsets, mt.groups, hw, interactivity_overrides(models, hardware),
                isl, osl, concurrency, weight_bits, kv_bits, av, workload_vector(workload), *outputs,
            )  # fmt: skip
        out.update({v.name: arr for v, arr in zip(family(name), outputs)})
    return out
