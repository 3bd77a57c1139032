"""Scenarios 1, 2, 5 and 6 of issue 7: the connection drops and comes back.

The SDK talks to the scripted peer through the fault proxy. Each test asserts the
disconnect is noticed, the in-flight reply is reported cut, the agent and its channel
are registered again on the new connection, the next call works, and no thread leaks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from reliability_peer import Rx, ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import (
    FAST_BACKOFF,
    ClientEvents,
    StreamingAgent,
    assert_no_thread_leak,
    chunk_of,
    event_is,
)

import voicesync

# The longest a reconnect may take once the path is back: the first backoff step with
# full jitter, plus a generous allowance for a loaded 2-core CI box.
FIRST_RETRY = FAST_BACKOFF.initial * (1 + FAST_BACKOFF.jitter)
SLACK = 2.0  # thread hand-offs on a loaded 2-core machine; far below any heartbeat


def _assert_recovered(peer: ScriptedPeer, bot: StreamingAgent, conn: int,
                      dead_call: str) -> None:
    """Agent and channel re-registered on connection `conn`; a new call streams there;
    nothing for the dead call was sent on it."""
    peer.wait_frame(lambda rx: rx.conn == conn and rx.frame.get("event") == "agent.create"
                    and rx.frame.get("agent_id") == "support", 5.0, what="agent.create again")
    peer.wait_frame(lambda rx: rx.conn == conn and rx.frame.get("event") == "channel.add"
                    and rx.frame.get("ref") == "+15550002222", 5.0, what="channel.add again")
    bot.agent.wait_ready(5.0)
    new_call = f"{dead_call}-next"
    stream = bot.start(peer, new_call)
    assert peer.wait_frame(chunk_of(new_call), 5.0).conn == conn
    stream.abort("test")
    stale = peer.frames(lambda rx: rx.conn >= conn and rx.frame.get("call_id") == dead_call)
    assert stale == [], f"frames for the dead call on the new connection: {stale}"


def _drop_and_recover(
    peer: ScriptedPeer, proxy: FaultProxy, client: voicesync.Client, events: ClientEvents,
    fault: Callable[[], None], *, expect_reason: Callable[[str], bool],
) -> None:
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")
    call = bot.agent.call("CA1")
    assert call is not None

    fault()
    t0 = time.monotonic()
    assert stream.aborted.wait(2.0), "the in-flight reply was not reported cut"
    assert stream.abort_reason == "disconnected"
    assert stream.write("more") is False and stream.end() is False
    at_disconnect, (reason,) = events.wait("disconnected")
    assert expect_reason(reason), reason
    assert call.ended and call.reason == reason

    at_connect, _ = events.wait("connected", count=2, timeout=FIRST_RETRY + SLACK + 2.0)
    _, (attempt, delay) = events.wait("reconnecting")
    assert attempt == 1 and delay <= FIRST_RETRY
    assert at_connect - t0 <= FIRST_RETRY + SLACK, "reconnect took longer than the backoff"
    assert at_disconnect <= at_connect
    _assert_recovered(peer, bot, conn=2, dead_call="CA1")


def test_server_close_1001_mid_stream(peer: ScriptedPeer, proxy: FaultProxy,
                                      make_client: Callable[..., voicesync.Client],
                                      thread_baseline: set[str]) -> None:
    """1: the server closes with 1001 mid-stream and is available again."""
    client = make_client()
    events = ClientEvents(client)
    _drop_and_recover(peer, proxy, client, events, lambda: peer.close(1001, "going away"),
                      expect_reason=lambda r: r == "going away")
    client.close()
    assert_no_thread_leak(thread_baseline)


@pytest.mark.parametrize("fault", ["reset", "cut"])
def test_tcp_reset_or_fin(peer: ScriptedPeer, proxy: FaultProxy,
                          make_client: Callable[..., voicesync.Client],
                          thread_baseline: set[str], fault: str) -> None:
    """2: a TCP reset (and an orderly FIN without a close frame) is detected at once."""
    client = make_client(ping_interval=5.0, ping_timeout=30.0)  # the heartbeat can't help
    events = ClientEvents(client)
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")
    t0 = time.monotonic()
    proxy.reset() if fault == "reset" else proxy.cut()
    assert stream.aborted.wait(5.0)
    at, (reason,) = events.wait("disconnected", timeout=5.0)
    # "At once": the heartbeat (30 s here) played no part.
    assert at - t0 < 2.0, f"a {fault} took {at - t0:.3f} s to notice"
    assert reason == "connection_lost"
    events.wait("connected", count=2, timeout=FIRST_RETRY + SLACK + 3.0)
    _assert_recovered(peer, bot, conn=2, dead_call="CA1")
    client.close()
    assert_no_thread_leak(thread_baseline)


def test_server_restart_same_port(peer: ScriptedPeer, proxy: FaultProxy,
                                  make_client: Callable[..., voicesync.Client],
                                  thread_baseline: set[str]) -> None:
    """5: the server goes away, the port refuses for a while, then it is back."""
    client = make_client()
    events = ClientEvents(client)
    bot = StreamingAgent(client)
    bot.serve()
    bot.start(peer, "CA1")
    proxy.stop_listening()
    proxy.cut()
    events.wait("disconnected")
    # Refused several times, with growing delays (jittered doubling, capped).
    events.wait("reconnecting", count=4, timeout=5.0)
    assert client.connected is False
    proxy.listen()
    at_back = time.monotonic()
    at_connected, _ = events.wait("connected", count=2, timeout=FAST_BACKOFF.maximum * 1.25
                                  + SLACK + 2.0)
    assert at_connected - at_back <= FAST_BACKOFF.maximum * (1 + FAST_BACKOFF.jitter) + SLACK
    delays = [args[1] for _, args in events.of("reconnecting")]
    for n, delay in enumerate(delays[:4]):
        low = min(FAST_BACKOFF.initial * FAST_BACKOFF.factor ** n, FAST_BACKOFF.maximum)
        assert low <= delay <= low * (1 + FAST_BACKOFF.jitter), (n, delay)
    # Refused attempts are not connections the peer ever saw; the next one works.
    assert peer.connections == 2
    _assert_recovered(peer, bot, conn=2, dead_call="CA1")
    # The backoff starts over once connected.
    proxy.reset()
    events.wait("connected", count=3, timeout=FIRST_RETRY + SLACK + 3.0)
    client.close()
    assert_no_thread_leak(thread_baseline)


def test_timed_restart_with_pause(peer: ScriptedPeer, proxy: FaultProxy,
                                  make_client: Callable[..., voicesync.Client]) -> None:
    """5: the NATS pattern: restart on the same port after a pause; traffic resumes."""
    client = make_client()
    events = ClientEvents(client)
    bot = StreamingAgent(client, chunks=3, interval=0.0)
    bot.serve()
    port = proxy.port
    proxy.restart(pause=1.0)
    events.wait("connected", count=2, timeout=1.0 + FAST_BACKOFF.maximum * 1.25 + SLACK)
    assert proxy.port == port
    bot.agent.wait_ready(5.0)
    peer.start_call("support", "CA9")
    peer.turn("support", "CA9", "m9")
    end = peer.wait_frame(lambda rx: rx.frame.get("call_id") == "CA9"
                          and rx.frame.get("action") == "end", 5.0, what="the reply's end")
    assert end.conn == 2


def test_drop_right_after_a_chunk(peer: ScriptedPeer, proxy: FaultProxy,
                                  make_client: Callable[..., voicesync.Client]) -> None:
    """6: the server drops the socket right after it received a chunk: the stream is
    reported cut (never a silent success) and nothing for the dead call is sent later."""
    client = make_client()
    events = ClientEvents(client)
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")
    first: Rx = peer.wait_frame(chunk_of("CA1"), 5.0)
    call = bot.agent.call("CA1")
    proxy.reset()
    assert stream.aborted.wait(2.0)
    assert stream.abort_reason == "disconnected"
    assert stream.write("late") is False
    assert stream.end() is False, "end() after a drop must not look like a success"
    # The handler's failed write can abort the stream before the reader ends the call.
    assert call is not None and call.wait_ended(5.0)
    assert call.send({"event": "bot.cancel", "call_id": "CA1"}) is False
    assert call.say("late").wait(1.0) is True  # settled at once, as cut
    events.wait("connected", count=2, timeout=FIRST_RETRY + SLACK + 3.0)
    _assert_recovered(peer, bot, conn=2, dead_call="CA1")
    sent_on_first = peer.frames(lambda rx: rx.conn == first.conn and event_is(
        "bot.reply.stream")(rx) and rx.frame.get("action") == "end")
    assert len(sent_on_first) <= 1
