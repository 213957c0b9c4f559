"""Outputs appear whole, with the umask's mode, and leave no temporary file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.atomic import atomic_path


def test_a_finished_file_has_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "figure.png") as temporary:
            temporary.write_bytes(b"png")
    finally:
        os.umask(old)
    assert (tmp_path / "figure.png").stat().st_mode & 0o777 == 0o640  # mkstemp alone gives 0600
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_a_failed_write_leaves_neither_file(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "page.html") as temporary:
        temporary.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_sigterm_removes_the_temporary_file_of_a_command(tmp_path):
    """The command line turns SIGTERM into SystemExit, so a killed write cleans up after itself."""
    code = (
        "import sys, time\n"
        "from engine.interfaces.cli import _exit_on_sigterm\n"
        "from engine.atomic import atomic_path\n"
        "_exit_on_sigterm()\n"
        f"with atomic_path({str(tmp_path / 'big.csv')!r}) as t:\n"
        "    t.write_text('rows'); print('writing', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
