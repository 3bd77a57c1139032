"""Client lifecycle over a real loopback socket: connect, auth, timeouts, reconnect, close."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from helpers import CANARY_KEY, sdk_threads, until

import voicesync
from voicesync._backoff import Backoff

_made: list[voicesync.Client] = []


def fast_client(sim: Any, **kw: Any) -> voicesync.Client:
    kw.setdefault("backoff", Backoff(initial=0.05, maximum=0.2))
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url, ping_interval=1.0,
                              ping_timeout=3.0, **kw)
    _made.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Any:
    yield
    while _made:
        _made.pop().close()


def test_constructor_does_not_connect_and_connect_blocks_until_connected(sim: Any) -> None:
    with fast_client(sim) as client:
        assert not client.connected and sim.connections == []
        client.connect(timeout=5)
        assert client.connected
        frame = sim.wait_frame(event="connect", direction="in")
        assert frame.data == {"event": "connect", "api_key": CANARY_KEY}
    assert not client.connected


def test_url_gets_client_path_and_key_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINECALL_API_KEY", raising=False)
    monkeypatch.delenv("PINECALL_URL", raising=False)
    with pytest.raises(voicesync.ConfigurationError, match="PINECALL_API_KEY"):
        voicesync.Client()
    monkeypatch.setenv("PINECALL_API_KEY", CANARY_KEY)
    client = voicesync.Client()
    assert client.url == "wss://voice.pinecall.io/client"
    assert client.http_url == "https://voice.pinecall.io"
    assert CANARY_KEY not in repr(client)
    assert voicesync.Client(url="http://127.0.0.1:9/client/").url == "ws://127.0.0.1:9/client"


def test_plain_ws_is_refused_off_loopback() -> None:
    with pytest.raises(voicesync.ConfigurationError, match="allow_insecure"):
        voicesync.Client(api_key="k", url="ws://example.test")
    assert voicesync.Client(api_key="k", url="ws://example.test", allow_insecure=True)


def test_wrong_key_raises_authentication_error_and_does_not_retry(sim: Any) -> None:
    sim.handshake = "reject"
    client = fast_client(sim)
    with pytest.raises(voicesync.AuthenticationError):
        client.connect(timeout=5)
    attempts = [f for f in sim.frames if f.event == "connect"]
    assert len(attempts) == 1
    client.close()
    assert sdk_threads() == []


def test_silent_server_times_out_and_closes_the_socket(sim: Any) -> None:
    sim.handshake = "silent"
    client = fast_client(sim, connect_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(voicesync.ConnectTimeout):
        client.connect(timeout=5)
    assert time.monotonic() - t0 < 3
    until(lambda: sim.connections == [], 5, "the socket to be closed")
    client.close()


def test_refused_port_raises_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = voicesync.Client(url=f"ws://127.0.0.1:{port}")
    with pytest.raises(voicesync.ConnectError, match="refused"):
        client.connect(timeout=5)
    client.close()


def test_reconnect_reregisters_agents_and_channels_in_order(sim: Any) -> None:
    client = fast_client(sim)
    events: list[str] = []
    client.on("disconnected", lambda reason: events.append(f"disconnected:{reason}"))
    client.on("reconnecting", lambda attempt, delay: events.append(f"reconnecting:{attempt}"))
    client.on("connected", lambda: events.append("connected"))
    agent = client.agent("support", voice="elevenlabs/sarah", phone="+13186330963")
    client.connect(timeout=5)
    agent.wait_ready(5)
    agent.update(language="fr")
    sim.wait_frame(event="channel.add", direction="in")
    sim.wait_frame(event="agent.configure", direction="in")
    mark = sim.mark()
    sim.drop(code=1001, reason="going away")
    until(lambda: events[-1:] == ["connected"] and len(events) >= 4, 10, "a reconnect")
    agent.wait_ready(5)
    sim.wait_frame(event="channel.add", direction="in", since=mark)
    sent = [f.data for f in sim.frames_since(mark) if f.direction == "in"
            and f.event not in ("ping", "pong")]
    assert [f["event"] for f in sent[:3]] == ["connect", "agent.create", "channel.add"]
    assert sent[1] == {"event": "agent.create", "agent_id": "support",
                       "voice": "elevenlabs/sarah", "language": "fr"}
    assert events[:3] == ["connected", "disconnected:going away", "reconnecting:1"]
    client.close()


def test_displaced_close_is_not_retried(sim: Any) -> None:
    client = fast_client(sim)
    errors: list[BaseException] = []
    client.on("error", errors.append)
    agent = client.agent("support")
    client.connect(timeout=5)
    agent.wait_ready(5)
    sim.displace("support")
    until(lambda: errors, 5, "the error event")
    assert "displaced" in str(errors[-1])
    assert [f for f in sim.frames if f.event == "connect"].__len__() == 1
    client.close()


def test_answers_server_ping_and_pings_on_its_own(sim: Any) -> None:
    with fast_client(sim) as client:
        client.connect(timeout=5)
        mark = sim.mark()
        sim.send({"event": "ping"})
        assert sim.wait_frame(event="pong", direction="in", since=mark).data == {"event": "pong"}
        sim.wait_frame(event="ping", direction="in", timeout=3)


def test_close_is_quick_with_a_blocked_handler_and_threads_end(sim: Any) -> None:
    client = fast_client(sim)
    agent = client.agent("support")
    gate, started = threading.Event(), threading.Event()

    @agent.on("turn.end")
    def stuck(turn: voicesync.Turn, call: voicesync.Call) -> None:
        started.set()
        gate.wait(30)

    client.connect(timeout=5)
    agent.wait_ready(5)
    sim.start_call("support").say("hello")
    assert started.wait(5)
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 <= 2.0
    assert [t for t in sdk_threads() if not t.startswith("voicesync-handler")] == []
    gate.set()
    until(lambda: sdk_threads() == [], 5, "the handler thread to finish")


def test_run_forever_returns_after_close_from_another_thread(sim: Any) -> None:
    client = fast_client(sim)
    client.connect(timeout=5)
    timer = threading.Timer(0.2, client.close)
    timer.start()
    client.run_forever()
    assert not client.connected


def test_send_escape_hatch_and_unknown_events_reach_handlers(sim: Any) -> None:
    with fast_client(sim) as client:
        agent = client.agent("support")
        got: list[Any] = []
        agent.on("custom.thing", lambda event, call: got.append((event.name, event.get("x"))),
                 strict=False)
        client.connect(timeout=5)
        agent.wait_ready(5)
        call = sim.start_call("support")
        assert client.send({"event": "custom.command", "x": 1})
        sim.wait_frame(event="custom.command", direction="in")
        call.send_event("custom.thing", x=42)
        until(lambda: got, 5, "the custom event")
        assert got == [("custom.thing", 42)]


def test_malformed_frames_are_skipped_and_the_reader_survives(sim: Any) -> None:
    with fast_client(sim) as client:
        agent = client.agent("support")
        client.connect(timeout=5)
        agent.wait_ready(5)
        for bad in ("not json", "[1]", '{"no":"event"}', '{"event":"x","n":NaN}',
                    "[" * 5000 + "]" * 5000, '{"event":"call.ended"}',
                    '{"event":"user.message","call_id":"nope","agent_id":"support"}'):
            sim.send(bad)
        call = sim.start_call("support")
        until(lambda: agent.call(call.call_id), 5, "the next call to arrive")
        assert client.stats().malformed_frames == 4
        assert client.connected

