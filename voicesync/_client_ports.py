"""The Client's side of the core's ports: what the dispatcher (`_routing.Host`) and the
reader (`_connection.Session`) may read and do on a client, and nothing more.

`ClientPorts` is a small adapter a `Client` owns; it also owns the call table (the calls
by id the dispatcher resolves frames to). It is the one module besides `client.py` that
touches the Client's private state, so the dispatcher and the reader import no Client and
can be driven by any object with the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._listeners import Handler

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.client import Client
    from voicesync.errors import AuthenticationError


class ClientPorts:
    """Implements `_routing.Host` (and `_connection.Session`) for one Client. Any thread;
    the call table is guarded by its own lock."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._calls: dict[str, Call] = {}

    # ------------------------------------------------------------------ the call table

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def add_call(self, call: Call) -> None:
        with self._lock:
            self._calls[call.id] = call
        call.agent._add_call(call)

    def remove_call(self, call: Call) -> None:
        with self._lock:
            if self._calls.get(call.id) is call:
                del self._calls[call.id]
        call.agent._pop_call(call.id)

    def active_calls(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ Host

    def agent(self, agent_id: str) -> Agent | None:
        """exact id → the part after the last ':' → slug (docs/protocol.md §2.7)."""
        agents = self._client._agents  # read without the lock, as dicts allow
        agent = agents.get(agent_id)
        if agent is None and ":" in agent_id:
            agent_id = agent_id.rsplit(":", 1)[1]
            agent = agents.get(agent_id)
        if agent is None:
            slug = _codec.slugify(agent_id)
            agent = next((a for a in list(agents.values()) if a.slug == slug), None)
        return agent

    def handlers(self, name: str) -> tuple[Handler, ...]:
        return self._client._listeners.get(name)

    def run(self, lane: str, handlers: tuple[Handler, ...], args: tuple[Any, ...],
            received_at: float, size: int = 0) -> None:
        self._client._run(lane, handlers, args, received_at, size)

    def send(self, frame: Mapping[str, Any]) -> bool:
        return self._client._send(frame)

    def report(self, exc: BaseException, *, log: bool = False) -> None:
        self._client._reporter.problem(exc, log=log)

    def handler_failed(self, exc: BaseException, lane: str) -> None:
        self._client._handler_failed(exc, lane)

    def connected(self, frame: Mapping[str, Any]) -> None:
        self._client._on_connected(frame)

    def refused(self, error: AuthenticationError) -> None:
        # Not reported here: connect() raises it, or (on a reconnect) the reader reports it.
        self._client._auth_error = error

    def register_later(self, agent: Agent, delay: float) -> None:
        self._client._schedule(delay, lambda: self._client._register(agent))

    def answered(self, frame: Mapping[str, Any]) -> None:
        self._client._requests.resolve(frame)
