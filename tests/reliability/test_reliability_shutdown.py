"""Scenario 11 of issue 7: close() under load and against a silent peer; process exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY, until
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import StreamingAgent, assert_no_thread_leak, chunk_of

import voicesync

CALLS = 100
ROOT = Path(__file__).resolve().parents[2]


def test_close_while_100_calls_stream_over_the_simulator(
        sim: Any, sim_proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        thread_baseline: set[str]) -> None:
    """11: 100 simulated calls each streaming a reply: close() ≤ 2 s, every stream
    reported cut, SDK threads back to baseline."""
    sim.words_per_second = 20.0
    client = make_client(url=sim_proxy.url, ping_interval=1.0, ping_timeout=5.0)
    bot = StreamingAgent(client, interval=0.05)
    client.connect(timeout=5.0)
    bot.agent.wait_ready(5.0)
    for n in range(CALLS):
        sim.start_call("support", from_=f"+1555000{n:04d}").say(f"question {n}")
    streams = [bot.next_stream(timeout=10.0) for _ in range(CALLS)]
    until(lambda: all(s.text for s in streams), 10.0, what="every stream to be writing")
    assert client.stats().active_calls == CALLS
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 <= 2.0
    assert all(s.aborted.is_set() and s.abort_reason == "disconnected" for s in streams)
    assert_no_thread_leak(thread_baseline, timeout=2.0)


def test_close_while_100_calls_stream_into_a_black_hole(
        peer: ScriptedPeer, proxy: FaultProxy, make_client: Callable[..., voicesync.Client],
        thread_baseline: set[str]) -> None:
    """11: the same, but the peer went silent first (no FIN, no RST, no reads)."""
    client = make_client(ping_interval=5.0, ping_timeout=30.0)
    bot = StreamingAgent(client, interval=0.05)
    client.connect(timeout=5.0)
    bot.agent.wait_ready(5.0)
    for n in range(CALLS):
        peer.start_call("support", f"CA{n}")
        peer.turn("support", f"CA{n}", f"m{n}")
    streams = [bot.next_stream(timeout=10.0) for _ in range(CALLS)]
    peer.wait_frame(chunk_of(f"CA{CALLS - 1}"), 5.0)
    proxy.blackhole()
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 <= 2.0
    assert all(s.aborted.is_set() for s in streams)
    assert_no_thread_leak(thread_baseline, timeout=2.0)


_CHILD = textwrap.dedent("""
    import sys
    import voicesync

    url, mode, key = sys.argv[1:4]
    client = voicesync.Client(api_key=key, url=url, ping_interval=5, ping_timeout=30)
    agent = client.agent("support")

    @agent.on("turn.end")
    def answer(turn, call):
        with call.reply_stream(turn) as stream:
            while stream.write("word ") and not stream.aborted.wait(0.02):
                pass

    client.connect(5)
    agent.wait_ready(5)
    print("ready", flush=True)
    sys.stdin.readline()
    if mode == "close":
        client.close()
    print("leaving", flush=True)
""")


@pytest.mark.parametrize("mode", ["close", "no-close"])
def test_interpreter_exits_with_a_black_holed_peer(
        peer: ScriptedPeer, proxy: FaultProxy, mode: str) -> None:
    """11: a process whose peer is black-holed mid-stream exits promptly, with or
    without close(): no SDK thread keeps the interpreter alive."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, proxy.url, mode, CANARY_KEY], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        peer.start_call("support", "CA1")
        peer.turn("support", "CA1", "m1")
        peer.wait_frame(chunk_of("CA1"), 5.0)
        proxy.blackhole()
        t0 = time.monotonic()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=10.0) == 0
        assert time.monotonic() - t0 <= 3.0
        out, err = child.communicate(timeout=5.0)
        assert out.strip() == "leaving"
        assert "Traceback" not in err and CANARY_KEY not in err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5.0)
