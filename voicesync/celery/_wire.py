"""What the socket process and the workers agree on: Redis key names, frames, the task payload.

Tokens travel worker -> socket process on one Redis Stream per `Offloader` (the "up" stream:
``<ns>:up:<relay id>``); aborts travel socket process -> worker on one small stream per reply
(``<ns>:ctl:<message id>``). Streams rather than pub/sub: on loopback both deliver in 0.3 to
0.5 ms at the median (``bench/celery_transport.py``), but a stream keeps what was written
while nobody was reading, so a worker that starts late still sees an abort sent while its
task was queued, and a relay that reconnects to Redis resumes where it stopped instead of
losing tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicesync.errors import VoiceSyncError
from voicesync.events import Turn

if TYPE_CHECKING:
    from voicesync.call import Call

PAYLOAD_VERSION = 1
CTL_TTL = 3600  # seconds a reply's control stream outlives its last write
CLAIM_TTL = 86400  # seconds a task's claim is kept: longer than any redelivery
UP_MAXLEN = 100_000  # the up stream is trimmed (approximately) to this many entries

# Why the socket process aborted an offloaded reply (ReplyStream.abort_reason).
LOST, UNSTARTED, CLOSED, UNAVAILABLE = (
    "offload.lost", "offload.unstarted", "offload.closed", "offload.unavailable")

# Frame kinds (field "k"); "m" is the reply's message id, "t" the text, the abort reason or
# the call command (JSON).
START, BEAT, CHUNK, END, ABORT, COMMAND = "start", "beat", "chunk", "end", "abort", "cmd"


class OffloadError(VoiceSyncError):
    """Handing a turn to a worker failed."""


class OffloadUnavailableError(OffloadError):
    """Redis (or the Celery broker) cannot be reached, so the turn was not handed off.

    Check the URL and that Redis runs; or build the `Offloader` with ``fallback=True`` to
    answer such turns in this process instead.
    """


def up_key(namespace: str, relay_id: str) -> str:
    return f"{namespace}:up:{relay_id}"


def ctl_key(namespace: str, message_id: str) -> str:
    return f"{namespace}:ctl:{message_id}"


def claim_key(namespace: str, message_id: str) -> str:
    return f"{namespace}:claim:{message_id}"


def frame(message_id: str, kind: str, text: str = "") -> dict[str, str]:
    return {"m": message_id, "k": kind, "t": text}


def decode(fields: Mapping[Any, Any]) -> tuple[str, str, str]:
    """(message id, kind, text) of a stream entry read with ``decode_responses=True``."""
    return str(fields.get("m", "")), str(fields.get("k", "")), str(fields.get("t", ""))


def entries(result: Any) -> Iterator[tuple[str, tuple[str, str, str]]]:
    """(entry id, decoded frame) of each entry an XREAD (``[[key, entries]]``) or an
    XRANGE (``entries``) returned."""
    if not result:
        return
    pairs = result if isinstance(result[0][1], Mapping) else (
        entry for _key, batch in result for entry in batch)
    for entry_id, fields in pairs:
        yield str(entry_id), decode(fields)


def xread_reply(raw: Any) -> list[Any]:
    """An XREAD's raw reply (RESP2 list or RESP3 map) as redis-py's ``xread`` returns it."""
    pairs = raw.items() if isinstance(raw, dict) else raw or ()
    return [[key, [(entry_id, dict(zip(fields[::2], fields[1::2], strict=True)))
                   for entry_id, fields in batch]] for key, batch in pairs]


def coalesced(replies: Any) -> Iterator[tuple[str, tuple[str, str, str]]]:
    """The frames of one XREAD, with each run of chunks of one reply joined into one chunk:
    the same text, one ReplyStream.write and one frame to the platform instead of several
    (a worker's burst of tokens arrives in one read)."""
    run: tuple[str, str, list[str]] | None = None  # (last entry id, message id, texts)
    for entry_id, (message_id, kind, text) in entries(replies):
        if kind == CHUNK and run is not None and run[1] == message_id:
            run[2].append(text)
            run = (entry_id, message_id, run[2])
            continue
        if run is not None:
            yield run[0], (run[1], CHUNK, "".join(run[2]))
            run = None
        if kind == CHUNK:
            run = (entry_id, message_id, [text])
        else:
            yield entry_id, (message_id, kind, text)
    if run is not None:
        yield run[0], (run[1], CHUNK, "".join(run[2]))


@dataclass(frozen=True)
class CallInfo:
    """What a worker knows about the call it answers: a snapshot taken when the turn was
    handed off. A reply task gets it as a `RemoteCall`, which adds the call's commands."""

    id: str
    agent_id: str
    from_: str = ""
    to: str = ""
    direction: str = "inbound"
    transport: str = "unknown"
    language: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    transcript: tuple[Mapping[str, str], ...] = ()

    @classmethod
    def of(cls, call: Call) -> CallInfo:
        return cls(id=call.id, agent_id=call.agent_id, from_=call.from_, to=call.to,
                   direction=call.direction, transport=call.transport,
                   language=call.language, metadata=dict(call.metadata),
                   transcript=tuple(call.transcript))


def turn_to_json(turn: Turn) -> dict[str, Any]:
    return {"name": turn.name, "call_id": turn.call_id, "raw": dict(turn.raw), "id": turn.id,
            "message_id": turn.message_id, "text": turn.text, "confidence": turn.confidence,
            "probability": turn.probability, "latency_ms": turn.latency_ms,
            "language": turn.language}


def turn_from_json(data: Mapping[str, Any]) -> Turn:
    return Turn(**dict(data))


def call_to_json(info: CallInfo) -> dict[str, Any]:
    return {"id": info.id, "agent_id": info.agent_id, "from_": info.from_, "to": info.to,
            "direction": info.direction, "transport": info.transport,
            "language": info.language, "metadata": dict(info.metadata),
            "transcript": [m if isinstance(m, dict) else dict(m) for m in info.transcript]}


def call_from_json(data: Mapping[str, Any]) -> CallInfo:
    fields = dict(data)
    fields["transcript"] = tuple(fields.get("transcript") or ())
    return CallInfo(**fields)


@dataclass(frozen=True)
class Payload:
    """The first argument of every reply task (sent as JSON by Celery)."""

    namespace: str
    up: str
    message_id: str
    heartbeat: float
    turn: Turn
    call: CallInfo

    def to_json(self) -> dict[str, Any]:
        return {"v": PAYLOAD_VERSION, "ns": self.namespace, "up": self.up,
                "message_id": self.message_id, "heartbeat": self.heartbeat,
                "turn": turn_to_json(self.turn), "call": call_to_json(self.call)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payload:
        if data.get("v") != PAYLOAD_VERSION:
            raise OffloadError(
                f"this worker's voicesync reads reply payload version {PAYLOAD_VERSION}, got "
                f"{data.get('v')!r}: run the same voicesync version in the socket process "
                "and the workers")
        return cls(namespace=str(data["ns"]), up=str(data["up"]),
                   message_id=str(data["message_id"]), heartbeat=float(data["heartbeat"]),
                   turn=turn_from_json(data["turn"]), call=call_from_json(data["call"]))
