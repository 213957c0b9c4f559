"""The frozen plan: a resolved spec cut into blocks of whole chunks.

A :class:`Plan` is block geometry only: the chunk size along every dim, the blocks, their
slices and sizes, which block writes which chunk of each variable. What the cube looks
like is the :class:`~engine.sweep.cube.CubeSchema`; running blocks belongs to
:mod:`engine.sweep.blocks` and :mod:`engine.sweep.store`. Its repr says what a run
will do, so ``tokensweep plan`` is a print of it::

    >>> from engine.sweep.spec import load_spec
    >>> make_plan(load_spec("sweeps/cerebras_phase.yaml"))  # doctest: +ELLIPSIS
    <Plan cerebras_phase: model 53 x isl 61 x ... points, ... variables, ... blocks of ...>
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from engine.axes import AXES
from engine.errors import UserError
from engine.model.catalog import Catalog
from engine.model.variables import TOKEN_TYPE, VARIABLES, Variable
from engine.sweep.cube import CubeSchema
from engine.sweep.searchable import fusable
from engine.sweep.spec import ResolvedSpec, SweepSpec, resolve
from engine.units import format_bytes

#: Points per block aimed at when the spec does not set chunks: ~50 MB of outputs.
TARGET_BLOCK_POINTS = 2**18
#: The same for a search the fused kernel folds (engine.sweep.searchable.fusable): it stores nothing per
#: point, so a block may be larger, and each block's fixed cost in Python (its tables, its partial)
#: is spread over more points (measured: at 2**18 points that cost was a third of a search's time).
SEARCH_BLOCK_POINTS = 2**21
#: Blocks a plan may have: each is a task and a record (a million tiny ones exhaust memory first).
MAX_BLOCKS = 1_000_000


@dataclass(frozen=True, eq=False)
class Plan:
    """What to compute, in which blocks. Parameter axes are one value per block."""

    spec: ResolvedSpec
    schema: CubeSchema
    chunks: dict[str, int]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    # ------------------------------------------------------------------ shape
    @property
    def fingerprint(self) -> str:
        """What must match for a store to be resumed (the resolved spec and the catalog)."""
        return self.spec.fingerprint

    @property
    def variables(self) -> tuple[Variable, ...]:
        return self.spec.variables

    @property
    def dims(self) -> tuple[str, ...]:
        return self.schema.dims

    @property
    def shape(self) -> dict[str, int]:
        return {d: len(v) for d, v in self.spec.axes.items()}

    @property
    def n_points(self) -> int:
        return self.spec.n_points

    @property
    def block_counts(self) -> dict[str, int]:
        return {d: -(-n // self.chunks[d]) for d, n in self.shape.items()}

    @property
    def n_blocks(self) -> int:
        return math.prod(self.block_counts.values())

    def blocks(self) -> Iterator[tuple[int, ...]]:
        """Block indices in C order over the grid dims."""
        return itertools.product(*(range(n) for n in self.block_counts.values()))

    def block_slices(self, block: tuple[int, ...]) -> dict[str, slice]:
        shape, chunks = self.shape, self.chunks  # once, not per dim (a search asks for thousands of blocks)
        return {d: slice(i * chunks[d], min((i + 1) * chunks[d], shape[d])) for d, i in zip(self.dims, block)}

    def block_points(self, block: tuple[int, ...]) -> int:
        """Points the block evaluates (every draw counts; the quantile dim stands for the draws)."""
        draws = self.spec.draws.n if self.spec.draw_dim == "quantile" else None
        return math.prod(
            draws if draws and d == "quantile" else s.stop - s.start for d, s in self.block_slices(block).items()
        )

    # ------------------------------------------------------------------ variables in blocks
    def var_chunks(self, var: Variable) -> tuple[int, ...]:
        return tuple(self.schema.dim_size(d) if d == TOKEN_TYPE else self.chunks[d] for d in self.schema.var_dims(var))

    def owns(self, block: tuple[int, ...], var: Variable) -> bool:
        """A variable's chunk is written by the one block at index 0 along the dims it lacks."""
        dims = set(self.schema.var_dims(var))
        return all(i == 0 for d, i in zip(self.dims, block) if d not in dims)

    def var_block_index(self, block: tuple[int, ...], var: Variable) -> tuple[int, ...]:
        index = dict(zip(self.dims, block))
        return tuple(0 if d == TOKEN_TYPE else index[d] for d in self.schema.var_dims(var))

    def var_region(self, block: tuple[int, ...], var: Variable) -> tuple[slice, ...]:
        slices = self.block_slices(block)
        return tuple(slice(None) if d == TOKEN_TYPE else slices[d] for d in self.schema.var_dims(var))

    def block_assumptions(self, block: tuple[int, ...]):
        """The base assumptions with this block's value of every parameter axis."""
        slices = self.block_slices(block)
        update = {p: self.spec.axes[p][slices[p].start] for p in self.spec.parameter_dims}
        update = {p: v if isinstance(v, str) else float(v) for p, v in update.items()}
        return self.spec.assumptions.model_copy(update=update) if update else self.spec.assumptions

    # ------------------------------------------------------------------ sizes
    def bytes_on_disk(self) -> int:
        """Uncompressed bytes of all variables (before Zarr's compression)."""
        return self.schema.bytes_uncompressed()

    def bytes_per_block(self) -> int:
        """Peak bytes one block holds: kernel outputs for the full block extents (every variable
        once per draw, as the draw kernels write them)."""
        first = tuple(0 for _ in self.dims)
        chunk = {d: s.stop - s.start for d, s in self.block_slices(first).items()}
        draw_dim = self.spec.draw_dim
        draws = self.spec.draws.n if draw_dim else 1
        total = 0
        for v in VARIABLES:
            dims = [d for d in self.schema.var_dims(v) if d != draw_dim]
            total += (
                math.prod(self.schema.dim_size(d) if d == TOKEN_TYPE else chunk[d] for d in dims)
                * draws
                * np.dtype(v.dtype).itemsize
            )
        return total

    def __repr__(self) -> str:
        shape = " x ".join(f"{d} {n}" for d, n in self.shape.items())
        if self.spec.reduction is not None:
            return (
                f"<Plan {self.spec.name}: {shape} = {self.n_points:,} points in {self.n_blocks:,} blocks, "
                f"reduced over {', '.join(self.spec.reduction.over)}>"
            )
        return (
            f"<Plan {self.spec.name}: {shape} = {self.n_points:,} points, {len(self.variables)} variables, "
            f"{self.n_blocks:,} blocks of <= {self.bytes_per_block() / 1e6:.1f} MB, "
            f"{format_bytes(self.bytes_on_disk())} uncompressed>"
        )


def default_chunks(
    axes: dict[str, np.ndarray],
    parameter_dims,
    requested: dict[str, int],
    draws: tuple[str, int] | None = None,
    target: int = TARGET_BLOCK_POINTS,
) -> dict[str, int]:
    """Whole axes except parameters (1 per block); split the largest axes until a block is small.

    Axes are split in the registry's ``split`` order among those of equal size. The draw dim
    (``draws``: its name and the draws it stands for) is never split: a block evaluates every
    draw in one compiled call, and its points count every draw.
    """
    chunks = {d: (1 if d in parameter_dims else len(v)) for d, v in axes.items()}
    chunks.update({d: min(size, len(axes[d])) for d, size in requested.items()})
    whole = {draws[0]} if draws else set()
    order = sorted((d for d in axes if d not in parameter_dims and d not in whole), key=lambda d: AXES[d].split)

    def points() -> int:
        return math.prod(draws[1] if d in whole else n for d, n in chunks.items())

    while points() > target:
        splittable = [d for d in order if d not in requested and chunks[d] > 1]
        if not splittable:
            break
        d = max(splittable, key=lambda k: chunks[k])
        chunks[d] = -(-chunks[d] // 2)
    for p in parameter_dims:
        chunks[p] = 1
    return chunks


def make_plan(spec: SweepSpec | ResolvedSpec, catalog: Catalog | None = None) -> Plan:
    """The plan of a spec (resolved against ``catalog`` first if it is not yet)."""
    resolved = spec if isinstance(spec, ResolvedSpec) else resolve(spec, catalog)
    draws = (resolved.draw_dim, resolved.draws.n) if resolved.draw_dim else None
    searched = resolved.reduction is not None and fusable(resolved)
    target = SEARCH_BLOCK_POINTS if searched else TARGET_BLOCK_POINTS
    chunks = default_chunks(resolved.axes, resolved.parameter_dims, resolved.requested_chunks, draws, target)
    plan = Plan(spec=resolved, schema=CubeSchema(resolved), chunks=chunks)
    if plan.n_blocks > MAX_BLOCKS:
        raise UserError(
            f"chunks: the plan has {plan.n_blocks:,} blocks, at most {MAX_BLOCKS:,} (give larger chunks, "
            "or leave 'chunks' out for blocks of about 260k points)"
        )
    return plan
