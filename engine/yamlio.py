"""Reading YAML files the one safe way: ``yaml.safe_load``, errors as one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.errors import UserError


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML says last wins: silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                key_node.start_mark,
            )  # fmt: skip
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path, label: str, what: str = "file"):
    """Parsed content of ``path`` (safe loader: no Python tags, nothing executed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{label}: not a UTF-8 text file") from None
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise UserError(f"{label}: cannot read {what} ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.constructor.ConstructorError as exc:
        if exc.problem and "given twice" in exc.problem:
            raise UserError(f"{label}: {exc.problem}") from None
        raise UserError(f"{label}: not valid YAML{_line(exc)}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{label}: not valid YAML{_line(exc)}") from None


def _line(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark else ""
