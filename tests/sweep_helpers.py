"""Small sweep specs and run helpers shared by the sweep, store, reduction, cluster and robustness tests."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time

import xarray as xr
import yaml

SMALL = {
    "name": "small",
    "models": ["gpt-oss-120b", "deepseek-v4-pro"],
    "synthetic": {"reference": "deepseek-v3", "params": {"geomspace": ["125B", "4T", 4]}},
    "hardware": ["wse3", "h100-sxm", "b200"],
    "axes": {
        "isl": {"geomspace": ["16k", "10M", 9]},
        "concurrency": [1, 16, 250],
        "weight_bits": [4, 8],
        "kv_bits": [8, 16],
    },
    # Contexts up to 10M tokens: extrapolated past the models' windows, as the calculator does.
    "parameters": {"workload": "agentic-coding", "context_limit": "none"},
    "chunks": {"isl": 2, "model": 3, "concurrency": 2},
}


def small(**changes) -> dict:
    spec = copy.deepcopy(SMALL)
    spec.update(changes)
    return spec


#: The small sweep cut into many blocks (for kill, resume and remote-store tests).
MANY_BLOCKS = small(chunks={"model": 1, "isl": 1, "concurrency": 2})


def write_spec(tmp_path, spec: dict, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def comparable(ds):
    """A cube without its timestamps, for comparing two runs."""
    ds = ds.load(scheduler="threads")  # whatever Client an earlier test left as the default
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "completed", "history")}
    return ds


#: A reduction sweep small enough for every test that runs one.
BASE = {
    "name": "reduced",
    "models": ["gpt-oss-120b", "llama-3.1-70b"],
    "hardware": ["wse3", "h100-sxm", "b200"],
    "axes": {
        "isl": {"geomspace": ["1k", "300k", 3]},
        "concurrency": [1, 8, 64, 256],
        "weight_bits": [4, 8],
        "kv_bits": [8, 16],
        "replica_units": [0, 8],
    },
    "parameters": {"workload": "agentic-coding"},
    "reduce": {
        "min": "cost_per_mtok_output_usd",
        "over": ["replica_units", "concurrency", "weight_bits", "kv_bits"],
        "where": {"interactivity_tps": {"ge": 50}},
        "keep": ["ttft_s", "units_per_replica"],
    },
}


def same_cube(written: xr.Dataset, eager: xr.Dataset) -> None:
    written, eager = comparable(written), comparable(eager.copy())
    for ds in (written, eager):
        ds.attrs.pop("complete")
    xr.testing.assert_identical(written, eager)


def run_cli(spec_path, output, *extra, env=None):
    cmd = [sys.executable, "-m", "engine", "run", str(spec_path), "--output", str(output), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def kill_after(process, output, blocks: int, timeout: float = 60.0) -> int:
    from engine.sweep.state import state_dir

    """SIGKILL the run once it has recorded `blocks` blocks; returns how many were recorded."""
    folder = state_dir(output) / "blocks"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(os.listdir(folder)) if folder.exists() else 0
        if done >= blocks or process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return len(os.listdir(folder)) if folder.exists() else 0
