"""Issue 12: inbound bounds for every frame shape, refusals that are exactly the documented
ones, and log lines a hostile peer cannot multiply or inflate."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from reliability_peer import ScriptedPeer
from reliability_support import ClientEvents, LogRecords, event_is

import voicesync
from voicesync.call import Call
from voicesync.events import Event

CAP = 1 << 20
STEP = 8 << 10


@pytest.fixture
def client(peer: ScriptedPeer, make_client: Callable[..., voicesync.Client]
           ) -> Iterator[voicesync.Client]:
    """Connected, agent registered, one live call CA1; a long ping_timeout, so nothing
    here is cut by the heartbeat."""
    c = make_client(ping_interval=5.0, ping_timeout=60.0)
    agent = c.agent("support")
    c.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    yield c


def _endless(sent: list[int], stop: threading.Event) -> Iterator[str]:
    yield '{"event": "x.big", "pad": "'
    while not stop.is_set():
        sent[0] += STEP
        yield "a" * STEP


def test_a_fragmented_message_that_never_ends_is_cut_at_the_cap(
        peer: ScriptedPeer, client: voicesync.Client) -> None:
    """Fragments keep coming and the message never finishes: the SDK closes with 1009
    as soon as the fragments pass the cap, not when the heartbeat gives up."""
    events = ClientEvents(client)
    sent, stop = [0], threading.Event()
    conn = peer._current()
    sender = threading.Thread(target=lambda: _send_quietly(conn, _endless(sent, stop)),
                              name="test-fragments", daemon=True)
    t0 = time.monotonic()
    sender.start()
    try:
        _, (reason,) = events.wait("disconnected", timeout=10.0)
        took = time.monotonic() - t0
    finally:
        stop.set()
        sender.join(5.0)
    assert reason == "frame_too_large"
    assert took < 5.0, f"cut after {took:.1f} s"
    assert client.stats().oversize_frames == 1
    events.wait("connected", timeout=5.0)


def _send_quietly(conn: object, parts: Iterator[str]) -> None:
    try:
        conn.send(parts)  # type: ignore[attr-defined]
    except Exception:  # the SDK closed the connection under it: expected
        return


def test_a_call_backlog_is_bounded_in_bytes(
        peer: ScriptedPeer, client: voicesync.Client) -> None:
    """A call's handler is blocked while 40 events of 900 kB each arrive: the backlog
    stops at its byte bound (16 MiB), the rest is dropped and reported."""
    events = ClientEvents(client)
    release = threading.Event()
    handled: list[int] = []

    def slow(event: Event, call: Call) -> None:
        release.wait(30.0)
        handled.append(1)

    client.on("x.blob", slow, strict=False)
    pad = "b" * 900_000
    try:
        for _ in range(40):
            peer.send({"event": "x.blob", "agent_id": "support", "call_id": "CA1",
                       "pad": pad})
        _, (error,) = events.wait("error", timeout=10.0)
        assert isinstance(error, voicesync.EventsDroppedError)
        until_dropped = time.monotonic() + 10.0
        while client.stats().dropped_events < 40 - 19:
            assert time.monotonic() < until_dropped, client.stats()
            threading.Event().wait(0.02)
    finally:
        release.set()
    assert client.connected


@pytest.mark.parametrize("frame", [
    {"event": "error", "code": "UNAUTHORIZED", "error": "not allowed to dial"},
    {"event": "error", "code": "TTS_FAILED", "error": "provider said INVALID_KEY"},
    {"event": "error", "error": "INVALID_KEY for the TTS provider"},
], ids=["UNAUTHORIZED", "text-mentions-INVALID_KEY", "no-code"])
def test_only_documented_refusals_stop_the_client(
        peer: ScriptedPeer, client: voicesync.Client, frame: dict[str, str]) -> None:
    """An error frame that is not the documented refusal (code INVALID_KEY exactly) is
    reported through `error` and the client keeps serving the same connection."""
    events = ClientEvents(client)
    peer.send(frame)
    _, (error,) = events.wait("error", timeout=5.0)
    assert isinstance(error, voicesync.ServerError)
    assert not isinstance(error, voicesync.AuthenticationError)
    pings = len(peer.frames(event_is("ping")))
    client.send({"event": "ping"})
    peer.wait_frame(lambda rx: rx.frame.get("event") == "ping" and rx.conn == 1, 5.0)
    assert len(peer.frames(event_is("ping"))) > pings
    assert client.connected and events.of("disconnected") == []


def test_a_flood_of_bad_frames_logs_a_few_lines_with_counts(
        peer: ScriptedPeer, client: voicesync.Client) -> None:
    """2,000 bad frames and one 900 kB one: every one counted, a handful of short lines
    logged (one at once, then one per 5 s carrying how many were folded into it)."""
    before = client.stats().malformed_frames
    with LogRecords() as logs:
        peer.send("not json " + "z" * 900_000)
        for n in range(2000):
            peer.send(f"bad frame {n}")
        until_counted = time.monotonic() + 10.0
        while client.stats().malformed_frames < before + 2001:
            assert time.monotonic() < until_counted, client.stats()
            threading.Event().wait(0.02)
    skipped = [m for m in logs.messages(logging.WARNING) if "skipped a frame" in m]
    assert 1 <= len(skipped) <= 2, skipped[:3]
    assert max(len(m) for m in logs.messages(logging.INFO)) < 1_000
    assert max(len(m) for m in logs.messages()) < 2_100  # DEBUG frame lines: 2,000 chars


def test_wire_text_in_reported_errors_is_clipped_in_logs(
        peer: ScriptedPeer, client: voicesync.Client) -> None:
    events = ClientEvents(client)
    with LogRecords() as logs:
        peer.send(json.dumps({"event": "error", "code": "X", "error": "e" * 900_000}))
        events.wait("error", timeout=5.0)
    assert max(len(m) for m in logs.messages(logging.INFO)) < 1_000
