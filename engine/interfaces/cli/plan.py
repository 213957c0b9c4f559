"""``tokensweep plan``: validate a sweep and say what a run would do; writes nothing."""

from __future__ import annotations

import os
import sys
import time

from engine.interfaces.cli.common import add_sweep_options, execution_profile, sweep_plan
from engine.units import format_bytes


def add_parser(sub) -> None:
    add_sweep_options(
        sub.add_parser(
            "plan", help="validate a sweep and print its grid, chunks, sizes and estimated time (writes nothing)"
        )
    )


#: Blocks ``plan`` times to estimate a run (spread evenly over the plan).
SAMPLED_BLOCKS = 6


def sample_blocks(plan) -> list[tuple[int, ...]]:
    """Up to :data:`SAMPLED_BLOCKS` blocks spread evenly over the plan's C order."""
    import itertools

    step = max(1, plan.n_blocks // SAMPLED_BLOCKS)
    return list(itertools.islice(plan.blocks(), step // 2, None, step))[:SAMPLED_BLOCKS]


def every_chain(plan) -> list[list[tuple[int, ...]]]:
    """A reduction's tasks as it runs them: chains of blocks of one output chunk, each searched
    one after another (later blocks skip more), chains side by side."""
    from engine.sweep.reduce import ReducedSchema, chains

    return [chain for blocks in ReducedSchema(plan).groups().values() for chain in chains(blocks)]


def sample_chains(plan) -> list[list[tuple[int, ...]]]:
    """Up to :data:`SAMPLED_BLOCKS` of a reduction's chains, spread evenly over all of them
    (chains of one output chunk differ: another layout, other replica sizes)."""
    work = every_chain(plan)
    step = max(1, len(work) // SAMPLED_BLOCKS)
    return work[step // 2 :: step][:SAMPLED_BLOCKS]


def makespan(seconds: list[float], workers: int) -> float:
    """Time for ``workers`` threads to run tasks of these durations, longest first, each to the
    thread free first (a chain runs on one thread: the longest bounds the run)."""
    free = [0.0] * max(1, workers)
    for task in sorted(seconds, reverse=True):
        free[free.index(min(free))] += task
    return max(free)


def run(args) -> int:
    from engine.sweep.blocks import evaluate_block
    from engine.sweep.cluster import JOBQUEUE, jobqueue_threads
    from engine.sweep.destination import check_output, default_output, free_space, space_note
    from engine.sweep.outputs import encode_seconds
    from engine.sweep.reduce import block_partial, chain_partial, partial_bytes
    from engine.sweep.searchable import fusable
    from engine.sweep.store import template_seconds

    plan = sweep_plan(args)
    profile = execution_profile(args)
    output = check_output(args.output or default_output(plan))
    first = next(plan.blocks())
    evaluate = evaluate_block if plan.spec.reduction is None else block_partial
    warming = time.perf_counter()
    arrays = evaluate(plan, first)  # compiles or loads the kernels before timing; its outputs size the compression
    warm_up = time.perf_counter() - warming
    # Blocks differ in cost (a point no replica serves ends early; a search skips more points
    # the more it has found): time a few spread over the plan, as they run, and scale their
    # cost per point, not the first block's.
    if plan.spec.reduction is None:
        sampled = [[block] for block in sample_blocks(plan)]
    else:
        sampled = sample_chains(plan)
    started = time.perf_counter()
    for chain in sampled:
        if plan.spec.reduction is None:
            evaluate(plan, chain[0])
        else:
            chain_partial(plan, chain)
    per_point = (time.perf_counter() - started) / sum(plan.block_points(b) for chain in sampled for b in chain)
    per_block = per_point * plan.n_points / plan.n_blocks
    # Beyond the compute: each block's compression, and the template laid out before any block.
    encode = encode_seconds(arrays.values()) if plan.spec.reduction is None else 0.0
    serial = template_seconds(plan)
    local = profile.scheduler in ("threads", "processes", "sync")
    if local:
        workers = 1 if profile.scheduler == "sync" else (profile.workers or os.cpu_count() or 1)
    elif profile.scheduler in JOBQUEUE:  # the jobs do not exist until run: what they will have
        workers = jobqueue_threads(profile)
    else:  # a running cluster: estimate for the threads it has now
        from engine.sweep.cluster import connect

        with connect(profile) as runner:
            workers = sum(w.get("nthreads", 1) for w in runner.client.scheduler_info()["workers"].values()) or 1
    rounds = -(-plan.n_blocks // max(1, workers))  # blocks run `workers` at a time
    estimate = serial + rounds * (per_block + encode)
    if plan.spec.reduction is not None:  # chains run side by side, the blocks of each one by one
        work = [per_point * sum(plan.block_points(b) for b in chain) for chain in every_chain(plan)]
        estimate, n_chains = serial + makespan(work, workers), len(work)
    shape = ", ".join(f"{d} {n}" for d, n in plan.shape.items())
    chunks = ", ".join(f"{d} {n}" for d, n in plan.chunks.items())
    print(f"sweep {plan.spec.name} -> {output}")
    print(f"  grid          {shape}")
    print(f"  points        {plan.n_points:,}")
    if plan.spec.uncertain is not None:
        print(f"  drawn         {plan.spec.uncertain.describe()}")
    print(f"  variables     {len(plan.variables)} ({', '.join(v.name for v in plan.variables)})")
    print(f"  chunks        {chunks}: {plan.n_blocks:,} blocks")
    if plan.spec.reduction is not None and fusable(plan.spec):
        print(
            f"  memory        {format_bytes(partial_bytes(plan))} per block in flight (x workers): the fused search "
            "keeps each output cell's best, no point"
        )
    else:
        print(f"  memory        {format_bytes(plan.bytes_per_block())} per block in flight (x workers)")
    reduction = plan.spec.reduction
    if reduction is None:
        print(f"  on disk       {format_bytes(plan.bytes_on_disk())} before compression ({plan.spec.precision})")
        free = free_space(output)
        if free is not None:
            print(f"  free space    {format_bytes(free)} where the cube goes")
        note = space_note(output, plan.bytes_on_disk())
        if note:
            print(f"tokensweep: warning: {note}", file=sys.stderr)
    else:
        from engine.sweep.reduce import ReducedSchema, full_cube_bytes

        reduced = ReducedSchema(plan)
        dims = " x ".join(f"{d} {n}" for d, n in zip(reduced.dims, reduced.shape)) or "one cell"
        form = f" per level of {reduction.speed}" if reduction.speed else ""
        print(f"  reduce        min {reduction.cost} over {', '.join(reduction.over)}{form}")
        print(
            f"  output        {dims} = {reduced.n_points:,} cells, {len(reduced.variables())} variables, "
            f"{format_bytes(reduced.bytes_uncompressed())} before compression "
            f"({len(reduced.groups()):,} output chunks; the full cube would be {format_bytes(full_cube_bytes(plan))})"
        )
    compiled = warm_up - per_point * plan.block_points(first)  # the first block's time beyond its compute
    if compiled > 1.0:  # a cold cache: say where this command's own time went, and that it is paid once
        print(f"  compiled      the kernels in {compiled:,.0f} s (cached: later plans and runs skip it)")
    if plan.spec.reduction is not None:
        how = (
            f"then {n_chains:,} chain{'s' if n_chains != 1 else ''} of blocks searched one after another, side by side "
            f"({per_block * 1e3:.1f} ms per block; disk writes and imports add to this)"
        )
    else:
        how = (
            f"then {rounds:,} round{'s' if rounds != 1 else ''} of one block per thread "
            f"({per_block * 1e3:.1f} ms compute + {encode * 1e3:.1f} ms compression; disk writes and imports add to this)"
        )
    print(
        f"  estimated     {estimate:,.1f} s on {profile.describe()} ({workers} worker threads): "
        f"{serial:.1f} s to lay out the store, {how}"
    )
    return 0
