"""The package's layers, checked from its source: axes -> model -> sweep -> analysis -> interfaces.

- A module imports only from its own layer or a lower one, at module level or inside a
  function (``engine.errors``, ``engine.units``, ``engine.jit``, ``engine.yamlio``,
  ``engine.version``, ``engine.conditions``, ``engine.atomic`` and ``engine.escape`` are the base every layer may use).
- No import cycle, counting imports inside functions too: a function-level import may
  defer a heavy module (the CLI's subcommands, the compiled kernels), never hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "engine"
LAYERS = ("axes", "model", "sweep", "analysis", "interfaces")
BASE = {"errors", "units", "jit", "yamlio", "version", "conditions", "atomic", "escape"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = modules()


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module imported, line, inside a function) for every import of a project module."""
    tree = ast.parse(path.read_text())
    nested_lines = {
        node.lineno
        for func in ast.walk(tree)
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(func)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            targets = [n for n in names if n in MODULES] or [node.module]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("engine")]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            found.append((target, node.lineno, node.lineno in nested_lines))
    return found


def layer(module: str) -> int | None:
    """Rank of a module's layer (base modules -1; the package root None: it may import anything)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":  # the package root and `python -m engine`
        return None
    if parts[1] in BASE:
        return -1
    return LAYERS.index(parts[1])


def test_every_module_has_a_layer():
    for module in MODULES:
        parts = module.split(".")
        assert len(parts) == 1 or parts[1] in {*BASE, *LAYERS, "__main__"}, f"{module}: in no layer"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    mine = layer(module)
    if mine is None:
        return
    for target, line, nested in imports(MODULES[module]):
        theirs = layer(target)
        assert theirs is not None and theirs <= mine, (
            f"{module}:{line} imports {target}{' inside a function' if nested else ''}: "
            f"{LAYERS[mine] if mine >= 0 else 'base'} may not depend on "
            f"{'the package root' if theirs is None else LAYERS[theirs]}"
        )


def test_no_import_cycle_even_through_function_level_imports():
    graph = {m: {t for t, _, _ in imports(p) if t != m} for m, p in MODULES.items()}
    done, path = set(), []

    def visit(node):
        if node in path:
            cycle = [*path[path.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        path.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The rules above can fail: a planted upward, function-level import breaks both."""
    fake = {"engine.sweep.a": tmp_path / "a.py", "engine.interfaces.b": tmp_path / "b.py"}
    fake["engine.sweep.a"].write_text("def f():\n    from engine.interfaces import b\n")
    fake["engine.interfaces.b"].write_text("from engine.sweep import a\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["MODULES"]), "MODULES", fake)
    with pytest.raises(AssertionError, match="may not depend on interfaces"):
        test_imports_go_down_the_layers("engine.sweep.a")
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycle_even_through_function_level_imports()
