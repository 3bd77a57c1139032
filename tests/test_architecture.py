"""Modules stay small and import each other without a cycle (the module table itself is
checked by test_architecture_doc.py)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY

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


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name below ``voicesync`` (``client``,
    ``scenarios._run``; a subpackage's ``__init__`` is the subpackage's name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:  # voicesync/__init__.py: importing voicesync itself is not counted
            found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The voicesync modules `path` imports when it runs: at the top or inside a function
    (a late import still runs), but not under ``if TYPE_CHECKING:`` (annotations only)."""
    found: set[str] = set()

    def target(dotted: str) -> str | None:
        """The longest module name `dotted` (below voicesync) starts with."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in modules:
                return ".".join(parts[:end])
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module  # (the package uses no relative imports)
            if (node.level == 0 and base == "voicesync") or base.startswith("voicesync."):
                below = base.removeprefix("voicesync").removeprefix(".")
                for alias in node.names:  # from voicesync.scenarios import _spec, Spec
                    hit = target(f"{below}.{alias.name}" if below else alias.name)
                    if hit is None and below:
                        hit = target(below)
                    if hit is not None:
                        found.add(hit)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("voicesync."):
                    hit = target(alias.name.removeprefix("voicesync."))
                    if hit is not None:
                        found.add(hit)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {name}


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
    """The modules of voicesync and of its subpackages (sim, scenarios, celery, llm)
    import each other without a cycle. Imports under TYPE_CHECKING do not count (they
    never run); a late import inside a function does (docs/architecture.md)."""
    files = _modules()
    graph = {name: _imported(name, path, set(files)) for name, path in files.items()}
    assert {"client", "agent", "_dispatch", "scenarios._run", "sim"} <= set(graph), \
        "the scan found no modules: it is broken"
    assert "agent" in graph["client"] and "scenarios._steps" in graph["scenarios._caller"], \
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
    serving = threading.Event()  # run() is past wait_ready(): closing now ends it cleanly
    run_forever = voicesync.Client.run_forever

    def serve(client: voicesync.Client) -> None:
        serving.set()
        run_forever(client)

    monkeypatch.setattr(voicesync.Client, "run_forever", serve)

    def run() -> None:
        try:
            agent.run(timeout=5.0)
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="test-agent-run", daemon=True)
    thread.start()
    assert serving.wait(5.0), "agent.run() did not get to serve"
    assert agent.ready and isinstance(agent.client, voicesync.Client)
    agent.client.close()
    thread.join(5.0)
    assert not thread.is_alive() and failures == []


# The websocket-client adapter (and the framing it may split off): every other module
# speaks to a WebSocket through the transport port, so a websocket-client release that
# renames its internals breaks one module, which the contract test covers.
WEBSOCKET_CLIENT_OWNERS = {"_transport", "_framing"}


def _imports_websocket_client(path: Path) -> bool:
    """True if the module imports websocket-client (``websocket``, not ``websockets``)
    anywhere: at the top, inside a function, or under TYPE_CHECKING."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "websocket" or name.startswith("websocket.") for name in names):
            return True
    return False


def test_only_the_transport_imports_websocket_client() -> None:
    importers = {name for name, path in _modules().items() if _imports_websocket_client(path)}
    assert "_transport" in importers  # the check sees the adapter's imports
    assert importers <= WEBSOCKET_CLIENT_OWNERS, (
        f"{sorted(importers - WEBSOCKET_CLIENT_OWNERS)} import websocket-client; go through "
        "the transport port (voicesync/_port.py) instead")
