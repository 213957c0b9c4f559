"""The ``tokensweep`` command: a thin ``main(argv) -> int`` over the engine.

One module per subcommand, each owning its options (``add_parser``) and its handler
(``run``). User mistakes raise :class:`engine.errors.UserError`; ``main`` prints them as
one line on stderr and returns 2 without writing anything. Heavy imports (Numba kernels,
xarray, Dask, matplotlib) happen inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine.errors import UserError

#: Subcommands in the order ``--help`` lists them; each is a module of this package.
SUBCOMMANDS = (
    "point",
    "catalog",
    "plan",
    "run",
    "show",
    "slice",
    "export",
    "diff",
    "plot",
    "best",
    "explore",
    "calibrate",
    "sensitivity",
)


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a UserError (one line, exit 2) instead of usage text."""

    def error(self, message: str):
        raise UserError(message)


def _module(name: str):
    return importlib.import_module(f"engine.interfaces.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    from engine.version import __version__

    parser = Parser(prog="tokensweep", description="Sweep engine for LLM-inference economics.")
    parser.add_argument("--version", action="version", version=f"tokensweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in SUBCOMMANDS:
        _module(name).add_parser(sub)
    return parser


def _exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit (exit 143), so every ``finally`` runs: temporary files of an
    export, a figure or a page are removed, and a sweep's records stay consistent."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokensweep`` console script; returns the exit code."""
    import warnings

    from engine.escape import TerminalStream, redact, terminal

    _exit_on_sigterm()
    stdout = sys.stdout
    if not isinstance(stdout, TerminalStream):  # names print as text, never as escape sequences
        sys.stdout = TerminalStream(stdout)
    try:
        with warnings.catch_warnings():
            _SHOWN.clear()
            warnings.showwarning = _show_warning
            # Every time (not once per process: a test or a notebook runs many commands), and
            # _show_warning says each message once per command (explore opens the cube twice).
            warnings.filterwarnings("always", message=r"cube .* is incomplete")
            args = build_parser().parse_args(argv)
            _record_command(argv)
            return _module(args.command).run(args)
    except UserError as err:
        message = str(err).replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever a name holds
        print(f"tokensweep: error: {terminal(redact(message))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`tokensweep show CUBE | head`): stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        # Disk full, a lost mount, permissions changing under a run: say so in one line.
        # Recorded blocks are safe; rerunning the same command resumes.
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        resume = "; completed blocks are kept, run again to resume" if _command(argv) == "run" else ""
        print(f"tokensweep: error: {terminal(redact(f'{err.strerror or err}{where}'))}{resume}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tokensweep: interrupted (a sweep resumes where it stopped: run it again)", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


#: The project's warnings said in this command so far (each is said once).
_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """The project's own warnings (an incomplete cube) as one line, once per command; others as
    Python prints them."""
    from engine.sweep.integrity import IncompleteCubeWarning

    if issubclass(category, IncompleteCubeWarning):
        from engine.escape import redact, terminal

        if str(message) in _SHOWN:
            return
        _SHOWN.add(str(message))
        print(f"tokensweep: warning: {terminal(redact(str(message)))}", file=sys.stderr)
    else:
        import warnings

        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _record_command(argv) -> None:
    """What a cube's ``history`` attribute says made it."""
    import shlex

    from engine.sweep.cube import COMMAND

    words = list(sys.argv[1:] if argv is None else argv)
    COMMAND.set("tokensweep " + " ".join(shlex.quote(str(w)) for w in words))


def _command(argv) -> str | None:
    words = list(sys.argv[1:] if argv is None else argv)
    return next((w for w in words if w in SUBCOMMANDS), None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
