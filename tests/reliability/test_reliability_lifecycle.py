"""Issue 12: close() from any thread and state; connect(timeout) against a stalled upgrade."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY, sdk_threads
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import (
    FAST_BACKOFF,
    LogRecords,
    StreamingAgent,
    assert_no_thread_leak,
)

import voicesync
from voicesync.reply import ReplyStream


@pytest.fixture
def mute_listener() -> Iterator[socket.socket]:
    """A TCP listener that accepts and never answers the WebSocket upgrade."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.05)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, name="test-mute-listener", daemon=True)
        thread.start()
        yield listener
        stop.set()
        thread.join(5.0)
        for sock in held:
            sock.close()


def _url(listener: socket.socket) -> str:
    return f"ws://127.0.0.1:{listener.getsockname()[1]}"


def test_connect_timeout_against_a_stalled_upgrade_leaves_no_thread(
        proxy: FaultProxy, thread_baseline: set[str]) -> None:
    """connect(timeout=0.5) raises within 0.75 s with no thread left; once the server
    answers, connect() on the same client works."""
    client = voicesync.Client(api_key=CANARY_KEY, url=proxy.url, backoff=FAST_BACKOFF)
    try:
        proxy.blackhole()  # TCP accepted, the upgrade request swallowed
        t0 = time.monotonic()
        with pytest.raises(voicesync.ConnectTimeout):
            client.connect(timeout=0.5)
        took = time.monotonic() - t0
        assert took <= 0.75, f"connect(timeout=0.5) took {took:.2f} s"
        assert sdk_threads() == [t for t in sdk_threads() if t in thread_baseline], (
            f"threads left: {sdk_threads()}")
        proxy.blackhole(False)
        client.connect(timeout=5.0)
        assert client.connected
    finally:
        client.close()
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_close_during_connect_returns_on_time(
        mute_listener: socket.socket, thread_baseline: set[str]) -> None:
    """close() from another thread while connect() waits on a silent upgrade."""
    client = voicesync.Client(api_key=CANARY_KEY, url=_url(mute_listener))
    failure: list[BaseException] = []

    def connect() -> None:
        try:
            client.connect(timeout=30.0)
        except voicesync.VoiceSyncError as exc:
            failure.append(exc)

    connecting = threading.Thread(target=connect, name="test-connect", daemon=True)
    connecting.start()
    until_alive = time.monotonic() + 5.0
    while "voicesync-reader" not in sdk_threads():
        assert time.monotonic() < until_alive
        threading.Event().wait(0.01)
    threading.Event().wait(0.2)  # let the upgrade request go out and hang
    t0 = time.monotonic()
    client.close(timeout=1.0)
    assert time.monotonic() - t0 <= 1.0
    connecting.join(2.0)
    assert not connecting.is_alive() and failure, "connect() did not give up"
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_close_from_an_on_abort_callback_ends_run_forever(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        thread_baseline: set[str]) -> None:
    """A barge-in's on_abort callback calls close(): it runs off the reader, on the
    control thread; close() does not try to join the thread it runs on, run_forever()
    returns, nothing is logged as failed and no thread is left."""
    client = make_client(ping_interval=1.0, ping_timeout=5.0)
    bot = StreamingAgent(client)
    bot.serve()
    ran_on: list[str] = []

    def close_now(stream: ReplyStream) -> None:
        ran_on.append(threading.current_thread().name)
        client.close()

    stream = bot.start(peer, "CA1")
    stream.on_abort(close_now)
    with LogRecords() as logs:
        peer.send({"event": "bot.interrupted", "agent_id": "support", "call_id": "CA1",
                   "message_id": stream.message_id})
        done = threading.Event()
        runner = threading.Thread(target=lambda: (client.run_forever(), done.set()),
                                  name="test-run-forever", daemon=True)
        runner.start()
        assert done.wait(3.0), "run_forever() did not return"
    assert ran_on == ["voicesync-control"]
    assert not [r for r in logs.records if r.levelno >= logging.ERROR], logs.messages()
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_close_from_a_signal_handler(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client],
        thread_baseline: set[str]) -> None:
    """A SIGUSR1 handler calls close() on the main thread, interrupting run_forever()
    while a reply streams: run_forever() returns at once and every thread ends."""
    client = make_client(ping_interval=1.0, ping_timeout=5.0)
    bot = StreamingAgent(client)
    bot.serve()
    stream = bot.start(peer, "CA1")
    previous = signal.signal(signal.SIGUSR1, lambda *_: client.close())
    try:
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        t0 = time.monotonic()
        client.run_forever()
        assert time.monotonic() - t0 <= 2.5
        timer.join(1.0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert stream.aborted.is_set()
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_the_reader_sets_aborted_at_once_and_callbacks_run_on_the_control_thread(
        peer: ScriptedPeer, make_client: Callable[..., voicesync.Client]) -> None:
    """A slow on_abort callback never holds the reader: `aborted` is set when the
    barge-in is read, and the next frames are applied while the callback still runs."""
    client = make_client(ping_interval=1.0, ping_timeout=5.0)
    bot = StreamingAgent(client)
    bot.serve()
    first, second = bot.start(peer, "CA1"), bot.start(peer, "CA2")
    release, started = threading.Event(), threading.Event()
    threads: list[str] = []

    def slow(stream: ReplyStream) -> Any:
        threads.append(threading.current_thread().name)
        started.set()
        release.wait(5.0)

    first.on_abort(slow)
    try:
        peer.send({"event": "bot.interrupted", "agent_id": "support", "call_id": "CA1",
                   "message_id": first.message_id})
        assert first.aborted.wait(2.0)
        assert started.wait(2.0), "the on_abort callback did not run"
        peer.send({"event": "bot.interrupted", "agent_id": "support", "call_id": "CA2",
                   "message_id": second.message_id})
        assert second.aborted.wait(2.0), "the reader was held up by a callback"
    finally:
        release.set()
    assert threads == ["voicesync-control"]
