"""What a sweep writes: one output protocol, two implementations.

A full cube (:class:`CubeOutput`) and a reduction (:class:`ReducedOutput`) are both an
*output*: a template (the Dataset's metadata and coordinates, and its encoding), units of
work keyed by a frozen record name (a block; an output chunk that combines the partials of
its blocks, dask's chunk / combine / aggregate), and the same chunk writer and records
(:mod:`engine.sweep.writer`). The store (:mod:`engine.sweep.store`) only locks, resumes,
runs the pending work and finalises, whichever output it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from engine.sweep.blocks import evaluate_block, template
from engine.sweep.integrity import check_token
from engine.sweep.location import location
from engine.sweep.pipeline import active as active_pipeline
from engine.sweep.plan import Plan
from engine.sweep.reduce import FAN_IN, Partial, ReducedSchema, chain_partial, chains, combine
from engine.sweep.state import block_id, state_dir
from engine.sweep.writer import Piece, persist

#: Blosc-LZ4 with byte shuffle: measured 1.5x faster to write than Zarr's default Zstd on
#: cube blocks, and a better ratio on smooth float data (bench/ reports both).
CODEC = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}


def codec():
    """The cube's compressor, as Zarr declares it (:data:`CODEC`)."""
    from zarr.codecs import BloscCodec

    return BloscCodec(**CODEC)


def encode_seconds(arrays) -> float:
    """Time to compress ``arrays`` with the cube's codec in this thread (what writing a block costs
    beyond the disk; ``tokensweep plan`` adds it to the compute)."""
    import time

    import numcodecs

    encoder = numcodecs.Blosc(cname=CODEC["cname"], clevel=CODEC["clevel"], shuffle=numcodecs.Blosc.SHUFFLE)
    started = time.perf_counter()
    for values in arrays:
        encoder.encode(np.ascontiguousarray(values))
    return time.perf_counter() - started


@dataclass
class Pending:
    """The work a run still has to do: plain tasks (one per unit) or Dask graph roots."""

    tasks: list = field(default_factory=list)  # callables returning the points they covered
    names: list[str] = field(default_factory=list)  # task names, for Dask's dashboard
    roots: list = field(default_factory=list)  # dask.delayed roots (a reduction's trees)
    units: int = 0  # units of work pending
    points: int = 0  # grid points they cover


class Output:
    """The protocol: what the store needs of an output."""

    unit = "units"
    #: Whether a local run may hand finished units to the write pipeline.
    pipelined = False

    def __init__(self, plan: Plan):
        self.plan = plan

    @property
    def total(self) -> int:  # pragma: no cover - each output says
        raise NotImplementedError

    def template(self) -> tuple[Any, dict]:  # pragma: no cover
        """The Dataset to write with ``compute=False`` and its encoding."""
        raise NotImplementedError

    def pending(self, path: str, fingerprint: str, token: str, done: set[str]) -> Pending:  # pragma: no cover
        raise NotImplementedError


# ---------------------------------------------------------------------- the full cube
class CubeOutput(Output):
    """Every variable over the whole grid; the unit of work is a block."""

    unit = "blocks"
    pipelined = True

    @property
    def total(self) -> int:
        return self.plan.n_blocks

    def template(self):
        plan = self.plan
        encoding = {v.name: {"chunks": plan.var_chunks(v), "compressors": [codec()]} for v in plan.variables}
        for var in plan.variables:  # a count never computed reads -1, not a plausible 0 (floats: NaN)
            if np.dtype(var.dtype).kind == "i":
                encoding[var.name]["fill_value"] = -1
        return template(plan), encoding

    def pending(self, path, fingerprint, token, done):
        plan = self.plan
        todo = [b for b in plan.blocks() if block_id(b) not in done]
        return Pending(
            tasks=[partial(write_block, plan, b, path, fingerprint, token) for b in todo],
            names=[f"tokensweep-{plan.spec.name}-block-{block_id(b)}-{token}" for b in todo],
            units=len(todo),
            points=sum(plan.block_points(b) for b in todo),
        )


def write_block(plan: Plan, block: tuple[int, ...], path: str, fingerprint: str, token: str) -> int:
    """Evaluate one block and persist it (or hand it to the run's write pipeline, if it has one)."""
    check_token(state_dir(location(path)), token)
    pipeline = active_pipeline(token)
    if pipeline is None:
        persist_block(plan, block, evaluate_block(plan, block, reuse=True), path, fingerprint, token)
    else:
        slot = pipeline.slot()
        result = evaluate_block(plan, block, reuse=True, slot=slot)
        pipeline.submit(slot, persist_block, plan, block, result, path, fingerprint, token)
    return plan.block_points(block)


def persist_block(plan: Plan, block: tuple[int, ...], result: dict, path: str, fingerprint: str, token: str) -> None:
    """Write a computed block's whole chunks, then record it."""
    pieces = [
        Piece(var.name, plan.var_block_index(block, var), plan.var_region(block, var), result[var.name])
        for var in plan.variables
        if var.name in result
    ]
    persist(path, fingerprint, token, block_id(block), pieces)


# ---------------------------------------------------------------------- the reduction
class ReducedOutput(Output):
    """The winners only; the unit of work is an output chunk, combined from its blocks' partials."""

    unit = "output chunks"

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self.schema = ReducedSchema(plan)

    @property
    def total(self) -> int:
        return len(self.schema.groups())

    def template(self):
        ds = self.schema.template()
        encoding = {name: {"chunks": self.schema.chunks, "compressors": [codec()]} for name in ds.data_vars}
        return ds, encoding

    def pending(self, path, fingerprint, token, done):
        """Delayed writes of every unrecorded output chunk, each the root of a tree of partials."""
        import dask

        plan, schema = self.plan, self.schema
        name = f"tokensweep-{plan.spec.name}"
        out = Pending()
        for blocks in schema.groups().values():
            gid = group_id(blocks[0], schema)
            if gid in done:
                continue
            level = [  # each chain of blocks searched one after another (reduce.chain_partial)
                dask.delayed(partial(chain_partial, plan, chain), pure=False)(
                    dask_key_name=f"{name}-chain-{block_id(chain[0])}-{fingerprint}"
                )
                for chain in chains(blocks)
            ]
            depth = 0
            while len(level) > 1:
                depth += 1
                level = [
                    dask.delayed(combine, pure=False)(
                        *level[i : i + FAN_IN], dask_key_name=f"{name}-combine-{gid}-{depth}.{i}-{fingerprint}"
                    )
                    for i in range(0, len(level), FAN_IN)
                ]
            write = partial(write_group, plan, blocks, path, fingerprint, token)
            out.roots.append(
                dask.delayed(write, pure=False)(level[0], dask_key_name=f"{name}-write-{gid}-{fingerprint}")
            )
            out.units += 1
            out.points += sum(plan.block_points(b) for b in blocks)
        return out


def group_id(block: tuple[int, ...], schema: ReducedSchema) -> str:
    """The record name of the output chunk a block reduces into."""
    kept = [i for i, d in enumerate(schema.plan.dims) if d in schema.kept]
    return "reduce-" + (".".join(str(block[i]) for i in kept) or "0")


def write_group(
    plan: Plan, blocks: list[tuple[int, ...]], path: str, fingerprint: str, token: str, part: Partial
) -> int:
    """Write one output chunk from its combined partial, then record it; returns its points."""
    schema = ReducedSchema(plan)
    region = schema.region(blocks[0])
    kept = [i for i, d in enumerate(plan.dims) if d in schema.kept]
    index = tuple([blocks[0][i] for i in kept] + ([0] if schema.level else []))
    arrays = schema.finish(part, blocks[0])
    pieces = [Piece(name, index, region, values, direct=False) for name, values in arrays.items()]
    persist(path, fingerprint, token, group_id(blocks[0], schema), pieces)
    return part.points


def output_for(plan: Plan) -> Output:
    """The output a plan writes: its reduction, if the spec has one, else the full cube."""
    return ReducedOutput(plan) if plan.spec.reduction is not None else CubeOutput(plan)
