"""Scenarios 3 and 4 of issue 7: a silent peer (black hole) and a slow path (latency)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import sdk_threads, until
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import (
    ClientEvents,
    StreamingAgent,
    assert_no_thread_leak,
    chunk_of,
    event_is,
)

import voicesync

PING_INTERVAL = 0.25
PING_TIMEOUT = 1.0


def test_default_detection_window_is_documented() -> None:
    """3: the default window is ≤ 15 s, and both knobs are configurable."""
    client = voicesync.Client(url="ws://127.0.0.1:9")
    assert client.ping_timeout <= 15.0 and client.ping_interval < client.ping_timeout
    custom = voicesync.Client(url="ws://127.0.0.1:9", ping_interval=0.1, ping_timeout=0.3)
    assert (custom.ping_interval, custom.ping_timeout) == (0.1, 0.3)


def test_black_hole_detected_by_heartbeat(peer: ScriptedPeer, proxy: FaultProxy,
                                          make_client: Callable[..., voicesync.Client],
                                          thread_baseline: set[str]) -> None:
    """3: TCP stays open but nothing flows: declared dead within the heartbeat window,
    the in-flight reply is cut, and close() still returns within 2 s."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
                         connect_timeout=10.0)
    events = ClientEvents(client)
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")

    proxy.blackhole()
    t0 = time.monotonic()
    at, (reason,) = events.wait("disconnected", timeout=PING_TIMEOUT + 3.0)
    assert reason == "ping_timeout"
    window = at - t0
    # Upper bound: a heartbeat that woke late under load counts silence from then on.
    assert PING_TIMEOUT - PING_INTERVAL - 0.1 <= window <= PING_TIMEOUT + PING_INTERVAL + 1.5, (
        f"declared dead after {window:.2f} s")
    assert stream.aborted.is_set() and stream.abort_reason == "disconnected"

    # It redials into the same black hole: the upgrade is never answered. close() must
    # not wait for the 10 s connect timeout.
    events.wait("reconnecting")
    assert proxy.wait_accepted(2, timeout=3.0)
    assert proxy.wait_swallowed(2, 100, timeout=3.0)  # its upgrade request is out
    t1 = time.monotonic()
    client.close()
    assert time.monotonic() - t1 <= 2.0
    assert_no_thread_leak(thread_baseline, timeout=1.0)


def test_close_while_black_holed_and_connected(peer: ScriptedPeer, proxy: FaultProxy,
                                               make_client: Callable[..., voicesync.Client],
                                               thread_baseline: set[str]) -> None:
    """3/11: close() against a connected, black-holed peer returns ≤ 2 s, no leak."""
    client = make_client(ping_interval=5.0, ping_timeout=30.0)
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")
    proxy.blackhole()
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 <= 2.0
    assert stream.aborted.is_set()
    assert_no_thread_leak(thread_baseline, timeout=1.0)


def test_latency_no_false_disconnect_and_order_kept(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
) -> None:
    """4: 200 ± 50 ms each way: no disconnect, inbound and outbound order kept."""
    proxy.set_delay(0.2, 0.05)
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    events = ClientEvents(client)
    bot = StreamingAgent(client, chunks=60, interval=0.02)
    seen: list[int] = []
    got_all = threading.Event()
    total = 300

    def on_tick(event: Any, call: Any) -> None:
        seen.append(int(event.raw["n"]))
        if len(seen) == total:
            got_all.set()

    bot.agent.on("x.tick", on_tick, strict=False)
    bot.serve()
    peer.start_call("support", "CA1")
    peer.turn("support", "CA1", "m1")
    for n in range(total):  # 300 inbound frames, in bursts, while the reply streams out
        peer.send({"event": "x.tick", "agent_id": "support", "call_id": "CA1", "n": n})
        if n % 50 == 49:  # let the previous burst land before the next
            until(lambda n=n: len(seen) >= n + 1 - 50, 5.0, what="a burst")
    assert got_all.wait(10.0)
    assert seen == list(range(total))
    end = peer.wait_frame(lambda rx: rx.frame.get("call_id") == "CA1"
                          and rx.frame.get("action") == "end", 10.0, what="the reply's end")
    tokens = [rx.frame["token"] for rx in peer.frames(chunk_of("CA1"))]
    assert tokens == [f"w{i} " for i in range(60)]
    assert end.conn == 1
    # Keep the slow path up for four ping timeouts' worth of pings: one connection.
    pings = int(4 * PING_TIMEOUT / PING_INTERVAL)
    until(lambda: len(peer.frames(event_is("ping"))) >= pings, 4 * PING_TIMEOUT + 3.0,
          what=f"{pings} pings")
    assert events.of("disconnected") == [] and client.connected
    assert peer.connections == 1


def _in_tcp_connect(thread_name: str) -> bool:
    for thread in threading.enumerate():
        if thread.name == thread_name and thread.ident is not None:
            frame = sys._current_frames().get(thread.ident)
            names = set()
            while frame is not None:  # voicesync._tcp.connect, called by the transport's _dial
                names.add((Path(frame.f_code.co_filename).name, frame.f_code.co_name))
                frame = frame.f_back
            return {("_tcp.py", "connect"), ("_transport.py", "_dial")} <= names
    return False


def test_close_during_a_redial_whose_syn_is_dropped(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        thread_baseline: set[str]) -> None:
    """3/11: the server host stops answering SYNs while the SDK redials."""
    client = make_client(connect_timeout=3.0)
    events = ClientEvents(client)
    client.connect(timeout=5.0)
    proxy.stop_listening()
    # A listener with a full backlog on the same port: further SYNs are dropped.
    with socket.socket() as full:
        full.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        full.bind(("127.0.0.1", proxy.port))
        full.listen(0)
        filler = socket.create_connection(("127.0.0.1", proxy.port), timeout=1.0)
        try:
            proxy.cut()
            events.wait("reconnecting")
            until(lambda: _in_tcp_connect("voicesync-reader"), 5.0, what="a hung connect")
            t0 = time.monotonic()
            client.close()
            assert time.monotonic() - t0 <= 2.0
            assert_no_thread_leak(thread_baseline, timeout=1.0)
        finally:
            filler.close()
            # Leave no stray reader behind for later tests' thread checks.
            until(lambda: "voicesync-reader" not in sdk_threads(), 6.0, what="the reader")


def _hold_the_gil(seconds: float) -> float:
    """Run C code that never lets go of the GIL for about `seconds`; returns how long."""
    n = 1 << 23
    t0 = time.monotonic()
    sum(range(n))
    n = int(n * seconds / max(time.monotonic() - t0, 1e-6))
    t0 = time.monotonic()
    sum(range(n))  # one C call: no other Python thread runs until it returns
    return time.monotonic() - t0


def test_a_stalled_process_is_not_taken_for_a_silent_server(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client]) -> None:
    """3: a stall of the whole process (here the GIL held for over ping_timeout; in life
    a long C call or GC pause) freezes the reader as much as the heartbeat: the heartbeat
    notices it woke late, pings, and gives the reader time to read before judging."""
    client = make_client(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    events = ClientEvents(client)
    client.connect(timeout=5.0)
    pings = len(peer.frames(event_is("ping")))
    until(lambda: len(peer.frames(event_is("ping"))) > pings, 5.0, what="a ping")
    held = _hold_the_gil(2.5 * PING_TIMEOUT)
    assert held > PING_TIMEOUT + 0.2, f"the GIL was held only {held:.2f} s"
    pings = len(peer.frames(event_is("ping")))
    until(lambda: len(peer.frames(event_is("ping"))) >= pings + 4, 5.0, what="pings after")
    assert events.of("disconnected") == [] and client.connected
