"""Blocks: how a plan's blocks are evaluated (the cluster module executes them).

- :func:`evaluate_block`: one block through the array core, in cube layout;
- :func:`to_dataset`: the whole cube as a lazy, Dask-backed :class:`xarray.Dataset` (one
  task per block, each variable's chunk taken from the one block that owns it);
- :func:`template`: the same Dataset's metadata with placeholders (the store's template);
- :func:`evaluate_eager`: the whole cube in this process with numpy (the oracle the Dask
  path is tested against).

The full-cube output (:mod:`engine.sweep.outputs`) runs :func:`evaluate_block` per block too.
"""

from __future__ import annotations

import dataclasses
import threading
from functools import partial

import numpy as np

from engine.model.core import evaluate_arrays, output_buffers
from engine.model.uncertain import summarise
from engine.model.variables import FAMILIES
from engine.sweep.plan import Plan


def block_arguments(plan: Plan, block: tuple[int, ...]) -> tuple:
    """The array core's arguments for one block (ISL and OSL as paired context vectors)."""
    spec = plan.spec
    slices = plan.block_slices(block)
    isl = spec.axes["isl"][slices["isl"]]
    if spec.osl_is_axis:
        osl_axis = spec.axes["osl"][slices["osl"]]
        isl_pairs, osl_pairs = np.repeat(isl, len(osl_axis)), np.tile(osl_axis, len(isl))
    else:
        isl_pairs, osl_pairs = isl, spec.derived_osl[slices["isl"]]
    return (
        spec.models[slices[spec.model_dim]],
        spec.hardware[slices["hardware"]],
        isl_pairs,
        osl_pairs,
        spec.axes["concurrency"][slices["concurrency"]],
        spec.axes["weight_bits"][slices["weight_bits"]],
        spec.axes["kv_bits"][slices["kv_bits"]],
        spec.workload,
        plan.block_assumptions(block),
    )


_buffers = threading.local()


def evaluate_block(plan: Plan, block: tuple[int, ...], reuse: bool = False, slot: int = 0) -> dict[str, np.ndarray]:
    """Run the kernels on one block; arrays come back in cube layout for the block's extents.

    Only the families with a variable this block owns are run. With ``reuse`` the kernels fill
    buffers this thread keeps for same-sized blocks (no fresh pages to fault in per block): the
    arrays are then valid only until this thread evaluates its next block into the same
    ``slot`` (a thread may keep several buffer sets: :mod:`engine.sweep.pipeline`).
    """
    schema = plan.schema
    slices = plan.block_slices(block)
    owned = [v for v in plan.variables if plan.owns(block, v)]
    families = [f for f in FAMILIES if any(v.family == f for v in owned)]
    if not families:
        return {}
    arguments = block_arguments(plan, block)
    draws = plan.spec.draws
    buffers = thread_buffers(arguments, families, slot, draws.n if draws else None) if reuse else None
    arrays = evaluate_arrays(*arguments, families, buffers, draws=draws)
    osl_size = slices["osl"].stop - slices["osl"].start if "osl" in slices else 1
    summary = plan.spec.uncertain.quantiles if plan.spec.draw_dim == "quantile" else None
    out = {}
    for var in owned:
        dims = tuple("draw" if d == "quantile" else d for d in schema.var_dims(var))
        view = arrays.view(var.name, dims, model_dim=plan.spec.model_dim, osl_size=osl_size)
        if summary is not None and "draw" in dims:
            view = summarise(view, summary, dims.index("draw"))
        out[var.name] = view.astype(schema.storage_dtype(var), copy=False)
    return out


def thread_buffers(arguments: tuple, families, slot: int = 0, n_draws: int | None = None) -> dict[str, np.ndarray]:
    """Kernel output buffers (set ``slot``) this thread reuses while the block extents stay the same."""
    models, hardware, isl, _, concurrency, weight_bits, kv_bits = arguments[:7]
    key = (
        tuple(families), len(models), len(hardware), len(isl), len(concurrency), len(weight_bits), len(kv_bits),
        n_draws,
    )  # fmt: skip
    cache = _buffers.__dict__.setdefault("sets", {})
    cached = cache.get(slot)
    if cached is None or cached[0] != key:
        buffers = output_buffers(models, hardware, isl, concurrency, weight_bits, kv_bits, families, n_draws)
        cache[slot] = cached = (key, buffers)
    return cached[1]


def _pick(result: dict, name: str):
    return result[name]


def to_dataset(plan: Plan):
    """The whole cube as a lazy, Dask-backed Dataset (building it computes nothing)."""
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    schema = plan.schema
    token = tokenize(plan.fingerprint)
    evaluate_name = f"tokensweep-block-{token}"
    # Bind the arguments: Dask would otherwise walk the Plan dataclass and the block tuple.
    layer = {(evaluate_name, *b): (partial(evaluate_block, plan, b),) for b in plan.blocks()}
    data_vars = {}
    for var in plan.variables:
        name = f"{var.name}-{token}"
        var_layer = {
            (name, *plan.var_block_index(b, var)): (partial(_pick, name=var.name), (evaluate_name, *b))
            for b in plan.blocks()
            if plan.owns(b, var)
        }
        graph = HighLevelGraph(
            layers={evaluate_name: layer, name: var_layer}, dependencies={evaluate_name: set(), name: {evaluate_name}}
        )
        chunks = da.core.normalize_chunks(plan.var_chunks(var), schema.var_shape(var))
        array = da.Array(graph, name, chunks, dtype=schema.storage_dtype(var))
        data_vars[var.name] = (schema.var_dims(var), array, schema.var_attrs(var))
    return xr.Dataset(data_vars, coords=schema.coords(), attrs=schema.attrs(plan.created))


def template(plan: Plan):
    """The cube's Dataset with a one-chunk placeholder per variable: its metadata without its graph.

    Writing the store's template from this (``compute=False``) builds a few dozen tasks, not
    one per chunk: the serial part of a run stays small however large the cube.
    """
    import dask.array as da
    import xarray as xr

    schema = plan.schema
    data_vars = {
        var.name: (
            schema.var_dims(var),
            da.empty(schema.var_shape(var), dtype=schema.storage_dtype(var), chunks=-1),
            schema.var_attrs(var),
        )
        for var in plan.variables
    }
    return xr.Dataset(data_vars, coords=schema.coords(), attrs=schema.attrs(plan.created))


def evaluate_eager(plan: Plan):
    """The whole cube computed in this process with numpy arrays (the oracle for Dask)."""
    import xarray as xr

    schema = plan.schema
    whole = {d: 1 if d in plan.spec.parameter_dims else len(v) for d, v in plan.spec.axes.items()}
    eager = dataclasses.replace(plan, chunks=whole)
    arrays = {v.name: np.empty(schema.var_shape(v), dtype=schema.storage_dtype(v)) for v in plan.variables}
    for block in eager.blocks():
        result = evaluate_block(eager, block)
        for var in plan.variables:
            if eager.owns(block, var):
                arrays[var.name][eager.var_region(block, var)] = result[var.name]
    data_vars = {v.name: (schema.var_dims(v), arrays[v.name], schema.var_attrs(v)) for v in plan.variables}
    return xr.Dataset(data_vars, coords=schema.coords(), attrs=schema.attrs(plan.created))
