"""User-facing errors.

A `UserError` is a mistake in what the user gave us (a spec, a catalog file, a CLI value).
The CLI prints its message as one line and exits with code 2; nothing is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A bad input: the message names the field and what is allowed."""


def said_of(field: str, err: UserError) -> UserError:
    """The same refusal said of ``field`` (the argument or spec key the value came from) in place
    of the field it names first (``model: unknown model 'x'`` -> ``models: unknown model 'x'``)."""
    return UserError(f"{field}: {str(err).split(': ', 1)[-1]}")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Suffix suggesting the closest known name, or listing the allowed ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'? (allowed: {', '.join(choices)})"
    return f"allowed: {', '.join(choices)}"


def describe_validation_error(err, prefix: str = "", allowed: Iterable[str] | None = None, field: str = "{loc}") -> str:
    """One line for a pydantic ValidationError: the field's dotted path and what is allowed.

    A misspelt key also makes the real one "missing", so an unknown key is reported first
    (with the closest known name when ``allowed`` is given). ``field`` formats the path
    (``"field '{loc}'"`` in catalog errors); ``prefix`` goes before it (``"parameters."``).
    """
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown key ({did_you_mean(loc.rsplit('.', 1)[-1], allowed)})" if allowed else "unknown key (a typo?)"
    if not loc:
        return f"{prefix}{msg}"
    return f"{prefix}{field.format(loc=loc)}: {msg}"
