"""A real Dask cluster on 127.0.0.1: one scheduler and two worker processes."""

from __future__ import annotations

import time

import pytest
import xarray as xr

from engine.interfaces.cli import main
from engine.sweep.cluster import resolve
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from tests.conftest import free_port
from tests.sweep_helpers import comparable, small, write_spec

SPEC = small(chunks={"model": 2, "isl": 3})


def test_distributed_run_gives_the_same_cube_as_threads(tmp_path, cluster):
    address, client, _ = cluster
    plan = make_plan(parse_spec(SPEC))
    threaded = tmp_path / "threads.zarr"
    remote = tmp_path / "cluster.zarr"
    run_sweep(plan, threaded, resolve("threads"), progress=False)
    result = run_sweep(plan, remote, resolve(address), progress=False)
    assert result.blocks_computed == plan.n_blocks
    workers_used = client.run(lambda: __import__("engine").__name__)
    assert len(workers_used) == 2
    xr.testing.assert_identical(comparable(xr.open_zarr(remote)), comparable(xr.open_zarr(threaded)))


def test_distributed_reduction_gives_the_same_cube_as_in_process(tmp_path, cluster):
    from engine.sweep.reduce import reduce_eager
    from tests.sweep_helpers import BASE, same_cube

    address, _, _ = cluster
    plan = make_plan(parse_spec({**BASE, "chunks": {"model": 1, "isl": 2, "concurrency": 2}}))
    output = tmp_path / "reduced.zarr"
    result = run_sweep(plan, output, resolve(address), progress=False)
    assert result.blocks_computed == result.blocks_total == 4
    same_cube(xr.open_zarr(output), reduce_eager(plan))


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys):
    from engine.interfaces.cli import main
    from tests.sweep_helpers import write_spec

    spec_path = write_spec(tmp_path, SPEC)
    started = time.monotonic()
    code = main(
        [
            "run",
            str(spec_path),
            "--output",
            str(tmp_path / "x.zarr"),
            "--scheduler",
            f"tcp://127.0.0.1:{free_port()}",
            "--no-progress",
        ]
    )
    assert code == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [spec_path]  # nothing written
    assert time.monotonic() - started < 60


def test_dask_scheduler_address_is_honoured_and_said(tmp_path, cluster, monkeypatch, capsys):
    import dask

    from engine.interfaces.cli import main
    from tests.sweep_helpers import write_spec

    address, _, _ = cluster
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    dask.config.refresh()
    try:
        output = tmp_path / "env.zarr"
        assert main(["run", str(write_spec(tmp_path, SPEC)), "--output", str(output), "--no-progress"]) == 0
    finally:
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
        dask.config.refresh()
    err = capsys.readouterr().err
    assert f"using the Dask scheduler at {address} (from Dask's configuration)" in err
    assert xr.open_zarr(output).attrs["complete"] == 1


def test_a_scheduler_file_connects_like_an_address(tmp_path, cluster, capsys):
    import json

    from engine.interfaces.cli import main
    from tests.sweep_helpers import write_spec

    address, _, _ = cluster
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text(json.dumps({"address": address, "type": "Scheduler"}))
    output = tmp_path / "file.zarr"
    argv = ["run", str(write_spec(tmp_path, SPEC)), "--output", str(output), "--no-progress"]
    assert main([*argv, "--scheduler-file", str(scheduler_file)]) == 0
    assert xr.open_zarr(output).attrs["complete"] == 1
    assert main([*argv, "--scheduler-file", str(tmp_path / "missing.json")]) == 2
    assert "missing.json does not exist" in capsys.readouterr().err


def test_plan_estimates_for_the_clusters_threads(tmp_path, cluster, capsys):
    from engine.interfaces.cli import main
    from tests.sweep_helpers import write_spec

    address, _, _ = cluster
    assert main(["plan", str(write_spec(tmp_path, SPEC)), "--scheduler", address]) == 0
    assert "(2 worker threads)" in capsys.readouterr().out


def test_a_batch_system_profile_is_configured_the_dask_jobqueue_way(tmp_path, capsys):
    pytest.importorskip("dask_jobqueue")
    import dask

    from engine.sweep import cluster

    site = {"jobqueue.slurm.cores": 4, "jobqueue.slurm.memory": "8GB", "jobqueue.slurm.queue": "gpu"}
    with dask.config.set(site):
        bare = cluster.ClusterProfile("slurm", None, (("jobs", 2),))
        with cluster.jobqueue_cluster(bare) as (batch, jobs):
            script = batch.job_script()
        assert jobs == 2 and "#SBATCH -p gpu" in script and "--cpus-per-task=4" in script
        with cluster.jobqueue_cluster(cluster.ClusterProfile("slurm", None, (("queue", "cpu"),))) as (batch, jobs):
            assert "#SBATCH -p cpu" in batch.job_script() and jobs == 1  # the profile wins where it speaks
        assert cluster.jobqueue_threads(bare) == 8
        clusters = tmp_path / "clusters.yaml"
        clusters.write_text("clusters:\n  hpc: {scheduler: slurm, jobs: 3}\n")
        spec = write_spec(tmp_path, small())
        code = main(["plan", str(spec), "--cluster", "hpc", "--clusters", str(clusters)])
    assert code == 0
    assert "(12 worker threads)" in capsys.readouterr().out


def test_the_command_line_runs_on_a_cluster_it_is_not_the_default_client_of(tmp_path, cluster):
    import subprocess
    import sys

    address, _client, _ = cluster
    spec = write_spec(tmp_path, small())
    out = tmp_path / "cluster.zarr"
    command = [sys.executable, "-m", "engine", "run", str(spec), "--output", str(out), "--no-progress"]
    done = subprocess.run([*command, "--scheduler", address], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "blocks computed" in done.stdout and "Dask dashboard" not in done.stdout
    local = tmp_path / "threads.zarr"
    run_sweep(make_plan(parse_spec(small())), local, progress=False)
    xr.testing.assert_identical(comparable(xr.open_zarr(out)), comparable(xr.open_zarr(local)))
