"""The packages' structure: no import cycle anywhere in ``training``, ``api`` or ``dashboard``.

import-linter's layers contracts (pyproject.toml, run by ``make test``) forbid a lower layer to
import an upper one; a cycle between two modules of one layer (or of a package no contract
splits) would slip through them, so it is looked for here on grimp's graph of every import,
those inside functions included.
"""

from __future__ import annotations

import grimp
import pytest


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Tarjan's components of more than one module (the import cycles) among ``modules``."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert strongly_connected(graph, {"p.a", "p.b", "p.c"}) == [["p.a", "p.b"]]


@pytest.mark.parametrize("package", ["training", "api", "dashboard"])
def test_no_import_cycle(package):
    graph = grimp.build_graph(package)
    modules = {module for module in graph.modules if module == package or module.startswith(package + ".")}
    assert strongly_connected(graph, modules) == []
