"""The frames only phone lines get (docs/protocol.md §2.10), applied on the reader thread:
``line.created`` / ``line.error`` / ``line.destroyed`` and a route's answer; and the
keys and turns a call's `listen()` waits for.

Everything else a line gets (``call.started``, speech, keys) carries ``agent_id:
"line:<number>"`` and is routed like an agent's. A routed call keeps its call id under
its new agent, so the line's Call ends here, on ``call.routed``, without being
remembered as ended: the agent's ``call.started`` for the same id must still be taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from voicesync import _codec
from voicesync._line_calls import RouteResult
from voicesync._routing import Frame
from voicesync.errors import RegistrationError
from voicesync.lines import PREFIX, Line

if TYPE_CHECKING:
    from voicesync._dispatch import Dispatcher
    from voicesync.call import Call

logger = logging.getLogger(__name__)


class LineFrames:
    """Line acknowledgements and route answers; owned by the dispatcher (reader thread)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher
        # A call's listens (`_listen.py`) hear its keys and turns once the dispatcher has
        # applied them and queued their handlers, as without a listen.
        dispatcher.observe("call.dtmf_received", self._key)
        dispatcher.observe("turn.end", self._turn)

    def table(self) -> dict[str, Callable[[Frame, float], None]]:
        """The line frames: acknowledgements and route answers."""
        return {"line.created": self._created, "line.error": self._error,
                "line.destroyed": self._destroyed, "call.routed": self._routed,
                "call.route_failed": self._route_failed}

    def _key(self, call: Call, frame: Frame) -> None:
        if call._listens:
            call._keypad(_codec.text_field(frame, "digit"))

    def _turn(self, call: Call, frame: Frame) -> None:
        if call._listens:
            call._heard(call._turn_text, call._turn_confidence)  # as the Turn handlers get

    def _line(self, frame: Frame) -> Line | None:
        number = _codec.text_field(frame, "number")
        agent = (self._d._host.agent(PREFIX + number) if number
                 else self._d._agent(frame))
        return agent if isinstance(agent, Line) else None

    def _created(self, frame: Frame, received_at: float) -> None:
        line = self._line(frame)
        if line is None:
            logger.warning("line.created for unknown line %r", frame.get("number"))
            return
        line._acknowledged()
        self._d._emit_agent(line, "ready", (), received_at)

    def _error(self, frame: Frame, received_at: float) -> None:
        line = self._line(frame)
        code = _codec.text_field(frame, "code") or "LINE_CONFIG_ERROR"
        text = _codec.error_text(frame)
        if line is None:
            logger.warning("line.error %s for unknown line %r: %s", code,
                           frame.get("number"), text)
            return
        detail = text.rstrip(".") or "no reason given"
        hint = "; another connection holds the number" if code == "LINE_CONFLICT" else ""
        error = RegistrationError(f"line {line.number} was refused with {code}: {detail}{hint}",
                                  agent_id=line.id, code=code, server_message=text)
        line._fail(error)
        self._d._host.report(error)

    def _destroyed(self, frame: Frame, received_at: float) -> None:
        logger.info("line %s destroyed", frame.get("number"))

    def _line_call(self, frame: Frame) -> Call | None:
        """The line's call a route answer is for (never the agent's call of the same id)."""
        call = self._d._call(frame)
        return call if call is not None and isinstance(call.agent, Line) else None

    def _routed(self, frame: Frame, received_at: float) -> None:
        call = self._line_call(frame)
        if call is None:
            return
        call._route_answered(RouteResult(True, _codec.text_field(frame, "agent")))
        self._d._emit(call, "call.routed", frame, received_at)
        self.end_routed(call, received_at)

    def _route_failed(self, frame: Frame, received_at: float) -> None:
        call = self._line_call(frame)
        if call is None:
            return
        reason = _codec.text_field(frame, "reason") or "swap_failed"
        call._route_answered(RouteResult(False, _codec.text_field(frame, "agent"), reason))
        self._d._emit(call, "call.route_failed", frame, received_at)

    def routed_end(self, frame: Frame, received_at: float) -> None:
        """``call.ended {reason: "routed"}``: the line's end of a call now an agent's."""
        call, owner = self._line_call(frame), self._d._agent(frame)
        if call is not None and owner in (None, call.agent):
            self.end_routed(call, received_at)

    def end_routed(self, call: Call, received_at: float) -> None:
        if call._end("routed", None, cut="routed"):
            self._d._host.remove_call(call)
            self._d._emit_agent(call.agent, "call.ended", (call, "routed"), received_at,
                                call=call)
