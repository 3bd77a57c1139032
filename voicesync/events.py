"""The frozen objects handlers receive, one class per kind of server event.

Every event keeps the frame it came from in `raw` (a read-only mapping), so a field
the platform adds later is readable before voicesync learns about it. Events the
SDK has no class for arrive as a plain `Event` under their wire name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

__all__ = [
    "BotFinished",
    "BotInterrupted",
    "BotSpeaking",
    "BotWord",
    "ChannelEvent",
    "DTMFReceived",
    "Event",
    "EventName",
    "MessageConfirmed",
    "ReplyRejected",
    "SpeechEvent",
    "ToolCall",
    "ToolCallRequest",
    "Turn",
    "TurnSignal",
    "UserMessage",
    "UserSpeaking",
]

EventName: TypeAlias = Literal[
    # client
    "connected", "disconnected", "reconnecting", "error",
    # agent
    "ready", "channel.added", "channel.configured", "channel.removed", "agent.displaced",
    "call.started", "call.ended", "call.ringing", "call.dialing", "call.error",
    "session.paused", "session.resumed",
    # call
    "speech.started", "speech.ended", "user.speaking", "user.message",
    "eager.turn", "turn.pause", "turn.end", "turn.resumed", "turn.continued",
    "bot.speaking", "bot.word", "bot.finished", "bot.interrupted", "message.confirmed",
    "reply.rejected", "call.held", "call.unheld", "call.muted", "call.unmuted",
    "call.forwarded", "call.dtmf_sent", "call.dtmf_received", "call.updated",
    "llm.before", "llm.tool_call", "llm.preparing_timeout", "skill.loaded", "skill.unloaded",
    "session.idle_warning", "session.timeout", "audio.metrics", "memory.ops",
    "credits.rejected", "credits.exhausted", "call.recording", "message.aborted",
    "call.rejected", "call.routed", "call.route_failed",
    # chat and WhatsApp sessions
    "chat.started", "whatsapp.started", "chat.message", "chat.response", "llm.chat.started",
    "llm.chat.chunk", "llm.chat.ended", "llm.chat.error", "whatsapp.session_started",
    "whatsapp.message", "whatsapp.response", "whatsapp.status", "whatsapp.session_ended",
    # chatting with an agent as its user (docs/protocol.md §4.4)
    "llm.chat.token", "llm.chat.done", "llm.chat.tool_call", "llm.chat.tool_result",
]

#: Every name `on()` accepts without ``strict=False`` (`EventName` as a set).
EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))
#: Events of the client's connection: only `client.on()` hears them.
CLIENT_EVENTS = frozenset({"connected", "disconnected", "reconnecting", "error",
                           "llm.chat.token", "llm.chat.done", "llm.chat.tool_call",
                           "llm.chat.tool_result"})
#: Events of an agent rather than of one call: `call.on()` never hears them.
AGENT_EVENTS = frozenset({
    "ready", "channel.added", "channel.configured", "channel.removed", "agent.displaced",
    "call.started", "call.ringing", "call.dialing", "call.rejected", "session.paused",
    "session.resumed", "whatsapp.session_started", "chat.started", "whatsapp.started",
})
#: Positional arguments a handler of these events receives (others: ``(event, call)``
#: for a call's events, ``(event)`` for an agent's).
HANDLER_ARGS: dict[str, tuple[str, ...]] = {
    "connected": (), "disconnected": ("reason",), "reconnecting": ("attempt", "delay"),
    "error": ("exc",), "ready": (), "call.started": ("call",), "chat.started": ("call",),
    "whatsapp.started": ("call",), **dict.fromkeys((
        "llm.chat.token", "llm.chat.done", "llm.chat.tool_call", "llm.chat.tool_result"),
        ("event",)),
    "call.ended": ("call", "reason"), "call.ringing": ("ringing_call",),
    "agent.displaced": ("event",), "channel.added": ("event",),
    "channel.configured": ("event",), "channel.removed": ("event",),
    "session.paused": ("event",), "session.resumed": ("event",),
    **dict.fromkeys((
        "speech.started", "speech.ended", "user.speaking", "user.message", "eager.turn",
        "turn.pause", "turn.end", "turn.resumed", "turn.continued", "bot.speaking", "bot.word",
        "bot.finished", "bot.interrupted", "message.confirmed", "reply.rejected",
        "call.updated", "call.error", "llm.tool_call", "llm.before", "skill.loaded",
        "skill.unloaded", "call.held", "call.unheld", "call.muted", "call.unmuted",
        "call.forwarded", "call.dtmf_sent", "call.dtmf_received", "chat.message",
        "chat.response", "llm.chat.chunk", "llm.chat.error", "whatsapp.message",
        "whatsapp.response", "whatsapp.status", "whatsapp.session_ended"), ("event", "call")),
}


@dataclass(frozen=True)
class Event:
    """A server event: its wire `name`, the call it belongs to (if any) and the raw frame."""

    name: str
    call_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field of the raw frame (wire key), e.g. ``event.get("muted_transcript")``."""
        return self.raw.get(key, default)


@dataclass(frozen=True)
class Turn(Event):
    """The caller finished (`turn.end`) or probably finished (`eager.turn`) speaking.

    `message_id` is the user message a reply must answer (`in_reply_to`); `probability`
    is the turn detector's end-of-turn probability, `confidence` the transcript's.
    """

    id: int
    message_id: str
    text: str
    confidence: float
    probability: float
    latency_ms: float
    language: str | None


@dataclass(frozen=True)
class UserMessage(Event):
    """The final transcript of one caller utterance (`user.message`)."""

    message_id: str
    text: str
    confidence: float
    turn_id: int
    language: str | None


@dataclass(frozen=True)
class UserSpeaking(Event):
    """An interim transcript while the caller speaks (`user.speaking`)."""

    text: str
    confidence: float
    turn_id: int


@dataclass(frozen=True)
class SpeechEvent(Event):
    """Voice activity: `speech.started` / `speech.ended`."""

    turn_id: int
    duration_ms: float


@dataclass(frozen=True)
class TurnSignal(Event):
    """`turn.pause`, `turn.resumed` or `turn.continued` for turn `turn_id`."""

    turn_id: int
    probability: float


@dataclass(frozen=True)
class BotSpeaking(Event):
    """Playback of bot message `message_id` started (`text` is empty for streams)."""

    message_id: str
    text: str


@dataclass(frozen=True)
class BotWord(Event):
    """One word of the bot message, sent as it is spoken."""

    message_id: str
    word: str
    word_index: int


@dataclass(frozen=True)
class BotFinished(Event):
    """Bot message `message_id` played to the end."""

    message_id: str
    duration_ms: float


@dataclass(frozen=True)
class BotInterrupted(Event):
    """Bot message `message_id` was cut short (`reason`: user_spoke, continuation, cancelled...)."""

    message_id: str
    reason: str
    words_spoken: int
    played_ms: float
    last_word: str


@dataclass(frozen=True)
class MessageConfirmed(Event):
    """The final text of bot message `message_id`, as committed to the conversation."""

    message_id: str
    text: str


@dataclass(frozen=True)
class ReplyRejected(Event):
    """A reply answered a user message that is no longer current; it will not be spoken."""

    message_id: str
    in_reply_to: str
    expected_reply_to: str
    reason: str


@dataclass(frozen=True)
class DTMFReceived(Event):
    """The caller pressed `digit`; `digits` are all presses so far."""

    digit: str
    digits: str


@dataclass(frozen=True)
class ToolCallRequest:
    """One tool the server-side model wants run; `arguments` is a JSON string."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCall(Event):
    """One round of tool calls from a server-side model (`llm.tool_call`)."""

    msg_id: str
    tool_calls: tuple[ToolCallRequest, ...]


@dataclass(frozen=True)
class ChannelEvent(Event):
    """A channel acknowledgement: `channel.added` / `.configured` / `.removed`."""

    agent_id: str
    type: str
    ref: str
