"""The project's import graph has no cycles and reaches into no module's private names.

import-linter (``lint-imports``, run by ./scripts/test) keeps the layers; this
test keeps what it does not check: a cycle between two files (imports inside
functions count, since they only hide a cycle; imports under ``if
TYPE_CHECKING:`` do not), and a name starting with ``_`` imported from another
module (a private helper used elsewhere belongs in a public place).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "ledger_core", "custom_components", "transactiva_client")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for root in (REPO / package, REPO / "client" / package):
            for path in root.rglob("*.py") if root.is_dir() else ():
                parts = list(path.relative_to(root.parent).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _imports(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def _owner(name: str) -> str | None:
    """The project module ``name`` lives in (itself, or the nearest package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _base(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if MODULES[module].name != "__init__.py":
        parts.pop()
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    private: list[str] = []
    for module, path in MODULES.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [_owner(alias.name) for alias in node.names]
            else:
                base = _base(module, node)
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in MODULES:
                        targets.append(full)
                        continue
                    owner = _owner(base)
                    targets.append(owner)
                    if owner and alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{path.relative_to(REPO)}: {alias.name} from {owner}")
            edges[module] |= {t for t in targets if t and t != module}
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_graph_covers_the_project() -> None:
    assert {"ledger_core.types.tx", "ledger_core.state.machine", "contracts.parser"} <= set(MODULES)
    edges, _ = _graph()
    assert "ledger_core.types.tx" in edges["ledger_core.state.machine"]


def test_no_import_cycle_between_project_files() -> None:
    edges, _ = _graph()
    assert _cycles(edges) == []


def test_a_cycle_is_found_where_there_is_one() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_private_name_is_imported_from_another_module() -> None:
    _, private = _graph()
    assert private == []
