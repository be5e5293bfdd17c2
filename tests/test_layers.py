"""The house's layout: the engine imports no Ray, LMDB or gRPC, and no package has an import cycle
(type-only imports count: a cycle hidden behind TYPE_CHECKING still ties the modules together)."""

import ast
import gc
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("engine", "actors", "storage", "cli", "client", "bench")
OUTSIDE_THE_ENGINE = ("ray", "lmdb", "grpc", "actors", "storage", "cli", "client")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def parsed(source: str) -> ast.Module:
    """`ast.parse` with the collector held off: in CPython 3.11.7 a finalizer run by a collection
    in the middle of building the tree (an earlier test's leftover object) unbalances the
    builder's depth count, and it raises "SystemError: AST constructor recursion depth mismatch"."""
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        gc.enable()


def imported(path: Path) -> set[str]:
    """Every module name an import statement of `path` mentions, `from a import b` as `a` and `a.b`."""
    names = set()
    for node in ast.walk(parsed(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: (imported(path) & known.keys()) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in sorted(edges[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_engine_does_no_io_of_its_own():
    for name, path in modules().items():
        if name.startswith("engine"):
            wrong = {n for n in imported(path) if n.split(".")[0] in OUTSIDE_THE_ENGINE}
            assert wrong == set(), f"{name} imports {sorted(wrong)}"
