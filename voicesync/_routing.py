"""What every frame handler of the reader needs: the `Host` port it works through,
finding a frame's agent and call, and queueing handlers on the call's lane bound to the
turn they answer.

`Routing` is the base of `Dispatcher` (`_dispatch.py`) and of the frame handlers split
out of it (`_turn_frames.py`). Reader thread only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from voicesync import _codec
from voicesync._handles import bind
from voicesync._listeners import Handler, handlers_of

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.errors import AuthenticationError

Frame = dict[str, Any]


class Host(Protocol):
    """What the dispatcher reads and does on its client: a narrow seam (a `Client`'s
    `ClientPorts` is one), so dispatching can be driven without a client and imports none."""

    def agent(self, agent_id: str) -> Agent | None:
        """The agent a frame's `agent_id` names (exact, after the last ':', or slug)."""
    def call(self, call_id: str) -> Call | None: ...
    def add_call(self, call: Call) -> None: ...
    def remove_call(self, call: Call) -> None: ...
    def agents(self) -> list[Agent]: ...
    def handlers(self, name: str) -> tuple[Handler, ...]:
        """The client's own handlers of `name` (a call's and an agent's are their own)."""
    def emit_client(self, name: str, *args: Any) -> None:
        """Queue the client's own `name` handlers on the client's lane."""
    def feed(self, frame: Mapping[str, Any]) -> None:
        """Offer a received frame to the client's event feeds (`client.events()`)."""
    def run(self, lane: str, handlers: tuple[Handler, ...], args: tuple[Any, ...],
            received_at: float, size: int = 0) -> None:
        """Queue handlers on a lane; `size` is the frame's, charged to the lane's bound."""
    def send(self, frame: Mapping[str, Any]) -> bool: ...
    def report(self, exc: BaseException, *, log: bool = False) -> None: ...
    def handler_failed(self, exc: BaseException, lane: str) -> None: ...
    def connected(self, frame: Mapping[str, Any]) -> None: ...
    def refused(self, error: AuthenticationError) -> None:
        """The key was refused: the reader ends the connection and connect() raises it."""
    def register_later(self, agent: Agent, delay: float) -> None: ...
    def answered(self, frame: Mapping[str, Any]) -> None:
        """The platform answered a history or prompt request."""


class Routing:
    """A frame's agent and call; handlers queued on lanes. Owned by the reader thread."""

    def __init__(self, host: Host) -> None:
        self._host = host
        # Bytes of the frame this thread is applying (the reader's; 0 elsewhere, e.g. calls
        # ended by close() or remove_agent()): what lanes charge the events it produces.
        self._applying = threading.local()

    def _size(self) -> int:
        size: int = getattr(self._applying, "size", 0)
        return size

    def _agent(self, frame: Mapping[str, Any]) -> Agent | None:
        value = frame.get("agent_id")
        return self._host.agent(value) if isinstance(value, str) else None

    def _call(self, frame: Mapping[str, Any]) -> Call | None:
        """The known call a frame belongs to; agent_id may be missing (§5.9, Appendix C.4)."""
        call_id = _codec.call_id_of(frame)
        return self._host.call(call_id) if call_id else None

    def _emit(self, call: Call, name: str, frame: Frame, received_at: float,
              event: Any = None) -> None:
        """Queue `name` handlers of the call, its agent and the client on the call's lane."""
        handlers = handlers_of(name, call, call.agent) + self._host.handlers(name)
        if handlers:
            payload = event if event is not None else _codec.event(frame)
            self._run_for(call, handlers, (payload, call), received_at, payload)

    def _run_for(self, call: Call, handlers: tuple[Any, ...], args: tuple[Any, ...],
                 received_at: float, payload: Any = None) -> None:
        """Queue handlers on the call's lane, bound to the turn they answer: the event's
        own user message (a Turn, a user.message), else the newest one at this moment."""
        reply_to = call.last_message_id or ""
        if payload is not None and payload.name in ("turn.end", "eager.turn", "user.message"):
            reply_to = getattr(payload, "message_id", reply_to)
        self._host.run(call.id, bind(call.id, reply_to, handlers), args, received_at,
                       self._size())

    def _emit_agent(self, agent: Agent, name: str, args: tuple[Any, ...],
                    received_at: float, call: Call | None = None) -> None:
        handlers = handlers_of(name, agent) + self._host.handlers(name)
        if handlers and call is not None:
            self._run_for(call, handlers, args, received_at)
        elif handlers:
            self._host.run(agent.id, handlers, args, received_at, self._size())
