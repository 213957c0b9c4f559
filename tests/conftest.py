"""Shared fixtures. Kernels are compiled once per session (and cached on disk)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "tokensweep",
    deadline=None,  # the first example may include JIT compilation or a cache load
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
)
settings.load_profile("tokensweep")


@pytest.fixture(scope="session")
def catalog():
    from engine.model.catalog import load_catalog

    return load_catalog()


@pytest.fixture(scope="session")
def kernels():
    """The compiled kernel module, imported once for the whole session."""
    from engine.model import kernels as compiled

    return compiled


@pytest.fixture(scope="session")
def agentic(catalog):
    return catalog.workload("agentic-coding")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """Scheduler and two single-threaded workers as separate processes; torn down after."""
    distributed = pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = ["--no-dashboard"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *common,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-nanny",
                        *common,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        client = distributed.Client(address, timeout="30s")
        try:
            client.wait_for_workers(2, timeout=60)
            yield address, client, procs
        finally:
            try:
                client.shutdown()  # scheduler and workers stop together; closes the client
            except Exception:
                client.close()
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="session")
def reference_cube(tmp_path_factory):
    """The many-block small sweep, run once uninterrupted: what killed, resumed and remote runs must equal."""
    import xarray as xr

    from engine.sweep.plan import make_plan
    from engine.sweep.spec import parse_spec
    from engine.sweep.store import run_sweep
    from tests.sweep_helpers import MANY_BLOCKS, comparable

    path = tmp_path_factory.mktemp("reference") / "cube.zarr"
    run_sweep(make_plan(parse_spec(MANY_BLOCKS)), path, progress=False)
    return comparable(xr.open_zarr(path))
