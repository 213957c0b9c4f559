"""Reductions inside a sweep: a search over every point that writes only the winners.

A spec's ``reduce`` section (:class:`~engine.sweep.spec.Reduction`) asks for the minimum
of one variable over some dims where conditions hold, and the configuration that attains
it. Every block is reduced to a :class:`Partial`: the best cost, its rank and the carried
variables for each output coordinate of the block. Where the reduction reads only
performance figures and the replica (:func:`fusable`: every shipped search), the fused
search kernel (:func:`engine.model.kernels.search_kernel`) evaluates each point and folds it
in the same compiled loop, storing nothing per point (:func:`fused_partial`); otherwise the
kernels fill reused buffers, a numpy mask applies ``where`` and a compiled loop
(:func:`reduce_block`) folds them. The two give identical partials (tested block by block). Dask combines the
partials of the blocks that share an output chunk in a tree (fan-in :data:`FAN_IN`), and
the root writes that chunk. The frontier form bins the points by speed level and takes a
suffix minimum at the end: the cheapest configuration at least as fast as each level.

Ties go to the configuration first in the C order of the ``over`` dims as listed (its
*rank*), which is what ``xarray``'s argmin over ``stack(_config=over)`` picks, so a
reduction equals :func:`engine.analysis.decisions.cheapest` on the full cube (tested).

Crash safety and resume are those of full sweeps with the output chunk as the unit: a
chunk's record is written after its values, a rerun recomputes only unrecorded chunks
(:class:`engine.sweep.outputs.ReducedOutput` builds the tree and writes the chunks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.axes import AXES
from engine.conditions import holds
from engine.jit import kernel
from engine.model.core import evaluate_arrays
from engine.model.variables import BY_NAME, FAMILIES, VARIABLES
from engine.sweep.blocks import block_arguments, thread_buffers
from engine.sweep.cube import CubeSchema
from engine.sweep.plan import Plan
from engine.sweep.searchable import conditions, fusable
from engine.units import cf_attrs

#: Partials combined per task in the tree that merges the blocks of one output chunk.
FAN_IN = 8
#: Blocks of one output chunk folded one after another, each search starting from the best the
#: ones before found (:func:`chain_partial`): more blocks per chain skip more points, fewer
#: leave more chains to run side by side.
CHAIN = 8
#: The reduction's loop order: the grid dims by name, ISL and OSL apart (OSL has extent 1 when
#: derived); the array core gives each variable in it (:meth:`engine.model.core.Arrays.view`).
GRID7 = ("model", "isl", "osl", "concurrency", "weight_bits", "kv_bits", "hardware")
NO_RANK = np.iinfo(np.int64).max


# ---------------------------------------------------------------------- compiled reduction
@kernel()
def reduce_block(cost, speed, mask, levels, out_strides, rank_strides, rank_offset, best_cost, best_rank, best_flat):
    """Fold one block (7-D views, broadcasting allowed) into the running best per output cell.

    A point counts where ``mask`` holds, its cost is finite and its speed reaches the first
    level; it lands in the bin of the highest level its speed reaches. Output cell ``o`` is
    ``sum(index * out_strides) * n_levels + bin``; ties keep the lower rank.
    """
    n0, n1, n2, n3, n4, n5, n6 = cost.shape
    n_levels = levels.size
    first = levels[0]
    flat = 0
    for a in range(n0):
        oa = a * out_strides[0]
        ra = rank_offset + a * rank_strides[0]
        for b in range(n1):
            ob = oa + b * out_strides[1]
            rb = ra + b * rank_strides[1]
            for c in range(n2):
                oc = ob + c * out_strides[2]
                rc = rb + c * rank_strides[2]
                for d in range(n3):
                    od = oc + d * out_strides[3]
                    rd = rc + d * rank_strides[3]
                    for e in range(n4):
                        oe = od + e * out_strides[4]
                        re = rd + e * rank_strides[4]
                        for f in range(n5):
                            of = oe + f * out_strides[5]
                            rf = re + f * rank_strides[5]
                            for g in range(n6):
                                if mask[a, b, c, d, e, f, g]:
                                    value = cost[a, b, c, d, e, f, g]
                                    if math.isfinite(value):
                                        s = speed[a, b, c, d, e, f, g]
                                        if s >= first:
                                            j = 0
                                            if n_levels > 1:
                                                j = np.searchsorted(levels, s, side="right") - 1
                                            o = (of + g * out_strides[6]) * n_levels + j
                                            r = rf + g * rank_strides[6]
                                            if value < best_cost[o] or (value == best_cost[o] and r < best_rank[o]):
                                                best_cost[o] = value
                                                best_rank[o] = r
                                                best_flat[o] = flat
                                flat += 1


# ---------------------------------------------------------------------- partial results
@dataclass
class Partial:
    """The best configuration so far for every output cell of one output chunk.

    Arrays have the chunk's shape in 7-D grid layout (reduced dims of extent 1) plus the
    level bins; ``cost`` is +inf and ``rank`` :data:`NO_RANK` where nothing qualified yet.
    ``skipped``: of the ``points``, those the search kernel left once they could not win.
    """

    cost: np.ndarray
    rank: np.ndarray
    values: dict[str, np.ndarray]
    points: int
    skipped: int = 0

    def take(self, other: Partial, where: np.ndarray) -> None:
        np.copyto(self.cost, other.cost, where=where)
        np.copyto(self.rank, other.rank, where=where)
        for name, array in self.values.items():
            np.copyto(array, other.values[name], where=where)


def _better(cost, rank, than_cost, than_rank) -> np.ndarray:
    return (cost < than_cost) | ((cost == than_cost) & (rank < than_rank))


def combine(*parts: Partial) -> Partial:
    """The elementwise best of partials of the same output chunk (associative, commutative)."""
    first = parts[0]
    best = Partial(
        first.cost.copy(), first.rank.copy(), {k: v.copy() for k, v in first.values.items()}, first.points,
        first.skipped,
    )  # fmt: skip
    for part in parts[1:]:
        best.take(part, _better(part.cost, part.rank, best.cost, best.rank))
        best.points += part.points
        best.skipped += part.skipped
    return best


def suffix_best(part: Partial) -> Partial:
    """Frontier form: bin ``j`` becomes the best of bins ``>= j`` (at least as fast as level ``j``)."""
    for j in range(part.cost.shape[-1] - 2, -1, -1):
        faster = _better(part.cost[..., j + 1], part.rank[..., j + 1], part.cost[..., j], part.rank[..., j])
        part.cost[..., j] = np.where(faster, part.cost[..., j + 1], part.cost[..., j])
        part.rank[..., j] = np.where(faster, part.rank[..., j + 1], part.rank[..., j])
        for array in part.values.values():
            array[..., j] = np.where(faster, array[..., j + 1], array[..., j])
    return part


# ---------------------------------------------------------------------- one block
class _Geometry:
    """Where a block sits: its 7-D extents, output strides and rank strides."""

    def __init__(self, plan: Plan, block: tuple[int, ...]):
        spec, reduction = plan.spec, plan.spec.reduction
        slices = plan.block_slices(block)
        cube_dim = {g: spec.model_dim if g == "model" else g for g in GRID7}
        self.extents = tuple(
            slices[cube_dim[g]].stop - slices[cube_dim[g]].start if cube_dim[g] in slices else 1 for g in GRID7
        )
        reduced = [cube_dim[g] in reduction.over for g in GRID7]
        self.out_shape = tuple(1 if r else n for n, r in zip(self.extents, reduced))
        c_strides = np.cumprod(((*self.out_shape[1:], 1))[::-1])[::-1]
        self.out_strides = np.array([0 if r else s for s, r in zip(c_strides, reduced)], dtype=np.int64)
        sizes = [len(spec.axes[d]) for d in reduction.over]
        over_strides = dict(zip(reduction.over, np.cumprod(([*sizes[1:], 1])[::-1])[::-1].tolist()))
        self.rank_strides = np.array([over_strides.get(cube_dim[g], 0) for g in GRID7], dtype=np.int64)
        self.rank_offset = sum(slices[d].start * over_strides[d] for d in reduction.over)
        self.n_levels = max(1, len(reduction.levels))


def _view7(arrays, name: str, plan: Plan, extents: tuple[int, ...]) -> np.ndarray:
    """A variable as a 7-D view in the reduction's loop order (extent 1 along the dims it lacks)."""
    order = (plan.spec.model_dim, *GRID7[1:])
    return arrays.view(name, order, model_dim=plan.spec.model_dim, osl_size=extents[GRID7.index("osl")])


def _evaluate(plan: Plan, block: tuple[int, ...], families: Sequence[str]) -> dict[str, np.ndarray]:
    """The families' variables for one block, in buffers this thread reuses for same-sized blocks."""
    arguments = block_arguments(plan, block)
    return evaluate_arrays(*arguments, families, thread_buffers(arguments, families))


def block_partial(
    plan: Plan, block: tuple[int, ...], fused: bool | None = None, seed: Partial | None = None
) -> Partial:
    """Evaluate one block and fold it into a :class:`Partial` of its output chunk: by the fused
    search kernel where it can (:func:`fusable`; ``fused`` forces either path), else by the
    kernels into buffers, a numpy mask and :func:`reduce_block`. Both give the same partial.

    ``seed``, a partial of the same output chunk, is folded in as well (the result is their
    :func:`combine`): the search kernel starts from its incumbents, so it can skip more."""
    if fused is None:
        fused = fusable(plan.spec)
    if fused:
        return fused_partial(plan, block, seed)
    if seed is not None:
        return combine(seed, block_partial(plan, block, fused=False))
    reduction = plan.spec.reduction
    where = conditions(plan.spec)
    needed = {reduction.cost, *reduction.carried, *(n for n, _, _ in where)}
    families = [f for f in FAMILIES if any(BY_NAME[n].family == f for n in needed)]
    arrays = _evaluate(plan, block, families)
    geometry = _Geometry(plan, block)
    extents = geometry.extents
    views = {n: _view7(arrays, n, plan, extents) for n in needed}
    mask = np.ones((1,) * 7, dtype=np.bool_)
    for name, op, bound in where:
        mask = mask & holds(views[name], op, bound)
    cost = views[reduction.cost].astype(np.float64, copy=False)
    speed = views[reduction.speed].astype(np.float64, copy=False) if reduction.speed else cost
    levels = np.array(reduction.levels or (-math.inf,), dtype=np.float64)
    shape = (*geometry.out_shape, geometry.n_levels)
    best_cost = np.full(shape, np.inf)
    best_rank = np.full(shape, NO_RANK, dtype=np.int64)
    best_flat = np.full(shape, -1, dtype=np.int64)
    reduce_block(
        np.broadcast_to(cost, extents),
        np.broadcast_to(speed, extents),
        np.broadcast_to(mask, extents),
        levels,
        geometry.out_strides,
        geometry.rank_strides,
        geometry.rank_offset,
        best_cost.reshape(-1),
        best_rank.reshape(-1),
        best_flat.reshape(-1),
    )
    found = best_flat >= 0
    index = np.unravel_index(best_flat[found], extents)
    values = {}
    for name in reduction.carried:
        view = views[name]
        at = tuple(i if n > 1 else np.zeros_like(i) for i, n in zip(index, view.shape))
        array = np.full(shape, np.nan)
        array[found] = view[at]
        values[name] = array
    return Partial(best_cost, best_rank, values, plan.block_points(block))


def partial_bytes(plan: Plan) -> int:
    """Peak bytes one block of a fused search holds: its partial and the seed it starts from (the
    best cost, rank and carried values of every output cell of its chunk); it stores no point."""
    cells = math.prod(ReducedSchema(plan).chunks)
    return 2 * cells * 8 * (2 + len(plan.spec.reduction.carried))


def chains(blocks: Sequence[tuple[int, ...]]) -> list[list[tuple[int, ...]]]:
    """The blocks of one output chunk as chains of at most :data:`CHAIN`, in order."""
    return [list(blocks[i : i + CHAIN]) for i in range(0, len(blocks), CHAIN)]


def chain_partial(plan: Plan, blocks: Sequence[tuple[int, ...]]) -> Partial:
    """The partial of blocks of one output chunk, each folded into the partial of those before
    (``seed``): the same as combining their own partials, with more points skipped."""
    part, fused = None, fusable(plan.spec)
    for block in blocks:
        part = block_partial(plan, block, fused, seed=part)
    return part


def fused_partial(plan: Plan, block: tuple[int, ...], seed: Partial | None = None) -> Partial:
    """One block through the search kernel (engine.model.kernels.search_kernel): each point
    evaluated and folded in the same compiled loop, nothing stored per point."""
    from engine.conditions import COMPARISONS
    from engine.model.core import kernel_inputs
    from engine.model.kernels import GATE, SEARCH_FIGURES, search_kernel

    reduction = plan.spec.reduction
    where = conditions(plan.spec)
    index = {name: j for j, name in enumerate(SEARCH_FIGURES)}
    speed = reduction.speed or reduction.cost
    select = np.array([index[reduction.cost], index[speed], *(index[n] for n, _, _ in where)], dtype=np.int64)
    ops = np.array([list(COMPARISONS).index(op) for _, op, _ in where], dtype=np.int64)
    bounds = np.array([float(b) for _, _, b in where], dtype=np.float64)
    carried = np.array([index[n] for n in reduction.carried], dtype=np.int64)
    levels = np.array(reduction.levels or (-math.inf,), dtype=np.float64)
    geometry = _Geometry(plan, block)
    extents = geometry.extents
    # Each kernel index's share of its output cell and rank; the context is ISL x OSL.
    kernel_extents = (extents[0], extents[1] * extents[2], *extents[3:])
    out = np.zeros((6, max(kernel_extents)), dtype=np.int64)
    rank = np.zeros_like(out)
    for table, strides in ((out, geometry.out_strides), (rank, geometry.rank_strides)):
        for row, g in ((0, 0), (2, 3), (3, 4), (4, 5), (5, 6)):
            table[row, : extents[g]] = np.arange(extents[g]) * strides[g]
        c = np.arange(kernel_extents[1])
        table[1, : kernel_extents[1]] = (c // extents[2]) * strides[1] + (c % extents[2]) * strides[2]
    shape = (*geometry.out_shape, geometry.n_levels)
    if seed is None:
        best_cost = np.full(shape, np.inf)
        best_rank = np.full(shape, NO_RANK, dtype=np.int64)
        best_values = np.full((best_cost.size, len(carried)), np.nan)
    else:
        best_cost, best_rank = seed.cost.copy(), seed.rank.copy()
        best_values = np.empty((best_cost.size, len(carried)))
        for q, name in enumerate(reduction.carried):
            best_values[:, q] = seed.values[name].reshape(-1)
    inputs = kernel_inputs(*block_arguments(plan, block))
    gate = pruning_gate(reduction.cost, where, speed, levels)
    search_kernel(
        *(inputs[n] for n in ("models", "group_offsets", "groups", "hardware", "overrides", "speculation",
                              "prefill_unit", "isl", "osl", "concurrency", "weight_bits", "kv_bits", "parameters",
                              "mix")),
        select, ops, bounds, carried, levels, out, rank, geometry.rank_offset, best_cost.reshape(-1),
        best_rank.reshape(-1), best_values, gate,
    )  # fmt: skip
    values = {name: best_values[:, q].reshape(shape) for q, name in enumerate(reduction.carried)}
    points, skipped = plan.block_points(block), int(gate[GATE.skipped])
    if seed is not None:
        points, skipped = points + seed.points, skipped + seed.skipped
    return Partial(best_cost, best_rank, values, points, skipped)


def pruning_gate(cost: str, where, speed: str, levels: np.ndarray) -> np.ndarray:
    """What the search kernel may prune on (engine.model.kernels.cannot_win and too_slow): which
    cost it minimises, the least interactivity, the longest time per output token and the
    longest time to first token a point must meet (the ``where`` conditions and the frontier's
    first level; +-inf where none), 1 if the frontier bins by interactivity; then the count of
    points the kernel skipped (written by the kernel). Slots by name: engine.model.kernels.GATE."""
    from engine.model.kernels import COST_PER_MTOK, COST_PER_MTOK_OUTPUT, COST_PER_TURN, GATE, NO_PRUNE

    kind = {"cost_per_turn_usd": COST_PER_TURN, "cost_per_mtok_usd": COST_PER_MTOK,
            "cost_per_mtok_output_usd": COST_PER_MTOK_OUTPUT}.get(cost, NO_PRUNE)  # fmt: skip
    least, step, ttft = -math.inf, math.inf, math.inf
    for name, op, bound in where:
        if name == "interactivity_tps" and op in ("ge", "gt", "eq"):
            least = max(least, float(bound))
        elif name == "decode_step_s" and op in ("le", "lt", "eq"):
            step = min(step, float(bound))
        elif name == "ttft_s" and op in ("le", "lt", "eq"):
            ttft = min(ttft, float(bound))
    binned = speed == "interactivity_tps"
    if binned:
        least = max(least, float(levels[0]))
    gate = np.zeros(len(GATE))
    gate[[GATE.kind, GATE.least, GATE.longest_step, GATE.longest_ttft, GATE.binned]] = (kind, least, step, ttft, binned)
    return gate


# ---------------------------------------------------------------------- the reduced cube
@dataclass(frozen=True)
class ReducedSchema:
    """Dims, variables and coordinates of a reduction's output cube."""

    plan: Plan

    @property
    def reduction(self):
        return self.plan.spec.reduction

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(d for d in self.plan.spec.axes if d not in self.reduction.over)

    @property
    def dims(self) -> tuple[str, ...]:
        level = self.reduction.level_dim
        return (*self.kept, level) if level else self.kept

    @property
    def shape(self) -> tuple[int, ...]:
        return (*(len(self.plan.spec.axes[d]) for d in self.kept), *((len(self.reduction.levels),) * bool(self.level)))

    @property
    def level(self) -> str | None:
        return self.reduction.level_dim

    @property
    def chunks(self) -> tuple[int, ...]:
        return (*(self.plan.chunks[d] for d in self.kept), *((len(self.reduction.levels),) * bool(self.level)))

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)

    def variables(self) -> dict[str, tuple[np.dtype, dict]]:
        """Name -> (storage dtype, attrs): the minimum, the carried variables, the winning labels."""
        reduction, spec = self.reduction, self.plan.spec
        precision = np.float32 if spec.precision == "float32" else np.float64
        over = ", ".join(reduction.over)
        out = {}
        for name in (reduction.cost, *reduction.carried):
            var = BY_NAME[name]
            what = "minimum over " + over if name == reduction.cost else "at the minimum of " + reduction.cost
            out[name] = (np.dtype(precision), cf_attrs(var.units, f"{var.long_name} ({what})"))
        for dim in reduction.over:
            values = spec.axes[dim]
            dtype = np.dtype(object) if values.dtype.kind in "OUS" else np.dtype(np.float64)
            attrs = dict(AXES[dim].attrs) if dim in AXES else {"long_name": dim}
            attrs["long_name"] = f"{attrs['long_name']} of the cheapest configuration (empty/NaN: none qualifies)"
            out[dim] = (dtype, attrs)
        return out

    def bytes_uncompressed(self) -> int:
        return sum(self.n_points * (8 if d.kind == "O" else d.itemsize) for d, _ in self.variables().values())

    def coords(self) -> dict:
        dims = set(self.dims)
        coords = {k: v for k, v in CubeSchema(self.plan.spec).coords().items() if v[0] in dims}
        if self.level:
            speed = BY_NAME[self.reduction.speed]
            coords[self.level] = (
                self.level,
                np.array(self.reduction.levels),
                cf_attrs(speed.units, f"{speed.long_name}: at least this"),
            )
        return coords

    def attrs(self) -> dict:
        attrs = CubeSchema(self.plan.spec).attrs(self.plan.created)
        r = self.reduction
        attrs["reduction"] = {
            "min": r.cost, "over": list(r.over), "where": [list(w) for w in conditions(self.plan.spec)],
            "keep": list(r.keep), "speed": r.speed, "levels": list(r.levels),
        }  # fmt: skip
        attrs["reduced_points"] = self.plan.n_points
        return attrs

    def template(self):
        """The output Dataset as lazy fill-valued arrays (for ``to_zarr(compute=False)``)."""
        import dask.array as da
        import xarray as xr

        data_vars = {}
        for name, (dtype, attrs) in self.variables().items():
            fill = "" if dtype.kind == "O" else np.nan
            data_vars[name] = (self.dims, da.full(self.shape, fill, dtype=dtype, chunks=self.chunks), attrs)
        return xr.Dataset(data_vars, coords=self.coords(), attrs=self.attrs())

    # ------------------------------------------------------------------ output chunks
    def groups(self) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
        """Blocks by the output chunk they reduce into (its index along the kept dims)."""
        positions = [i for i, d in enumerate(self.plan.dims) if d in self.kept]
        out: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for block in self.plan.blocks():
            out.setdefault(tuple(block[i] for i in positions), []).append(block)
        return out

    def finish(self, part: Partial, block: tuple[int, ...]) -> dict[str, np.ndarray]:
        """A combined partial as the output chunk's arrays (cube layout, NaN/empty where none)."""
        if self.level:
            part = suffix_best(part)
        plan, reduction = self.plan, self.reduction
        slices = plan.block_slices(block)
        shape = tuple(slices[d].stop - slices[d].start for d in self.kept)
        if self.level:
            shape += (len(reduction.levels),)
        found = np.isfinite(part.cost)
        variables = self.variables()
        out = {reduction.cost: np.where(found, part.cost, np.nan).reshape(shape)}
        for name in reduction.carried:
            out[name] = part.values[name].reshape(shape)
        sizes = [len(plan.spec.axes[d]) for d in reduction.over]
        index = np.unravel_index(np.where(found, part.rank, 0), sizes)
        for dim, i in zip(reduction.over, index):
            labels = plan.spec.axes[dim][i]
            if variables[dim][0].kind == "O":
                labels = np.where(found, labels.astype(object), "")
            else:
                labels = np.where(found, labels.astype(np.float64), np.nan)
            out[dim] = labels.reshape(shape)
        return {k: v.astype(variables[k][0], copy=False) for k, v in out.items()}

    def region(self, block: tuple[int, ...]) -> tuple[slice, ...]:
        slices = self.plan.block_slices(block)
        return (*(slices[d] for d in self.kept), *((slice(None),) * bool(self.level)))


def full_cube_bytes(plan: Plan) -> int:
    """What writing every variable of the grid would take (uncompressed), for comparison."""
    import dataclasses

    return CubeSchema(dataclasses.replace(plan.spec, variables=VARIABLES)).bytes_uncompressed()


def reduce_group(plan: Plan, blocks: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
    """One output chunk computed in this process (the oracle of the Dask path)."""
    schema = ReducedSchema(plan)
    return schema.finish(combine(*(chain_partial(plan, chain) for chain in chains(blocks))), blocks[0])


def reduce_eager(plan: Plan):
    """The whole reduced cube in memory, chunk by chunk, without Dask or a store."""
    import xarray as xr

    schema = ReducedSchema(plan)
    variables = schema.variables()
    arrays = {n: np.empty(schema.shape, dtype=d) for n, (d, _) in variables.items()}
    for blocks in schema.groups().values():
        region = schema.region(blocks[0])
        for name, values in reduce_group(plan, blocks).items():
            arrays[name][region] = values
    data_vars = {n: (schema.dims, arrays[n], attrs) for n, (_, attrs) in variables.items()}
    return xr.Dataset(data_vars, coords=schema.coords(), attrs=schema.attrs())
