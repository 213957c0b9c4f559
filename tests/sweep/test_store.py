"""Cubes on disk: three-phase writes, resume after SIGKILL, one writer, specs that differ."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import xarray as xr

from engine.interfaces.cli import main
from engine.sweep.blocks import evaluate_eager
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.state import state_dir
from engine.sweep.store import run_sweep
from tests.sweep_helpers import MANY_BLOCKS, comparable, small, write_spec


def test_run_writes_a_complete_cube_equal_to_the_eager_evaluation(tmp_path, reference_cube):
    plan = make_plan(parse_spec(MANY_BLOCKS))
    cube = reference_cube
    xr.testing.assert_equal(cube, evaluate_eager(plan))
    assert int(cube.attrs["complete"]) == 1
    for name in cube.variables:  # units, or CF flags (booleans), or a label coordinate
        attrs = cube[name].attrs
        assert "units" in attrs or "flag_values" in attrs or cube[name].dtype.kind in "OTU", name


def test_cube_opens_with_plain_xarray_and_no_project_code(tmp_path):
    path = tmp_path / "plain.zarr"
    run_sweep(make_plan(parse_spec(small())), path, progress=False)
    code = (
        "import sys; sys.modules['engine'] = None\n"  # any import of the project would fail
        "import xarray as xr\n"
        f"ds = xr.open_zarr({str(path)!r})\n"
        "assert ds['units_needed'].attrs['units'] == 'count'\n"
        "print(int(ds['units_needed'].sel(model='gpt-oss-120b', hardware='wse3').max()))\n"
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 1


def test_resume_with_a_changed_spec_is_refused_unless_overwrite(tmp_path, capsys):
    output = tmp_path / "cube.zarr"
    first = write_spec(tmp_path, small(), "first.yaml")
    assert main(["run", str(first), "--output", str(output), "--no-progress"]) == 0
    before = sorted(p.name for p in output.rglob("*"))
    changed = write_spec(tmp_path, small(hardware=["wse3"]), "changed.yaml")
    assert main(["run", str(changed), "--output", str(output), "--no-progress"]) == 2
    assert "written by a different spec" in capsys.readouterr().err
    assert sorted(p.name for p in output.rglob("*")) == before
    assert main(["run", str(changed), "--output", str(output), "--no-progress", "--overwrite"]) == 0
    assert list(xr.open_zarr(output).hardware.values) == ["wse3"]


def test_rerunning_a_complete_cube_computes_nothing(tmp_path, capsys):
    spec_path = write_spec(tmp_path, small())
    output = tmp_path / "cube.zarr"
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_processes_scheduler_gives_the_same_cube(tmp_path, reference_cube):
    output = tmp_path / "procs.zarr"
    from engine.sweep.cluster import resolve

    run_sweep(make_plan(parse_spec(MANY_BLOCKS)), output, resolve("processes", 2), progress=False)
    xr.testing.assert_identical(comparable(xr.open_zarr(output)), reference_cube)


def test_without_a_terminal_progress_is_periodic_lines(tmp_path):
    import os

    spec_path = write_spec(tmp_path, MANY_BLOCKS)
    env = {**os.environ, "TOKENSWEEP_PROGRESS_INTERVAL": "0"}
    cmd = [sys.executable, "-m", "engine", "run", str(spec_path), "--output", str(tmp_path / "log.zarr")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("sweep: ")]
    assert len(lines) == make_plan(parse_spec(MANY_BLOCKS)).n_blocks
    assert lines[-1].startswith("sweep: 100% (") and "points/s" in lines[-1]


def test_tasks_are_named_after_the_sweep_and_block(tmp_path):
    from dask.callbacks import Callback

    seen = []

    class Keys(Callback):
        def _pretask(self, key, dsk, state):
            seen.append(str(key))

    with Keys():
        run_sweep(make_plan(parse_spec(small())), tmp_path / "named.zarr", progress=False)
    blocks = [k for k in seen if k.startswith("tokensweep-small-block-")]
    assert len(blocks) == make_plan(parse_spec(small())).n_blocks


@pytest.mark.parametrize("threads", ["0", "2"])
def test_the_write_pipeline_on_or_off_gives_the_same_cube(tmp_path, monkeypatch, reference_cube, threads):
    from engine.sweep import cluster

    monkeypatch.setenv("TOKENSWEEP_WRITE_THREADS", threads)
    path = tmp_path / "cube.zarr"
    result = run_sweep(make_plan(parse_spec(MANY_BLOCKS)), path, cluster.resolve("threads", 1), progress=False)
    assert result.blocks_computed == result.blocks_total
    assert len(os.listdir(state_dir(path) / "blocks")) == result.blocks_total
    xr.testing.assert_identical(comparable(xr.open_zarr(path)), reference_cube)


def test_the_write_pipeline_double_buffers_and_raises_what_failed(monkeypatch):
    from engine.sweep import pipeline

    monkeypatch.delenv("TOKENSWEEP_WRITE_THREADS", raising=False)
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 4)
    assert [pipeline.write_threads(n) for n in (1, 3, 4, 8)] == [4, 4, 0, 0]
    with pipeline.WritePipeline("token-a", 1) as pipe:
        assert pipeline.active("token-a") is pipe and pipeline.active("token-b") is None
        first = pipe.slot()
        started = time.perf_counter()
        pipe.submit(first, time.sleep, 0.3)
        second = pipe.slot()
        assert second != first and time.perf_counter() - started < 0.2  # the other set is free
        pipe.submit(second, lambda: 1)
        assert pipe.slot() == first and time.perf_counter() - started >= 0.3  # waited for its block

        def fail():
            raise OSError(28, "No space left on device")

        pipe.submit(first, fail)
        with pytest.raises(OSError, match="No space left"):
            pipe.drain()
    assert pipeline.active("token-a") is None
