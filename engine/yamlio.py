"""Reading YAML files the one safe way: ``yaml.safe_load``, errors as one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.errors import UserError


def read_yaml(path: Path, label: str, what: str = "file"):
    """Parsed content of ``path`` (safe loader: no Python tags, nothing executed)."""
    try:
        text = path.read_text()
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise UserError(f"{label}: cannot read {what} ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{label}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
