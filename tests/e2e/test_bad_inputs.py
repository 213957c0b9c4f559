"""The bad-input corpus (tests/data/bad): every malformed input costs one line, exit code 2,
no traceback, and writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from engine.interfaces.cli import main
from tests.sweep_helpers import small

CORPUS = Path(__file__).parents[1] / "data" / "bad"
SPECS = sorted((CORPUS / "specs").glob("*.yaml"))
CATALOGS = sorted((CORPUS / "catalogs").glob("*.yaml"))
CLI_CASES = yaml.safe_load((CORPUS / "cli.yaml").read_text())


def expected(path: Path) -> str:
    first = path.read_bytes().splitlines()[0].decode()  # the corpus holds non-UTF-8 files too
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def snapshot(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def assert_refused(capsys, code: int, message: str) -> str:
    """Checks the refusal and returns its line."""
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert message in captured.err, captured.err
    assert captured.err.startswith("tokensweep: error: ")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    return captured.err


def test_the_corpus_is_large_enough():
    assert len(SPECS) + len(CATALOGS) + len(CLI_CASES) >= 50


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_bad_spec(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / spec.name
    shutil.copy(spec, local)
    before = snapshot(tmp_path)
    for command in ("plan", "run"):
        code = main([command, str(local), "--no-progress"] if command == "run" else [command, str(local)])
        err = assert_refused(capsys, code, expected(spec))
        assert err.startswith(f"tokensweep: error: {local}: "), "the refusal names the spec file"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: p.stem)
def test_bad_catalog(catalog, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert_refused(capsys, main(["catalog", "--catalog", str(catalog)]), f"catalog {catalog}: ")
    assert_refused(capsys, main(["point", "--model", "qwen3-32b", "--catalog", str(catalog)]), expected(catalog))
    assert snapshot(tmp_path) == before


@pytest.fixture
def readonly(tmp_path):
    """A folder nobody can write into; as root, chmod is not enough, so also chattr +i."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / "probe").touch()
    except OSError:
        pass
    else:
        (folder / "probe").unlink()
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("cannot make a read-only folder here (root without chattr)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: " ".join(c["argv"])[:60])
def test_bad_command_line(case, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)
    places = {"tmp": str(tmp_path), "file": str(tmp_path / "plain.txt"), "spec": str(tmp_path / "spec.yaml")}
    (tmp_path / "plain.txt").write_text("not a store")
    (tmp_path / "afile.zarr").write_text("not a store either")
    (tmp_path / "foreign.zarr").mkdir()
    (tmp_path / "foreign.zarr" / "precious.txt").write_text("user data")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(small()))
    if any("{readonly}" in a for a in case["argv"]):
        places["readonly"] = str(request.getfixturevalue("readonly"))
    argv = [a.format(**places) for a in case["argv"]]
    before = snapshot(tmp_path)
    assert_refused(capsys, main(argv), case["expect"].format(**places))
    assert snapshot(tmp_path) == before
    assert not os.path.exists(tmp_path / "outputs")
