"""The package's modules import each other without a cycle, and the layers keep to their imports.

Static, from each module's source (every import, see ``_imports``); one fresh interpreter also
imports ``assets``, the entry of the former ``assets -> lineage -> operators -> assets`` cycle, alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "airflow_hubspot_assoc"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """The package modules a module imports anywhere: at module level, inside functions (lazy) and
    under ``TYPE_CHECKING``. A lazy import does not fail at import time, but it is still a dependency:
    counting it keeps the layers honest (the old assets -> lineage -> operators -> assets cycle
    went through a lazy import and a ``TYPE_CHECKING`` one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in modules:
                found.add(node.module)
            # ``from package import module`` imports the module too.
            found.update(
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules
            )
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    graph = {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), modules) for name, path in paths.items()
    }
    for name in modules:  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parent = name.rpartition(".")[0]
        if parent in modules and parent != name:
            graph[name].add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _cycles_without_packages(graph: dict[str, set[str]]) -> list[list[str]]:
    # A package's ``__init__`` re-exporting its own submodules is the usual, harmless loop: a
    # submodule imported first runs ``__init__``, which finds it in ``sys.modules``. Leave that edge out.
    trimmed = {
        name: {t for t in targets if not (name.startswith(t + ".") or t.startswith(name + "."))}
        for name, targets in graph.items()
    }
    return _cycles(trimmed)


def test_no_import_cycle_among_package_modules():
    assert _cycles_without_packages(_graph()) == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # the pure contracts: no Airflow mechanics, no I/O layers
        ("record", ("hooks", "operators", "sensors", "triggers", "readback", "lineage", "assets", "load")),
        ("datasets", ("hooks", "operators", "sensors", "triggers", "assets", "lineage", "record")),
        ("lineage", ("hooks", "operators", "sensors", "triggers", "assets")),
        ("assets", ("hooks", "operators", "sensors", "triggers", "lineage")),
        ("readback", ("hooks", "operators", "sensors", "triggers", "lineage", "assets", "load")),
        ("constants", ("",)),
        # the ledger's format is domain code: files only, no HTTP, no Airflow adapters
        ("ledger", ("hooks", "operators", "sensors", "triggers", "load", "client", "readback")),
        ("ledger_reads", ("hooks", "operators", "sensors", "triggers", "load", "readback")),
    ],
)
def test_layers_keep_to_their_imports(module, forbidden):
    graph = _graph()
    reached = _reachable(graph, f"{PACKAGE}.{module}") - {PACKAGE}
    bad = sorted(
        name
        for name in reached
        for prefix in forbidden
        if name == f"{PACKAGE}.{prefix}".rstrip(".")
        or name.startswith(f"{PACKAGE}.{prefix}".rstrip(".") + ".")
        or (prefix == "" and name.startswith(f"{PACKAGE}."))
    )
    assert bad == [], f"{module} imports {bad}"


def test_assets_imports_alone_in_a_fresh_interpreter():
    done = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}.assets"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
