"""Scenario 10 of issue 7: refused keys, registration conflicts and capacity.

Each refusal surfaces as a typed error, and none of them turns into a reconnect storm:
a refused key is never retried, a conflict is retried on the server's hint within a
budget, capacity is not retried, and none of them re-dials the socket.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from helpers import sdk_threads, until
from reliability_peer import Frame, ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import ClientEvents, event_is

import voicesync
from voicesync import _backoff


def _reader_gone() -> bool:
    return "voicesync-reader" not in sdk_threads()


@pytest.mark.parametrize("refusal", ["http_401", "http_403", "invalid_key", "close_1008"])
def test_refused_key_is_typed_and_never_retried(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        refusal: str) -> None:
    """10: 401/403 at the upgrade, an INVALID_KEY frame, or close 1008: one attempt."""
    if refusal.startswith("http_"):
        peer.http_status = int(refusal[5:])
    else:
        peer.on_connect = refusal
    client = make_client()
    with pytest.raises(voicesync.AuthenticationError) as info:
        client.connect(timeout=5.0)
    assert "PINECALL_API_KEY" in str(info.value)
    until(_reader_gone, 3.0, what="the reader to give up")
    assert proxy.accepted == 1
    assert peer.handshakes == (0 if refusal.startswith("http_") else 1)


def test_key_refused_on_reconnect_stops_redialing(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
) -> None:
    """10: the key is revoked while connected: the redial is refused once, reported as
    AuthenticationError through `error`, and run_forever raises it."""
    client = make_client()
    events = ClientEvents(client)
    client.connect(timeout=5.0)
    peer.on_connect = "invalid_key"
    proxy.reset()
    _, (error,) = events.wait("error", timeout=5.0)
    assert isinstance(error, voicesync.AuthenticationError)
    until(_reader_gone, 3.0, what="the reader to give up")
    assert peer.handshakes == 2 and proxy.accepted == 2
    assert events.of("connected") and len(events.of("reconnecting")) == 1
    with pytest.raises(voicesync.AuthenticationError):
        client.run_forever()


def _conflict(retry_after: float | None, holder_alive: bool = True) -> Frame:
    frame: Frame = {"event": "error", "code": "AGENT_CONFLICT", "agent_id": "support",
                    "error": "Agent 'support' is already connected.",
                    "holder_alive": holder_alive}
    if retry_after is not None:
        frame["retry_after_s"] = retry_after
    return frame


def test_conflict_retries_follow_the_server_hint(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
) -> None:
    """10: AGENT_CONFLICT with retry_after_s: re-sent after that long (±15 %), each
    conflict reported, then registered; the socket is never re-dialled."""
    hint = 0.3
    peer.agent_reply = lambda frame, n: [_conflict(hint)] if n <= 2 else [
        {"event": "agent.created", "agent_id": "support"}]
    client = make_client()
    events = ClientEvents(client)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    # wait_ready() would raise AgentConflictError at once (the holder is alive): watch instead
    until(lambda: agent.ready, 5.0, what="the registration after two conflicts")
    creates = [rx.at for rx in peer.frames(event_is("agent.create"))]
    assert len(creates) == 3
    gaps = [b - a for a, b in itertools.pairwise(creates)]
    assert all(hint * 0.85 - 0.02 <= gap <= hint * 1.15 + 0.5 for gap in gaps), gaps
    events.wait("error", count=2)  # reported on a handler thread, maybe after the ready
    conflicts = [args[0] for _, args in events.of("error")]
    assert len(conflicts) == 2
    assert all(isinstance(e, voicesync.ServerError) and e.code == "AGENT_CONFLICT"
               for e in conflicts)
    assert peer.connections == 1 and events.of("disconnected") == []


def test_conflict_retry_budget_ends_in_a_typed_error(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """10: a holder that never lets go: retries stop at the budget with
    AgentConflictError(retry_budget_exhausted); no more agent.create after that."""
    monkeypatch.setattr(_backoff, "CONFLICT_BUDGET", 1.0)  # 90 s in production
    hint = 0.25
    peer.agent_reply = lambda frame, n: [_conflict(hint)]
    client = make_client()
    agent = client.agent("support")
    client.connect(timeout=5.0)

    def decided() -> voicesync.AgentConflictError | None:
        """The conflict once voicesync stopped retrying (wait_ready() raises at once)."""
        try:
            agent.wait_ready(5.0)
        except voicesync.AgentConflictError as exc:
            return None if exc.reason == "retrying" else exc
        raise AssertionError("registered although the holder never let go")

    error = until(decided, 5.0, what="the end of the retry budget")
    assert error.reason == "retry_budget_exhausted" and error.agent_id == "support"
    count = len(peer.frames(event_is("agent.create")))
    assert 3 <= count <= 1 + int(1.0 / (hint * 0.85)) + 1
    # Nothing more: wait two hint periods for a create that must not come.
    quiet = threading.Event()
    quiet.wait(2 * hint)
    assert len(peer.frames(event_is("agent.create"))) == count
    assert peer.connections == 1 and client.connected


@pytest.mark.parametrize(("reply", "error_type"), [
    ({"event": "error", "code": "AGENT_CONFLICT_FATAL", "agent_id": "support",
      "error": "Agent 'support' is already connected.", "holder_alive": True},
     voicesync.AgentConflictError),
    ({"event": "error", "code": "SERVER_AT_CAPACITY", "agent_id": "support",
      "error": "SERVER_AT_CAPACITY: Maximum clients (100) reached (100/100 slots used).",
      "used": 100, "limit": 100}, voicesync.ServerAtCapacityError),
    ({"event": "error", "code": "REGISTRATION_ERROR", "agent_id": "support",
      "error": "bad voice"}, voicesync.RegistrationError),
], ids=["fatal conflict", "capacity", "registration error"])
def test_terminal_registration_errors_are_typed_and_not_retried(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        reply: dict[str, Any], error_type: type[Exception]) -> None:
    """10: fatal conflict, capacity and refusal: typed, one agent.create, no re-dial."""
    peer.agent_reply = lambda frame, n: [reply]
    client = make_client()
    events = ClientEvents(client)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    with pytest.raises(error_type) as info:
        agent.wait_ready(5.0)
    _, (reported,) = events.wait("error")
    assert type(reported) is error_type
    if isinstance(info.value, voicesync.ServerAtCapacityError):
        assert (info.value.used, info.value.limit) == (100, 100)
    if isinstance(info.value, voicesync.AgentConflictError):
        assert info.value.reason == "server_fatal"
    assert len(peer.frames(event_is("agent.create"))) == 1
    assert peer.connections == 1 and client.connected


def test_displacement_is_not_redialed(
        proxy: FaultProxy, peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
) -> None:
    """10: closed with 4001 (another connection took the agent): no reconnect loop."""
    client = make_client()
    events = ClientEvents(client)
    client.connect(timeout=5.0)
    peer.close(4001, "Displaced by new connection")
    events.wait("disconnected")
    until(_reader_gone, 3.0, what="the reader to give up")
    assert proxy.accepted == 1 and events.of("reconnecting") == []
    with pytest.raises(voicesync.ConnectionClosedError, match="displaced"):
        client.run_forever()
