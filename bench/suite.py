"""Benchmarks as classes with setup, warm-up and a run that returns figures.

Every headline is a ratio of two figures measured in the same run on the same grid, so
results compare across machines: compiled kernels vs numpy broadcasting vs the pure
Python reference; achieved output bytes/s vs this machine's measured write bandwidth;
end-to-end sweep points/s vs kernel-only points/s; tokensweep vs llm-analysis.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from bench import numpy_impl
from engine.model.assumptions import Assumptions
from engine.model.catalog import load_catalog
from engine.model.core import evaluate_arrays
from engine.model.variables import VARIABLES


def best_of(func, repeat: int) -> float:
    """Minimum wall time of `repeat` calls (the least-disturbed measurement)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


@dataclass
class Grid:
    """A benchmark grid: catalog models x ISL x R x wbits x kbits x hardware."""

    n_models: int
    n_isl: int
    n_conc: int
    n_hw: int = 4
    weight_bits: tuple = (4.0, 8.0, 16.0)
    kv_bits: tuple = (8.0, 16.0)
    catalog: object = field(default_factory=load_catalog)

    def __post_init__(self):
        names = sorted(self.catalog.models)
        self.models = [self.catalog.model(n) for n in (names * 4)[: self.n_models]]
        self.hardware = [
            self.catalog.get_hardware(n)
            for n in ("wse3", "h100-sxm", "b200", "mi300x", "gb200", "h200-sxm")[: self.n_hw]
        ]
        self.isl = np.geomspace(1e3, 1e7, self.n_isl)
        self.workload = self.catalog.workload("agentic-coding")
        self.osl = self.isl * self.workload.output / (1 - self.workload.output)
        self.concurrency = np.geomspace(1, 1024, self.n_conc).round()
        self.assumptions = Assumptions()

    @property
    def points(self) -> int:
        return (
            len(self.models) * self.n_isl * self.n_conc * len(self.weight_bits) * len(self.kv_bits) * len(self.hardware)
        )

    @property
    def arguments(self) -> tuple:
        """The array core's arguments for this grid (models, hardware, axes, mix, assumptions)."""
        return (self.models, self.hardware, self.isl, self.osl, self.concurrency, self.weight_bits, self.kv_bits,
                self.workload, self.assumptions)  # fmt: skip

    def compiled(self, families=("memory", "performance"), out=None):
        return evaluate_arrays(*self.arguments, families, out)

    def numpy(self, families=("memory", "performance")):
        return numpy_impl.evaluate_arrays(*self.arguments, families)

    def python(self, limit: int):
        """The reference on the first `limit` points of the grid (C order)."""
        from engine.model.point import Point
        from engine.model.reference import compose_point

        done = 0
        for m in self.models:
            for c in range(self.n_isl):
                for r in self.concurrency:
                    for w in self.weight_bits:
                        for k in self.kv_bits:
                            for h in self.hardware:
                                compose_point(
                                    Point(m, h, self.workload, self.isl[c], self.osl[c], r, w, k, self.assumptions)
                                )
                                done += 1
                                if done >= limit:
                                    return done
        return done


def output_bytes(arrays: dict) -> int:
    return sum(a.nbytes for a in arrays.values())


class KernelThroughput:
    """Grid points/s per kernel family and for the full set: compiled vs numpy vs Python."""

    SIZES: ClassVar[dict] = {"tiny": (2, 4, 2, 50), "quick": (6, 32, 11, 500), "full": (18, 128, 32, 3000)}

    def __init__(self, size: str):
        models, isl, conc, self.python_points = self.SIZES[size]
        self.grid = Grid(n_models=models, n_isl=isl, n_conc=conc)
        self.repeat = 5 if size == "full" else 3

    def setup(self):
        self.grid.compiled()  # compile or load from cache

    def check(self):
        """The numpy baseline computes the same numbers as the kernels (``bound_by``, a label of
        which term won, is the kernels' alone)."""
        a, b = self.grid.compiled(), self.grid.numpy()
        for name in a.keys() & b.keys():
            np.testing.assert_allclose(
                b[name],
                a[name],
                rtol=1e-9,
                atol=1e-12 if name == "stranded_fraction" else 0,
                equal_nan=True,
                err_msg=name,
            )

    def run(self) -> dict:
        g = self.grid
        out = {
            "grid_points": g.points,
            "grid": f"{len(g.models)} models x {g.n_isl} ISL x {g.n_conc} R x "
            f"{len(g.weight_bits)} wbits x {len(g.kv_bits)} kbits x {len(g.hardware)} hardware",
        }
        for label, families in (
            ("memory", ("memory",)),
            ("performance", ("performance",)),
            ("all", ("memory", "performance")),
        ):
            compiled = best_of(lambda f=families: g.compiled(f), self.repeat)
            numpy = best_of(lambda f=families: g.numpy(f), max(1, self.repeat // 2))
            buffers = g.compiled(families)  # reused: the kernel alone, no page faults
            preallocated = best_of(lambda f=families, b=buffers: g.compiled(f, b), self.repeat)
            out[label] = {
                "compiled_points_per_s": g.points / compiled,
                "compiled_preallocated_points_per_s": g.points / preallocated,
                "numpy_points_per_s": g.points / numpy,
                "kernel_vs_numpy": numpy / compiled,
                "output_bytes": output_bytes(buffers),
                "compiled_s": compiled,
                "compiled_preallocated_s": preallocated,
            }
        g.python(1)  # the reference calls two small compiled helpers inside formulas: load them first
        started = time.perf_counter()
        done = g.python(self.python_points)
        python_rate = done / (time.perf_counter() - started)
        out["python_points_per_s"] = python_rate
        out["kernel_vs_python"] = out["all"]["compiled_points_per_s"] / python_rate
        out["kernel_vs_numpy"] = out["all"]["kernel_vs_numpy"]
        return out


class WriteBandwidth:
    """This machine's memory write bandwidth (numpy filling the kernels' output bytes, pages
    already mapped), and the fraction of it the kernels achieve writing into preallocated
    outputs (like for like: neither side pays first-touch page faults). Fresh allocation is
    reported too."""

    def __init__(self, kernel: KernelThroughput):
        self.kernel = kernel

    def run(self, kernel_figures: dict) -> dict:
        nbytes = kernel_figures["all"]["output_bytes"]
        buffer = np.empty(nbytes // 8)
        buffer.fill(1.0)  # fault the pages in before timing
        fill = best_of(lambda: buffer.fill(2.0), 5)
        machine = nbytes / fill
        out = {"machine_write_bytes_per_s": machine, "buffer_bytes": nbytes}
        for family in ("memory", "performance", "all"):
            figures = kernel_figures[family]
            achieved = figures["output_bytes"] / figures["compiled_preallocated_s"]
            out[f"{family}_achieved_bytes_per_s"] = achieved
            out[f"{family}_bandwidth_fraction"] = achieved / machine
            out[f"{family}_fresh_outputs_bytes_per_s"] = figures["output_bytes"] / figures["compiled_s"]
        fresh_s = best_of(lambda: np.full(nbytes // 8, 2.0), 3)
        out["machine_fresh_write_bytes_per_s"] = nbytes / fresh_s
        out["bandwidth_fraction"] = out["all_bandwidth_fraction"]
        return out


class VersusLLMAnalysis:
    """llm-analysis evaluates one configuration per Python call (memory, latency,
    throughput and cost for one model on one GPU at one batch, prompt and output length).
    The comparable tokensweep work is one grid point of both kernel families (every
    memory, throughput and cost variable) for the same kind of configuration."""

    def __init__(self, size: str):
        self.calls = {"tiny": 3, "quick": 20, "full": 100}[size]

    def run(self, grid: Grid) -> dict:
        try:
            import logging

            from llm_analysis.analysis import LLMAnalysis
            from llm_analysis.config import get_dtype_config_by_name, get_gpu_config_by_name, get_model_config_by_name
        except ImportError:
            return {"available": False, "reason": "llm-analysis not installed (pip install -e '.[bench]')"}
        logging.disable(logging.CRITICAL)
        analysis = LLMAnalysis(
            get_model_config_by_name("upstage_Llama-2-70b-instruct-v2"),
            get_gpu_config_by_name("h100-sxm-80gb"),
            get_dtype_config_by_name("w8a8e16"),
        )
        batches = [1, 2, 4, 8, 16, 32]
        started = time.perf_counter()
        for i in range(self.calls):
            analysis.inference(
                batch_size_per_gpu=batches[i % len(batches)],
                seq_len=512 + 64 * i % 2048,
                num_tokens_to_generate=128,
                kv_cache_dtype_bytes=1,
                cost_per_gpu_hour=2.904,
            )
        theirs = self.calls / (time.perf_counter() - started)
        logging.disable(logging.NOTSET)
        ours_grid = Grid(
            n_models=1, n_isl=64, n_conc=16, n_hw=1, weight_bits=(8.0,), kv_bits=(8.0,), catalog=grid.catalog
        )
        ours_grid.models = [grid.catalog.model("llama-3.1-70b")]
        ours_grid.hardware = [grid.catalog.get_hardware("h100-sxm")]
        ours_grid.compiled()
        seconds = best_of(ours_grid.compiled, 5)
        ours = ours_grid.points / seconds
        return {
            "available": True,
            "llm_analysis_configs_per_s": theirs,
            "tokensweep_points_per_s": ours,
            "vs_llm_analysis": ours / theirs,
            "comparable": "one configuration (model, GPU, batch, prompt length, output length) -> memory, latency, "
            "throughput and cost; tokensweep: Llama 3.1 70B on H100, 8-bit, 1,024 points per call of both kernel "
            "families; llm-analysis: Llama 2 70B on H100, w8a8, one inference() call per configuration",
        }


def _stdout_of(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


class EndToEnd:
    """A sweep to Zarr: points/s, bytes, compression, peak RSS; threads 1 vs 2, processes,
    chunk size. Each configuration runs in a fresh process (clean peak RSS)."""

    # Full: 18 models x 2400 ISL x 105 R (128 log-spaced, rounded, distinct) x 3 wbits x 2 kbits
    # x 4 hardware = 1.09e8 points.
    SIZES: ClassVar[dict] = {
        "tiny": {"n_isl": 4, "n_conc": 2, "models": 2, "chunks": (1, 4)},
        "quick": {"n_isl": 64, "n_conc": 32, "models": 6, "chunks": (4, 64)},
        "full": {"n_isl": 2400, "n_conc": 128, "models": 18, "chunks": (8, 512)},
    }

    def __init__(self, size: str, workdir: Path):
        self.workdir = workdir
        self.axes = self.SIZES[size]

    def spec(self, chunk_isl: int | None, name: str, isl_points: int | None = None) -> Path:
        import yaml

        catalog = load_catalog()
        spec = {
            "name": name,
            "models": sorted(catalog.models)[: self.axes["models"]],
            "hardware": ["wse3", "h100-sxm", "b200", "mi300x"],
            "axes": {
                "isl": {"geomspace": ["1k", "10M", isl_points or self.axes["n_isl"]]},
                "concurrency": {"geomspace": [1, 1e4, self.axes["n_conc"]]},
                "weight_bits": [4, 8, 16],
                "kv_bits": [8, 16],
            },
            "chunks": {} if chunk_isl is None else {"isl": chunk_isl, "model": 1},
            "precision": "float32",
            "max_points": 1e10,
        }
        spec["axes"]["concurrency"] = sorted({round(v) for v in np.geomspace(1, 1e4, self.axes["n_conc"])})
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    def _run(self, spec: Path, scheduler: str, workers: int) -> dict:
        out = self.workdir / f"{spec.stem}-{scheduler}-{workers}.zarr"
        cmd = [
            sys.executable,
            "-c",
            _REPORT_PEAK,
            "run",
            str(spec),
            "--output",
            str(out),
            "--no-progress",
            "--scheduler",
            scheduler,
            "--workers",
            str(workers),
        ]
        wall, seconds, rss, serial = _timed_peak_rss(cmd)
        import xarray as xr

        ds = xr.open_zarr(out)
        points = int(np.prod([ds.sizes[d] for d in ds["cost_per_mtok_usd"].dims]))
        logical = sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in ds.data_vars.values())
        on_disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(out.name + ".tokensweep"), ignore_errors=True)
        return {
            "points": points,
            "seconds": seconds,
            "process_wall_s": wall,
            "points_per_s": points / seconds,
            "bytes_logical": logical,
            "bytes_on_disk": on_disk,
            "compression_ratio": logical / on_disk,
            "peak_rss_bytes": rss,
            "serial_seconds": serial,
        }

    def kernel_only(self, spec: Path, workers: int) -> dict:
        """The same blocks evaluated on the same thread pool, nothing written."""
        code = (
            "import time, dask; from engine.sweep.spec import load_spec; from engine.sweep.plan import make_plan; from engine.sweep.blocks import evaluate_block\n"
            f"plan = make_plan(load_spec({str(spec)!r})); evaluate_block(plan, next(plan.blocks()))\n"
            "t = time.perf_counter()\n"
            "from functools import partial\n"
            # Bound as the engine binds its tasks: Dask would otherwise walk the Plan per task.
            "tasks = [dask.delayed(partial(evaluate_block, plan, b, reuse=True), pure=False)() for b in plan.blocks()]\n"
            "tasks = [dask.delayed(len)(t) for t in tasks]\n"
            f"dask.compute(*tasks, scheduler='threads', num_workers={workers})\n"
            "print(plan.n_points / (time.perf_counter() - t))\n"
        )
        return {"points_per_s": float(_stdout_of([sys.executable, "-c", code]).strip())}

    def run(self) -> dict:
        small_chunk, large_chunk = self.axes["chunks"]
        main = self.spec(chunk_isl=None, name="e2e")  # the engine's default chunking
        out: dict = {}
        out["kernel_only_threads_2"] = self.kernel_only(main, 2)
        out["threads_2"] = self._run(main, "threads", 2)
        out["end_to_end_vs_kernel"] = out["threads_2"]["points_per_s"] / out["kernel_only_threads_2"]["points_per_s"]
        out["threads_1"] = self._run(main, "threads", 1)
        out["thread_scaling_2_vs_1"] = out["threads_2"]["points_per_s"] / out["threads_1"]["points_per_s"]
        out["processes_2"] = self._run(main, "processes", 2)
        # Chunk-size sensitivity on an eighth of the grid (small blocks are slow by design).
        eighth = max(1, self.axes["n_isl"] // 8)
        for chunk in (small_chunk, None, large_chunk):
            label = "default" if chunk is None else chunk
            spec = self.spec(chunk_isl=chunk, name=f"e2e-chunk-{label}", isl_points=eighth)
            out[f"chunk_isl_{label}"] = self._run(spec, "threads", 2)
        # Memory bounded by chunk size, not grid size: half the grid, same chunks.
        half = self.spec(chunk_isl=None, name="e2e-half", isl_points=self.axes["n_isl"] // 2)
        out["half_grid_threads_2"] = self._run(half, "threads", 2)
        out["rss_full_vs_half_grid"] = out["threads_2"]["peak_rss_bytes"] / out["half_grid_threads_2"]["peak_rss_bytes"]
        return out


class DrawCost:
    """The cost of uncertainty: the same grid evaluated once and once per Monte Carlo draw (the
    draw kernels, one compiled call for every draw), and a sweep's blocks with and without an
    ``uncertain:`` section (kernels plus the per-block quantile summary). A draw counts as a
    point: equal points/s means a draw costs what a grid point costs."""

    SIZES: ClassVar[dict] = {"tiny": (2, 4, 2, 4), "quick": (6, 16, 11, 64), "full": (18, 32, 16, 128)}

    def __init__(self, size: str):
        models, isl, conc, self.n_draws = self.SIZES[size]
        self.grid = Grid(n_models=models, n_isl=isl, n_conc=conc)
        self.repeat = 3

    def draws(self):
        from engine.model.uncertain import Uncertain

        section = {"draws": self.n_draws, "distributions": {
            "mfu_decode": {"uniform": [0.25, 0.55]}, "memory_bw_efficiency": {"uniform": [0.6, 0.9]},
            "wse3.capex_usd": {"uniform": ["1M", "3M"]}}}  # fmt: skip
        return Uncertain.parse(section, "uncertain").sample()

    def run(self) -> dict:
        from engine.model.core import output_buffers

        g, draws = self.grid, self.draws()
        families = ("memory", "performance")
        plain_out = g.compiled(families)
        plain = best_of(lambda: g.compiled(families, plain_out), self.repeat)
        drawn_out = output_buffers(g.models, g.hardware, g.isl, g.concurrency, g.weight_bits, g.kv_bits, families,
                                   draws.n)  # fmt: skip
        evaluate_arrays(*g.arguments, families, drawn_out, draws=draws)  # compile or load the draw kernels
        drawn = best_of(lambda: evaluate_arrays(*g.arguments, families, drawn_out, draws=draws), self.repeat)
        out = {
            "grid_points": g.points,
            "draws": draws.n,
            "kernel_points_per_s": g.points / plain,
            "kernel_draw_points_per_s": g.points * draws.n / drawn,
            "kernel_seconds_per_draw": drawn / draws.n,
        }
        out["kernel_draw_vs_plain"] = out["kernel_draw_points_per_s"] / out["kernel_points_per_s"]
        out.update(self.blocks())
        return out

    def blocks(self) -> dict:
        """A sweep's block path (kernels, cube-layout views, quantiles, storage dtype), both ways."""
        from engine.sweep.blocks import evaluate_block
        from engine.sweep.plan import make_plan
        from engine.sweep.spec import parse_spec

        g = self.grid
        spec = {
            "name": "drawcost", "models": sorted({m.name for m in g.models}), "hardware": [h.name for h in g.hardware],
            "axes": {"isl": [int(v) for v in g.isl[:8]], "concurrency": [int(v) for v in sorted(set(g.concurrency))],
                     "weight_bits": list(g.weight_bits), "kv_bits": list(g.kv_bits)},
            "parameters": {"price": "tco"},
        }  # fmt: skip
        uncertain = {"draws": self.n_draws, "quantiles": [0.05, 0.5, 0.95], "distributions": {
            "mfu_decode": {"uniform": [0.25, 0.55]}, "wse3.capex_usd": {"uniform": ["1M", "3M"]}}}  # fmt: skip
        figures = {}
        for label, extra in (("plain", {}), ("drawn", {"uncertain": uncertain})):
            plan = make_plan(parse_spec({**spec, **extra}))
            blocks = list(plan.blocks())
            evaluate_block(plan, blocks[0], reuse=True)

            def every(plan=plan, blocks=blocks):
                for b in blocks:
                    evaluate_block(plan, b, reuse=True)

            seconds = best_of(every, self.repeat)
            figures[f"block_{label}_points_per_s"] = plan.n_points / seconds
        figures["block_draw_vs_plain"] = figures["block_drawn_points_per_s"] / figures["block_plain_points_per_s"]
        return figures


class ReductionSweep:
    """A ``reduce:`` sweep (cheapest deployment per model x ISL x hardware at >= 50 tokens/s per
    user): end-to-end points/s from ``tokensweep run``, and the same blocks' kernels alone
    (nothing reduced or written) on the same thread pool."""

    # Full: 96 model sizes x 256 ISL x 24 R x 3 wbits x 2 kbits x 6 hardware x 8 replica sizes = 1.7e8.
    SIZES: ClassVar[dict] = {
        "tiny": {"models": 4, "n_isl": 4, "conc": 4, "replica": [0, 8]},
        "quick": {"models": 16, "n_isl": 32, "conc": 16, "replica": [0, 8, 64]},
        "full": {"models": 96, "n_isl": 256, "conc": 24, "replica": [0, 1, 2, 4, 8, 16, 32, 64]},
        # python -m bench --search: 128 x 384 x 24 x 3 x 2 x 6 x 8 x 3 layouts = 1.02e9 points.
        "search": {"models": 128, "n_isl": 384, "conc": 24, "replica": [0, 1, 2, 4, 8, 16, 32, 64],
                   "parallelism": ["tp", "tp-ep", "dp-ep"]},
        "search-tiny": {"models": 4, "n_isl": 4, "conc": 4, "replica": [0, 8], "parallelism": ["tp", "dp-ep"]},
    }  # fmt: skip

    def __init__(self, size: str, workdir: Path):
        self.workdir = workdir
        self.axes = self.SIZES[size]

    def spec(self) -> Path:
        import yaml

        concurrency = sorted({round(v) for v in np.geomspace(1, 1024, self.axes["conc"] * 2)})[: self.axes["conc"]]
        spec = {
            "name": "reduce",
            "synthetic": {"reference": "deepseek-v3", "params": {"geomspace": ["10B", "4T", self.axes["models"]]}},
            "hardware": ["wse3", "h100-sxm", "h200-sxm", "b200", "mi300x", "gb200"],
            "axes": {
                "isl": {"geomspace": ["1k", "1M", self.axes["n_isl"]]},
                "concurrency": concurrency,
                "weight_bits": [4, 8, 16],
                "kv_bits": [8, 16],
                "replica_units": self.axes["replica"],
                **({"parallelism": self.axes["parallelism"]} if "parallelism" in self.axes else {}),
            },
            "parameters": {"context_limit": "none"},
            "max_points": 1e13,
            "reduce": {
                "min": "cost_per_mtok_output_usd",
                "over": ["replica_units", "concurrency", "weight_bits", "kv_bits"],
                "where": {"interactivity_tps": {"ge": 50}},
            },
        }
        path = self.workdir / "reduce.yaml"
        path.write_text(yaml.safe_dump(spec))
        return path

    def run(self, workers: int = 2) -> dict:
        spec = self.spec()
        out = self.workdir / "reduce.zarr"
        cmd = [sys.executable, "-c", _REPORT_PEAK, "run", str(spec), "--output", str(out), "--no-progress",
               "--scheduler", "threads", "--workers", str(workers)]  # fmt: skip
        wall, seconds, rss, serial = _timed_peak_rss(cmd)
        from engine.sweep.plan import make_plan
        from engine.sweep.reduce import ReducedSchema
        from engine.sweep.spec import load_spec

        plan = make_plan(load_spec(spec))
        cells = ReducedSchema(plan).n_points
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(out.name + ".tokensweep"), ignore_errors=True)
        kernel, skipped = self.compute_only(spec, workers, "block_partial")
        unfused, _ = self.compute_only(spec, workers, "unfused")
        return {
            "points": plan.n_points,
            "output_cells": cells,
            "seconds": seconds,
            "process_wall_s": wall,
            "points_per_s": plan.n_points / seconds,
            "kernel_only_points_per_s": kernel,
            "unfused_kernel_only_points_per_s": unfused,
            "skipped_share": skipped,
            "vs_kernel_only": plan.n_points / seconds / kernel,
            "peak_rss_bytes": rss,
            "serial_seconds": serial,
            "workers": workers,
        }

    @staticmethod
    def compute_only(spec: Path, workers: int, path: str) -> tuple[float, float]:
        """Points/s of the blocks' compute alone on the same thread pool (nothing merged or written),
        and the share of points the search kernel skipped: ``block_partial`` (the fused search
        kernel where it applies, each output chunk's blocks in chains as a run does) or
        ``unfused`` (the kernels storing every figure, the numpy mask and the fold, block by
        block: what a reduction did before fusion)."""
        if path == "block_partial":
            work, call = (
                "[c for g in ReducedSchema(plan).groups().values() for c in chains(g)]",
                "chain_partial(plan, w)",
            )
        else:
            work, call = "list(plan.blocks())", "block_partial(plan, w, fused=False)"
        code = (
            "import time, dask; from engine.sweep.spec import load_spec; from engine.sweep.plan import make_plan\n"
            "from engine.sweep.reduce import ReducedSchema, block_partial, chain_partial, chains\n"
            f"plan = make_plan(load_spec({str(spec)!r})); work = {work}; w = work[0]; {call}\n"
            "t = time.perf_counter()\n"
            f"tasks = [dask.delayed(lambda w: {call}.skipped, pure=False)(w) for w in work]\n"
            f"skipped = sum(dask.compute(*tasks, scheduler='threads', num_workers={workers}))\n"
            "print(plan.n_points / (time.perf_counter() - t), skipped / plan.n_points)\n"
        )
        rate, skipped = _stdout_of([sys.executable, "-c", code]).split()
        return float(rate), float(skipped)


def run_search(size: str, outdir: Path, log=print) -> dict:
    """``python -m bench --search``: a reduction sweep of 1e9 points end to end and compute only,
    with 1 and 2 workers, the plan's estimate against the run, llm-analysis in the same run."""
    import re

    outdir.mkdir(parents=True, exist_ok=True)
    key = "search" if size == "full" else "search-tiny"
    result: dict = {"size": size, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="tokensweep-bench-", dir=outdir) as work:
        bench = ReductionSweep(key, Path(work))
        spec = bench.spec()
        cli = "import sys; from engine.interfaces.cli import main; sys.exit(main(sys.argv[1:]))"
        planned = _stdout_of([sys.executable, "-c", cli, "plan", str(spec), "--workers", "2", "--scheduler", "threads"])
        match = re.search(r"estimated\s+([0-9,.]+) s", planned)
        result["plan_estimate_s"] = float(match.group(1).replace(",", "")) if match else None
        for workers in (1, 2):
            log(f"search sweep, {workers} worker(s) ...")
            result[f"workers_{workers}"] = bench.run(workers)
    two, one = result["workers_2"], result["workers_1"]
    result["parallel_efficiency"] = two["points_per_s"] / (2 * one["points_per_s"])
    # What plan estimates is the run's own time (its serial part and its chains); the process's wall
    # time adds Python's start-up and the libraries' imports, reported beside it.
    result["plan_estimate_vs_actual"] = (
        result["plan_estimate_s"] / two["seconds"] if result["plan_estimate_s"] else None
    )
    log("llm-analysis ...")
    llm = VersusLLMAnalysis("quick" if size == "full" else "tiny").run(Grid(n_models=2, n_isl=4, n_conc=2))
    result["llm_analysis"] = llm
    if llm.get("available"):
        result["vs_llm_analysis"] = two["points_per_s"] / llm["llm_analysis_configs_per_s"]
    log("cost of draws ...")
    result["draws"] = DrawCost("quick" if size == "full" else "tiny").run()
    return save(outdir, "search", result, search_markdown)


def search_markdown(r: dict) -> str:
    two, one = r["workers_2"], r["workers_1"]
    lines = [
        f"# tokensweep search benchmark ({r['size']})",
        "",
        f"Reduction sweep: {two['points']:,} points -> {two['output_cells']:,} cells; machine "
        f"{r['machine'].get('cpu_name', '?')}, {r['machine']['cpus']} cores.",
        "",
        "| figure | 1 worker | 2 workers |",
        "|---|---|---|",
        f"| **end to end** (tokensweep run) | {one['points_per_s']:,.0f} points/s | **{two['points_per_s']:,.0f} points/s** "
        f"({two['seconds']:.1f} s) |",
        f"| compute only, fused search kernel | {one['kernel_only_points_per_s']:,.0f} | "
        f"{two['kernel_only_points_per_s']:,.0f} |",
        f"| points the search kernel skipped (could not win) | {one.get('skipped_share', 0):.0%} | "
        f"{two.get('skipped_share', 0):.0%} |",
    ]
    if two.get("unfused_kernel_only_points_per_s"):
        lines.append(
            f"| compute only, unfused (kernels storing every figure, mask, fold) | "
            f"{one['unfused_kernel_only_points_per_s']:,.0f} | {two['unfused_kernel_only_points_per_s']:,.0f} |"
        )
    lines += [
        f"| end to end / compute only | {one['vs_kernel_only']:.0%} | {two['vs_kernel_only']:.0%} |",
        "",
        f"- **parallel efficiency** 1 -> 2 workers (end to end): **{r['parallel_efficiency']:.2f}**",
    ]
    if r.get("plan_estimate_vs_actual"):
        lines.append(
            f"- `tokensweep plan` estimated {r['plan_estimate_s']:.1f} s; the run took {two['seconds']:.1f} s "
            f"({two['process_wall_s']:.1f} s process wall, with start-up and imports): estimate / actual "
            f"**{r['plan_estimate_vs_actual']:.2f}**"
        )
    if r.get("vs_llm_analysis"):
        llm = r["llm_analysis"]
        lines.append(
            f"- **{r['vs_llm_analysis']:,.0f}x llm-analysis** ({llm['llm_analysis_configs_per_s']:,.0f} configurations/s, "
            "one per call, measured in the same run)"
        )
    d = r["draws"]
    lines.append(
        f"- cost per draw (full cubes; reductions do not take draws yet): {d['kernel_seconds_per_draw'] * 1e3:.2f} ms per "
        f"draw of a {d['grid_points']:,}-point grid, {d['kernel_draw_vs_plain']:.2f}x the points/s without draws"
    )
    return "\n".join(lines) + "\n"


# Runs `tokensweep` and prints the process's own peak RSS. ru_maxrss is no good here: Linux
# carries the parent's high-water mark across fork and exec, so every child would report
# the benchmark driver's size. VmHWM belongs to the new address space only.
_REPORT_PEAK = (
    "import sys; from engine.interfaces.cli import main; code = main(sys.argv[1:]); "
    "print('VmHWM', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); sys.exit(code)"
)


def _timed_peak_rss(cmd: list[str]) -> tuple[float, float, int, float]:
    """Process wall time, the sweep's own time and serial part (from its summary line), peak RSS (bytes)."""
    import re

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    peak = re.search(r"VmHWM (\d+)", out)
    if peak is None:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed: {err[-2000:]!r}")
    match = re.search(r"computed in ([0-9.]+) s", out)
    return wall, float(match.group(1)) if match else wall, int(peak.group(1)) * 1024, _serial_part(out)


def _serial_part(summary: str) -> float:
    """The run's serial part in seconds (connect, template, verify, finalise), from its summary line."""
    import re

    match = re.search(r"serial part ([0-9.]+) s", summary)
    return float(match.group(1)) if match else float("nan")


class StartUp:
    """JIT compile time, and `tokensweep point` from a cold and a warm compilation cache."""

    POINT = ("point", "--model", "gpt-oss-120b", "--isl", "96.3k", "--concurrency", "250", "--weight-bits", "4", "--kv-bits", "16", "--hardware", "wse3", "--json")  # fmt: skip

    def run(self) -> dict:
        cache = Path(tempfile.mkdtemp(prefix="tokensweep-numba-cache-"))
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
        compile_code = (
            "import time; t = time.perf_counter(); import engine.model.kernels; print(time.perf_counter() - t)"
        )
        no_cache = {**env, "TOKENSWEEP_JIT_CACHE": "0"}
        compile_s = float(
            subprocess.run(
                [sys.executable, "-c", compile_code], capture_output=True, text=True, env=no_cache, check=True
            ).stdout
        )
        cmd = [sys.executable, "-m", "engine", *self.POINT]
        cold = _timed(cmd, env)
        warm = min(_timed(cmd, env) for _ in range(3))
        shutil.rmtree(cache, ignore_errors=True)
        return {
            "jit_compile_s": compile_s,
            "point_cold_cache_s": cold,
            "point_warm_cache_s": warm,
            "warm_vs_cold": cold / warm,
        }


def _timed(cmd, env) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env, check=True)
    return time.perf_counter() - started


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
    }
    try:
        import numba

        info["numba"] = numba.__version__
        info["numpy"] = np.__version__
        info["cpu_name"] = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
        info["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, StopIteration):
        pass
    return info


def run_all(size: str, outdir: Path, include_e2e: bool = True, log=print) -> dict:
    """Run every benchmark at `size` (tiny, quick, full); write results.json and results.md."""
    outdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"size": size, "machine": machine(), "variables": len(VARIABLES)}
    kernel = KernelThroughput(size)
    kernel.setup()
    kernel.check()
    log("kernel throughput ...")
    results["kernels"] = kernel.run()
    results["bandwidth"] = WriteBandwidth(kernel).run(results["kernels"])
    log("llm-analysis ...")
    results["llm_analysis"] = VersusLLMAnalysis(size).run(kernel.grid)
    log("start-up ...")
    results["startup"] = StartUp().run()
    log("cost of draws ...")
    results["draws"] = DrawCost(size).run()
    if include_e2e:
        log("end to end ...")
        with tempfile.TemporaryDirectory(prefix="tokensweep-bench-", dir=outdir) as work:
            results["end_to_end"] = EndToEnd(size, Path(work)).run()
        log("reduction sweep ...")
        with tempfile.TemporaryDirectory(prefix="tokensweep-bench-", dir=outdir) as work:
            reduction = ReductionSweep(size, Path(work)).run()
        llm = results["llm_analysis"]
        if llm.get("available"):
            reduction["vs_llm_analysis"] = reduction["points_per_s"] / llm["llm_analysis_configs_per_s"]
        results["reduction"] = reduction
    results["kernel_vs_numpy"] = results["kernels"]["kernel_vs_numpy"]
    results["kernel_vs_python"] = results["kernels"]["kernel_vs_python"]
    results["bandwidth_fraction"] = results["bandwidth"]["bandwidth_fraction"]
    results["end_to_end_vs_kernel"] = results.get("end_to_end", {}).get("end_to_end_vs_kernel")
    results["vs_llm_analysis"] = results["llm_analysis"].get("vs_llm_analysis")
    return save(outdir, "results", results, markdown)


def save(outdir: Path, stem: str, result: dict, render) -> dict:
    """A benchmark's figures as ``<stem>.json`` and its table as ``<stem>.md``."""
    (outdir / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (outdir / f"{stem}.md").write_text(render(result))
    return result


def markdown(r: dict) -> str:
    k, b = r["kernels"], r["bandwidth"]
    lines = [
        f"# tokensweep benchmarks ({r['size']})",
        "",
        f"Machine: {r['machine'].get('cpu_name', '?')}, {r['machine']['cpus']} cores; numba {r['machine'].get('numba')}, numpy {r['machine'].get('numpy')}.",
        f"Kernel grid: {k['grid']} = {k['grid_points']:,} points, {r['variables']} variables.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| compiled kernels, all variables | {k['all']['compiled_points_per_s']:,.0f} points/s (1 thread, fresh outputs); {k['all']['compiled_preallocated_points_per_s']:,.0f} into preallocated outputs |",
        f"| numpy broadcast, all variables | {k['all']['numpy_points_per_s']:,.0f} points/s |",
        f"| pure-Python reference | {k['python_points_per_s']:,.0f} points/s |",
        f"| **kernel_vs_numpy** (all / memory / performance) | **{k['all']['kernel_vs_numpy']:.1f}x** / {k['memory']['kernel_vs_numpy']:.1f}x / {k['performance']['kernel_vs_numpy']:.1f}x |",
        f"| **kernel_vs_python** | **{k['kernel_vs_python']:,.0f}x** |",
        f"| machine write bandwidth (numpy fill of mapped pages; fresh np.full) | {b['machine_write_bytes_per_s'] / 1e9:.2f} GB/s; {b['machine_fresh_write_bytes_per_s'] / 1e9:.2f} GB/s |",
        f"| kernel output bandwidth, preallocated (all / memory / performance) | {b['all_achieved_bytes_per_s'] / 1e9:.2f} / {b['memory_achieved_bytes_per_s'] / 1e9:.2f} / {b['performance_achieved_bytes_per_s'] / 1e9:.2f} GB/s |",
        f"| kernel output bandwidth, fresh outputs (all) | {b['all_fresh_outputs_bytes_per_s'] / 1e9:.2f} GB/s |",
        f"| **bandwidth_fraction** (all / memory / performance) | **{b['all_bandwidth_fraction']:.0%}** / {b['memory_bandwidth_fraction']:.0%} / {b['performance_bandwidth_fraction']:.0%} |",
    ]
    llm = r["llm_analysis"]
    if llm.get("available"):
        lines.append(
            f"| **vs_llm_analysis** | **{llm['vs_llm_analysis']:,.0f}x** ({llm['tokensweep_points_per_s']:,.0f} vs {llm['llm_analysis_configs_per_s']:,.1f} configurations/s) |"
        )
    else:
        lines.append(f"| vs_llm_analysis | not measured: {llm['reason']} |")
    s = r["startup"]
    lines.append(f"| JIT compile (both kernels) | {s['jit_compile_s']:.2f} s |")
    lines.append(
        f"| `tokensweep point`, cold / warm cache | {s['point_cold_cache_s']:.2f} s / {s['point_warm_cache_s']:.2f} s |"
    )
    d = r.get("draws")
    if d:
        lines.append(
            f"| **draws** ({d['draws']} Monte Carlo draws, a draw counted as a point) | kernels "
            f"{d['kernel_draw_points_per_s']:,.0f} points/s with draws vs {d['kernel_points_per_s']:,.0f} without "
            f"(**{d['kernel_draw_vs_plain']:.2f}x**, {d['kernel_seconds_per_draw'] * 1e3:.2f} ms per draw of the "
            f"{d['grid_points']:,}-point grid); sweep blocks with quantile summary "
            f"{d['block_drawn_points_per_s']:,.0f} vs {d['block_plain_points_per_s']:,.0f} points/s "
            f"(**{d['block_draw_vs_plain']:.2f}x**) |"
        )
    red = r.get("reduction")
    if red:
        versus = f"; **{red['vs_llm_analysis']:,.0f}x llm-analysis**" if "vs_llm_analysis" in red else ""
        lines.append(
            f"| **reduction sweep**, threads x{red['workers']} | **{red['points_per_s']:,.0f} points/s** "
            f"({red['points']:,} points -> {red['output_cells']:,} cells in {red['seconds']:.1f} s); "
            f"{red['vs_kernel_only']:.0%} of kernel-only ({red['kernel_only_points_per_s']:,.0f} points/s){versus} |"
        )
    e = r.get("end_to_end")
    if e:
        t2, t1, p2 = e["threads_2"], e["threads_1"], e["processes_2"]
        lines += [
            f"| end to end, threads x2 | {t2['points_per_s']:,.0f} points/s, {t2['points']:,} points in {t2['seconds']:.1f} s |",
            f"| kernel only, threads x2 (same blocks, no writes) | {e['kernel_only_threads_2']['points_per_s']:,.0f} points/s |",
            f"| **end_to_end_vs_kernel** | **{e['end_to_end_vs_kernel']:.0%}** |",
            f"| threads x1 / processes x2 | {t1['points_per_s']:,.0f} / {p2['points_per_s']:,.0f} points/s (thread scaling {e['thread_scaling_2_vs_1']:.2f}x) |",
            f"| bytes (float32, logical / on disk) | {t2['bytes_logical'] / 1e9:.2f} GB / {t2['bytes_on_disk'] / 1e9:.2f} GB (compression {t2['compression_ratio']:.1f}x) |",
            f"| peak RSS full grid / half grid | {t2['peak_rss_bytes'] / 1e6:,.0f} MB / {e['half_grid_threads_2']['peak_rss_bytes'] / 1e6:,.0f} MB (ratio {e['rss_full_vs_half_grid']:.2f}) |",
        ]
        for key, value in e.items():
            if key.startswith("chunk_isl_"):
                label = key.removeprefix("chunk_isl_")
                label = "engine default" if label == "default" else f"isl {label} x model 1"
                lines.append(
                    f"| chunks {label}, 1/8 grid (threads x2) | {value['points_per_s']:,.0f} points/s, peak RSS {value['peak_rss_bytes'] / 1e6:,.0f} MB |"
                )
    return "\n".join(lines) + "\n"
