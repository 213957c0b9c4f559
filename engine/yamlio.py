"""Reading YAML files the one safe way: ``yaml.safe_load``, errors as one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.errors import UserError

#: A sweep, catalog or profile file is a few kB; anything this large is not one (``/dev/zero``).
MAX_BYTES = 4_000_000
#: Nodes after alias expansion: an "alias bomb" of a few hundred bytes would expand to billions.
MAX_NODES = 1_000_000


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML says last wins: silently)
    and documents whose aliases would expand past :data:`MAX_NODES` nodes."""

    def compose_document(self):
        node = super().compose_document()
        _check_expanded_size(node)
        return node


def _check_expanded_size(root) -> None:
    """Count nodes as the constructor would expand them (aliases are shared nodes in the graph)."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once (the safe loader builds it as a cycle)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        sizes[key] = total
        if total > MAX_NODES:
            raise _TooLarge(f"its aliases expand to over {MAX_NODES:,} values")
        return total

    size(root)


class _TooLarge(Exception):
    pass


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
        with open(path, "rb") as handle:  # bounded: a device or a huge file must not fill memory
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise UserError(f"{label}: larger than {MAX_BYTES // 1_000_000} MB; not a {what}")
        text = raw.decode("utf-8")
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
    except _TooLarge as exc:
        raise UserError(f"{label}: refused, {exc}") from None
    except RecursionError:
        raise UserError(f"{label}: refused, nested too deeply") from None


def _line(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark else ""
