"""``python -m bench --scaling 1,2``: how a sweep scales with workers, against what the disk allows.

For every worker count, in one run on one grid (the end-to-end bench sweep):

- **end to end**: ``tokensweep run`` on local threads, from its own summary line;
- **kernel only**: the same blocks evaluated on the same thread pool, nothing written;
- **Zarr write ceiling**: arrays of the cube's sizes (a real block's values, so they
  compress like the cube) encoded with the cube's codec and chunks and written as the
  engine writes them, on as many threads as the engine writes with (its write pipeline
  uses every core while workers leave one idle), with no kernels;
- the run's serial part (connect, lock, template, verify, finalise) from its summary;
- parallel efficiency of each (rate at N workers / N / rate at 1 worker).

Once per run: raw disk bandwidth (64 MB written and fsynced, best of three). Every figure
is a rate measured in this run, so the table compares across machines.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.suite import EndToEnd, _stdout_of


def disk_bandwidth(folder: Path, megabytes: int = 64) -> float:
    """Bytes/s of a sequential write plus fsync (best of three)."""
    payload = os.urandom(1 << 20) * megabytes
    best = float("inf")
    for attempt in range(3):
        target = folder / f"disk-probe-{attempt}"
        started = time.perf_counter()
        with open(target, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        best = min(best, time.perf_counter() - started)
        target.unlink()
    return len(payload) / best


_CEILING = """
import sys, time, dask
from pathlib import Path
from engine.sweep.spec import load_spec
from engine.sweep.plan import make_plan
from engine.sweep.blocks import evaluate_block
from engine.sweep.chunks import layout
from engine.sweep.outputs import output_for
from engine.sweep.store import write_template
spec, out, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
plan = make_plan(load_spec(spec))
write_template(output_for(plan), out)
first = next(plan.blocks())
sample = {k: v.copy() for k, v in evaluate_block(plan, first).items()}
layouts = {v.name: layout(str(out), v.name, plan.fingerprint) for v in plan.variables}
def put(block):
    for var in plan.variables:
        if not plan.owns(block, var):
            continue
        values = sample[var.name]
        region = plan.var_region(block, var)
        shape = tuple(n if s.stop is None else s.stop - s.start for s, n in zip(region, values.shape))
        values = values[tuple(slice(0, n) for n in shape)]
        layouts[var.name].write(plan.var_block_index(block, var), layouts[var.name].encode(values))
    return 1
started = time.perf_counter()
from engine.sweep.pipeline import write_threads
writers = max(workers, write_threads(workers))  # as many threads as the engine writes with
dask.compute(*[dask.delayed(put, pure=False)(b) for b in plan.blocks()], scheduler="threads", num_workers=writers)
print(plan.n_points / (time.perf_counter() - started))
"""


def run_scaling(workers: list[int], size: str, outdir: Path, log=print) -> dict:
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tokensweep-scaling-", dir=outdir) as work:
        folder = Path(work)
        bench = EndToEnd(size, folder)
        spec = bench.spec(chunk_isl=None, name="scaling")
        rows = {}
        for n in workers:
            log(f"scaling: {n} worker(s) ...")
            end_to_end = bench._run(spec, "threads", n)
            kernel = bench.kernel_only(spec, n)["points_per_s"]
            target = folder / f"ceiling-{n}.zarr"
            ceiling = float(_stdout_of([sys.executable, "-c", _CEILING, str(spec), str(target), str(n)]).strip())
            shutil.rmtree(target, ignore_errors=True)
            rows[n] = {
                "points": end_to_end["points"],
                "end_to_end_points_per_s": end_to_end["points_per_s"],
                "kernel_only_points_per_s": kernel,
                "write_ceiling_points_per_s": ceiling,
                "end_to_end_vs_kernel": end_to_end["points_per_s"] / kernel,
                "end_to_end_vs_ceiling": end_to_end["points_per_s"] / ceiling,
                "bytes_logical": end_to_end["bytes_logical"],
                "bytes_on_disk": end_to_end["bytes_on_disk"],
                "serial_seconds": end_to_end["serial_seconds"],
                "end_to_end_seconds": end_to_end["seconds"],
            }
        base = rows[min(workers)]
        for n, row in rows.items():
            scale = n / min(workers)
            for key in ("end_to_end", "kernel_only", "write_ceiling"):
                name = "end_to_end_points_per_s" if key == "end_to_end" else f"{key}_points_per_s"
                row[f"{key}_efficiency"] = row[name] / base[name] / scale
        disk = disk_bandwidth(folder)
    return {"size": size, "workers": rows, "disk_bytes_per_s": disk}


def scaling_markdown(result: dict) -> str:
    rows = result["workers"]
    first = next(iter(rows.values()))
    lines = [
        f"# tokensweep scaling ({result['size']}: {first['points']:,} points, float32, default chunks)",
        "",
        f"Raw disk bandwidth (sequential write + fsync): {result['disk_bytes_per_s'] / 1e9:.2f} GB/s. "
        f"Cube: {first['bytes_logical'] / 1e9:.2f} GB logical, {first['bytes_on_disk'] / 1e9:.2f} GB on disk.",
        "",
        "| workers | end to end (M points/s) | kernel only | Zarr write ceiling | e2e / kernel | e2e / ceiling "
        "| efficiency e2e / kernel / ceiling | serial part of the run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in rows.items():
        lines.append(
            f"| threads x{n} | {r['end_to_end_points_per_s'] / 1e6:.2f} | {r['kernel_only_points_per_s'] / 1e6:.2f} | "
            f"{r['write_ceiling_points_per_s'] / 1e6:.2f} | {r['end_to_end_vs_kernel']:.0%} | "
            f"{r['end_to_end_vs_ceiling']:.0%} | {r['end_to_end_efficiency']:.0%} / {r['kernel_only_efficiency']:.0%} "
            f"/ {r['write_ceiling_efficiency']:.0%} | {r['serial_seconds']:.1f} s of {r['end_to_end_seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"
