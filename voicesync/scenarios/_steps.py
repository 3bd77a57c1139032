"""A scenario's parts as plain data: the caller's steps and what must hold afterwards.

`_spec.Scenario` holds them; `_caller.Caller` plays the steps; `_run` checks `Expect`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voicesync.errors import ConfigurationError


@dataclass(frozen=True)
class Say:
    """One caller line. With `wait`, the caller then waits for the bot to answer and be silent."""

    text: str
    wait: bool = True


@dataclass(frozen=True)
class BargeIn:
    """Talk over the bot's next (or current) message at an exact point of its speech.

    Exactly one of: `after_words` spoken words, `after_ms` of its speech,
    `before_first_word` (as soon as it starts), or `during_tool` (once the agent ran a
    tool the stand-in model asked for, before the model's answer with its result). The
    point is exact: the simulator triggers it under its lock as the word is spoken (or
    as the model is asked to go on), so it never races the speech.
    """

    text: str
    after_words: int | None = None
    after_ms: float | None = None
    before_first_word: bool = False
    wait: bool = True
    during_tool: bool = False


@dataclass(frozen=True)
class Hear:
    """Wait for the bot's next message (unless one came since the last caller step) and
    require that the caller heard `text` in it (case-insensitive substring)."""

    text: str


@dataclass(frozen=True)
class Silence:
    """The caller says nothing for `seconds` (virtual time: skipped at once)."""

    seconds: float


@dataclass(frozen=True)
class Press:
    """Keypad digits; with `wait`, then wait for the bot's answer."""

    digits: str
    wait: bool = True


@dataclass(frozen=True)
class Hangup:
    """The caller hangs up."""


@dataclass(frozen=True)
class WaitEnd:
    """Wait for the agent to end the call (hang up, transfer)."""


@dataclass(frozen=True)
class Do:
    """A Python hook: `fn(ctx)` with ctx a `voicesync.scenarios.Context`.

    A string names a function in the agent's module (or "file.py:name", "module:name").
    """

    fn: Callable[[Any], object] | str


Step = Say | BargeIn | Hear | Silence | Press | Hangup | WaitEnd | Do


@dataclass
class Expect:
    """What must hold once the steps are done. Unset fields are not checked."""

    heard: list[str] = field(default_factory=list)  # in this order, in the words spoken
    not_heard: list[str] = field(default_factory=list)
    outcome: str | None = None  # active, caller_hangup, agent_hangup, transferred, rejected...
    transferred_to: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # {role, contains}
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {name, args (subset)}
    first_word_ms: float | None = None  # every turn -> first spoken word of the answer
    barge_in_silent_ms: float | None = None  # every barge-in -> the bot is silent
    judge: list[str] = field(default_factory=list)  # rubric lines for the judge
    digits: str | None = None


def check_barge(step: BargeIn) -> None:
    chosen = [step.after_words is not None, step.after_ms is not None, step.before_first_word,
              step.during_tool]
    if sum(chosen) > 1:
        raise ConfigurationError(
            "a barge-in takes one of after_words, after_ms, before_first_word or during_tool")
