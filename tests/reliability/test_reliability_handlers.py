"""Scenarios 7 and 8 of issue 7: handlers that block or raise, and a burst of events."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from helpers import until
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import ClientEvents, chunk_of, event_is

import voicesync

PING_INTERVAL = 0.25
PING_TIMEOUT = 1.0
BACKLOG = 10_000  # a lane's bound (voicesync._lanes.Lanes max_backlog)


def _tick(call_id: str, n: int) -> dict[str, Any]:
    return {"event": "x.tick", "agent_id": "support", "call_id": call_id, "n": n}


def test_blocked_or_raising_handler_leaves_everything_else_running(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """7: call A's handler blocks (up to 30 s) holding an open reply stream; meanwhile
    the socket is read, pings flow, A's barge-in aborts A's stream at once, call B is
    answered in full, and a raising handler is reported through `error`."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    events = ClientEvents(client)
    agent = client.agent("support")
    gate = threading.Event()
    blocked = threading.Event()
    streams: dict[str, voicesync.ReplyStream] = {}
    after_block: list[int] = []

    @agent.on("turn.end")
    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        stream = call.reply_stream(turn)
        streams[call.id] = stream
        stream.write("thinking ")
        if call.id == "CA-A":
            blocked.set()
            gate.wait(30.0)  # a slow LLM: only this call waits
            return
        stream.write("done")
        stream.end()

    @agent.on("x.tick", strict=False)
    def on_tick(event: Any, call: voicesync.Call) -> None:
        if call.id == "CA-A":
            after_block.append(int(event.raw["n"]))

    @agent.on("x.boom", strict=False)
    def on_boom(event: Any, call: voicesync.Call) -> None:
        raise ValueError("handler bug")

    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    try:
        peer.start_call("support", "CA-A")
        peer.start_call("support", "CA-B")
        peer.turn("support", "CA-A", "mA")
        assert blocked.wait(5.0)
        peer.send(_tick("CA-A", 1))  # queued behind the blocked handler, in order

        # Barge-in on A: applied on the reader thread, not behind A's handler.
        t0 = time.monotonic()
        peer.send({"event": "bot.interrupted", "agent_id": "support", "call_id": "CA-A",
                   "message_id": streams["CA-A"].message_id})
        assert streams["CA-A"].aborted.wait(5.0)
        assert time.monotonic() - t0 < 2.0  # not behind A's handler, blocked for 30 s
        assert streams["CA-A"].abort_reason == "bot.interrupted"

        # Call B is answered while A's handler is still blocked.
        peer.turn("support", "CA-B", "mB")
        peer.wait_frame(lambda rx: rx.frame.get("call_id") == "CA-B"
                        and rx.frame.get("action") == "end", 5.0, what="B's full reply")
        assert [rx.frame["token"] for rx in peer.frames(chunk_of("CA-B"))] == [
            "thinking ", "done"]

        # A raising handler: reported, counted, and the lane goes on.
        before = client.stats().handler_errors
        peer.send({"event": "x.boom", "agent_id": "support", "call_id": "CA-B"})
        _, (exc,) = events.wait("error")
        assert isinstance(exc, ValueError) and str(exc) == "handler bug"
        until(lambda: client.stats().handler_errors == before + 1, 2.0, what="the count")
        peer.turn("support", "CA-B", "mB2")
        until(lambda: len(peer.frames(lambda rx: rx.frame.get("call_id") == "CA-B"
                                      and rx.frame.get("action") == "end")) == 2, 5.0,
              what="B's second reply")

        # Pings kept flowing for several timeouts while A is blocked: no disconnect.
        start = len(peer.frames(event_is("ping")))
        pings = int(3 * PING_TIMEOUT / PING_INTERVAL)
        until(lambda: len(peer.frames(event_is("ping"))) >= start + pings,
              3 * PING_TIMEOUT + 3.0, what="pings while a handler is blocked")
        assert events.of("disconnected") == [] and client.connected
        assert blocked.is_set() and not gate.is_set() and after_block == []
    finally:
        gate.set()
    until(lambda: after_block == [1], 5.0, what="A's queued event after the release")
    # Nothing of A's aborted stream went out after its end.
    frames_a = [rx.frame.get("action") for rx in peer.frames(
        lambda rx: rx.frame.get("call_id") == "CA-A" and rx.frame.get("event") ==
        "bot.reply.stream")]
    assert frames_a == ["start", "chunk", "end"]


def test_burst_of_10000_events_is_delivered_in_order(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """8: 10,000 events in one burst to a working handler: all arrive, in order, none
    dropped, and the client stays connected."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=5.0)
    agent = client.agent("support")
    seen: list[int] = []
    agent.on("x.tick", lambda event, call: seen.append(int(event.raw["n"])), strict=False)
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    peer.send_many([_tick("CA1", n) for n in range(10_000)])
    until(lambda: len(seen) == 10_000, 30.0, what="10,000 events")
    assert seen == list(range(10_000))
    stats = client.stats()
    assert stats.dropped_events == 0 and client.connected
    assert stats.frames_received >= 10_000


def test_burst_beyond_the_bound_is_counted_and_reported(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """8: a blocked handler and 30,000 events: the lane keeps exactly its bound, every
    drop is counted and reported through `error` (batched, at most once a second),
    memory stays flat past the bound,
    and the kept events are delivered in order once the handler returns."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=5.0)
    agent = client.agent("support")
    gate, blocked = threading.Event(), threading.Event()
    seen: list[int] = []
    reported: list[BaseException] = []  # the first report, and how many drops were reported
    counted = [0]

    def on_error(exc: BaseException) -> None:
        if isinstance(exc, voicesync.EventsDroppedError):
            counted[0] += exc.count
        if not reported:
            reported.append(exc)

    client.on("error", on_error)

    @agent.on("x.tick", strict=False)
    def on_tick(event: Any, call: voicesync.Call) -> None:
        n = int(event.raw["n"])
        if n == 0:
            blocked.set()
            gate.wait(30.0)
        seen.append(n)

    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    sdk_log = logging.getLogger("voicesync")
    sdk_log.propagate = False  # measure the SDK, not pytest's capture of its log records
    try:
        peer.send(_tick("CA1", 0))
        assert blocked.wait(5.0)
        peer.send_many([_tick("CA1", n) for n in range(1, BACKLOG + 1)])
        until(lambda: client.stats().frames_received >= BACKLOG + 1, 20.0, what="the bound")
        assert client.stats().dropped_events == 0
        tracemalloc.start()  # from here on: events past the bound
        extra = 3_000
        peer.send_many([_tick("CA1", n) for n in range(BACKLOG + 1, BACKLOG + 1 + extra)])
        until(lambda: client.stats().dropped_events == extra, 30.0, what="the drops counted")
        # 3,000 queued events would hold ~3.6 MiB; past the bound they hold ~nothing.
        grown = tracemalloc.get_traced_memory()[0]
        assert grown < 1 << 20, f"memory grew {grown >> 10} KiB past the bound"
        until(lambda: counted[0] == extra, 10.0, what="every drop reported")
        assert isinstance(reported[0], voicesync.EventsDroppedError)
        assert "dropped" in str(reported[0])
        assert client.connected
    finally:
        tracemalloc.stop()
        sdk_log.propagate = True
        gate.set()
    until(lambda: len(seen) == BACKLOG + 1, 20.0, what="the kept events")
    assert seen == list(range(BACKLOG + 1))
    # The reader never stalled: a new call is still served.
    peer.send(_tick("CA1", -1))
    until(lambda: seen[-1] == -1, 5.0, what="an event after the burst")


def test_overflow_with_a_blocked_error_handler_keeps_the_reader_alive(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """8: when even the `error` handler is stuck, overflow reports cannot pile up or
    recurse: the reader keeps reading and the drops are still counted."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=5.0)
    agent = client.agent("support")
    gate = threading.Event()
    client.on("error", lambda exc: gate.wait(30.0))
    agent.on("x.tick", lambda event, call: gate.wait(30.0), strict=False)
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    try:
        total = 2 * BACKLOG + 2_000
        peer.send_many([_tick("CA1", n) for n in range(total)])
        # frames_received counts a frame before it is dispatched, so wait on the drops.
        # One tick may be running (not queued) when the lane fills, or not yet.
        least = total - BACKLOG - 1
        until(lambda: client.stats().dropped_events >= least, 60.0, what="the drops counted")
        until(lambda: client.stats().frames_received >= total, 10.0, what="the burst read")
        assert client.stats().dropped_events in (least, least + 1)
        # Still reading: a ping from the server is answered.
        peer.send({"event": "ping"})
        peer.wait_frame(event_is("pong"), 5.0, what="a pong after the overflow")
        assert client.connected
    finally:
        gate.set()
