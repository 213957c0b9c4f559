"""User-facing errors.

A `UserError` is a mistake in what the user gave us (a spec, a catalog file, a CLI value).
The CLI prints its message as one line and exits with code 2; nothing is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A bad input: the message names the field and what is allowed."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Suffix suggesting the closest known name, or listing the allowed ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'? (allowed: {', '.join(choices)})"
    return f"allowed: {', '.join(choices)}"
