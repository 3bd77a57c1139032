"""Call: one live conversation; its commands (docs/protocol.md §7.2) and its state, as snapshots."""

from __future__ import annotations

import logging
import os
import string
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._call_commands import CallCommands
from voicesync._call_state import CallState
from voicesync._handles import Reply, SayHandle, current_reply_to
from voicesync._line_calls import CallLines
from voicesync._listeners import Listeners, Subscribable
from voicesync.errors import CallEndedError, TurnRequiredError
from voicesync.events import Turn
from voicesync.history import History
from voicesync.reply import ReplyStream

if TYPE_CHECKING:
    from voicesync.agent import Agent

__all__ = ["Call", "Reply", "RingingCall", "SayHandle", "new_message_id"]

logger = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_message_id() -> str:
    """A bot message id in the platform's form: ``msg_`` + 12 random [a-z0-9]."""
    # One random read per id, not one per character: an id is made on every turn.
    return "msg_" + "".join([_ID_ALPHABET[b % 36] for b in os.urandom(12)])


class Call(CallState, CallCommands, CallLines, Subscribable):
    """One conversation (phone, WebRTC, chat). Every method may be called from any thread.

    State is written only by voicesync's reader thread, through the methods of
    `CallState` (`_call_state.py`); the properties return snapshots taken under the
    call's lock. Commands on a call that has ended are
    dropped (logged at DEBUG) and report it with a falsy result: False, an unsent
    (falsy, settled) handle, an empty `Reply`, an aborted stream; requests that wait
    for the platform's answer raise CallEndedError (docs/reply-streams.md has the table).
    A call belongs to the connection it started on: nothing it sends can go out on a
    later connection. `on()`/`off()` (from Subscribable) take this call's events only.
    """

    _scope = "call"

    def __init__(self, agent: Agent, call_id: str, frame: Mapping[str, Any]) -> None:
        self.id = call_id
        self.agent = agent
        self._uplink = agent._require_uplink()  # what it may use of its client
        self._transport = self._uplink.port()  # the connection this call lives on
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._ended = threading.Event()
        self.from_ = _codec.text_field(frame, "from")
        self.to = _codec.text_field(frame, "to")
        self.direction = _codec.text_field(frame, "direction") or "inbound"
        transport = _codec.text_field(frame, "transport")
        self.transport = transport or ("webrtc" if call_id.startswith("wrt_") else "unknown")
        metadata = frame.get("metadata")
        self.metadata: Mapping[str, Any] = dict(metadata) if isinstance(metadata, Mapping) else {}
        self._read_line_fields(frame)
        self._language = _codec.text_field(frame, "language")
        self._reason: str | None = None
        self._stream_cut = "disconnected"  # why a stream whose send failed was cut
        self._duration: float | None = None
        self._started_at = _codec.number_field(frame, "started_at")
        self._ended_at: float | None = None
        self._messages: list[dict[str, Any]] = []
        self._streams: set[ReplyStream] = set()
        self._says: dict[str, SayHandle] = {}
        self._skills: set[str] = set()
        self._bot_message = ""
        self._bot_words: list[str] = []
        # Turn tracking (§6.1): touched only on the reader thread.
        self._last_message_id: str | None = None
        self._turn_text = ""
        self._turn_confidence = 0.0
        self._turn_language: str | None = None
        self._user_turn: int | None = None  # turn_id of the newest user.message
        self._continued_turn: int | None = None  # a continuation of that turn is under way
        self._seen: set[tuple[str, str]] = set()
        self.history = History(call_id, agent_id=agent.id, store=agent.history_store,
                               timers=self._uplink.timers)

    # ------------------------------------------------------------------ snapshots

    @property
    def agent_id(self) -> str:
        return self.agent.id

    @property
    def status(self) -> str:
        """``active`` or ``ended``."""
        return "ended" if self._ended.is_set() else "active"

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def reason(self) -> str | None:
        """Why the call ended (``hangup``, ``connection_lost``...), None while active."""
        return self._reason

    @property
    def duration(self) -> float | None:
        return self._duration

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def ended_at(self) -> float | None:
        return self._ended_at

    @property
    def language(self) -> str:
        return self._language

    @property
    def last_message_id(self) -> str | None:
        """The newest user message id on the wire. A handler's reply answers its own
        event's message instead (see `reply`), which this may already have moved past."""
        return self._last_message_id

    @property
    def current_bot_text(self) -> str:
        """The words of the bot message being spoken right now."""
        with self._lock:
            return " ".join(self._bot_words)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """LLM-style messages of the call as the platform reports them (a copy)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def transcript(self) -> list[dict[str, str]]:
        """``[{"role": "user"|"assistant", "content": ...}]`` without tool traffic."""
        with self._lock:  # one pass over the messages, without copying each first
            return [{"role": m["role"], "content": m["content"]} for m in self._messages
                    if m.get("role") in ("user", "assistant")
                    and isinstance(m.get("content"), str) and m["content"]]

    @property
    def active_skills(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._skills)

    def wait_ended(self, timeout: float | None = None) -> bool:
        """Block until the call ends or `timeout` passes; True if it ended."""
        return self._ended.wait(timeout)

    # ------------------------------------------------------------------ speaking

    def send(self, frame: Mapping[str, Any]) -> bool:
        """Send a raw call command; False if the call has ended or the socket is down."""
        if self._ended.is_set():
            logger.debug("dropped %s for ended call %s", frame.get("event"), self.id)
            return False
        # Only on the connection the call started on: after a reconnect the platform
        # has ended it, and `via` makes a send that raced the disconnect fail instead.
        return self._uplink.send(frame, via=self._transport)

    def _request(self, event: str, response: str, timeout: float, **payload: Any) -> Any:
        if self._ended.is_set():
            raise CallEndedError(
                f"call {self.id} has ended ({self._reason}); {event} needs a live call",
                call_id=self.id, reason=self._reason)
        return self._uplink.request(self.id, self.send, event, response, timeout=timeout,
                                    payload=payload)

    def say(self, text: str, *, add_to_history: bool = False) -> SayHandle:
        """Speak `text` as a standalone message (greetings, fillers: ``in_reply_to=""``).

        Returns at once; the handle's `wait()` blocks until it was spoken or cut off.
        """
        return self._speak(text, "", None, add_to_history=add_to_history)

    def reply(self, text: str, *, turn: Turn | None = None, in_reply_to: str | None = None,
              message_id: str | None = None) -> Reply:
        """Answer a user turn with a complete text. Any thread.

        Without `turn` (or `in_reply_to`), inside a handler of this call it answers the
        event being handled (not a newer message that arrived meanwhile); elsewhere it
        raises TurnRequiredError. Returns a `Reply`: the message id as a ``str`` (``""`` if
        nothing was sent, e.g. the call had ended), whose `rejected`/`wait()` tell whether
        the platform refused it because the caller had moved on to a newer turn.
        """
        target = self._reply_to(turn, in_reply_to, "reply")
        return Reply(self._speak(text, target, message_id))

    def _speak(self, text: str, in_reply_to: str, message_id: str | None, *,
               add_to_history: bool = False) -> SayHandle:
        handle = SayHandle(message_id or new_message_id(), lambda: self._bot_message)
        with self._lock:
            if not self._ended.is_set():
                self._says[handle.message_id] = handle
        if not self.send(_codec.bot_reply(self.id, handle.message_id, text, in_reply_to,
                                          add_to_history=add_to_history)):
            with self._lock:
                self._says.pop(handle.message_id, None)
            handle._unsent()
        return handle

    def _reply_to(self, turn: Turn | None, in_reply_to: str | None, what: str) -> str:
        if turn is not None:
            return turn.message_id
        if in_reply_to is not None:
            return in_reply_to
        bound = current_reply_to(self.id)
        if bound is None:
            raise TurnRequiredError(
                f"call.{what}() outside a handler of call {self.id} does not know which turn "
                f"it answers: pass turn= (the Turn you are answering) or in_reply_to=")
        return bound

    def reply_stream(self, turn: Turn | None = None, *, in_reply_to: str | None = None,
                     message_id: str | None = None) -> ReplyStream:
        """Open a streamed reply to `turn`. Any thread.

        Without `turn`, as `reply()`: the event whose handler runs on this thread, else
        TurnRequiredError. The stream is aborted automatically on barge-in, continuation,
        call end and disconnect, when the platform rejects it (`abort_reason ==
        "rejected"`) or when `cancel()`/`clear()` stop it. Use it as a context manager so
        it always ends.
        """
        in_reply_to = self._reply_to(turn, in_reply_to, "reply_stream")
        stream = ReplyStream(self.id, message_id or new_message_id(), in_reply_to,
                             self.send, self._stream_done,
                             cut_reason=lambda: self._stream_cut)
        with self._lock:
            live = not self._ended.is_set()
            if live:
                self._streams.add(stream)
        if not live:
            stream.abort("call.ended")
        return stream

    def _stream_done(self, stream: ReplyStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def cancel(self, message_id: str | None = None) -> bool:
        """Stop one bot message (default: the one playing)."""
        return self.send(_codec.command("bot.cancel", call_id=self.id, message_id=message_id))

    def clear(self) -> bool:
        """Drop every queued bot message."""
        return self.send(_codec.command("bot.clear", call_id=self.id))

    def __repr__(self) -> str:
        return (f"<Call {self.id} agent={self.agent.id} {self.direction} {self.transport} "
                f"{self.status}>")


class RingingCall:
    """An inbound call on a screening number (`ringing=True`); accept or reject it.

    The platform accepts it by itself after about 5 s if neither is called.
    """

    def __init__(self, agent: Agent, frame: Mapping[str, Any]) -> None:
        self.agent = agent
        self.call_id = _codec.text_field(frame, "call_id")
        self.from_ = _codec.text_field(frame, "from")
        self.to = _codec.text_field(frame, "to")
        self.raw = dict(frame)
        self._settled = threading.Event()
        self._uplink = agent._require_uplink()
        self._transport = self._uplink.port()  # the connection it rang on

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    def accept(self) -> bool:
        """Answer the call; `call.started` follows. Any thread."""
        return self._settle(_codec.command(
            "call.accept", agent_id=self.agent.wire_id, call_id=self.call_id))

    def reject(self, reason: str = "busy") -> bool:
        """Refuse the call (``busy`` or ``rejected``). Any thread."""
        return self._settle(_codec.command(
            "call.reject", agent_id=self.agent.wire_id, call_id=self.call_id, reason=reason))

    def _settle(self, frame: dict[str, Any]) -> bool:
        if self._settled.is_set():
            return False
        self._settled.set()
        # Not through the agent's queue: after a reconnect the platform has dropped this
        # call, and an answer must not go out on the new connection.
        return self._uplink.send(frame, via=self._transport)

    def __repr__(self) -> str:
        return f"<RingingCall {self.call_id} from={self.from_} to={self.to}>"


CallHandler = Callable[..., Any]
