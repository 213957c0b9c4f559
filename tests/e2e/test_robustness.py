"""Crashes cost nothing: SIGKILL at random moments, a worker lost, a full disk, two writers.
And no silent NaN or inf for any valid input."""

from __future__ import annotations

import errno
import json
import math
import random
import signal
import threading
import time

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.axes import AXES
from engine.interfaces.cli import main
from engine.model.assumptions import Assumptions
from engine.model.core import evaluate_arrays
from engine.model.variables import TOKEN_TYPES, VARIABLES
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.state import state_dir
from engine.sweep.store import run_sweep
from tests import strategies as s
from tests.sweep_helpers import MANY_BLOCKS, comparable, kill_after, small, write_spec
from tests.sweep_helpers import run_cli as _run_cli


# ------------------------------------------------------------------ numerical safety
@settings(max_examples=200)
@given(data=st.data())
def test_no_silent_nan_or_inf_for_valid_inputs(catalog, data):
    """Every float is finite exactly where a replica serves the point, NaN exactly where the
    flags (within_context, replica_fits) say none does; never an unflagged inf or NaN."""
    models = data.draw(s.axis(s.models(), max_size=2))
    units = data.draw(s.axis(s.hardware(catalog), max_size=2))
    isl = data.draw(s.axis(s.contexts))
    osl = [max(1.0, v / 50) for v in isl]
    workload = catalog.workload(data.draw(st.sampled_from(sorted(catalog.workloads))))
    assumptions = Assumptions(
        parallelism=data.draw(st.sampled_from(AXES["parallelism"].choices)),
        replica_units=data.draw(st.sampled_from([0, 0, 1, 2, 8, 64])),
        context_limit=data.draw(st.sampled_from(AXES["context_limit"].choices)),
    )
    arrays = evaluate_arrays(
        models, units, isl, osl, data.draw(s.axis(s.concurrencies)), data.draw(s.axis(s.weight_bits)),
        data.draw(s.axis(s.kv_bits)), workload, assumptions,
    )  # fmt: skip
    inside = arrays["within_context"] | (assumptions.context_limit == "none")
    served = arrays["replica_fits"]
    assert not (served & ~inside[:, :, None, None, None, None]).any()
    for var in VARIABLES:
        values = arrays[var.name]
        if values.dtype.kind != "f":
            continue
        if "hardware" in var.dims:
            mask = served[..., None] if var.name == "cost_per_mtok_by_type_usd" else served
        elif var.name == "weight_bytes":
            mask = np.ones(values.shape, bool)
        else:
            mask = inside.reshape(inside.shape + (1,) * (values.ndim - 2))
        mask = np.broadcast_to(mask, values.shape)
        if var.name == "cost_per_mtok_by_type_usd":
            absent = np.array([kind != "output" and getattr(workload, kind) == 0 for kind in TOKEN_TYPES])
            mask = mask & ~absent
        assert np.isfinite(values[mask]).all(), var.name
        assert np.isnan(values[~mask]).all(), var.name


def test_tiny_models_and_huge_contexts_stay_finite(catalog, agentic):
    from engine.model.synthetic import synthetic_model

    tiny = synthetic_model(catalog.model("llama-3.1-8b"), 1e6)
    arrays = evaluate_arrays(
        [tiny],
        list(catalog.hardware.values()),
        [1.0, 1e8],
        [1.0, 1e6],
        [1, 1e7],
        [1, 32],
        [1, 32],
        agentic,
        Assumptions(context_limit="none", parallelism="dp-ep"),  # KV split by requests: always a replica
    )
    for name, values in arrays.items():
        assert np.isfinite(values.astype(float)).all(), name


def test_a_replica_beyond_every_domain_is_masked_not_nan(catalog, agentic):
    """fits_domain is the documented mask; costs stay defined (scale-out bandwidth applies)."""
    what_if = Assumptions(context_limit="none", parallelism="dp-ep")
    arrays = evaluate_arrays(
        [catalog.model("kimi-k2")],
        [catalog.get_hardware("h100-sxm")],
        [1e6],
        [1e3],
        [256],
        [16],
        [16],
        agentic,
        what_if,
    )
    assert arrays["units_needed"].item() > 8
    assert not arrays["fits_domain"].item()
    assert math.isfinite(arrays["cost_per_mtok_usd"].item())


# ------------------------------------------------------------------ fault injection
KILLS = [pytest.param("mid-run", id="after-10pct-of-blocks")] + [
    pytest.param(seed, id=f"random-moment-{seed}", marks=pytest.mark.slow) for seed in range(5)
]


@pytest.mark.parametrize("when", KILLS)
def test_sigkill_then_resume_gives_an_identical_cube(tmp_path, reference_cube, when):
    """SIGKILL mid-run (after a tenth of the blocks: exactly the rest is computed on resume) or at
    a seeded random moment (start-up, template, blocks or finalise, as the seed falls)."""
    spec_path = write_spec(tmp_path, MANY_BLOCKS)
    output = tmp_path / "cube.zarr"
    total = make_plan(parse_spec(MANY_BLOCKS)).n_blocks
    process = _run_cli(spec_path, output, "--workers", "1")
    if when == "mid-run":  # early: with the write pipeline the last blocks land fast, and a late kill could miss
        recorded = kill_after(process, output, blocks=total // 10)
        assert 0 < recorded < total, "the run was not killed mid-way"
        assert int(xr.open_zarr(output, consolidated=False).attrs["complete"]) == 0
    else:
        time.sleep(random.Random(when).uniform(0.5, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = _run_cli(spec_path, output)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    if when == "mid-run":
        assert f"{total - recorded}/{total} blocks computed" in out
    xr.testing.assert_identical(comparable(xr.open_zarr(output)), reference_cube)


def _fill_disk_after(monkeypatch, budget: int) -> None:
    """Chunk writes (the engine's direct writer) start failing with ENOSPC after ``budget`` files."""
    from engine.sweep import chunks

    real = chunks.ChunkLayout.write
    count = {"writes": 0}

    def write(self, index, payload):
        count["writes"] += 1
        if count["writes"] > budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, index, payload)

    monkeypatch.setattr(chunks.ChunkLayout, "write", write)


def test_disk_full_is_one_clear_line_and_the_store_resumes(tmp_path, monkeypatch, capsys, reference_cube):
    spec_path = write_spec(tmp_path, MANY_BLOCKS)
    output = tmp_path / "cube.zarr"
    with monkeypatch.context() as patch:
        _fill_disk_after(patch, budget=200)
        code = main(["run", str(spec_path), "--output", str(output), "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("tokensweep: error: No space left on device") and err.count("\n") == 1
    assert "run again to resume" in err
    recorded = len(list((state_dir(output) / "blocks").iterdir()))
    assert 0 < recorded < make_plan(parse_spec(MANY_BLOCKS)).n_blocks
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    xr.testing.assert_identical(comparable(xr.open_zarr(output)), reference_cube)


@pytest.mark.parametrize("holder", ["lock", pytest.param("running", marks=pytest.mark.slow)])
def test_a_second_concurrent_writer_is_refused(tmp_path, capsys, holder):
    """Refused in one line and nothing written: against a held lock (in process) or a real run."""
    from engine.sweep.state import writer_lock

    if holder == "lock":
        spec_path, output = write_spec(tmp_path, small()), tmp_path / "busy.zarr"
        with writer_lock(state_dir(output)):
            assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 2
        assert "is being written by pid" in capsys.readouterr().err
        assert not (output / "zarr.json").exists()
        return
    spec_path = write_spec(tmp_path, MANY_BLOCKS)
    output = tmp_path / "cube.zarr"
    first = _run_cli(spec_path, output, "--workers", "1")
    try:
        lock = state_dir(output) / "lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().startswith("pid")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 2
        assert f"is being written by pid {first.pid}" in capsys.readouterr().err
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_a_worker_killed_mid_run_still_gives_an_identical_cube(tmp_path, reference_cube, cluster):
    from engine.sweep.cluster import resolve

    address, _client, procs = cluster
    output = tmp_path / "cube.zarr"
    plan = make_plan(parse_spec(MANY_BLOCKS))
    errors = []
    runner = threading.Thread(
        target=lambda: _capture(errors, run_sweep, plan, output, resolve(address), progress=False), daemon=True
    )
    runner.start()
    blocks = state_dir(output) / "blocks"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (blocks.exists() and len(list(blocks.iterdir())) >= 10):
        time.sleep(0.01)
    victim = procs[1]  # the first worker
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    runner.join(timeout=300)
    assert not runner.is_alive()
    assert errors == []
    assert len(list(blocks.iterdir())) == plan.n_blocks
    xr.testing.assert_identical(comparable(xr.open_zarr(output)), reference_cube)


def _capture(errors, func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except BaseException as exc:
        errors.append(exc)


def test_unsafe_yaml_is_never_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        f"name: evil\nhardware: [wse3]\nmodels: !!python/object/apply:os.system ['touch {marker}']\naxes: {{isl: [1k]}}\n"
    )
    assert main(["plan", str(spec)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not marker.exists()


def test_spec_output_is_confined_but_the_flag_is_not(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, small(output="cubes/mine.zarr"))
    assert main(["run", str(spec), "--no-progress"]) == 0
    assert (tmp_path / "cubes" / "mine.zarr" / "zarr.json").exists()
    elsewhere = tmp_path / "elsewhere" / "flag.zarr"
    assert main(["run", str(spec), "--no-progress", "--output", str(elsewhere)]) == 0
    assert (elsewhere / "zarr.json").exists()


# ------------------------------------------------------------------ output hygiene
def test_json_is_always_strict_json(capsys):
    """Non-finite numbers print as null, never as the NaN/Infinity tokens JSON does not have."""
    from engine.interfaces.jsonout import dumps

    assert (
        dumps({"a": float("inf"), "b": [float("nan"), 1.0], "c": np.float64("-inf")})
        == '{"a": null, "b": [null, 1.0], "c": null}'
    )
    argv = ["point", "--model", "gpt-oss-120b", "--hardware", "wse3", "--workload", "long-document-batch", "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


def test_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    spec = write_spec(tmp_path, small())
    cube = tmp_path / "c.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    shell = f"{sys.executable} -m engine show {cube} | head -1"
    out = subprocess.run(["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.startswith("cube ")


def test_max_points_accepts_human_units(tmp_path, capsys):
    spec = write_spec(tmp_path, small(max_points="5M"))
    assert main(["plan", str(spec), "--output", str(tmp_path / "p.zarr")]) == 0
    too_small = write_spec(tmp_path, small(max_points="1k"), "small.yaml")
    assert main(["plan", str(too_small)]) == 2
    assert "above the budget of 1,000" in capsys.readouterr().err


def test_a_failing_figure_write_leaves_the_previous_figure(tmp_path, monkeypatch):
    """Figures are written to a temporary file and renamed: a crash mid-write keeps the old one."""
    import matplotlib.figure

    from engine.interfaces import figures

    spec = write_spec(tmp_path, small())
    cube = tmp_path / "c.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    out = tmp_path / "phase.png"
    assert main(["plot", "phase", str(cube), "-o", str(out)]) == 0
    before = out.read_bytes()

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    assert main(["plot", "phase", str(cube), "-o", str(out)]) == 1
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".phase-")]
    assert figures.check_figure_path(tmp_path / "x.pdf").suffix == ".pdf"


def test_scheduler_addresses_are_normalised():
    from engine.sweep.cluster import resolve

    assert resolve("10.0.0.5:8786").scheduler == "tcp://10.0.0.5:8786"
    assert resolve("tls://scheduler.lab:8786").scheduler == "tls://scheduler.lab:8786"
    assert resolve("tcp://[::1]:8786").scheduler == "tcp://[::1]:8786"


def test_slice_of_one_point_as_csv_and_json(tmp_path, capsys):
    spec = write_spec(tmp_path, small())
    cube = tmp_path / "c.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    capsys.readouterr()
    sel = ["--sel", "model=gpt-oss-120b", "--sel", "isl=16k", "--sel", "concurrency=16", "--sel", "weight_bits=4",
           "--sel", "kv_bits=16", "--sel", "hardware=wse3"]  # fmt: skip
    assert main(["slice", str(cube), "--var", "units_needed", *sel, "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["model"] == "gpt-oss-120b" and record["units_needed"] >= 1
    assert main(["slice", str(cube), "--var", "units_needed", *sel, "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.endswith(",units_needed") and row.startswith("gpt-oss-120b,")


def test_a_figure_that_cannot_be_drawn_after_a_run_is_exit_1_not_2(tmp_path, capsys):
    """Exit 2 promises nothing was written; here the cube was, so the run says so and exits 1."""
    spec = write_spec(tmp_path, small(synthetic=None, figures=["phase"]))  # no model-size axis: no phase diagram
    cube = tmp_path / "c.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "figure phase not drawn" in err and "the cube is complete" in err and err.count("\n") == 1
    assert (cube / "zarr.json").exists()


def test_unsorted_contour_levels_are_sorted(tmp_path):
    spec = write_spec(tmp_path, small())
    cube = tmp_path / "c.zarr"
    assert main(["run", str(spec), "--output", str(cube), "--no-progress"]) == 0
    assert main(["plot", "phase", str(cube), "--levels", "128,32,64,32", "-o", str(tmp_path / "p.png")]) == 0
