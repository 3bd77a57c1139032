"""Record a session's frames to JSONL, and replay a recording against an agent.

A recording is one JSON object a line: ``{"ts_ns", "direction": "in"|"out", "data"}``
with `data` the frame as it crossed the wire ("out" = platform -> agent). The captured
platform fixture format ``{"frames": [{"event", "data"}]}`` (camelCase fields) reads too.
A replay plays the recorded caller's lines to an agent on the simulator and reports where
the agent's replies now differ from the recorded ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicesync.scenarios._jsonl import read_recording
from voicesync.scenarios._spec import AgentSource, Scenario


@dataclass
class Exchange:
    """One recorded caller line (None: before the first, the greeting) and the bot's replies."""

    line: str | None
    replies: list[str] = field(default_factory=list)
    barge_after: int | None = None  # the line cut the bot off after this many words


def exchanges(frames: Sequence[Any]) -> list[Exchange]:
    """The conversation in a recording: each caller turn and the bot messages confirmed
    after it, each message once (a platform may send a frame twice)."""
    result = [Exchange(None)]
    seen: set[tuple[str, str]] = set()
    cut: int | None = None
    for frame in frames:
        event = frame.event
        if (frame.direction == "out" and event == "bot.interrupted"
                and frame.get("reason") == "user_spoke"):
            cut = int(frame.get("words_spoken", 0))
        if frame.direction != "out" or event not in ("turn.end", "message.confirmed"):
            continue
        key = (str(event), str(frame.get("message_id") or frame.get("text")))
        if key in seen:
            continue
        seen.add(key)
        if event == "turn.end":
            result.append(Exchange(str(frame.get("text", "")), barge_after=cut))
            cut = None
        elif frame.get("text"):
            result[-1].replies.append(str(frame.get("text")))
    return result


@dataclass(frozen=True)
class Divergence:
    """Where the agent's replies now differ from the recording."""

    turn: int  # 0 = the greeting
    line: str | None
    recorded: list[str]
    now: list[str]

    def __str__(self) -> str:
        what = "the greeting" if self.line is None else f'turn {self.turn} "{self.line}"'
        return f"{what}: recorded {self.recorded}, now {self.now}"


@dataclass
class Replay:
    """A replay's run (`result`) and its divergences from the recording."""

    result: Any
    divergences: list[Divergence]

    @property
    def ok(self) -> bool:
        return self.result.ok and not self.divergences


def replay(recording: str | Path | Sequence[Any], agent: AgentSource, *,
           compare: bool = True, **scenario: Any) -> Replay:
    """Play a recording's caller lines to `agent`; report where its replies diverge.

    `scenario` keywords go to `Scenario` (words_per_second, stand_in, timeout...).
    Compares whole replies, ignoring case and spacing; `compare=False` only replays.
    """
    frames = read_recording(recording) if isinstance(recording, (str, Path)) else recording
    script = exchanges(frames)
    scenario.setdefault("greeting", bool(script[0].replies))
    built = Scenario(agent, name=scenario.pop("name", "replay"), **scenario)
    for exchange in script[1:]:
        if exchange.barge_after is None:
            built.say(exchange.line or "")
        else:  # cut the bot where the recorded caller did
            built.barge_in(exchange.line or "", after_words=exchange.barge_after or None,
                           before_first_word=exchange.barge_after == 0)
    result = built.run()
    divergences = []
    if compare:
        now = exchanges(result.frames)
        now += [Exchange(None)] * (len(script) - len(now))
        for turn, (old, new) in enumerate(zip(script, now, strict=False)):
            if [_norm(r) for r in old.replies] != [_norm(r) for r in new.replies]:
                divergences.append(Divergence(turn, old.line, old.replies, new.replies))
    return Replay(result, divergences)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
