"""Text sessions and adopted calls, applied on the reader thread (docs/protocol.md §5.2,
§5.10, §5.11): chat and WhatsApp sessions become `Call` objects, and a WebRTC call whose
events arrive before (or without) its `call.started` is adopted.

A session is a `Call` with ``transport="chat"`` or ``"whatsapp"``: the same handlers,
the same commands. Each user message is handed to handlers as a ``user.message`` and a
``turn.end`` (a text message is a whole turn), so a turn handler answers a chat exactly
as it answers a caller, with `call.reply()` or `call.reply_stream()`; the answer travels
as ``bot.reply`` / ``bot.reply.stream`` on the session id, as the TypeScript SDK's chat
Call sends it. `Routing` subclass mixed into `Dispatcher`; reader thread only.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._routing import Frame, Routing
from voicesync.call import Call, new_message_id

if TYPE_CHECKING:
    from voicesync.agent import Agent

logger = logging.getLogger(__name__)

# Frames whose own handler decides about an unknown call: the TypeScript SDK adopts a
# `wrt_` call only for events no specific handler took (its fallback), so an end, an
# acknowledgement or a tool round never creates one.
_NOT_ADOPTING = frozenset({
    "call.started", "call.ended", "call.updated", "call.dialing", "call.error",
    "call.forwarded", "call.dtmf_sent", "call.ringing", "call.rejected", "call.held",
    "call.unheld", "call.muted", "call.unmuted", "llm.tool_call", "history.data",
    "history.updated", "memory.ops", "skill.loaded", "skill.unloaded",
})


class SessionFrames(Routing):
    """Chat (`llm.chat.*`, `chat.*`) and WhatsApp (`whatsapp.*`) frames, and WebRTC
    adoption: the part of `Dispatcher` that turns sessions into calls."""

    _ended: collections.OrderedDict[str, None]

    if TYPE_CHECKING:
        def end_call(self, call: Call, reason: str, frame: Frame | None,
                     received_at: float, *, cut: str | None = None) -> None: ...

    def _session_table(self) -> dict[str, Any]:
        return {
            "llm.chat.started": self._chat_started, "llm.chat.chunk": self._chat_event,
            "chat.message": self._session_message, "chat.response": self._session_response,
            "llm.chat.ended": self._chat_end, "llm.chat.error": self._chat_end,
            "whatsapp.session_started": self._whatsapp_started,
            "whatsapp.message": self._session_message,
            "whatsapp.response": self._session_response,
            "whatsapp.status": self._chat_event,
            "whatsapp.session_ended": self._whatsapp_ended,
            **dict.fromkeys(("llm.chat.token", "llm.chat.done", "llm.chat.tool_call",
                             "llm.chat.tool_result"), self._chat_user_event),
        }

    # ------------------------------------------------------------------ opening

    def _open(self, agent: Agent, call_id: str, fields: Mapping[str, Any], announce: str,
              received_at: float) -> Call | None:
        """The live call `call_id`, created (and `announce`d to handlers) if new; None for a
        call the platform has ended (a late frame must not bring it back)."""
        known = self._host.call(call_id)
        if known is not None or call_id in self._ended:
            return known
        call = Call(agent, call_id, {"to": agent.id, "direction": "inbound", **fields})
        self._host.add_call(call)
        self._emit_agent(agent, announce, (call,), received_at, call=call)
        return call

    def _open_chat(self, frame: Frame, received_at: float) -> Call | None:
        agent, call_id = self._agent(frame), _codec.call_id_of(frame)
        if agent is None or call_id is None:
            return self._call(frame)
        fields = {"from": "chat", "transport": "chat", "metadata": frame.get("metadata"),
                  "language": frame.get("language")}
        return self._open(agent, call_id, fields, "chat.started", received_at)

    def _session_tool_call(self, frame: Frame, received_at: float) -> Call | None:
        """A tool round of a chat session seen before its `llm.chat.started` (§5.10)."""
        if (_codec.call_id_of(frame) or "").startswith("chat-"):
            return self._open_chat(frame, received_at)
        return None

    def _adopt(self, frame: Frame, received_at: float) -> None:
        """A WebRTC call known only by its events: make the Call, announce `call.started`,
        then let the frame's own handler apply it (§5.2, WebRTC auto-create)."""
        call_id = frame.get("call_id")
        if (not isinstance(call_id, str) or not call_id.startswith("wrt_")
                or frame["event"] in _NOT_ADOPTING or self._host.call(call_id) is not None):
            return
        agent = self._agent(frame)
        if agent is not None:
            self._open(agent, call_id, {"from": "webrtc", "transport": "webrtc"},
                       "call.started", received_at)

    # ------------------------------------------------------------------ chat

    def _chat_started(self, frame: Frame, received_at: float) -> None:
        if "agent_id" not in frame:  # this socket is the chat's user (§4.4)
            self._chat_user_event(frame, received_at)
            return
        self._open_chat(frame, received_at)

    def _chat_user_event(self, frame: Frame, received_at: float) -> None:
        """What a chat's user hears (§4.4): client handlers, in order, on the client lane.
        `llm.chat.started` and `llm.chat.error` are also a session's events on the agent's
        side, so their handlers take ``(event, call)``: here `call` is None."""
        name = frame["event"]
        extra = (None,) if name in ("llm.chat.started", "llm.chat.error") else ()
        self._host.emit_client(name, _codec.event(frame), *extra)

    def _chat_event(self, frame: Frame, received_at: float) -> None:
        """Chunks of a server model's answer, WhatsApp delivery receipts: events on the call."""
        call = (self._open_chat(frame, received_at) if frame["event"] == "llm.chat.chunk"
                else self._call(frame))
        if call is not None:
            self._emit(call, frame["event"], frame, received_at)

    def _chat_end(self, frame: Frame, received_at: float) -> None:
        call, failed = self._call(frame), frame["event"] == "llm.chat.error"
        if call is None and failed and "agent_id" not in frame:
            self._chat_user_event(frame, received_at)  # an error told to the chat's user
        if call is None:
            return
        if failed:
            self._emit(call, "llm.chat.error", frame, received_at)
        self.end_call(call, "chat_error" if failed else "chat_completed", frame, received_at)

    # ------------------------------------------------------------------ both kinds

    def _session_message(self, frame: Frame, received_at: float) -> None:
        """One user message: a whole turn. Handlers get the wire event, then
        ``user.message`` and ``turn.end`` built from it (confidence and probability 1)."""
        chat = frame["event"] == "chat.message"
        call = (self._open_chat(frame, received_at) if chat
                else self._whatsapp_call(frame, received_at))
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first(frame["event"], message_id):
            return
        text = _codec.text_field(frame, "text")
        turn_id = call._session_message(message_id, text)
        self._emit(call, frame["event"], frame, received_at)
        if frame.get("paused") is True:
            return  # a person has taken the conversation over (agent.pause)
        base = {"call_id": call.id, "agent_id": call.agent.wire_id, "message_id": message_id,
                "text": text, "turn_id": turn_id}
        said = {**base, "event": "user.message", "confidence": 1.0}
        self._emit(call, "user.message", said, received_at)
        ended = {**base, "event": "turn.end", "probability": 1.0, "latency_ms": 0}
        turn = _codec.turn(ended, message_id, text, 1.0, None)
        self._emit(call, "turn.end", ended, received_at, turn)

    def _session_response(self, frame: Frame, received_at: float) -> None:
        """The agent's whole answer (the platform's model, the app's reply, or a person)."""
        call = self._call(frame)
        if call is None:
            return
        text = _codec.text_field(frame, "text")
        message_id = _codec.text_field(frame, "message_id") or new_message_id()
        call._session_response(message_id, text)
        self._emit(call, frame["event"], frame, received_at)

    # ------------------------------------------------------------------ WhatsApp

    def _whatsapp_agent(self, frame: Frame) -> Agent | None:
        """The frame's agent; without `agent_id`, the first with a WhatsApp channel (§5.11)."""
        agent = self._agent(frame)
        if agent is not None:
            return agent
        return next((a for a in self._host.agents() if a._has_whatsapp()), None)

    def _whatsapp_call(self, frame: Frame, received_at: float) -> Call | None:
        """The session's call; a message of a session whose start was missed opens it."""
        return self._call(frame) or self._whatsapp_started(frame, received_at)

    def _whatsapp_started(self, frame: Frame, received_at: float) -> Call | None:
        agent, call_id = self._whatsapp_agent(frame), _codec.call_id_of(frame)
        if agent is None or call_id is None:
            logger.debug("%s for no agent with a WhatsApp channel", frame["event"])
            return None
        contact = _codec.text_field(frame, "contact_phone") or _codec.text_field(frame, "from")
        name = _codec.text_field(frame, "contact_name") or _codec.text_field(frame, "name")
        fields = {"from": contact, "transport": "whatsapp",
                  "metadata": {"contact_name": name} if name else None}
        return self._open(agent, call_id, fields, "whatsapp.started", received_at)

    def _whatsapp_ended(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        self._emit(call, "whatsapp.session_ended", frame, received_at)
        ended = dict(frame)
        duration = _codec.number_field(frame, "duration")
        if duration is not None:
            ended.setdefault("duration_seconds", duration)
        reason = _codec.text_field(frame, "reason") or "session_ended"
        self.end_call(call, reason, ended, received_at)
