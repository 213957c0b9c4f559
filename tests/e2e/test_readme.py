"""The README as a newcomer pastes it: set-up command 1, then every `tokensweep` command, in
order, in one shell, in a fresh folder (so the README cannot rot).

The set-up line's own steps run as written except creating the virtual environment and
installing into it (this test runs inside an installed one: ``.venv`` is linked to it), so
the bare ``tokensweep`` of the everyday commands works only if set-up left it usable (the
shell's PATH here does not have it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [re.sub(r"\\\n\s*", " ", block) for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def setup_steps() -> list[str]:
    """Set-up command 1, step by step (the first command line of the first block)."""
    first = next(line for line in readme_blocks()[0].splitlines() if line.strip() and not line.startswith("#"))
    return [part.strip() for part in first.split("&&")]


def readme_python() -> list[str]:
    """The README's Python blocks, as written."""
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def readme_commands() -> list[str]:
    """Every `tokensweep` command after set-up, as written (comments dropped)."""
    commands = []
    for block in readme_blocks()[1:]:
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith("tokensweep "):
                commands.append(command)
    return commands


def test_the_readme_has_commands_to_check():
    steps = setup_steps()
    assert steps[0].startswith("python3 -m venv .venv") and any("activate" in s for s in steps)
    assert any(s.startswith("tokensweep run sweeps/") for s in steps)
    assert len(readme_commands()) >= 15
    assert any("engine.point(" in block and "print(" in block for block in readme_python())


@pytest.mark.slow
def test_the_readme_runs_as_pasted_in_one_shell(tmp_path):
    shutil.copytree(ROOT / "sweeps", tmp_path / "sweeps")
    shutil.copytree(
        ROOT / "outputs", tmp_path / "outputs", ignore=lambda folder, names: [n for n in names if n != "README.md"]
    )
    # The README's paths are the checkout's (engine/data/calibration/...), and a script run here must
    # import the package, not a bare folder named engine: the checkout's own package, linked.
    (tmp_path / "engine").symlink_to(ROOT / "engine")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the environment this test runs in, as set-up made it
    steps = [s for s in setup_steps() if not s.startswith(("python3 -m venv", "pip install", ".venv/bin/pip"))]
    script = ["set -euo pipefail", *steps]
    for command in readme_commands():  # each reports itself, so a failure names its command
        script.append(f"echo '>>> {command}' >&2; {command}")
    for i, block in enumerate(readme_python()):  # then the Python blocks, with the activated python
        (tmp_path / f"readme_{i}.py").write_text(block)
        script.append(f"echo '>>> python block {i}' >&2; python readme_{i}.py")
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != bin_dir)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"PATH": path}
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    last = [line for line in done.stderr.splitlines() if line.startswith(">>> ")][-1:] or ["(set-up)"]
    assert done.returncode == 0, f"{last[0]}\n{done.stderr[-2000:]}"
