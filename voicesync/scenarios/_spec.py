"""What a scenario is: the caller's steps and what must hold afterwards, as plain data.

A scenario is built in Python (`Scenario(...).say(...).barge_in(...)`) or loaded from a
YAML file (`voicesync.scenarios.load`); both give the same `Scenario`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicesync.errors import ConfigurationError
from voicesync.scenarios._run import Result, run
from voicesync.scenarios._steps import (
    BargeIn,
    Do,
    Expect,
    Hangup,
    Hear,
    Press,
    Say,
    Silence,
    Step,
    WaitEnd,
    check_barge,
)

AgentSource = str | Callable[[], Any]


@dataclass
class Scenario:
    """A scripted call to an agent and what must hold afterwards.

    Args:
        agent: a factory returning a fresh `voicesync.Agent` (an Agent subclass is one),
            or a reference "path/to/file.py:Name" / "package.module:Name".
        name: shown in reports (default: from the file, else "scenario").
        virtual_time: jump over simulated speech (default); False runs in real time.
        words_per_second: the simulated bot's pace (in virtual time it costs nothing).
        stand_in: the stand-in model's replies, in order (strings or mappings
            ``{text, tool_calls: [{name, args}]}``), for agents built on `voicesync.llm`.
        call: how the call is placed: ``{from, to, direction: inbound|outbound,
            greeting, metadata}``; outbound makes the agent dial `to`.
        greeting: whether to wait for the bot to speak first (default: the agent has a
            greeting, or an outbound call has one).
        timeout: the longest wait for any one thing, in real seconds.

    Build it on one thread; once built, `run()` it from any thread, as often and as
    concurrently as you like (each run is independent).
    """

    agent: AgentSource
    name: str = "scenario"
    steps: list[Step] = field(default_factory=list)
    expect: Expect = field(default_factory=Expect)
    virtual_time: bool = True
    words_per_second: float = 2.5
    stand_in: list[Any] = field(default_factory=list)
    call: dict[str, Any] = field(default_factory=dict)
    agent_args: dict[str, Any] = field(default_factory=dict)
    greeting: bool | None = None
    timeout: float = 10.0
    path: Path | None = None  # the file it came from; agent paths are relative to it

    # -- building it in Python ------------------------------------------------------------

    def say(self, text: str, *, wait: bool = True) -> Scenario:
        self.steps.append(Say(text, wait))
        return self

    def barge_in(self, text: str, *, after_words: int | None = None,
                 after_ms: float | None = None, before_first_word: bool = False,
                 during_tool: bool = False, wait: bool = True) -> Scenario:
        step = BargeIn(text, after_words, after_ms, before_first_word, wait, during_tool)
        check_barge(step)
        self.steps.append(step)
        return self

    def hear(self, text: str) -> Scenario:
        self.steps.append(Hear(text))
        return self

    def silence(self, seconds: float) -> Scenario:
        self.steps.append(Silence(seconds))
        return self

    def press(self, digits: str, *, wait: bool = True) -> Scenario:
        self.steps.append(Press(digits, wait))
        return self

    def hangup(self) -> Scenario:
        self.steps.append(Hangup())
        return self

    def wait_end(self) -> Scenario:
        self.steps.append(WaitEnd())
        return self

    def do(self, fn: Callable[[Any], object]) -> Scenario:
        self.steps.append(Do(fn))
        return self

    def expecting(self, **fields: Any) -> Scenario:
        """Set `Expect` fields: ``.expecting(outcome="caller_hangup", first_word_ms=300)``."""
        for key, value in fields.items():
            if not hasattr(self.expect, key):
                raise ConfigurationError(f"unknown expectation {key!r}")
            setattr(self.expect, key, value)
        return self

    def run(self) -> Result:
        """Run it now and return its `Result` (see `voicesync.scenarios.run`).

        Any thread; blocks until the call is over (milliseconds on the virtual clock).
        """
        return run(self)


# -- from a mapping (a YAML document) ----------------------------------------------------

_STEP_KEYS = ("say", "barge_in", "hear", "silence", "press", "hangup", "wait_end")


def from_mapping(data: Mapping[str, Any], *, path: Path | None = None,
                 hooks: Mapping[str, Callable[[Any], object]] | None = None) -> Scenario:
    """A `Scenario` from a parsed YAML document (see docs/testing.md for the format)."""
    where = f"{path}: " if path is not None else ""
    if not isinstance(data, Mapping) or "agent" not in data:
        raise ConfigurationError(f"{where}a scenario needs `agent:` (e.g. ../quickstart.py:Echo)")
    known = {"name", "agent", "agent_args", "steps", "expect", "virtual_time",
             "words_per_second", "stand_in", "call", "greeting", "timeout", "description"}
    unknown = set(data) - known
    if unknown:
        raise ConfigurationError(f"{where}unknown scenario keys {sorted(unknown)}")
    scenario = Scenario(
        agent=str(data["agent"]), name=str(data.get("name") or (path.stem if path else "scenario")),
        virtual_time=bool(data.get("virtual_time", True)),
        words_per_second=float(data.get("words_per_second", 2.5)),
        stand_in=list(data.get("stand_in") or []), call=dict(data.get("call") or {}),
        agent_args=dict(data.get("agent_args") or {}), greeting=data.get("greeting"),
        timeout=float(data.get("timeout", 10.0)), path=path)
    for raw in data.get("steps") or []:
        scenario.steps.append(_step(raw, where, hooks or {}))
    expect = data.get("expect") or {}
    if not isinstance(expect, Mapping):
        raise ConfigurationError(f"{where}`expect:` must be a mapping")
    for key, value in expect.items():
        if not hasattr(scenario.expect, key):
            raise ConfigurationError(f"{where}unknown expectation {key!r}")
        setattr(scenario.expect, key, _as_list(value) if isinstance(
            getattr(scenario.expect, key), list) else value)
    return scenario


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def _step(raw: Any, where: str, hooks: Mapping[str, Callable[[Any], object]]) -> Step:
    if raw in ("hangup", "wait_end"):
        raw = {raw: True}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}a step is a mapping like `- say: Hello`, not {raw!r}")
    kinds = [k for k in (*_STEP_KEYS, "python") if k in raw]
    if len(kinds) != 1:
        raise ConfigurationError(
            f"{where}a step needs exactly one of {', '.join(_STEP_KEYS)}, python: {dict(raw)}")
    kind, value = kinds[0], raw[kinds[0]]
    wait = bool(raw.get("wait", True))
    if kind == "say":
        return Say(str(value), wait)
    if kind == "barge_in":
        step = BargeIn(str(value), _opt_int(raw.get("after_words")),
                       _opt_float(raw.get("after_ms")), bool(raw.get("before_first_word")), wait,
                       bool(raw.get("during_tool")))
        check_barge(step)
        return step
    if kind == "hear":
        return Hear(str(value))
    if kind == "silence":
        return Silence(float(value))
    if kind == "press":
        return Press(str(value), wait)
    if kind == "hangup":
        return Hangup()
    if kind == "wait_end":
        return WaitEnd()
    return Do(hooks.get(str(value), str(value)))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
