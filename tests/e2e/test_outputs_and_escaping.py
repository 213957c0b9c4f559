"""Reliability, round three: one safe-output routine for every writer, text escaped for where
it lands, a cube's identity that covers the engine, and completeness said in every output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from engine.escape import csv_cell, redact, script_json, terminal
from engine.interfaces.cli import main
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from tests.sweep_helpers import small

MEASURED = Path(__file__).parents[2] / "engine" / "data" / "calibration" / "measured-max-throughput.csv"


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("cube") / "c.zarr"
    run_sweep(make_plan(parse_spec(small())), path, progress=False)
    return path


def one_line_error(capsys, argv, *words) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    return err


def test_every_file_writer_refuses_stdout_links_special_files_inputs_and_stores(cube, tmp_path, capsys):
    one_line_error(capsys, ["plot", "memory", str(cube), "-o", "-"], "'-' (stdout) is not a file")
    one_line_error(
        capsys, ["export", str(cube), "-o", str(cube / "zarr.json"), "--format", "csv"], "inside the Zarr store"
    )
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line_error(capsys, ["export", str(cube), "-o", str(fifo), "--format", "csv"], "special file")
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    one_line_error(capsys, ["plot", "memory", str(cube), "-o", str(link)], "is a symlink")
    assert target.read_text() == "keep me" and fifo.exists()
    data = tmp_path / "rows.csv"
    data.write_bytes(MEASURED.read_bytes())
    one_line_error(capsys, ["calibrate", str(data), "--fit", "mfu_decode", "-o", str(data)], "is this command's input")
    assert data.read_bytes() == MEASURED.read_bytes()


def test_diff_output_never_replaces_an_input_or_a_foreign_folder_and_lands_whole(cube, tmp_path, capsys, monkeypatch):
    one_line_error(capsys, ["diff", str(cube), str(cube), "--output", str(cube)], "input cube")
    foreign = tmp_path / "mine.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    one_line_error(capsys, ["diff", str(cube), str(cube), "--output", str(foreign)], "not written by this command")
    assert (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "ratio.zarr"
    assert main(["diff", str(cube), str(cube), "--output", str(out)]) == 0
    assert main(["diff", str(cube), str(cube), "--output", str(out)]) == 0  # its own store: replaced
    import xarray as xr

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_zarr", interrupted)
    assert main(["diff", str(cube), str(cube), "--output", str(tmp_path / "half.zarr")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir() if "half" in p.name) == []  # nothing half-written


def test_text_is_escaped_for_terminal_spreadsheet_page_and_log():
    assert terminal("name\x1b]0;owned\x07") == "name\\x1b]0;owned\\x07"
    assert [csv_cell(v) for v in ("=1+1", "@SUM(A1)|cmd", "+x", "\tx", "ok", 3.0)] == [
        "'=1+1", "'@SUM(A1)|cmd", "'+x", "'\tx", "ok", 3.0,
    ]  # fmt: skip
    embedded = script_json({"description": "<!--<script>\u2028</script>&"})
    assert "<" not in embedded and "&" not in embedded and "\u2028" not in embedded
    assert json.loads(embedded) == {"description": "<!--<script>\u2028</script>&"}
    assert redact("see https://user:pw@host/x.zarr and s3://K:S@b/c") == "see https://***@host/x.zarr and s3://***@b/c"
    presigned = "https://b.s3.amazonaws.com/c.zarr?X-Amz-Credential=AKIA%2F1&X-Amz-Date=2026&X-Amz-Signature=f00d"
    assert (
        redact(presigned)
        == "https://b.s3.amazonaws.com/c.zarr?X-Amz-Credential=***&X-Amz-Date=2026&X-Amz-Signature=***"
    )
    assert redact("az://c/x.zarr?sv=2022&sp=r&sig=a%3D and gs://b/y?access_token=ya29.x") == (
        "az://c/x.zarr?sv=2022&sp=r&sig=*** and gs://b/y?access_token=***"
    )
    assert "f00d" not in script_json(json.loads(redact(json.dumps({"u": presigned}))))


def test_names_and_credentials_never_reach_the_terminal_raw(capsys):
    err = one_line_error(capsys, ["point", "--model", "evil\x1b[2Jname"], "unknown model")
    assert "\x1b" not in err and "\\x1b[2J" in err
    err = one_line_error(capsys, ["show", "s3://KEY:SECRET@bucket/cube.zarr"])
    assert "SECRET" not in err and "***@bucket" in err
    err = one_line_error(capsys, ["show", "memory://nowhere/c.zarr?token=SECRET"])
    assert "SECRET" not in err and "token=***" in err


def test_a_calibrate_description_with_a_newline_keeps_the_yaml_whole(tmp_path, capsys):
    out = tmp_path / "p.yaml"
    description = "line one\nline two: # not a comment"
    assert main(["calibrate", str(MEASURED), "--fit", "mfu_decode", "--description", description, "-o", str(out)]) == 0
    document = yaml.safe_load(out.read_text())
    assert document["profiles"]["calibrated"]["description"] == description
    assert out.read_text().splitlines()[0].startswith("# Written by: tokensweep calibrate")


def test_a_resume_under_another_engine_is_refused(tmp_path, monkeypatch, capsys):
    from engine.errors import UserError
    from engine.model import identity

    path = tmp_path / "c.zarr"
    run_sweep(make_plan(parse_spec(small())), path, progress=False)
    monkeypatch.setattr(identity, "engine_fingerprint", lambda: "another-engine00")
    with pytest.raises(UserError, match="different spec, catalog or engine"):
        run_sweep(make_plan(parse_spec(small())), path, progress=False)


def test_completeness_is_said_in_json_csv_and_bad_attributes_are_one_line(cube, tmp_path, capsys):
    assert main(["best", str(cube), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["complete"] is True
    assert main(["best", str(cube), "--csv"]) == 0
    assert "cube_complete" in capsys.readouterr().out.splitlines()[0]
    import shutil

    edited = tmp_path / "edited.zarr"
    shutil.copytree(cube, edited)
    meta = json.loads((edited / "zarr.json").read_text())
    meta["attributes"]["complete"] = "yes"
    meta.pop("consolidated_metadata", None)
    (edited / "zarr.json").write_text(json.dumps(meta))
    one_line_error(capsys, ["best", str(edited), "--json"], "attribute 'complete' is 'yes'")


def test_planted_symlinks_in_the_state_folder_lock_or_chunks_are_refused(tmp_path, monkeypatch, capsys):
    from engine.errors import UserError

    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "blocks").mkdir()
    (outside / "blocks" / "precious").write_text("keep")
    path = tmp_path / "c.zarr"
    state = tmp_path / "c.zarr.tokensweep"
    state.symlink_to(outside)
    with pytest.raises(UserError, match=r"state folder .* is a symlink"):
        run_sweep(make_plan(parse_spec(small())), path, progress=False)
    assert (outside / "blocks" / "precious").read_text() == "keep"
    state.unlink()
    state.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (state / "lock").symlink_to(victim)
    with pytest.raises(UserError, match="symlink"):
        run_sweep(make_plan(parse_spec(small())), path, progress=False)
    assert victim.read_text() == "keep"


def test_a_chunk_is_never_written_through_a_symlinked_folder(tmp_path):
    import numcodecs
    import numpy as np

    from engine.errors import UserError
    from engine.sweep.chunks import ChunkLayout

    array = tmp_path / "store.zarr" / "v"
    array.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (array / "c").symlink_to(elsewhere)
    layout = ChunkLayout(array, (4,), (4,), np.dtype("<f8"), np.nan, "/", numcodecs.Blosc())
    with pytest.raises(UserError, match="symlink inside the store"):
        layout.write((0,), layout.encode(np.zeros(4)))
    assert list(elsewhere.iterdir()) == []


def test_plan_and_run_say_when_the_cube_may_not_fit_the_disk(tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    from tests.sweep_helpers import write_spec

    spec = write_spec(tmp_path, small())
    out = tmp_path / "c.zarr"
    assert main(["plan", str(spec), "--output", str(out)]) == 0
    assert "free space" in capsys.readouterr().out
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(100, 99, 1))
    assert main(["plan", str(spec), "--output", str(out)]) == 0
    assert "may not fit" in capsys.readouterr().err
    assert main(["run", str(spec), "--output", str(out), "--no-progress"]) == 0
    assert "may not fit" in capsys.readouterr().err


def test_degenerate_but_valid_requests_are_answers_or_one_line(cube, tmp_path, capsys, monkeypatch):
    one_line_error(capsys, ["best", str(cube), "--sel", "concurrency=1", "--sel", "concurrency=4"], "selected twice")
    assert main(["best", str(cube), "--max-ttft", "1ns", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"] and not any(row["qualifies"] for row in doc["best"])  # 1 ns, not "1n": nothing qualifies
    monkeypatch.setenv("TOKENSWEEP_WRITE_THREADS", "many")
    from tests.sweep_helpers import write_spec

    spec = write_spec(tmp_path, small())
    one_line_error(capsys, ["run", str(spec), "--output", str(tmp_path / "w.zarr"), "--no-progress"],
                   "TOKENSWEEP_WRITE_THREADS")  # fmt: skip
    assert not (tmp_path / "w.zarr").exists()
    from engine.interfaces.panels import rate

    assert rate(1.7e-8) == "1.7e-08" and rate(0.0) == "0"


def test_catalog_names_follow_the_spec_name_rule(tmp_path, capsys):
    catalog = tmp_path / "mine.yaml"
    catalog.write_text('models:\n  "=HYPERLINK(\\"x\\")":\n    inherits: llama-3.1-8b\n')
    one_line_error(capsys, ["catalog", "--catalog", str(catalog)], "must be 1-100 letters, digits")


def incomplete_copy(cube, folder) -> Path:
    """The cube as an interrupted run leaves it: ``complete`` 0 (its points are all there here,
    which is what the flag, not the numbers, is tested on)."""
    import shutil

    copy = folder / "half.zarr"
    shutil.copytree(cube, copy)
    meta = json.loads((copy / "zarr.json").read_text())
    meta["attributes"]["complete"] = 0
    meta.pop("consolidated_metadata", None)
    (copy / "zarr.json").write_text(json.dumps(meta))
    return copy


def test_export_and_diff_carry_completeness_and_export_streams_to_stdout(cube, tmp_path, capsys):
    import pandas as pd
    import pyarrow.parquet as pq

    half = incomplete_copy(cube, tmp_path)
    assert main(["export", str(cube), "-o", "-", "--format", "csv", "--var", "cost_per_mtok_usd"]) == 0
    captured = capsys.readouterr()
    streamed = pd.read_csv(__import__("io").StringIO(captured.out))
    written = tmp_path / "t.csv"
    assert main(["export", str(cube), "-o", str(written), "--format", "csv", "--var", "cost_per_mtok_usd"]) == 0
    pd.testing.assert_frame_equal(streamed, pd.read_csv(written))  # the same table, file or stream
    assert "exported" in captured.err and streamed["cube_complete"].all() and len(streamed) > 1
    assert main(["export", str(half), "-o", str(tmp_path / "h.csv"), "--format", "csv"]) == 0
    assert "incomplete" in capsys.readouterr().err
    assert not pd.read_csv(tmp_path / "h.csv")["cube_complete"].any()
    assert main(["export", str(half), "-o", str(tmp_path / "h.parquet")]) == 0
    assert pq.read_schema(tmp_path / "h.parquet").metadata[b"cube_complete"] == b"false"
    assert main(["export", str(cube), "-o", str(tmp_path / "c.parquet")]) == 0
    assert pq.read_schema(tmp_path / "c.parquet").metadata[b"cube_complete"] == b"true"
    capsys.readouterr()

    assert main(["diff", str(cube), str(half), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["complete"], report["a_complete"], report["b_complete"]) == (False, True, False)
    assert "B is incomplete" in report["incomplete_note"]
    assert main(["diff", str(cube), str(cube), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] is True and report["incomplete_note"] == ""
    out = tmp_path / "ratio.zarr"
    assert main(["diff", str(half), str(cube), "--output", str(out)]) == 0
    assert "note: A is incomplete" in capsys.readouterr().out
    import xarray as xr

    assert int(xr.open_zarr(out).attrs["complete"]) == 0  # what reads the diff cube sees it too


def test_calibrate_reports_progress_while_it_fits(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOKENSWEEP_PROGRESS_INTERVAL", "0")  # a line at every evaluation
    assert main(["calibrate", str(MEASURED), "--fit", "mfu_decode"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fit: ")]
    assert err.startswith("fitting 1 assumptions to") and len(lines) >= 3, err
    assert "least squares" in lines[0] and "robust" in lines[-1]
    monkeypatch.setenv("TOKENSWEEP_PROGRESS_INTERVAL", "soon")
    one_line_error(capsys, ["calibrate", str(MEASURED), "--fit", "mfu_decode"], "TOKENSWEEP_PROGRESS_INTERVAL")


def test_redaction_keeps_json_whole_and_covers_fragments_and_odd_userinfo():
    text = json.dumps({"d": 'note ?token=abc"quoted" and more', "u": "a#access_token=SECRET"})
    assert json.loads(redact(text)) == {"d": 'note ?token=***"quoted" and more', "u": "a#access_token=***"}
    assert redact("https://u:pa@SECRET@h/x.zarr") == "https://***@h/x.zarr"


def test_urls_with_a_query_or_a_bad_authority_are_one_line(capsys):
    err = one_line_error(capsys, ["show", "http://127.0.0.1:1/c.zarr?sig=SECRET"], "query string", "presigned")
    assert "SECRET" not in err
    one_line_error(capsys, ["show", "http://[::1/c.zarr"], "is not a valid URL")


def test_comparisons_refuse_what_no_replica_serves_and_best_prices_only_costs(cube, capsys):
    one_line_error(capsys, ["point", "--model", "gpt-oss-120b", "--hardware", "h100-sxm", "--vs", "h100-sxm"],
                   "--vs: h100-sxm is the --hardware itself")  # fmt: skip
    one_line_error(capsys, ["point", "--model", "gpt-oss-120b", "--hardware", "wse3", "--vs", "h100-sxm",
                            "--vs-units", "1"], "--vs-units: 1 h100-sxm")  # fmt: skip
    assert main(["best", str(cube), "--cost", "ttft_s", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["best"]
    assert rows and not any(k in rows[0] for k in ("rival", "break_even_usd_per_hour", "win_probability"))


def test_export_takes_its_format_from_the_suffix(cube, tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["export", str(cube), "-o", str(out), "--var", "ttft_s"]) == 0
    assert out.read_text().startswith("model")
    one_line_error(capsys, ["export", str(cube), "-o", str(tmp_path / "t.parquet"), "--format", "csv"],
                   "ends in .parquet but --format is csv")  # fmt: skip


def test_an_incomplete_cube_is_said_once_per_command(cube, tmp_path, capsys):
    """explore opens the cube twice (checking the path, then reading it): one warning, not two;
    the next command says it again."""
    half = incomplete_copy(cube, tmp_path)
    assert main(["explore", str(half), "-o", str(tmp_path / "page.html")]) == 0
    assert capsys.readouterr().err.count("is incomplete") == 1
    assert main(["show", str(half)]) == 0
    assert capsys.readouterr().err.count("is incomplete") == 1
