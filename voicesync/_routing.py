"""What every frame handler of the reader needs: finding a frame's agent and call, and
queueing handlers on the call's lane bound to the turn they answer.

`Routing` is the base of `Dispatcher` (`_dispatch.py`) and of the frame handlers split
out of it (`_turn_frames.py`). Reader thread only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._handles import bind

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.client import Client

Frame = dict[str, Any]


class Routing:
    """A frame's agent and call; handlers queued on lanes. Owned by the reader thread."""

    def __init__(self, client: Client) -> None:
        self._client = client

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
            self._run_for(call, handlers, (payload, call), received_at, payload)

    def _run_for(self, call: Call, handlers: tuple[Any, ...], args: tuple[Any, ...],
                 received_at: float, payload: Any = None) -> None:
        """Queue handlers on the call's lane, bound to the turn they answer: the event's
        own user message (a Turn, a user.message), else the newest one at this moment."""
        reply_to = call._last_message_id or ""
        if payload is not None and payload.name in ("turn.end", "eager.turn", "user.message"):
            reply_to = getattr(payload, "message_id", reply_to)
        self._client._run(call.id, bind(call.id, reply_to, handlers), args, received_at)

    def _emit_agent(self, agent: Agent, name: str, args: tuple[Any, ...],
                    received_at: float, call: Call | None = None) -> None:
        handlers = (*agent._listeners.get(name), *self._client._listeners.get(name))
        if handlers and call is not None:
            self._run_for(call, handlers, args, received_at)
        elif handlers:
            self._client._run(agent.id, handlers, args, received_at)
