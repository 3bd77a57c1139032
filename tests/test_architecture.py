"""Modules stay small and import each other without a cycle (the module table itself is
checked by test_architecture_doc.py)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "voicesync"
CEILING = 400
# Modules still over the ceiling, with the size they may not grow past (split them, then
# drop them from here).
OVERSIZE: dict[str, int] = {}


def test_modules_stay_under_the_line_ceiling() -> None:
    too_long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        limit = OVERSIZE.get(path.name, CEILING) if path.parent == PACKAGE else CEILING
        if lines > limit:
            too_long[str(path.relative_to(ROOT))] = lines
    assert too_long == {}, f"over {CEILING} lines (split by concern): {too_long}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(path: Path, modules: set[str]) -> set[str]:
    """The voicesync modules `path` imports when it runs: at the top or inside a function
    (a late import still runs), but not under ``if TYPE_CHECKING:`` (annotations only)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "voicesync":  # from voicesync import _codec, agent
                found.update(a.name for a in node.names if a.name in modules)
            elif node.module.startswith("voicesync."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("voicesync."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found & modules - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (a list of modules, the first repeated last), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return []


def test_no_import_cycle_among_the_modules() -> None:
    """voicesync/*.py import each other without a cycle. Imports under TYPE_CHECKING do not
    count (they never run); a late import inside a function does (docs/architecture.md)."""
    files = {p.stem: p for p in PACKAGE.glob("*.py")}
    graph = {name: _imported(path, set(files)) for name, path in files.items()}
    assert {"client", "agent", "_dispatch"} <= set(graph) and "agent" in graph["client"], \
        "the scan found no imports: it is broken"
    cycle = _cycle(graph)
    assert cycle == [], "import cycle: " + " -> ".join(cycle) + \
        " (use a Protocol next to the consumer, or pass the object in)"


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_agent_run_without_a_client_makes_one_though_agent_imports_no_client(
        sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """voicesync.client hands its class to Agent (agent.py importing it would be a cycle)."""
    monkeypatch.setenv("PINECALL_URL", sim.url)
    monkeypatch.setenv("PINECALL_API_KEY", CANARY_KEY)
    agent = voicesync.Agent("runner")
    failures: list[BaseException] = []

    def run() -> None:
        try:
            agent.run(timeout=5.0)
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="test-agent-run", daemon=True)
    thread.start()
    until(lambda: agent.ready, 5.0, "the agent's registration")
    assert isinstance(agent.client, voicesync.Client)
    agent.client.close()
    thread.join(5.0)
    assert not thread.is_alive() and failures == []
