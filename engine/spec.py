"""Sweep specifications (YAML), validated before anything runs."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line: the field's dotted path and what is allowed."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (a typo?)"
    return f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}"
