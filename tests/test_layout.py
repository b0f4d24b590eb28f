"""The shape of the code: no module of ``monitor`` or ``storage`` imports another that
imports it back (directly or round a longer circle, imports inside functions
included), and no private name (``_x``) is imported from another module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("monitor", "storage")


def modules() -> dict[str, Path]:
    """Every module of the project, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def owner(name: str) -> str | None:
    """The project module that ``import name`` loads last: the name itself, or the
    nearest package above it; None outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path) -> Iterator[tuple[str, str, int]]:
    """(module imported, name taken from it or "", line) for every import statement,
    at the top or inside a function alike."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: line of the first such import}."""
    edges: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        out = edges.setdefault(module, {})
        for target, name, line in imports(path):
            # `from package import submodule` loads the submodule.
            full = f"{target}.{name}" if name and f"{target}.{name}" in MODULES else target
            imported = owner(full)
            if imported is not None and imported != module:
                out.setdefault(imported, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_no_module_imports_another_that_imports_it_back():
    edges = graph()
    report = []
    for group in cycles(edges):
        report.append("circle: " + ", ".join(group))
        for v in group:
            for w, line in sorted(edges[v].items()):
                if w in group:
                    report.append(f"    {MODULES[v].relative_to(ROOT)}:{line} imports {w}")
    assert not report, "\n".join(report)


def test_the_cycle_finder_finds_a_circle():
    edges = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_private_name_is_imported_from_another_module():
    found = []
    for module, path in MODULES.items():
        for target, name, line in imports(path):
            private = name.startswith("_") or any(p.startswith("_") for p in target.split("."))
            if private and owner(target) not in (None, module):
                found.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {name}")
    assert not found, "\n".join(found)
