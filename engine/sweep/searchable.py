"""What a reduction reads, from its spec alone: its conditions, and whether the fused search
kernel folds it (the plan sizes a fused search's blocks by it, before any block exists)."""

from __future__ import annotations

from engine.model.variables import BY_NAME
from engine.sweep.spec import ResolvedSpec


def conditions(spec: ResolvedSpec) -> tuple[tuple[str, str, float], ...]:
    """The reduction's ``where`` plus ``replica_fits``, unless the cost is already NaN where it does not
    fit (every performance variable is: the kernels write NaN there)."""
    reduction = spec.reduction
    where = reduction.where
    if BY_NAME[reduction.cost].family != "performance" and "replica_fits" not in {n for n, _, _ in where}:
        where = (*where, ("replica_fits", "eq", 1.0))
    return where


def fusable(spec: ResolvedSpec) -> bool:
    """Whether the search kernel folds this reduction: it reads only what a performance sink
    receives (engine.model.kernels.SEARCH_FIGURES) and has no draws."""
    from engine.model.kernels import SEARCH_FIGURES

    reduction = spec.reduction
    needed = {reduction.cost, *reduction.carried, *(n for n, _, _ in conditions(spec))}
    return spec.draws is None and needed <= set(SEARCH_FIGURES)
