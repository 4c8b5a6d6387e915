"""The shape of the code: a domain that knows nothing of HTTP, and contexts without import cycles.

Read from the source with `ast`, so it holds for imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "chalicelib"
CONTEXTS = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name != "platform")
# The edge and the composition: they may import anything.
EDGE = {"http", "openapi", "demo"}


def imports(path: Path) -> set[str]:
    """The chalicelib modules `path` imports (`chalicelib.x.y`), wherever in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("chalicelib"))
    return found


def context_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in CONTEXTS else None


def context_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {c: set() for c in CONTEXTS}
    for context in CONTEXTS:
        for path in (ROOT / context).rglob("*.py"):
            graph[context] |= {c for c in map(context_of, imports(path)) if c and c != context}
    return graph


def in_cycle(graph: dict[str, set[str]], start: str) -> bool:
    """Whether `start` reaches itself through the graph's edges."""
    stack, seen = list(graph[start]), set()
    while stack:
        node = stack.pop()
        if node == start:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return False


def test_there_are_contexts_to_check() -> None:
    assert {"alerts", "chat", "devices", "identity", "monitoring", "realtime"} <= set(CONTEXTS)


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py") if p.stem not in EDGE), ids=str)
def test_no_domain_module_imports_the_web_layer(path: Path) -> None:
    web = {m for m in imports(path) if m in {"chalicelib.http", "chalicelib.openapi"}
           or m.startswith(("chalicelib.http.", "chalicelib.openapi."))}
    assert not web, f"{path.relative_to(ROOT.parent)} imports {sorted(web)}"


def test_no_context_imports_another_in_a_cycle() -> None:
    graph = context_graph()
    cycles = sorted(c for c in CONTEXTS if in_cycle(graph, c))
    assert not cycles, f"contexts in an import cycle: {cycles} (graph: {graph})"


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself: a cycle, however long, is caught (so a green result means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert in_cycle(graph, "a") and in_cycle(graph, "c") and not in_cycle(graph, "d")
