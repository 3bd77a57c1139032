"""Finding the agent a scenario calls: a fresh instance for every run.

Scenarios run in parallel in one process, and an `Agent` serves one client, so each run
needs its own. A class (or any factory) is simply called; a module-level agent instance
(``agent = voicesync.Agent(...)`` with decorated handlers) is made afresh by executing
its module's source again under a private name. An agent file always runs afresh.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from voicesync.agent import Agent
from voicesync.errors import ConfigurationError

_fresh = itertools.count(1)
_import_lock = threading.Lock()


def make_agent(source: str | Callable[[], Any], args: Mapping[str, Any],
               base: Path | None) -> tuple[Agent, ModuleType | None]:
    """A new agent from `source`, and the module it came from (for named hooks)."""
    if not isinstance(source, str):
        return _build(source, args, repr(source)), None
    where, _, name = source.rpartition(":")
    if not where or not name:
        raise ConfigurationError(
            f"agent reference {source!r}: write path/to/file.py:Name or package.module:Name")
    # A file runs afresh each time (its globals, a booking counter say, start over); a
    # module imports as usual (relative imports work) unless it holds a ready agent.
    module = _load(where, base) if where.endswith(".py") else _import(where)
    target = getattr(module, name, None)
    if isinstance(target, Agent) and not where.endswith(".py"):
        module = _load(where, base)
        target = getattr(module, name, None)
    if target is None:
        raise ConfigurationError(f"agent reference {source!r}: {where} has no {name!r}")
    if isinstance(target, Agent):
        if args:
            raise ConfigurationError(f"{source}: agent_args need a class or a factory")
        return target, module
    return _build(target, args, source), module


def hook(module: ModuleType | None, ref: str, base: Path | None) -> Callable[[Any], object]:
    """A scenario's named Python hook: in the agent's module, or "file.py:name"."""
    where, _, name = ref.rpartition(":")
    found = getattr(_load(where, base) if where else module, name, None)
    if not callable(found):
        raise ConfigurationError(f"no Python hook {ref!r} (a function taking the context)")
    result: Callable[[Any], object] = found
    return result


def _import(name: str) -> ModuleType:
    with _import_lock:
        if str(Path.cwd()) not in sys.path:  # `voicesync test` run from the project root
            sys.path.insert(0, str(Path.cwd()))
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                raise ConfigurationError(f"agent module {name!r} not found") from None
            raise


def _build(factory: Any, args: Mapping[str, Any], what: str) -> Agent:
    if not callable(factory):
        raise ConfigurationError(f"agent {what} is neither an Agent, a class nor a factory")
    agent = factory(**args)
    if not isinstance(agent, Agent):
        raise ConfigurationError(f"agent {what} made {type(agent).__name__}, not a voicesync.Agent")
    return agent


def _load(where: str, base: Path | None) -> ModuleType:
    """Execute a file (relative to `base`) or a module's source as a new private module."""
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ConfigurationError(f"agent file {path} not found")
    else:
        spec = importlib.util.find_spec(where)
        if spec is None or spec.origin is None:
            raise ConfigurationError(f"agent module {where!r} not found")
        path = Path(spec.origin)
    name = f"_voicesync_scenario_{path.stem}_{next(_fresh)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    with _import_lock:  # the examples import their neighbours; one sys.path edit at a time
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        finally:
            if added:
                sys.path.remove(folder)
    return module


def wire_stand_in(agent: Agent, sim: Any) -> None:
    """Point a `voicesync.llm` agent at this run's stand-in model (never the environment's,
    which parallel runs share)."""
    from voicesync.llm.agents import AnthropicAgent, OpenAIAgent

    model = sim.model
    if model is None:
        return
    if isinstance(agent, OpenAIAgent):
        import openai
        agent._provider_client = openai.OpenAI(base_url=model.openai_base_url,
                                               api_key="stand-in-no-key")
    elif isinstance(agent, AnthropicAgent):
        import anthropic
        agent._provider_client = anthropic.Anthropic(base_url=model.anthropic_base_url,
                                                     api_key="stand-in-no-key")
