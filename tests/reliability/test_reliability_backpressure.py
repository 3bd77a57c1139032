"""Issue 12: a peer that stops reading. close() still returns on time, writers are held
back (bounded bytes, bounded wait) and the connection is declared dead (send_timeout)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import ClientEvents, assert_no_thread_leak, chunk_of

import voicesync
from voicesync.call import Call
from voicesync.events import Turn

CHUNK = "x" * 16_000  # big writes fill the socket buffers in a fraction of a second


class Flooder:
    """Answers each turn with a reply stream written as fast as write() returns."""

    def __init__(self, client: voicesync.Client) -> None:
        self.agent = client.agent("support")
        self.agent.add_phone("+15550002222")
        self._lock = threading.Lock()
        self.accepted = 0  # bytes write() accepted
        self.refused = threading.Event()  # a write() returned False
        self.in_write: dict[int, float] = {}  # thread id -> when its current write began
        self.streams: list[voicesync.ReplyStream] = []
        self.agent.on("turn.end", self._on_turn)

    def _on_turn(self, turn: Turn, call: Call) -> None:
        me = threading.get_ident()
        with call.reply_stream(turn) as stream:
            with self._lock:
                self.streams.append(stream)
            while True:
                with self._lock:
                    self.in_write[me] = time.monotonic()
                ok = stream.write(CHUNK)
                with self._lock:
                    del self.in_write[me]
                    if ok:
                        self.accepted += len(CHUNK)
                if not ok:
                    self.refused.set()
                    return

    def blocked_for(self) -> float:
        """How long the longest write() in progress has been waiting."""
        with self._lock:
            starts = list(self.in_write.values())
        return time.monotonic() - min(starts) if starts else 0.0


@pytest.fixture
def keep_talking(peer: ScriptedPeer) -> Iterator[Callable[[], None]]:
    """Once started, the peer sends a frame every 50 ms: it is not silent, only deaf."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: _talk(peer, stop), name="test-talker", daemon=True)
    yield thread.start
    stop.set()
    if thread.ident is not None:
        thread.join(5.0)


def _talk(peer: ScriptedPeer, stop: threading.Event) -> None:
    while not stop.wait(0.05):
        try:
            peer.send({"event": "x.keepalive"})
        except Exception:  # the connection went away: keep trying the newest one
            continue


def _flooding(peer: ScriptedPeer, client: voicesync.Client, calls: int) -> Flooder:
    bot = Flooder(client)
    client.connect(timeout=5.0)
    bot.agent.wait_ready(5.0)
    for n in range(calls):
        peer.start_call("support", f"CA{n}")
        peer.turn("support", f"CA{n}", f"m{n}")
    peer.wait_frame(chunk_of(f"CA{calls - 1}"), 5.0, what="every call streaming")
    return bot


@pytest.mark.parametrize("peer_talks", [True, False], ids=["still-sending", "silent"])
def test_close_returns_when_the_peer_stops_reading(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        *, keep_talking: Callable[[], None], thread_baseline: set[str], peer_talks: bool,
) -> None:
    """A writer is stuck in the socket (the peer stopped reading); close() neither waits
    for it nor for the heartbeat: it returns within its 2 s and every thread ends."""
    client = make_client(ping_interval=5.0, ping_timeout=60.0)
    bot = _flooding(peer, client, calls=3)
    proxy.stop_reading()
    if peer_talks:
        keep_talking()
    else:
        proxy.blackhole()
    deadline = time.monotonic() + 10.0
    while bot.blocked_for() < 0.5:
        assert time.monotonic() < deadline, "no write() ever blocked"
        threading.Event().wait(0.02)
    closer = threading.Thread(target=client.close, name="test-closer", daemon=True)
    t0 = time.monotonic()
    closer.start()
    closer.join(10.0)
    took = time.monotonic() - t0
    assert not closer.is_alive(), "close() did not return"
    assert took <= 2.0, f"close() took {took:.2f} s"
    assert all(s.aborted.is_set() for s in bot.streams)
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_a_peer_that_stops_reading_is_declared_dead_within_ping_timeout(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        keep_talking: Callable[[], None]) -> None:
    """20 streams write flat out into a peer that stopped reading (but keeps sending):
    writers are held back, the connection is declared dead (send_timeout) within
    ping_timeout, every stream aborts with `disconnected` and write() says so."""
    ping_timeout = 2.0
    client = make_client(ping_interval=0.5, ping_timeout=ping_timeout, reconnect=False)
    events = ClientEvents(client)
    bot = _flooding(peer, client, calls=20)
    keep_talking()
    proxy.stop_reading()
    t0 = time.monotonic()
    before = bot.accepted
    at, (reason,) = events.wait("disconnected", timeout=ping_timeout + 3.0)
    assert reason == "send_timeout"
    assert at - t0 <= ping_timeout + 0.5, f"declared dead after {at - t0:.2f} s"
    assert bot.refused.wait(2.0), "write() never reported the dead connection"
    assert all(s.abort_reason == "disconnected" for s in bot.streams)
    # What write() accepted after the peer went deaf fits the outbox and the kernel's
    # socket buffers: bounded, not the unbounded queue of before.
    assert bot.accepted - before <= 16 << 20, f"{(bot.accepted - before) >> 20} MiB accepted"
