"""Scenario 12 of issue 7: one reply stream hammered from several threads at once.

Hypothesis draws per-thread scripts of write/end/abort/pipe, while the server aborts
the stream from the wire (turn.continued, bot.interrupted, call.ended) on the reader
thread, over a real connection. What the peer received must be nothing, or exactly
``start, chunk*, end`` with one end and nothing after it (the end may be missing only
when the call itself ended: nothing is sent for an ended call), holding exactly the chunks
whose write() returned True. A second property does the same on a sender whose
connection dies after k frames: the stream must then be reported cut, never ended.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import until
from hypothesis import HealthCheck, given, settings, strategies as st
from reliability_peer import Rx, ScriptedPeer
from reliability_proxy import FaultProxy

import voicesync
from voicesync import ReplyStream, ReplyStreamClosedError

OPS = st.lists(st.sampled_from(["write", "write", "write", "end", "abort", "pipe"]),
               min_size=1, max_size=6)
PLANS = st.lists(OPS, min_size=2, max_size=4)
SERVER_ABORTS = {"turn.continued": "turn.continued", "bot.interrupted": "bot.interrupted",
                 "call.ended": "call.ended"}


@dataclass
class Outcome:
    """What the threads saw: accepted tokens per thread, and who won the ending."""

    accepted: dict[int, list[str]] = field(default_factory=dict)
    winners: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _pipe(stream: ReplyStream, parts: list[str]) -> list[str]:
    """stream.pipe(parts); the parts that went out (a raise means the last did not)."""
    yielded: list[str] = []

    def source() -> Iterator[str]:
        for part in parts:
            yielded.append(part)
            yield part

    try:
        written = stream.pipe(source())
    except ReplyStreamClosedError:
        return yielded[:-1]
    return [p for p in parts if p in written]


def _run_plans(stream: ReplyStream, plans: list[list[str]], start: threading.Barrier,
               outcome: Outcome) -> list[threading.Thread]:
    def worker(index: int, plan: list[str]) -> None:
        mine: list[str] = []
        try:
            start.wait(5.0)
            for step, op in enumerate(plan):
                token = f"t{index}.{step} "
                if op == "write":
                    with contextlib.suppress(ReplyStreamClosedError):
                        if stream.write(token):
                            mine.append(token)
                elif op == "pipe":
                    mine.extend(_pipe(stream, [token + "a ", token + "b "]))
                elif op == "end":
                    if stream.end():
                        with outcome.lock:
                            outcome.winners.append(f"end@{index}")
                elif stream.abort("app"):
                    with outcome.lock:
                        outcome.winners.append(f"abort@{index}")
        except BaseException as exc:  # surfaced by the test, never swallowed
            with outcome.lock:
                outcome.errors.append(exc)
        with outcome.lock:
            outcome.accepted[index] = mine

    threads = [threading.Thread(target=worker, args=(i, plan), name=f"plan-{i}")
               for i, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    return threads


def _check_wire(actions: list[str], tokens: list[str], outcome: Outcome, *,
                complete: bool = True) -> None:
    """`complete`: the stream must close with its end frame (not so when the call
    itself ended: nothing is sent for an ended call, not even the end)."""
    if actions:
        assert actions[0] == "start" and actions.count("start") == 1, actions
        assert actions.count("end") <= 1 and "end" not in actions[:-1], actions
        assert set(actions[1:]) <= {"chunk", "end"}, actions
        if complete:
            assert actions[-1] == "end", actions
    accepted = [t for mine in outcome.accepted.values() for t in mine]
    assert sorted(tokens) == sorted(accepted), (tokens, accepted)
    for mine in outcome.accepted.values():  # each thread's chunks keep their order
        assert [t for t in tokens if t in set(mine)] == mine


@dataclass
class Live:
    client: voicesync.Client
    agent: voicesync.Agent
    peer: ScriptedPeer
    ids: Iterator[int]


@pytest.fixture
def live(peer: ScriptedPeer, proxy: FaultProxy,
         make_client: Callable[..., voicesync.Client]) -> Live:
    client = make_client(ping_interval=1.0, ping_timeout=10.0)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    return Live(client, agent, peer, itertools.count())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=PLANS, server=st.sampled_from([None, *SERVER_ABORTS]))
def test_interleavings_over_a_real_connection(live: Live, plans: list[list[str]],
                                              server: str | None) -> None:
    """12: exactly one end frame (or none), nothing after it, every accepted chunk."""
    n = next(live.ids)
    call_id, peer = f"CA{n}", live.peer
    peer.start_call("support", call_id)
    call = until(lambda: live.agent.call(call_id), 5.0, what="the call")
    stream = call.reply_stream(in_reply_to="")
    outcome = Outcome()
    start = threading.Barrier(len(plans) + 1)
    threads = _run_plans(stream, plans, start, outcome)
    start.wait(5.0)
    if server is not None:  # races the writers: applied on the SDK's reader thread
        peer.send({"event": server, "agent_id": "support", "call_id": call_id,
                   "message_id": stream.message_id, "reason": "hangup"})
    for thread in threads:
        thread.join(10.0)
    assert outcome.errors == []
    if server is not None and not stream.ended:
        assert stream.aborted.wait(5.0)
    if stream.end():
        outcome.winners.append("end@final")
    if stream.abort_reason in SERVER_ABORTS.values():
        outcome.winners.append(f"server:{stream.abort_reason}")
    assert len(outcome.winners) == 1, outcome.winners
    # Everything the SDK sent for this stream is at the peer once a later frame is.
    live.client.send({"event": "x.marker", "n": n})
    peer.wait_frame(lambda rx: rx.frame.get("event") == "x.marker"
                    and rx.frame.get("n") == n, 5.0, what="the marker")
    def of_stream(rx: Rx) -> bool:
        return (rx.frame.get("message_id") == stream.message_id
                and rx.frame.get("event") == "bot.reply.stream")

    if (peer.frames(of_stream) and not call.ended
            and stream.abort_reason in SERVER_ABORTS.values()):
        # A server abort's end frame goes out from the control thread, after the marker.
        peer.wait_frame(lambda rx: of_stream(rx) and rx.frame["action"] == "end", 5.0,
                        what="the end frame of the aborted stream")
    mine = peer.frames(of_stream)
    _check_wire([rx.frame["action"] for rx in mine],
                [rx.frame["token"] for rx in mine if rx.frame["action"] == "chunk"], outcome,
                complete=not call.ended)
    if call.ended:
        return
    live.peer.send({"event": "call.ended", "agent_id": "support", "call_id": call_id,
                    "reason": "hangup"})


class DyingSender:
    """Delivers the first `alive` frames, then fails for good (the socket died)."""

    def __init__(self, alive: int) -> None:
        self.alive = alive
        self.frames: list[dict[str, Any]] = []
        self.failed = False
        self._lock = threading.Lock()

    def send(self, frame: dict[str, Any]) -> bool:
        with self._lock:
            if len(self.frames) >= self.alive:
                self.failed = True
                return False
            self.frames.append(frame)
            return True


@settings(max_examples=200, deadline=None)
@given(plans=PLANS, alive=st.integers(0, 8))
def test_interleavings_when_the_connection_dies_midway(plans: list[list[str]],
                                                       alive: int) -> None:
    """12/6: a failed send never ends in a reported success: the stream is aborted
    ("disconnected") unless it had already finished, and what was delivered is a
    valid prefix with at most one end."""
    sender = DyingSender(alive)
    stream = ReplyStream("C", "M", "U", sender.send, lambda s: None)
    outcome = Outcome()
    start = threading.Barrier(len(plans) + 1)
    threads = _run_plans(stream, plans, start, outcome)
    start.wait(5.0)
    for thread in threads:
        thread.join(10.0)
    assert outcome.errors == []
    final_end = stream.end()
    actions = [f["action"] for f in sender.frames]
    assert actions.count("end") <= 1 and (not actions or actions[0] == "start")
    assert "end" not in actions[:-1], "a frame went out after the end"
    ended_ok = [w for w in outcome.winners if w.startswith("end")] + (
        ["end@final"] if final_end else [])
    assert len(ended_ok) <= 1
    if ended_ok:
        assert actions and actions[-1] == "end", "end() reported success without the frame"
    if sender.failed and not ended_ok:
        assert stream.aborted.is_set()
        assert stream.abort_reason in ("disconnected", "app")
    tokens = [f["token"] for f in sender.frames if f["action"] == "chunk"]
    accepted = sorted(t for mine in outcome.accepted.values() for t in mine)
    assert sorted(tokens) == accepted
