"""Cubes in object stores through fsspec: memory:// in-process, S3 against a local moto server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import xarray as xr

from engine.errors import UserError
from engine.interfaces.cli import main
from engine.sweep import location as loc
from engine.sweep.cube import open_cube
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from tests.sweep_helpers import MANY_BLOCKS, comparable, small, write_spec


def memory_url(name: str = "cube") -> str:
    return f"memory://tokensweep-tests/{uuid.uuid4().hex}/{name}.zarr"


def test_a_memory_store_runs_resumes_and_reads_like_a_local_one(tmp_path, capsys, reference_cube):
    spec = write_spec(tmp_path, MANY_BLOCKS)
    url = memory_url()
    assert main(["run", str(spec), "--output", url, "--no-progress"]) == 0
    assert f"wrote {url}" in capsys.readouterr().out
    xr.testing.assert_identical(comparable(open_cube(url)), reference_cube)
    # Lose some records (as a killed run would): the rerun computes exactly those blocks again.
    blocks = loc.location(url).with_name(loc.location(url).name + ".tokensweep") / "blocks"
    records = sorted(blocks.iterdir(), key=lambda p: p.name)
    for record in records[:5]:
        record.unlink()
    assert main(["run", str(spec), "--output", url, "--no-progress"]) == 0
    assert f"5/{len(records)} blocks computed" in capsys.readouterr().out
    xr.testing.assert_identical(comparable(open_cube(url)), reference_cube)
    assert main(["show", url]) == 0
    assert "complete" in capsys.readouterr().out
    sel = ["--sel", "model=gpt-oss-120b", "--sel", "concurrency=16", "--sel", "weight_bits=4", "--sel", "kv_bits=8"]
    assert main(["slice", url, "--var", "units_needed", *sel, "--sel", "hardware=wse3", "--csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 1 + 9 and rows[0].endswith(",hardware,isl,units_needed")
    figure = tmp_path / "phase.png"
    assert main(["plot", "phase", url, "-o", str(figure), "--sel", "hardware=wse3"]) == 0
    assert figure.stat().st_size > 10_000


def test_a_remote_cube_names_its_figures_under_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert loc.beside(memory_url("sweep"), "_phase.png") == loc.Path("outputs") / "sweep_phase.png"
    assert (tmp_path / "outputs").is_dir()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("foo://bucket/x.zarr", "--output: foo:// is not a storage scheme fsspec knows"),
        ("gs://bucket/x.zarr", "--output: gs:// needs a package that is not installed"),
        ("memory://bucket/x.nc", "must end in .zarr"),
    ],
)
def test_an_unusable_url_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, output, message):
    pytest.importorskip("s3fs")
    if output.startswith("gs://"):
        try:
            import gcsfs  # noqa: F401

            pytest.skip("gcsfs is installed here")
        except ImportError:
            pass
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, small())
    assert main(["run", str(spec), "--output", output, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no ./foo:/bucket folder


def test_a_memory_store_is_refused_for_workers_in_other_processes(tmp_path, capsys):
    spec = write_spec(tmp_path, small())
    url = memory_url()
    assert main(["run", str(spec), "--output", url, "--scheduler", "processes", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lives in this process's memory" in err and err.count("\n") == 1
    assert not loc.location(url).exists()


def test_a_spec_may_not_name_a_url_as_its_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, small(output="s3://someone-elses-bucket/x.zarr"))
    assert main(["run", str(spec), "--no-progress"]) == 2
    assert "output: s3://someone-elses-bucket/x.zarr is a URL" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_the_lease_refuses_a_second_writer_and_takes_over_from_a_dead_one(monkeypatch):
    monkeypatch.setattr(loc, "LEASE_SETTLE_S", 0.01)
    state = loc.location(memory_url()).with_name("held.zarr.tokensweep")
    with loc.lease(state):
        holder = json.loads((state / "lock").read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(UserError, match=rf"being written by pid {os.getpid()}"), loc.lease(state):
            pass
    assert not (state / "lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (state / "lock").write_text(
        json.dumps({"owner": "x", "host": loc.socket.gethostname(), "pid": int(dead.stdout), "renewed": time.time()})
    )
    with loc.lease(state):  # its holder's process is gone: taken over at once
        assert json.loads((state / "lock").read_text())["pid"] == os.getpid()
    (state / "lock").write_text(json.dumps({"owner": "y", "host": "elsewhere", "pid": 1, "renewed": time.time() - 61}))
    with loc.lease(state):  # nobody renewed it for longer than the lease
        pass


# ---------------------------------------------------------------------- S3 (moto server on 127.0.0.1)
@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A real S3 API on 127.0.0.1 (moto in server mode), with a bucket; the environment points at it."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("cubes")
    yield fs
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


def _recorded(fs, url: str) -> int:
    fs.invalidate_cache()
    prefix = url.removeprefix("s3://") + ".tokensweep/blocks"
    return len(fs.ls(prefix)) if fs.exists(prefix) else 0


@pytest.mark.slow
def test_s3_sigkill_mid_run_then_resume_gives_an_identical_cube(tmp_path, s3, reference_cube):
    spec = write_spec(tmp_path, MANY_BLOCKS)
    url = "s3://cubes/killed.zarr"
    total = make_plan(parse_spec(MANY_BLOCKS)).n_blocks
    command = [sys.executable, "-m", "engine", "run", str(spec), "--output", url, "--no-progress"]
    process = subprocess.Popen([*command, "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _recorded(s3, url) < total // 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    recorded = _recorded(s3, url)
    assert 0 < recorded < total, "the run was not killed mid-way"
    # Reading the incomplete cube shows what was not computed as missing.
    with pytest.warns(UserWarning, match="incomplete"):
        partial = open_cube(url)
    assert 0 < int(partial["cost_per_mtok_usd"].isnull().sum()) < partial["cost_per_mtok_usd"].size
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - recorded}/{total} blocks computed" in resumed.stdout
    xr.testing.assert_identical(comparable(open_cube(url)), reference_cube)
    # A second writer while one holds the lease is refused in one line.
    state = loc.location(url).with_name("killed.zarr.tokensweep")
    with loc.lease(state):
        second = subprocess.run([*command, "--overwrite"], capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "is being written by" in second.stderr and second.stderr.count("\n") == 1


def test_a_missing_bucket_or_missing_credentials_is_one_line_before_anything_runs(tmp_path, s3):
    spec = write_spec(tmp_path, small())
    command = [sys.executable, "-m", "engine", "run", str(spec), "--no-progress", "--output"]
    missing = subprocess.run([*command, "s3://no-such-bucket/x.zarr"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "--output: cannot write to s3://no-such-bucket/x.zarr (FileNotFoundError" in missing.stderr
    anonymous = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    anonymous |= {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                  "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    denied = subprocess.run(
        [*command, "s3://cubes/denied.zarr"], capture_output=True, text=True, timeout=120, env=anonymous
    )
    assert denied.returncode == 2 and "NoCredentialsError" in denied.stderr and denied.stderr.count("\n") == 1
    assert not s3.exists("cubes/denied.zarr") and not s3.exists("cubes/denied.zarr.tokensweep")
