"""Record a session's frames to JSONL, and replay a recording against an agent.

A recording is one JSON object a line: ``{"ts_ns", "direction": "in"|"out", "data"}``
with `data` the frame as it crossed the wire ("out" = platform -> agent). The captured
platform fixture format ``{"frames": [{"event", "data"}]}`` (camelCase fields) reads too.
A replay plays the recorded caller's lines to an agent on the simulator and reports where
the agent's replies now differ from the recorded ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicesync._recording import jsonl_line
from voicesync.scenarios._spec import AgentSource, Scenario


@dataclass(frozen=True)
class RecordedFrame:
    ts_ns: int
    direction: str
    data: dict[str, Any] | None

    @property
    def event(self) -> str | None:
        value = self.data.get("event") if self.data else None
        return value if isinstance(value, str) else None

    @property
    def call_id(self) -> str | None:
        if not self.data:
            return None
        value = self.data.get("call_id", self.data.get("session_id"))
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)


def write_jsonl(path: str | Path, frames: Iterable[Any]) -> Path:
    """Write frames (the simulator's `Frame`s, or anything with ts_ns/direction/data)."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for frame in frames:
            out.write(jsonl_line(frame.ts_ns, frame.direction, frame.data))
    return target


def read_recording(path: str | Path) -> list[RecordedFrame]:
    """A JSONL recording, or a captured `{"frames": [...]}` JSON file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)  # one JSON document: the captured format
    except ValueError:
        doc = None  # several: JSONL
    if isinstance(doc, dict) and isinstance(doc.get("frames"), list):
        return [_captured(i, item) for i, item in enumerate(doc["frames"])]
    frames = []
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            frames.append(RecordedFrame(int(raw.get("ts_ns", 0)), str(raw.get("direction", "out")),
                                        raw.get("data")))
    return frames


def _captured(index: int, item: dict[str, Any]) -> RecordedFrame:
    data = {_snake(k): v for k, v in dict(item.get("data") or {}).items()}
    data["event"] = item.get("event", data.get("event"))
    return RecordedFrame(index, "out", data)


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


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
