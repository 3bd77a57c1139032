"""Reading a call back from the simulator's frame record: what the caller heard, and timings.

Everything here is a pure function of the frames, so it measures a live run, a recording
and a replay alike. Timestamps are the simulator clock's: under the virtual clock the
simulated speech costs nothing, so a latency is the agent's own (its thinking, its
socket round trip), not the time the bot spent talking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class FrameLike(Protocol):
    @property
    def ts_ns(self) -> int: ...
    @property
    def direction(self) -> str: ...
    @property
    def data(self) -> dict[str, Any] | None: ...


@dataclass
class Spoken:
    """One bot message as the caller heard it: the words actually spoken."""

    message_id: str
    in_reply_to: str = ""
    words: list[str] = field(default_factory=list)
    word_ns: list[int] = field(default_factory=list)
    word_len_ns: list[int] = field(default_factory=list)
    interrupted: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class Turn:
    """A caller turn as the platform closed it (`turn.end`)."""

    turn_id: int
    message_id: str
    text: str
    start_ns: int
    end_ns: int
    barge_in_ns: int | None  # when it cut the bot off, if it did


@dataclass(frozen=True)
class Timing:
    """One measured interval, and what it was about (for a failure message)."""

    what: str
    ms: float
    after: str = ""  # the words heard after a barge-in, if the bot talked past it


Event = tuple[int, str, dict[str, Any]]  # (ts_ns, direction, data)


def _events(frames: Iterable[FrameLike], call_id: str | None) -> list[Event]:
    out = []
    for frame in frames:
        data = frame.data
        if data is None:
            continue
        if call_id is not None and data.get("call_id", data.get("session_id")) != call_id:
            continue
        out.append((frame.ts_ns, frame.direction, data))
    return out


def heard(frames: Iterable[FrameLike], call_id: str | None = None) -> list[Spoken]:
    """Every bot message the caller heard (at least started), in order."""
    replies: dict[str, str] = {}
    spoken: dict[str, Spoken] = {}
    for ts, direction, data in _events(frames, call_id):
        event = data.get("event")
        mid = str(data.get("message_id", ""))
        if direction == "in" and event in ("bot.reply", "bot.reply.stream") and mid:
            replies.setdefault(mid, str(data.get("in_reply_to") or ""))
        elif direction == "out" and event == "bot.speaking":
            spoken[mid] = Spoken(mid, replies.get(mid, ""))
        elif direction == "out" and event == "bot.word" and mid in spoken:
            msg = spoken[mid]
            msg.words.append(str(data.get("word", "")))
            msg.word_ns.append(ts)
            length = float(data.get("end_time", 0)) - float(data.get("start_time", 0))
            msg.word_len_ns.append(int(max(0.0, length) * 1e9))
        elif direction == "out" and event == "bot.interrupted" and mid in spoken:
            spoken[mid].interrupted = True
    return list(spoken.values())


def turns(frames: Iterable[FrameLike], call_id: str | None = None) -> list[Turn]:
    """Every caller turn, with the moment it barged in on the bot, if it did."""
    result: list[Turn] = []
    started: dict[int, int] = {}
    barged: dict[int, int] = {}
    last_start: tuple[int, int] | None = None
    for ts, direction, data in _events(frames, call_id):
        if direction != "out":
            continue
        event = data.get("event")
        if event == "speech.started":
            last_start = (int(data.get("turn_id", 0)), ts)
            started.setdefault(last_start[0], ts)
        elif (event == "bot.interrupted" and data.get("reason") == "user_spoke"
              and last_start is not None):
            barged.setdefault(last_start[0], last_start[1])
        elif event == "turn.end":
            n = int(data.get("turn_id", 0))
            result.append(Turn(n, str(data.get("message_id", "")), str(data.get("text", "")),
                               started.get(n, ts), ts, barged.get(n)))
    return result


def first_word_latencies(frames: list[Any], call_id: str | None = None) -> list[Timing]:
    """For every turn the bot answered: `turn.end` -> its first spoken word."""
    messages = heard(frames, call_id)
    timings = []
    all_turns = turns(frames, call_id)
    for i, turn in enumerate(all_turns):
        until = all_turns[i + 1].end_ns if i + 1 < len(all_turns) else None
        firsts = [msg.word_ns[0] for msg in messages
                  if msg.word_ns and msg.word_ns[0] >= turn.end_ns
                  and (until is None or msg.word_ns[0] < until)]
        if firsts:
            timings.append(Timing(f'turn {turn.turn_id} "{_short(turn.text)}" -> first spoken word',
                                  (min(firsts) - turn.end_ns) / 1e6))
    return timings


def barge_in_silences(frames: list[Any], call_id: str | None = None) -> list[Timing]:
    """For every barge-in: how long the bot kept talking over the caller.

    The bot is silent once the cut message stops, unless it goes on speaking anything but
    its answer to the barge-in line (a message not replying to it): those words count as
    talking past the barge-in, up to the end of the last of them.
    """
    messages = heard(frames, call_id)
    timings = []
    all_turns = turns(frames, call_id)
    for i, turn in enumerate(all_turns):
        if turn.barge_in_ns is None:
            continue
        start = turn.barge_in_ns
        until = all_turns[i + 1].start_ns if i + 1 < len(all_turns) else None
        end = start
        past: list[str] = []
        for msg in messages:
            if msg.in_reply_to == turn.message_id:
                continue
            for word, ts, length in zip(msg.words, msg.word_ns, msg.word_len_ns, strict=True):
                if ts > start and (until is None or ts < until):
                    past.append(word)
                    end = max(end, ts + length)
        timings.append(Timing(f'barge-in "{_short(turn.text)}" -> bot silent',
                              (end - start) / 1e6, " ".join(past)))
    return timings


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
