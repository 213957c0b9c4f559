"""Every `tokensweep` command in the README runs, in order, in a fresh folder (so the README cannot rot)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            for part in line.split("  #")[0].split("&&"):  # the set-up line runs the main job after installing
                part = part.strip().removeprefix(".venv/bin/")
                if part.startswith("tokensweep "):
                    commands.append(part)
    return commands


def test_the_readme_has_commands_to_check():
    commands = readme_commands()
    assert len(commands) >= 15
    assert any(c.startswith("tokensweep run sweeps/") for c in commands)


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path):
    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    shutil.copytree(
        ROOT / "outputs", tmp_path / "outputs", ignore=lambda folder, names: [n for n in names if n != "README.md"]
    )
    shutil.copytree(ROOT / "engine" / "data" / "calibration", tmp_path / "engine" / "data" / "calibration")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in readme_commands():
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
