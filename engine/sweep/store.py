"""Zarr v3 stores written in three phases, resumable, one writer at a time.

1. **Template**: the output's metadata and coordinates, no data (``compute=False``).
2. **Work**: each unit (a block of a full cube, an output chunk of a reduction; the
   output protocol of :mod:`engine.sweep.outputs`) is computed and written into its own
   whole chunks by the shared chunk writer (:mod:`engine.sweep.writer`), by the computing
   thread or, when a local run leaves cores idle, by the write pipeline
   (:mod:`engine.sweep.pipeline`); after the write returns, a record names the unit as done
   with a checksum of every chunk (:mod:`engine.sweep.integrity`). Completion is read from
   the records, never inferred from chunk files.
3. **Finalise**: ``complete = 1`` in the attrs, consolidated metadata.

The store only locks, resumes, runs and finalises. The state lives beside the cube in
``<store>.tokensweep/`` (:mod:`engine.sweep.state`) so the cube itself stays plain Zarr. A
resume checks the spec fingerprint and refuses a different spec unless ``overwrite``.
Guarantee after any crash: every recorded unit is on disk; rerun the same command to compute
the rest.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError
from engine.sweep import cluster
from engine.sweep.destination import check_output, default_output, remove_own_store
from engine.sweep.integrity import new_token, verify
from engine.sweep.location import is_remote, put_text, remove_tree, stored_bytes, url
from engine.sweep.outputs import Output, output_for
from engine.sweep.pipeline import WritePipeline, write_threads
from engine.sweep.plan import Plan
from engine.sweep.state import state_dir, writer_lock
from engine.units import format_bytes

#: ``progress(total points, points done)`` -> a context giving ``advance(points)`` (the CLI's bar).
Progress = Callable[[int, int], AbstractContextManager[Callable[[int], None]]]


@dataclass
class RunResult:
    path: Path
    points: int
    blocks_total: int
    blocks_computed: int
    seconds: float
    bytes_on_disk: int
    resumed: bool
    unit: str = "blocks"
    dropped: int = 0  # records that failed verification (edited or missing chunks): computed again
    fixed_seconds: float = 0.0  # the serial part: connect, lock, template, verify, finalise

    def summary(self) -> str:
        if self.dropped:
            return (
                f"{self.dropped} recorded {self.unit} failed verification (chunks edited or missing) and were "
                f"computed again; " + self._summary()
            )
        return self._summary()

    def _summary(self) -> str:
        if self.blocks_computed == 0:
            return (
                f"{self.path} is already complete ({format_bytes(self.bytes_on_disk)} on disk, {self.points:,} points)"
            )
        rate = self.points / self.seconds if self.seconds > 0 else float("inf")
        action = "resumed" if self.resumed else "wrote"
        return (
            f"{action} {self.path} ({format_bytes(self.bytes_on_disk)} on disk): {self.points:,} points, "
            f"{self.blocks_computed}/{self.blocks_total} {self.unit} computed in {self.seconds:.1f} s "
            f"({rate:,.0f} points/s; serial part {self.fixed_seconds:.1f} s)"
        )


def write_template(output: Output, path: Path) -> None:
    """Phase 1: the output's template (an existing store of ours is removed first)."""
    if path.exists():
        remove_own_store(path)
    _template(output, url(path))


def _template(output: Output, target: str) -> None:
    from xarray.coding.variables import SerializationWarning

    ds, encoding = output.template()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # Object (string label) arrays of a reduction are computed to infer their dtype: fill only.
        warnings.simplefilter("ignore", SerializationWarning)
        ds.to_zarr(target, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)


def load_libraries() -> None:
    """Import what laying out and writing a store takes, before a run's (or plan's) clock starts:
    process start-up (1.5 s of imports here), no part of a sweep's serial time; the benchmarks
    report the process's wall time beside it."""
    import dask.array  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401


def template_seconds(plan: Plan) -> float:
    """Time to lay out the plan's output (the serial part of a run), measured on an in-memory
    store that is removed afterwards: ``tokensweep plan`` writes nothing."""
    import uuid

    import fsspec

    probe = f"memory://tokensweep-plan-probe/{uuid.uuid4().hex}.zarr"
    load_libraries()
    started = time.perf_counter()
    try:
        _template(output_for(plan), probe)
        return time.perf_counter() - started
    finally:
        fsspec.filesystem("memory").rm(probe.removeprefix("memory://"), recursive=True)


def _finalise(path: Path) -> None:
    import zarr

    group = zarr.open_group(url(path), mode="r+")
    group.attrs.update({"complete": 1, "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # consolidated metadata is a Zarr v3 extension
        zarr.consolidate_metadata(url(path))


def _recorded_state(spec_file: Path, path: Path, overwrite: bool) -> dict:
    """The run record beside a store; a damaged one is refused (or replaced with --overwrite)."""
    try:
        recorded = json.loads(spec_file.read_text())
        if isinstance(recorded, dict) and isinstance(recorded.get("fingerprint"), str):
            return recorded
        problem = "it names no fingerprint"
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"not valid JSON: {exc}"
    if overwrite:
        return {"fingerprint": ""}
    raise UserError(f"store: the run record {spec_file} is damaged ({problem}); use --overwrite to rebuild {path}")


def _check_template(path: Path) -> None:
    """A store about to be resumed must still open: every array's metadata readable."""
    import zarr

    try:
        group = zarr.open_group(url(path), mode="r", use_consolidated=False)
        for name in group.array_keys():
            group[name]
    except Exception as exc:
        raise UserError(
            f"store: {path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); use --overwrite to rebuild it"
        ) from None


def run_sweep(
    plan: Plan,
    output: str | Path | None = None,
    profile=None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Write (or resume) the plan's output (its cube, or its reduction); returns what was done.

    ``progress`` is called once with the run's total points and those already done and gives
    ``advance(points)`` (the command line's bar, :mod:`engine.interfaces.progress`); none by default.
    """
    path = check_output(output or default_output(plan), probe=True)
    write_threads(1)  # a bad TOKENSWEEP_WRITE_THREADS is one line before the store exists
    profile = profile or cluster.resolve("threads")
    if is_remote(path) and path.protocol == "memory" and profile.scheduler not in ("threads", "sync"):
        raise UserError(
            f"--output: {path} lives in this process's memory, where {profile.describe()} workers cannot write; "
            "use --scheduler threads, or a store every worker reaches"
        )
    target = output_for(plan)
    fingerprint = plan.fingerprint
    state = state_dir(path)
    load_libraries()
    started = time.perf_counter()
    # Connect before touching the disk: an unreachable cluster must leave nothing behind.
    with cluster.connect(profile) as runner, writer_lock(state):
        spec_file = state / "spec.json"
        resumed = False
        tokens: list[str] = []
        if spec_file.exists():
            recorded = _recorded_state(spec_file, path, overwrite)
            if recorded["fingerprint"] != fingerprint:
                if not overwrite:
                    raise UserError(
                        f"store: {path} was written by a different spec, catalog or engine version (fingerprint "
                        f"{recorded['fingerprint']}, now {fingerprint}); use --overwrite to replace it or --output elsewhere"
                    )
                spec_file.unlink()
            elif overwrite:
                spec_file.unlink()
            else:
                resumed = True
                tokens = [t for t in recorded.get("tokens", []) if isinstance(t, str)]
                _check_template(path)
        # A fresh token fences off workers of any earlier run (they check it before every write).
        token = new_token(state)
        if not resumed:
            remove_tree(state / "blocks")
            write_template(target, path)
            if not is_remote(state):  # object stores have no folders
                (state / "blocks").mkdir(exist_ok=True)
        put_text(
            spec_file,
            json.dumps({"fingerprint": fingerprint, "tokens": [*tokens, token], "spec": plan.spec.canonical}, indent=1),
        )
        done, dropped = verify(path, state, set(tokens)) if resumed else (set(), 0)
        fixed = time.perf_counter() - started
        work = target.pending(str(path), fingerprint, token, done)
        bar = progress(plan.n_points, plan.n_points - work.points) if progress else nullcontext(lambda points: None)
        pipeline = _pipeline(profile, token) if target.pipelined else nullcontext(None)
        with bar as advance, pipeline as pipe:
            if work.roots:
                runner.run_graph(work.roots, advance)
            else:
                runner.run(work.tasks, advance, work.names)
            if pipe is not None:
                pipe.drain()
        finalising = time.perf_counter()
        _finalise(path)
        fixed += time.perf_counter() - finalising
    return RunResult(
        path=path,
        points=plan.n_points,
        blocks_total=target.total,
        blocks_computed=work.units,
        seconds=time.perf_counter() - started,
        bytes_on_disk=stored_bytes(path),
        resumed=resumed,
        unit=target.unit,
        dropped=dropped,
        fixed_seconds=fixed,
    )


@contextmanager
def _pipeline(profile, token: str):
    """A write pipeline when a local thread run leaves cores idle, else None (units persist inline)."""
    spare = write_threads(profile.workers or os.cpu_count() or 1) if profile.scheduler == "threads" else 0
    if spare == 0:
        yield None
        return
    with WritePipeline(token, spare) as pipeline:
        yield pipeline
