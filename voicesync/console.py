"""`python -m voicesync console path/to/agent.py`: talk to your own agent from the terminal.

The agent runs against the local simulator (your file is imported with ``PINECALL_URL``
pointing there, so a module-level ``voicesync.Client()`` reaches it too). You type as the
caller; the bot's words appear at speaking pace; typing while it speaks is a barge-in.

On a terminal with prompt_toolkit (the ``console`` extra) the line you type stays on its own
prompt line at the bottom, the bot's line being spoken just above it, and the first key you
press while the bot speaks cuts it off. Without a terminal (piped input) or without
prompt_toolkit, input is read line by line and Enter is what cuts the bot off.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from voicesync._narration import StreamPrinter
from voicesync.agent import Agent
from voicesync.client import Client
from voicesync.errors import ConfigurationError

HELP = ("Type what the caller says and press Enter; typing while the bot speaks cuts it off.\n"
        "/press 12  keypad digits    /hangup  end the call (also Ctrl-D)")
PROMPT = "caller: "  # the typed line looks like the transcript line it becomes


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


def _act(call: Any, text: str, show: Callable[[str], None]) -> bool:
    """Do what one typed line says; False when the conversation is over."""
    if text in ("/hangup", "/quit"):
        return False
    if text.startswith("/press"):
        digits = "".join(c for c in text[len("/press"):] if c in "0123456789*#")
        if digits:
            call.press(digits)
        else:
            show("usage: /press DIGITS, e.g. /press 12#")
    elif text.startswith("/"):
        show(HELP)
    elif text:
        try:
            call.say(text, timeout=60)  # a barge-in if the bot is still speaking
        except RuntimeError:
            return False  # the call ended meanwhile
    return True


def _read_lines(lines: queue.Queue[str | None]) -> None:
    """Stdin reader thread: the main thread stays free to notice the bot hanging up."""
    try:
        for line in sys.stdin:
            lines.put(line.rstrip("\n"))
    finally:
        lines.put(None)


def converse(call: Any) -> None:
    """Plain mode: feed lines read from stdin to the call until /hangup, end of input, or
    its end. Enter (not a keystroke) is what cuts the bot off here.
    """
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(lines,), name="voicesync-console-stdin",
                     daemon=True).start()
    while call.status == "active":
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None or not _act(call, line.strip(), lambda text: print(text, flush=True)):
            return


class PromptConsole:
    """Terminal mode, on prompt_toolkit: a `Printer` for the narrator and the input loop.

    Finished lines are printed above the prompt; the bot line being spoken is the first
    line of the prompt's message, so it grows word by word above what is being typed and
    never runs into it. Narrator threads call `line`/`speaking`/`ended`; `converse` runs on
    the main thread (prompt_toolkit's own loop runs there).
    """

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession

        self._spoken = ""  # the bot line being spoken, shown above the prompt
        self._call: Any = None
        self._ended = threading.Event()
        self._session: PromptSession[str] = PromptSession(
            message=self._message, erase_when_done=True)  # the echoed transcript line stays
        self._session.default_buffer.on_text_changed += self._typed

    # -- Printer (narrator threads) ------------------------------------------------------

    def line(self, text: str) -> None:
        self._spoken = ""
        print(text, flush=True)  # patch_stdout puts it above the prompt
        self._session.app.invalidate()

    def speaking(self, text: str) -> None:
        self._spoken = text
        self._session.app.invalidate()  # thread-safe: a redraw on prompt_toolkit's loop

    def ended(self) -> None:
        self._ended.set()
        app = self._session.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(self._exit_if_ended)

    # -- the prompt (main thread) ---------------------------------------------------------

    def converse(self, call: Any) -> None:
        """Prompt for caller lines until /hangup, Ctrl-D, or the call's end."""
        self._call = call
        while call.status == "active" and not self._ended.is_set():
            try:
                text = self._session.prompt(pre_run=self._exit_if_ended)
            except EOFError:
                return
            if not _act(call, text.strip(), lambda text: print(text, flush=True)):
                return

    def _message(self) -> str:
        return f"{self._spoken}\n{PROMPT}" if self._spoken else PROMPT

    def _typed(self, buffer: Any) -> None:
        """A keystroke while the bot speaks: the caller started talking (a barge-in)."""
        if self._call is not None and buffer.text.strip() and self._call.speaking:
            self._call.start_speaking()

    def _exit_if_ended(self) -> None:
        app = self._session.app
        if (self._ended.is_set() and app.is_running and app.future is not None
                and not app.future.done()):
            app.exit(exception=EOFError())


def terminal_console() -> PromptConsole | None:
    """A PromptConsole when stdin and stdout are a terminal and prompt_toolkit is installed."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    try:
        return PromptConsole()
    except ImportError:
        return None  # the plain mode still works; the `console` extra adds prompt_toolkit


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="voicesync console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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

    ui = terminal_console()
    try:
        with contextlib.ExitStack() as stack:
            if ui is not None:
                from prompt_toolkit.patch_stdout import patch_stdout

                stack.enter_context(patch_stdout(raw=True))
            session = stack.enter_context(
                Session(local=True, words_per_second=args.words_per_second, timeout=60))
            _talk(session, _pick(load(args.target), args.agent), args, ui)
    except ConfigurationError as exc:
        print(f"voicesync console: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _talk(session: Any, agent: Agent, args: argparse.Namespace, ui: PromptConsole | None) -> None:
    print(f"voicesync console: calling agent {agent.id!r} on the local simulator.\n{HELP}\n",
          flush=True)
    # On a terminal the typed line is erased on Enter, so the transcript echoes it; piped
    # input is not shown by the terminal either. Only a plain terminal echoes by itself.
    echo = ui is not None or not sys.stdin.isatty()
    printer = ui or StreamPrinter(sys.stdout)
    try:
        with session.open_call(agent, from_=args.from_, to=args.to, echo_caller=echo,
                               printer=printer) as call:
            (ui.converse if ui is not None else converse)(call)
    finally:
        if agent.client is not None and agent.client is not session.client:
            agent.client.close()  # the file's own client, pointed at the simulator
