"""Inbound frames, applied on the reader thread: call table, aborts, dedupe, then lanes.

Everything here runs on `voicesync-reader` before any handler sees a later event, so
an abort (barge-in, continuation, call end) reaches a ReplyStream even while every
handler thread is blocked. User code never runs here: it is queued on the call's lane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._backoff import ConflictEpisode
from voicesync.call import Call, RingingCall
from voicesync.errors import (
    AgentConflictError,
    AuthenticationError,
    RegistrationError,
    ServerAtCapacityError,
    ServerError,
    VoiceSyncError,
)

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.client import Client

logger = logging.getLogger(__name__)

Frame = dict[str, Any]
_FAILED_DIAL = frozenset({"busy", "no-answer", "no_answer", "failed", "canceled", "cancelled"})
_AUTH_CODE = "INVALID_KEY"  # the one documented refusal code; others are reported only


class Dispatcher:
    """Routes decoded frames. Owned by the reader thread; one instance per Client."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._table: dict[str, Callable[[Frame, float], None]] = {
            "connected": self._connected,
            "ping": self._ping,
            "pong": _ignore, "authenticated": _ignore, "agent.configured": _ignore,
            "session.configured": _ignore, "session.sent": _ignore,
            "error": self._error,
            "agent.created": self._agent_created, "agent.resumed": self._agent_created,
            "agent.displaced": self._agent_displaced,
            "channel.added": self._agent_event, "channel.configured": self._agent_event,
            "channel.removed": self._agent_event,
            "session.paused": self._agent_event, "session.resumed": self._agent_event,
            "call.started": self._call_started,
            "call.ended": self._call_ended,
            "call.dialing": self._call_dialing,
            "call.ringing": self._call_ringing,
            "call.error": self._call_error,
            "call.updated": self._call_updated,
            "user.message": self._user_message,
            "eager.turn": self._eager_turn,
            "turn.end": self._turn_end,
            "turn.continued": self._turn_continued,
            "bot.speaking": self._bot_speaking,
            "bot.word": self._bot_word,
            "bot.finished": self._bot_finished,
            "bot.interrupted": self._bot_interrupted,
            "message.confirmed": self._message_confirmed,
            "llm.tool_call": self._tool_call,
            "llm.before": self._llm_before,
            "history.data": self._history_reply, "history.updated": self._history_reply,
            "skill.loaded": self._skill, "skill.unloaded": self._skill,
        }

    def handle(self, frame: Frame, received_at: float) -> None:
        """Apply one frame. Never raises: a failure is logged and the frame skipped."""
        name = frame["event"]
        try:
            self._table.get(name, self._generic)(frame, received_at)
        except Exception as exc:
            self._client._report(VoiceSyncError(
                f"could not handle a {name!r} frame: {exc!r}"), log=True)

    # ------------------------------------------------------------------ routing helpers

    def _agent(self, frame: Mapping[str, Any]) -> Agent | None:
        value = frame.get("agent_id")
        return self._client._resolve_agent(value) if isinstance(value, str) else None

    def _call(self, frame: Mapping[str, Any]) -> Call | None:
        """The known call a frame belongs to; agent_id may be missing (§5.9, Appendix C.4)."""
        call_id = _codec.call_id_of(frame)
        return self._client._calls_by_id.get(call_id) if call_id else None

    def _emit(self, call: Call, name: str, frame: Frame, received_at: float,
              event: Any = None) -> None:
        """Queue `name` handlers of the call, its agent and the client on the call's lane."""
        handlers = (*call._listeners.get(name), *call.agent._listeners.get(name),
                    *self._client._listeners.get(name))
        if handlers:
            payload = event if event is not None else _codec.event(frame)
            self._client._run(call.id, handlers, (payload, call), received_at)

    def _emit_agent(self, agent: Agent, name: str, args: tuple[Any, ...],
                    received_at: float, lane: str | None = None) -> None:
        handlers = (*agent._listeners.get(name), *self._client._listeners.get(name))
        if handlers:
            self._client._run(lane or agent.id, handlers, args, received_at)

    # ------------------------------------------------------------------ connection

    def _connected(self, frame: Frame, received_at: float) -> None:
        self._client._on_connected(frame)

    def _ping(self, frame: Frame, received_at: float) -> None:
        self._client._send({"event": "pong"})

    def _error(self, frame: Frame, received_at: float) -> None:
        code = _codec.text_field(frame, "code")
        text = _codec.error_text(frame)
        agent = self._agent(frame)
        if code == _AUTH_CODE:
            self._client._auth_failed(AuthenticationError(
                f"the platform refused the API key ({code or text}); check PINECALL_API_KEY"))
            return
        if agent is not None and (code in ("AGENT_CONFLICT", "AGENT_IN_USE")
                                  or "AGENT_IN_USE" in text):
            self._conflict(agent, frame, text)
            return
        if agent is not None and code == "AGENT_CONFLICT_FATAL":
            self._registration_failed(agent, AgentConflictError(
                f"agent {agent.id!r} is held by another live connection; stop the other "
                "process or use another agent id", agent_id=agent.id, reason="server_fatal",
                server_message=text))
            return
        if agent is not None and (code == "SERVER_AT_CAPACITY"
                                  or text.startswith("SERVER_AT_CAPACITY:")):
            used, limit = frame.get("used"), frame.get("limit")
            self._registration_failed(agent, ServerAtCapacityError(
                f"the platform is at capacity and cannot register agent {agent.id!r}: {text}",
                agent_id=agent.id, used=used if isinstance(used, int) else None,
                limit=limit if isinstance(limit, int) else None, server_message=text))
            return
        if agent is not None and code == "REGISTRATION_ERROR":
            self._registration_failed(agent, RegistrationError(
                f"agent {agent.id!r} was refused: {text}; check its config",
                agent_id=agent.id, server_message=text))
            return
        if agent is not None and code == "PHONE_IN_USE":
            phone = _codec.text_field(frame, "phone")
            agent._drop_channel(phone)
            logger.warning("agent %s: phone %s is held by another agent", agent.id, phone)
        self._client._report(ServerError(
            f"the platform reported an error: {text}", code=code, server_message=text))

    def _registration_failed(self, agent: Agent, error: RegistrationError) -> None:
        agent._fail(error)
        self._client._report(error)

    def _conflict(self, agent: Agent, frame: Frame, text: str) -> None:
        now = time.monotonic()
        if agent.conflict is None:
            agent.conflict = ConflictEpisode(started_at=now)
            logger.warning("agent %s is held by another connection; retrying", agent.id)
        agent.conflict.hint(frame.get("holder_alive"), now)
        retry_after = _codec.number_field(frame, "retry_after_s")
        delay = agent.conflict.next_delay(retry_after, now)
        if delay is None:
            self._registration_failed(agent, AgentConflictError(
                f"agent {agent.id!r} stayed held by another connection for the whole retry "
                "budget; stop the other process or use another agent id",
                agent_id=agent.id, reason="retry_budget_exhausted", server_message=text))
            return
        self._client._report(ServerError(
            f"agent {agent.id!r} is in use elsewhere; retrying in {delay:.1f} s: {text}",
            code="AGENT_CONFLICT", server_message=text))
        self._client._schedule(delay, lambda: self._client._register(agent))

    def _agent_created(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is None:
            logger.warning("acknowledgement for unknown agent %r", frame.get("agent_id"))
            return
        agent._acknowledged()
        self._emit_agent(agent, "ready", (), received_at)

    def _agent_displaced(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is not None:
            logger.warning("agent %s was displaced by another connection", agent.id)
            agent._unregistered()
            self._emit_agent(agent, "agent.displaced", (_codec.event(frame),), received_at)

    def _agent_event(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is not None:
            self._emit_agent(agent, frame["event"], (_codec.event(frame),), received_at)

    # ------------------------------------------------------------------ call lifecycle

    def _call_started(self, frame: Frame, received_at: float) -> None:
        agent, call_id = self._agent(frame), _codec.call_id_of(frame)
        if agent is None or call_id is None:
            logger.debug("call.started for an unknown agent or without call_id")
            return
        call = Call(agent, call_id, frame)
        self._client._add_call(agent, call)
        agent._dial_settled(call_id, call.to, call, "")
        self._emit_agent(agent, "call.started", (call,), received_at, lane=call_id)

    def _call_ended(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        reason = _codec.text_field(frame, "reason") or "hangup"
        if call is None:
            agent = self._agent(frame)
            call_id = _codec.call_id_of(frame) or ""
            if agent is not None and reason in _FAILED_DIAL | {"rejected"}:
                agent._dial_settled(call_id, _codec.text_field(frame, "to"), None, reason)
            return
        self._end_call(call, reason, frame, received_at)

    def _end_call(self, call: Call, reason: str, frame: Frame | None,
                  received_at: float) -> None:
        if not call._end(reason, frame):
            return
        self._client._remove_call(call)
        call.history.close(reason=reason, contact=call.from_)
        self._emit_agent(call.agent, "call.ended", (call, reason), received_at, lane=call.id)

    def _call_dialing(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is not None:
            agent._dial_bound(frame)

    def _call_ringing(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is None:
            return
        ringing = RingingCall(agent, frame)
        handlers = (*agent._listeners.get("call.ringing"),
                    *self._client._listeners.get("call.ringing"))
        if handlers:
            self._client._run(ringing.call_id or agent.id, handlers, (ringing,), received_at)

    def _call_error(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        text = _codec.error_text(frame)
        self._client._report(ServerError(
            f"call {_codec.call_id_of(frame)} failed: {text}",
            code=_codec.text_field(frame, "code"), server_message=text))
        if call is not None:
            self._emit(call, "call.error", frame, received_at)

    def _call_updated(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            language = _codec.text_field(frame, "language")
            if language:
                call._set(_language=language)
            self._emit(call, "call.updated", frame, received_at)

    # ------------------------------------------------------------------ user turns

    def _user_message(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("user.message", message_id):
            return
        text = _codec.text_field(frame, "text")
        language = frame.get("language")
        call._last_message_id = message_id
        call._turn_text = text
        call._turn_confidence = _codec.number_field(frame, "confidence") or 0.0
        call._turn_language = language if isinstance(language, str) else None
        call._push_message("user", text)
        call.history.user_message(message_id, text)
        self._emit(call, "user.message", frame, received_at)

    def _eager_turn(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        message_id, text = _codec.text_field(frame, "message_id"), _codec.text_field(frame, "text")
        call._last_message_id, call._turn_text = message_id, text
        call._turn_confidence, call._turn_language = 0.0, None
        turn = _codec.turn(frame, message_id, text, 0.0, None)
        self._emit(call, "eager.turn", frame, received_at, turn)

    def _turn_end(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        message_id = _codec.text_field(frame, "message_id") or call._last_message_id or ""
        text = _codec.text_field(frame, "text") or call._turn_text
        call._last_message_id, call._turn_text = message_id, text
        turn = _codec.turn(frame, message_id, text, call._turn_confidence, call._turn_language)
        self._emit(call, "turn.end", frame, received_at, turn)

    def _turn_continued(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._abort_streams("turn.continued")
            # The platform drops its playback queue on a barge-in or continuation
            # (PROTOCOL.md §9.5) without a frame per queued message: settle them here.
            call._settle_says("", True)
            self._emit(call, "turn.continued", frame, received_at)

    # ------------------------------------------------------------------ bot speech

    def _bot_speaking(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            message_id = _codec.text_field(frame, "message_id")
            call._bot_speaking(message_id)
            call.history.bot_speaking(message_id, _codec.text_field(frame, "text"))
            self._emit(call, "bot.speaking", frame, received_at)

    def _bot_word(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            message_id, word = _codec.text_field(frame, "message_id"), _codec.text_field(
                frame, "word")
            call._bot_word(message_id, word)
            call.history.bot_word(message_id, word, _codec.int_field(frame, "word_index"))
            self._emit(call, "bot.word", frame, received_at)

    def _bot_finished(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("bot.finished", message_id):
            return
        call._bot_done()
        call._settle_says(message_id, False)
        call.history.bot_finished(message_id)
        self._emit(call, "bot.finished", frame, received_at)

    def _bot_interrupted(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        # The documented behaviour voicesync follows: barge-in aborts the call's
        # reply streams (PROTOCOL.md "Decisions"), before any handler runs.
        call._abort_streams("bot.interrupted")
        message_id = _codec.text_field(frame, "message_id")
        call._bot_done()
        call._settle_says(message_id, True)
        call.history.bot_interrupted(
            message_id, words_spoken=_codec.int_field(frame, "words_spoken"))
        self._emit(call, "bot.interrupted", frame, received_at)

    def _message_confirmed(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        message_id = _codec.text_field(frame, "message_id")
        if call is None or not call._first("message.confirmed", message_id):
            return
        text = _codec.text_field(frame, "text")
        if text:
            call._push_message("assistant", text)
        call.history.bot_confirmed(message_id, text)
        self._emit(call, "message.confirmed", frame, received_at)

    # ------------------------------------------------------------------ server-side LLM

    def _tool_call(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        msg_id = _codec.msg_id_of(frame)
        if call is None:
            logger.warning("llm.tool_call %s for unknown call %s", msg_id,
                           _codec.call_id_of(frame))
            return
        if not call._first("llm.tool_call", msg_id):
            return
        event = _codec.event(frame)
        self._emit(call, "llm.tool_call", frame, received_at, event)
        if call.agent._declared_tools() or call.agent.config.get("tools"):
            self._client._run(call.id, (self._client._run_tools,), (event, call), received_at)

    def _llm_before(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        ready = _codec.command("llm.ready", call_id=call.id, agent_id=call.agent.wire_id,
                               turn=frame.get("turn"))
        handlers = (*call._listeners.get("llm.before"), *call.agent._listeners.get("llm.before"),
                    *self._client._listeners.get("llm.before"))
        if not handlers:
            self._client._send(ready)
            return
        event = _codec.event(frame)

        def prepare_then_release(*_: Any) -> None:
            for handler in handlers:
                try:
                    handler(event, call)
                except Exception as exc:
                    self._client._handler_failed(exc, call.id)
            self._client._send(ready)

        self._client._run(call.id, (prepare_then_release,), (), received_at)

    def _history_reply(self, frame: Frame, received_at: float) -> None:
        self._client._requests.resolve(frame)

    def _skill(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        skill = _codec.text_field(frame, "skill")
        with call._lock:
            if frame["event"] == "skill.loaded":
                call._skills.add(skill)
            else:
                call._skills.discard(skill)
        self._emit(call, frame["event"], frame, received_at)

    # ------------------------------------------------------------------ everything else

    def _generic(self, frame: Frame, received_at: float) -> None:
        """Known-call events without special handling reach handlers by name (§5.12)."""
        call = self._call(frame)
        if call is not None:
            self._emit(call, frame["event"], frame, received_at)
            return
        agent = self._agent(frame)
        if agent is not None:
            self._emit_agent(agent, frame["event"], (_codec.event(frame),), received_at)
            return
        logger.debug("ignored %r frame for no known call or agent", frame["event"])


def _ignore(frame: Frame, received_at: float) -> None:
    return None

