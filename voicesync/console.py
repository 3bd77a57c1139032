"""`python -m voicesync console path/to/agent.py`: talk to your own agent from the terminal.

The agent runs against the local simulator (your file is imported with ``PINECALL_URL``
pointing there, so a module-level ``voicesync.Client()`` reaches it too). You type as the
caller; the bot's words appear at speaking pace; typing while it speaks is a barge-in.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import queue
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from voicesync.agent import Agent
from voicesync.client import Client
from voicesync.errors import ConfigurationError

HELP = ("Type what the caller says and press Enter; typing while the bot speaks cuts it off.\n"
        "/press 12  keypad digits    /hangup  end the call (also Ctrl-D)")


def load(target: str) -> list[Agent]:
    """The agents named by `target`: ``path/to/file.py`` or ``module:object``.

    In a file, every Agent instance, Agent subclass defined there (instantiated with no
    arguments) and Client (its agents) counts; an instance hides its own class.
    """
    module_name, _, attr = target.partition(":")
    if attr:
        sys.path.insert(0, str(Path.cwd()))
        found: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            found = getattr(found, part)
        agents = _agents_in([found], None)
    else:
        module = _import_file(Path(target))
        agents = _agents_in(list(vars(module).values()), module.__name__)
    if not agents:
        raise ConfigurationError(f"no voicesync Agent (instance or subclass) or Client with "
                                 f"agents found in {target}")
    return agents


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigurationError(f"no such file: {path}")
    sys.path.insert(0, str(path.resolve().parent))  # so the file's own imports work
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)  # not as __main__: its `if __name__ == "__main__"` stays off
    return module


def _agents_in(values: list[Any], module: str | None) -> list[Agent]:
    agents: list[Agent] = []
    for value in values:
        if isinstance(value, Agent):
            agents.append(value)
        elif isinstance(value, Client):
            agents.extend(value.agents.values())
    for value in values:
        if (isinstance(value, type) and issubclass(value, Agent) and value is not Agent
                and (module is None or value.__module__ == module)
                and not any(type(a) is value for a in agents)):
            try:
                agents.append(value())
            except Exception as exc:
                raise ConfigurationError(
                    f"cannot create {value.__name__}() without arguments ({exc}); create the "
                    "instance in the file and point the console at it") from exc
    return list(dict.fromkeys(agents))


def _pick(agents: list[Agent], wanted: str | None) -> Agent:
    if wanted is not None:
        for agent in agents:
            if agent.id == wanted:
                return agent
        raise ConfigurationError(f"no agent {wanted!r}; found: {', '.join(a.id for a in agents)}")
    if len(agents) > 1:
        raise ConfigurationError(
            f"several agents found ({', '.join(a.id for a in agents)}): pick one with --agent")
    return agents[0]


def _read_lines(lines: queue.Queue[str | None]) -> None:
    """Stdin reader thread: the main thread stays free to notice the bot hanging up."""
    try:
        for line in sys.stdin:
            lines.put(line.rstrip("\n"))
    finally:
        lines.put(None)


def converse(call: Any) -> None:
    """Feed typed lines to the simulated call until /hangup, end of input, or its end."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(lines,), name="voicesync-console-stdin",
                     daemon=True).start()
    while call.status == "active":
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        text = (line or "").strip()
        if line is None or text in ("/hangup", "/quit"):
            return
        if text.startswith("/press"):
            digits = "".join(c for c in text[len("/press"):] if c in "0123456789*#")
            if digits:
                call.press(digits)
            else:
                print("usage: /press DIGITS, e.g. /press 12#", flush=True)
        elif text.startswith("/"):
            print(HELP, flush=True)
        elif text:
            try:
                call.say(text, timeout=60)  # a barge-in if the bot is speaking
            except RuntimeError:
                return  # the call ended meanwhile


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="voicesync console", description=__doc__)
    parser.add_argument("target", help="path/to/agent.py or module:object")
    parser.add_argument("--agent", help="the agent id, when the target has several")
    parser.add_argument("--from", dest="from_", default="+15550001111",
                        help="the caller's number (default +15550001111)")
    parser.add_argument("--to", default=None, help="the number called (default: the agent's)")
    parser.add_argument("--words-per-second", type=float, default=3.0,
                        help="the bot's speaking pace (default 3)")
    parser.add_argument("--url", help="attach to a running `voicesync sim` through its control "
                                      "API (e.g. http://127.0.0.1:8766); target is the agent id")
    args = parser.parse_args(list(argv))
    if args.url:  # the agent runs elsewhere (any language); play the caller over HTTP
        from voicesync.scenarios._remote import console

        return console(args.url, args.target, from_=args.from_, to=args.to)
    from voicesync.local import Session

    try:
        with Session(local=True, words_per_second=args.words_per_second, timeout=60) as session:
            agent = _pick(load(args.target), args.agent)
            print(f"voicesync console: calling agent {agent.id!r} on the local simulator.\n"
                  f"{HELP}\n", flush=True)
            try:
                with session.open_call(agent, from_=args.from_, to=args.to,
                                       echo_caller=not sys.stdin.isatty()) as call:
                    converse(call)
            finally:
                if agent.client is not None and agent.client is not session.client:
                    agent.client.close()  # the file's own client, pointed at the simulator
    except ConfigurationError as exc:
        print(f"voicesync console: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0

