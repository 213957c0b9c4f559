"""Issue-14 guarantees: stale writers are fenced, records are verified against the chunks they
vouch for, incomplete cubes read as missing (and say so), damaged stores and non-Dask servers are
one-line errors, and resources are bounded before anything large is built."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import engine
from engine.interfaces.cli import main
from engine.sweep.integrity import IncompleteCubeWarning, StaleWriter, new_token
from engine.sweep.outputs import write_block
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.state import state_dir
from engine.sweep.store import run_sweep
from tests.conftest import free_port
from tests.sweep_helpers import comparable, small, write_spec

MANY = small(chunks={"model": 1, "isl": 1, "concurrency": 2})


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    path = tmp_path_factory.mktemp("integrity") / "cube.zarr"
    run_sweep(make_plan(parse_spec(MANY)), path, progress=False)
    return path


def copy_store(source, target):
    import shutil

    shutil.copytree(source, target)
    shutil.copytree(state_dir(source), state_dir(target))
    return target


def test_a_block_write_from_a_superseded_run_writes_and_records_nothing(tmp_path, complete):
    path = copy_store(complete, tmp_path / "cube.zarr")
    plan = make_plan(parse_spec(MANY))
    state = state_dir(path)
    old = new_token(state)
    new_token(state)  # a later run started
    block = next(plan.blocks())
    record = state / "blocks" / "0.0.0.0.0.0"
    record.unlink()
    before = sorted((p, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file())
    with pytest.raises(StaleWriter):
        write_block(plan, block, str(path), plan.fingerprint, old)
    assert not record.exists()
    assert sorted((p, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize("damage", ["delete", "edit"])
def test_a_rerun_detects_deleted_or_edited_chunks_and_recomputes_them(tmp_path, complete, capsys, damage):
    path = copy_store(complete, tmp_path / "cube.zarr")
    spec_path = write_spec(tmp_path, MANY)
    chunk = path / "cost_per_mtok_usd" / "c" / "0" / "1" / "0" / "0" / "0" / "0"
    assert chunk.exists()
    if damage == "delete":
        chunk.unlink()
    else:  # a same-sized edit: a wrong number, not a corrupt file
        import zarr

        array = zarr.open_array(path / "cost_per_mtok_usd", mode="r+")
        array[0, 1, 0, 0, 0, 0] = 12345.0
    assert main(["run", str(spec_path), "--output", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 recorded blocks failed verification" in out and "1/" in out
    xr.testing.assert_identical(comparable(xr.open_zarr(path)), comparable(xr.open_zarr(complete)))


def test_records_of_runs_of_another_spec_are_not_trusted(tmp_path, complete, capsys):
    path = copy_store(complete, tmp_path / "cube.zarr")
    state = state_dir(path)
    record = state / "blocks" / "0.0.0.0.0.0"
    data = json.loads(record.read_text())
    data["token"] = "0123456789abcdef"  # written by a worker of some other run
    record.write_text(json.dumps(data))
    assert main(["run", str(write_spec(tmp_path, MANY)), "--output", str(path), "--no-progress"]) == 0
    assert "1 recorded blocks failed verification" in capsys.readouterr().out


def test_an_incomplete_cube_reads_missing_where_nothing_was_computed_and_warns(tmp_path, complete, capsys):
    path = copy_store(complete, tmp_path / "cube.zarr")
    import zarr

    group = zarr.open_group(path, mode="r+")
    group.attrs["complete"] = 0
    zarr.consolidate_metadata(path)
    (state_dir(path) / "blocks" / "0.0.0.0.0.0").unlink()  # this block's chunks are not vouched for
    with pytest.warns(IncompleteCubeWarning, match="incomplete"):
        ds = engine.open_cube(path)
    full = xr.open_zarr(complete)
    units = ds["units_needed"].isel(model=0, isl=0, concurrency=slice(0, 2)).values
    assert np.isnan(units).all()  # an int count not computed: missing, not 0
    assert np.isnan(ds["replica_fits"].isel(model=0, isl=0, concurrency=0).values.astype(float)).all()
    np.testing.assert_array_equal(ds["units_needed"].isel(model=1).values, full["units_needed"].isel(model=1).values)
    assert main(["slice", str(path), "--var", "units_needed", "--sel", "model=gpt-oss-120b", "--sel", "isl=16000",
                 "--sel", "concurrency=1", "--sel", "weight_bits=4", "--sel", "kv_bits=8", "--sel", "hardware=wse3"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "nan" in captured.out.lower()
    assert captured.err.startswith("tokensweep: warning: cube") and captured.err.count("\n") == 1


def test_unwritten_counts_read_minus_one_in_plain_zarr(tmp_path, complete):
    import zarr

    assert zarr.open_array(complete / "units_needed").metadata.fill_value == -1


def test_damaged_metadata_and_run_records_are_one_line_errors(tmp_path, complete, capsys):
    path = copy_store(complete, tmp_path / "cube.zarr")
    spec_path = write_spec(tmp_path, MANY)
    record = state_dir(path) / "spec.json"
    record.write_text(record.read_text()[:40])
    assert main(["run", str(spec_path), "--output", str(path), "--no-progress"]) == 2
    assert "run record" in capsys.readouterr().err
    metadata = path / "zarr.json"
    metadata.write_text(metadata.read_text()[:100])
    for argv in (["show", str(path)], ["slice", str(path), "--var", "units_needed"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is damaged" in err and err.count("\n") == 1
    assert main(["run", str(spec_path), "--output", str(path), "--no-progress", "--overwrite"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", ["silent", "garbage"])
def test_a_server_that_is_not_a_dask_scheduler_is_refused_within_the_timeout(tmp_path, capsys, behaviour):
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", free_port()))
    server.listen(8)
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if behaviour == "garbage":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" * 4)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    code = main(["run", str(write_spec(tmp_path, small())), "--output", str(tmp_path / "x.zarr"), "--no-progress",
                 "--scheduler", address])  # fmt: skip
    elapsed = time.monotonic() - started
    server.close()
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler" in err and err.count("\n") == 1, err
    assert elapsed < 30
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.slow
def test_killing_the_parent_of_a_processes_run_stops_its_workers(tmp_path):
    """A processes run killed mid-way leaves no worker writing: an overwrite with another spec
    then gives exactly that spec's cube."""
    slow = small(chunks={"model": 1, "isl": 1, "concurrency": 1})
    spec_path = write_spec(tmp_path, slow, "first.yaml")
    output = tmp_path / "cube.zarr"
    cmd = [sys.executable, "-m", "engine", "run", str(spec_path), "--output", str(output), "--no-progress",
           "--scheduler", "processes", "--workers", "2"]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    folder = state_dir(output) / "blocks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (folder.exists() and len(os.listdir(folder)) >= 3):
        time.sleep(0.02)
    workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    os.kill(process.pid, signal.SIGKILL)  # the parent only: its workers are orphaned
    process.wait()
    time.sleep(1.0)
    alive = [
        w for w in workers if os.path.exists(f"/proc/{w}") and "zombie" not in Path(f"/proc/{w}/status").read_text()
    ]
    assert alive == [], "worker processes outlived their parent"
    changed = write_spec(tmp_path, small(hardware=["wse3", "b200"], chunks=slow["chunks"]), "changed.yaml")
    assert main(["run", str(changed), "--output", str(output), "--no-progress", "--overwrite"]) == 0
    time.sleep(1.0)
    fresh = tmp_path / "fresh.zarr"
    assert main(["run", str(changed), "--output", str(fresh), "--no-progress"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xr.testing.assert_identical(comparable(engine.open_cube(output)), comparable(engine.open_cube(fresh)))


def test_a_spec_output_through_a_symlink_out_of_the_working_directory_is_refused(tmp_path, monkeypatch, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "link").symlink_to(outside)
    monkeypatch.chdir(work)
    spec = write_spec(work, small(output="link/cube.zarr"))
    assert main(["run", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "outside the working directory" in err and err.count("\n") == 1
    assert list(outside.iterdir()) == []


def test_overwrite_never_deletes_a_cube_nested_inside_the_store(tmp_path, complete, capsys):
    path = copy_store(complete, tmp_path / "cube.zarr")
    inner = copy_store(complete, path / "inner.zarr")
    assert main(["run", str(write_spec(tmp_path, small())), "--output", str(path), "--no-progress", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds inner.zarr" in err and err.count("\n") == 1
    assert (inner / "zarr.json").exists() and (path / "units_needed" / "zarr.json").exists()
