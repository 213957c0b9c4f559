"""Progress of long work on the terminal: a rich bar on a terminal, plain lines in a batch log.

The store reports progress through a callback (points done); this is what the command
line plugs into it. ``TOKENSWEEP_PROGRESS_INTERVAL`` sets the seconds between plain lines.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager

from engine.errors import UserError


def progress_lines(total: int, done: int, interval: float):
    """``advance(points)`` that prints ``sweep: 45% (...)`` at most every ``interval`` seconds, and at 100%."""
    state = {"done": done, "started": time.perf_counter(), "last": time.perf_counter(), "first": done}

    def advance(points: int) -> None:
        state["done"] += points
        now = time.perf_counter()
        if now - state["last"] < interval and state["done"] < total:
            return
        state["last"] = now
        rate = (state["done"] - state["first"]) / max(now - state["started"], 1e-9)
        left = (total - state["done"]) / rate if rate > 0 else float("inf")
        print(
            f"sweep: {100 * state['done'] / total:.0f}% ({state['done']:,} of {total:,} points, "
            f"{rate:,.0f} points/s, about {left:,.0f} s left)",
            file=sys.stderr,
            flush=True,
        )

    return advance


def progress_interval() -> float:
    """``TOKENSWEEP_PROGRESS_INTERVAL`` (seconds between plain progress lines, default 10), checked."""
    text = os.environ.get("TOKENSWEEP_PROGRESS_INTERVAL", "10")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 86400:  # 0: a line at every update
        raise UserError(f"TOKENSWEEP_PROGRESS_INTERVAL: '{text}' is not a number of seconds from 0 to 86400")
    return value


@contextmanager
def progress_bar(total: int, done: int):
    """``advance(points)`` for a run of ``total`` points of which ``done`` are already done."""
    if not sys.stderr.isatty():  # a batch job's log: a plain line every interval, not a redrawn bar
        yield progress_lines(total, done, progress_interval())
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            from rich.text import Text

            return Text(f"{speed:,.0f} points/s" if speed else "")

    from rich.console import Console

    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("points"),
        Rate(""),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("sweep", total=total, completed=done)
        yield lambda points: bar.advance(task, points)


def fit_lines(interval: float, label: str = "fit", first: str = ""):
    """``progress(stage, evaluations, cost)`` for a calibration fit: ``first`` on stderr when the
    fit starts evaluating (its input checked), then a line at most every ``interval`` seconds
    (``fit: least squares, 40 evaluations, cost 0.0123, 12 s``)."""
    state = {"started": time.perf_counter(), "last": time.perf_counter(), "first": first}

    def progress(stage: str, evaluations: int, cost: float) -> None:
        if state["first"]:
            print(state["first"], file=sys.stderr, flush=True)
            state["first"] = ""
        now = time.perf_counter()
        if now - state["last"] < interval:
            return
        state["last"] = now
        print(
            f"{label}: {stage}, {evaluations} evaluations of every row, cost {cost:.4g}, "
            f"{now - state['started']:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    return progress
