"""The Client's side of the core's ports: what the dispatcher (`_routing.Host`), the
reader (`_connection.Session`), the heartbeat (`_heartbeat.Link`) and the agents and their
calls (`_uplink.Uplink`) may read and do on a client, and nothing more.

`ClientPorts` is a small adapter a `Client` owns; it also owns the call table (the calls
by id the dispatcher resolves frames to). The Client's private state the core's threads
need is read here and nowhere else in their code, so the dispatcher, the reader, the
heartbeat, agents and calls import no Client and can be driven by any object with the
same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._control import Control
from voicesync._listeners import Handler
from voicesync._port import Port
from voicesync._timer import Timers

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.client import Client
    from voicesync.errors import AuthenticationError, VoiceSyncError


class ClientPorts:
    """Implements `_routing.Host`, `_connection.Session`, `_heartbeat.Link` and
    `_uplink.Uplink` for one Client. Any thread; the call table is guarded by its own lock."""

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

    def agents(self) -> list[Agent]:
        return list(self._client._agents.values())

    def handlers(self, name: str) -> tuple[Handler, ...]:
        return self._client._listeners.get(name)

    def emit_client(self, name: str, *args: Any) -> None:
        self._client._emit_client(name, *args)

    def feed(self, frame: Mapping[str, Any]) -> None:
        self._client._publish(frame)

    def run(self, lane: str, handlers: tuple[Handler, ...], args: tuple[Any, ...],
            received_at: float, size: int = 0) -> None:
        self._client._run(lane, handlers, args, received_at, size=size)

    def send(self, frame: Mapping[str, Any], *, via: Port | None = None) -> bool:
        return self._client._send(frame, via=via)

    def report(self, exc: BaseException, *, log: bool = False, loud: bool = False) -> None:
        self._client._reporter.problem(exc, log=log, loud=loud)

    def handler_failed(self, exc: BaseException, lane: str) -> None:
        self._client._handler_failed(exc, lane)

    def connected(self, frame: Mapping[str, Any]) -> None:
        self._client._on_connected(frame)

    def refused(self, error: AuthenticationError) -> None:
        # Not reported here: connect() raises it, or (on a reconnect) the reader reports it.
        self._client._auth_error = error

    def register_later(self, agent: Agent, delay: float) -> None:
        self._client._timers.schedule(delay, lambda: self._client._register(agent))

    def answered(self, frame: Mapping[str, Any]) -> None:
        self._client._requests.resolve(frame)

    # ------------------------------------------------------------------ Uplink

    def require_connection(self, what: str) -> None:
        self._client._life.require(what)

    def link_state(self) -> str:
        return self._client._life.state(self._client._last_rx)

    def request(self, call_id: str, send: Callable[[Mapping[str, Any]], bool], event: str,
                response: str, *, timeout: float, payload: Mapping[str, Any],
                ) -> Mapping[str, Any]:
        self.require_connection(f"{event!r} on call {call_id}")
        return self._client._requests.ask(call_id, send, event, response, timeout=timeout,
                                          payload=payload, link_state=self.link_state)

    @property
    def timers(self) -> Timers:
        return self._client._timers

    # ------------------------------------------------------------------ Session, Link

    @property
    def url(self) -> str:
        return self._client.url

    @property
    def api_key(self) -> str | None:
        return self._client._api_key

    @property
    def connect_timeout(self) -> float:
        return self._client.connect_timeout

    @property
    def reconnect(self) -> bool:
        return self._client.reconnect

    @property
    def max_frame_bytes(self) -> int:
        return self._client.max_frame_bytes

    @property
    def ping_interval(self) -> float:
        return self._client.ping_interval

    @property
    def ping_timeout(self) -> float:
        return self._client.ping_timeout

    @property
    def send_timeout(self) -> float:
        return self._client._send_timeout

    @property
    def control(self) -> Control:
        return self._client._control

    def open_port(self) -> Port:
        client = self._client
        return client._transport_factory(
            max_frame_bytes=client.max_frame_bytes, ssl_context=client._ssl_context,
            send_timeout=client._send_timeout,
            on_stall=lambda: client._declare_dead("send_timeout"))

    def publish(self, port: Port | None) -> None:
        self._client._transport = port

    def port(self) -> Port | None:
        return self._client._transport  # type: ignore[no-any-return]

    def is_connected(self) -> bool:
        return self._client._connected.is_set()

    def last_rx(self) -> float:
        return self._client._last_rx

    def declare_dead(self, reason: str) -> None:
        self._client._declare_dead(reason)

    def dead_reason(self) -> str | None:
        return self._client._dead_reason

    def refusal(self) -> AuthenticationError | None:
        return self._client._auth_error

    def sent(self, text: str) -> None:
        recorder = self._client._recorder
        if recorder is not None:
            recorder.sent(text)

    def received(self, text: str, at: float) -> None:
        client = self._client
        client._last_rx = at
        client._counters.add("frames_received")
        recorder = client._recorder
        if recorder is not None:
            recorder.received(text)

    def count(self, name: str) -> None:
        self._client._counters.add(name)

    def apply(self, frame: dict[str, Any], received_at: float, size: int) -> None:
        self._client._dispatcher.handle(frame, received_at, size)

    def dropped(self, reason: str, *, was_connected: bool) -> None:
        self._client._on_disconnected(reason, was_connected=was_connected)

    def gave_up(self, error: VoiceSyncError, *, initial: bool) -> None:
        self._client._reader_stopped(error, initial=initial)

    def backoff(self, attempt: int) -> float:
        return self._client._backoff.delay(attempt)

    def reconnecting(self, attempt: int, delay: float) -> None:
        self._client._emit_client("reconnecting", attempt, delay)
