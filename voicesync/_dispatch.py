"""Inbound frames, applied on the reader thread: call table, aborts, dedupe, then lanes.

Everything here runs on `voicesync-reader` before any handler sees a later event, so
an abort (barge-in, continuation, call end) reaches a ReplyStream even while every
handler thread is blocked. User code never runs here: it is queued on the call's lane.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._line_frames import LineFrames
from voicesync._listeners import handlers_of
from voicesync._routing import Frame, Host
from voicesync._sessions import SessionFrames
from voicesync._tools import agent_tools, run_tool_calls
from voicesync._turn_frames import TurnFrames
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

logger = logging.getLogger(__name__)

_FAILED_DIAL = frozenset({"busy", "no-answer", "no_answer", "failed", "canceled", "cancelled"})
_AUTH_CODE = "INVALID_KEY"  # the one documented refusal code; others are reported only
_REMEMBER_ENDED = 4096  # call ids the platform ended, kept to ignore their late frames

Observer = Callable[[Call, Frame], None]


class Dispatcher(TurnFrames, SessionFrames):
    """Routes decoded frames. Owned by the reader thread; one instance per Client.

    It works through a `Host` (`_routing.py`), not the Client. The routing helpers come
    from `Routing` (`_routing.py`), the turn and bot-speech frames from `TurnFrames`
    (`_turn_frames.py`), chat and WhatsApp sessions and adopted WebRTC calls from
    `SessionFrames` (`_sessions.py`).
    """

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        # Call ids the platform ended (reader thread only): a late or reordered frame for
        # one of them must not bring the call back (docs/reply-streams.md, invariants).
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._observers: dict[str, tuple[Observer, ...]] = {}  # see observe()
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
            "reply.rejected": self._reply_rejected,
            "message.confirmed": self._message_confirmed,
            "llm.tool_call": self._tool_call,
            "llm.before": self._llm_before,
            "history.data": self._history_reply, "history.updated": self._history_reply,
            "skill.loaded": self._skill, "skill.unloaded": self._skill,
            **self._session_table(),
        }
        self._lines = LineFrames(self)  # line acks and route answers (§2.10)
        self._table.update(self._lines.table())

    def observe(self, name: str, observer: Observer) -> None:
        """Run `observer(call, frame)` after each `name` frame of a known call has been
        applied and its handlers queued (how a call's `listen()` hears keys and turns).
        Reader thread, or before the reader starts."""
        self._observers[name] = (*self._observers.get(name, ()), observer)

    def handle(self, frame: Frame, received_at: float, size: int = 0) -> None:
        """Apply one frame (`size` bytes on the wire, charged to the lanes its events go
        to). Never raises: a failure is logged and the frame skipped."""
        name = frame["event"]
        self._applying.size = size
        try:
            self._adopt(frame, received_at)
            self._host.feed(frame)  # to `client.events()` feeds (_feed.py)
            self._table.get(name, self._generic)(frame, received_at)
            observers = self._observers.get(name)
            if observers and (call := self._call(frame)) is not None:
                for observer in observers:
                    observer(call, frame)
        except Exception as exc:
            self._host.report(VoiceSyncError(
                f"could not handle a {name!r} frame: {exc!r}"), log=True)
        finally:
            self._applying.size = 0

    # ------------------------------------------------------------------ connection

    def _connected(self, frame: Frame, received_at: float) -> None:
        self._host.connected(frame)

    def _ping(self, frame: Frame, received_at: float) -> None:
        self._host.send({"event": "pong"})

    def _error(self, frame: Frame, received_at: float) -> None:
        code = _codec.text_field(frame, "code")
        text = _codec.error_text(frame)
        agent = self._agent(frame)
        if code == _AUTH_CODE:
            self._host.refused(AuthenticationError(
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
        self._host.report(ServerError(
            f"the platform reported an error: {text}", code=code, server_message=text))

    def _registration_failed(self, agent: Agent, error: RegistrationError) -> None:
        agent._fail(error)
        self._host.report(error)

    def _conflict(self, agent: Agent, frame: Frame, text: str) -> None:
        delay = agent._conflict_retry(frame.get("holder_alive"),
                                      _codec.number_field(frame, "retry_after_s"))
        if delay is None:
            self._registration_failed(agent, AgentConflictError(
                f"agent {agent.id!r} stayed held by another connection for the whole retry "
                "budget; stop the other process or use another agent id",
                agent_id=agent.id, reason="retry_budget_exhausted", server_message=text))
            return
        self._host.report(ServerError(
            f"agent {agent.id!r} is in use elsewhere; retrying in {delay:.1f} s: {text}",
            code="AGENT_CONFLICT", server_message=text))
        self._host.register_later(agent, delay)

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
        if call_id in self._ended or self._host.call(call_id) is not None:
            # A repeat for a live call would orphan the first Call (still able to send);
            # a late one for an ended call would revive what the platform has ended.
            logger.debug("ignored call.started for %s: already live or ended", call_id)
            return
        call = Call(agent, call_id, frame)
        self._host.add_call(call)
        agent._dial_settled(call_id, call.to, call, "")
        self._emit_agent(agent, "call.started", (call,), received_at, call=call)

    def _call_ended(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        reason = _codec.text_field(frame, "reason") or "hangup"
        if reason == "routed":  # the call lives on, same id, with the agent it went to
            self._lines.routed_end(frame, received_at)
            return
        if call is not None:
            self.end_call(call, reason, frame, received_at)
            return
        agent, call_id = self._agent(frame), _codec.call_id_of(frame) or ""
        if call_id in self._ended:
            return  # a duplicate
        self._remember_ended(call_id)  # its call.started may still be on the way
        if agent is None:
            return
        # An outbound call that was never answered settles its dial() or bridge() (a
        # bridge fails with any reason: "offline"...); a failed dial is also reported as
        # an ended Call, so event-driven code sees every number it dialed.
        agent._dial_settled(call_id, _codec.text_field(frame, "to"), None, reason)
        if reason not in _FAILED_DIAL | {"rejected"}:
            return  # the end of a call this client never had
        failed = Call(agent, call_id, {**frame, "direction": "outbound"})
        self.end_call(failed, reason, frame, received_at)

    def end_call(self, call: Call, reason: str, frame: Frame | None,
                  received_at: float, *, cut: str | None = None) -> None:
        """End a call: abort its streams (reason `cut`, default ``call.ended`` for a
        platform frame, ``disconnected`` for a dropped connection), close its history
        (`Call._end`), emit ``call.ended`` on its lane."""
        if not call._end(reason, frame, cut=cut or (
                "call.ended" if frame is not None else "disconnected")):
            return
        if frame is not None or cut is not None:  # the platform ended it, not a drop
            self._remember_ended(call.id)
        self._host.remove_call(call)
        self._emit_agent(call.agent, "call.ended", (call, reason), received_at, call=call)

    def _remember_ended(self, call_id: str) -> None:
        if call_id:
            self._ended[call_id] = None
            while len(self._ended) > _REMEMBER_ENDED:
                self._ended.popitem(last=False)

    def _call_dialing(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is not None:
            agent._dial_bound(frame)

    def _call_ringing(self, frame: Frame, received_at: float) -> None:
        agent = self._agent(frame)
        if agent is None:
            return
        ringing = RingingCall(agent, frame)
        handlers = (*handlers_of("call.ringing", agent), *self._host.handlers("call.ringing"))
        if handlers:
            self._host.run(ringing.call_id or agent.id, handlers, (ringing,), received_at,
                           self._size())

    def _call_error(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        text = _codec.error_text(frame)
        self._host.report(ServerError(
            f"call {_codec.call_id_of(frame)} failed: {text}",
            code=_codec.text_field(frame, "code"), server_message=text))
        if call is not None:
            self._emit(call, "call.error", frame, received_at)
            self.end_call(call, "error", None, received_at, cut="call.ended")

    def _call_updated(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is not None:
            call._updated(frame)
            self._emit(call, "call.updated", frame, received_at)

    # ------------------------------------------------------------------ server-side LLM

    def _tool_call(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame) or self._session_tool_call(frame, received_at)
        msg_id = _codec.msg_id_of(frame)
        if call is None:
            logger.warning("llm.tool_call %s for unknown call %s", msg_id,
                           _codec.call_id_of(frame))
            return
        if not call._first("llm.tool_call", msg_id):
            return
        event = _codec.event(frame)
        self._emit(call, "llm.tool_call", frame, received_at, event)
        if agent_tools(call.agent):
            self._run_for(call, (run_tool_calls,), (event, call), received_at)

    def _llm_before(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        ready = _codec.command("llm.ready", call_id=call.id, agent_id=call.agent.wire_id,
                               turn=frame.get("turn"))
        handlers = (*handlers_of("llm.before", call, call.agent),
                    *self._host.handlers("llm.before"))
        if not handlers:
            self._host.send(ready)
            return
        event = _codec.event(frame)

        def prepare_then_release(*_: Any) -> None:
            for handler in handlers:
                try:
                    handler(event, call)
                except Exception as exc:
                    self._host.handler_failed(exc, call.id)
            self._host.send(ready)

        self._run_for(call, (prepare_then_release,), (), received_at)

    def _history_reply(self, frame: Frame, received_at: float) -> None:
        self._host.answered(frame)

    def _skill(self, frame: Frame, received_at: float) -> None:
        call = self._call(frame)
        if call is None:
            return
        call._skill(frame)
        self._emit(call, frame["event"], frame, received_at)

    # ------------------------------------------------------------------ everything else

    def _generic(self, frame: Frame, received_at: float) -> None:
        """Known-call events without special handling reach handlers by name (§5.12)."""
        call = self._call(frame)
        if call is not None:
            self._emit(call, frame["event"], frame, received_at)
            return
        if _codec.call_id_of(frame) in self._ended:
            return  # a late event of an ended call: its handlers expect (event, call)
        agent = self._agent(frame)
        if agent is not None:
            self._emit_agent(agent, frame["event"], (_codec.event(frame),), received_at)
            return
        logger.debug("ignored %r frame for no known call or agent", frame["event"])


def _ignore(frame: Frame, received_at: float) -> None:
    return None

