"""Calls and streams follow the server whatever order its frames arrive in (issue 11, item 6).

A hypothesis fuzzer drives a scripted peer with random sequences of lifecycle and call
frames over two or three call ids: repeated `call.started`, events and streams after
`call.ended`, `call.ended`/`call.error` for unknown calls, barge-ins, rejections, and
dropped connections, interleaved with the app opening streams and sending commands.
After every sequence it checks the invariants of docs/reply-streams.md against a model
of what the platform considers live:

1. a call the platform has ended has no live Call; one Call per live call id, no orphans;
2. every stream of an ended call is aborted and cannot send;
3. nothing a Call sends goes out on a connection other than the one it started on.

Bounded in the normal suite; ``VOICESYNC_FRAME_ORDERS=N`` runs N sequences.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import CANARY_KEY, until
from hypothesis import HealthCheck, given, settings, strategies as st
from reliability_peer import ScriptedPeer
from reliability_support import FAST_BACKOFF

import voicesync

RUNS = int(os.environ.get("VOICESYNC_FRAME_ORDERS", "0"))
IDS = ("a", "b", "c")
EVENTS = ("user.message", "turn.end", "turn.continued", "speech.started", "bot.word",
          "bot.finished", "bot.interrupted", "reply.rejected", "message.confirmed")
op = st.one_of(
    st.tuples(st.just("started"), st.sampled_from(IDS)),
    st.tuples(st.just("ended"), st.sampled_from(IDS)),
    st.tuples(st.just("error"), st.sampled_from(IDS)),
    st.tuples(st.just("event"), st.sampled_from(IDS), st.sampled_from(EVENTS),
              st.sampled_from(["user_spoke", "continuation", "cancelled", None])),
    st.tuples(st.just("stream"), st.sampled_from(IDS)),
    st.tuples(st.just("command"), st.sampled_from(IDS)),
    st.tuples(st.just("drop")),
)


@dataclass
class Model:
    """What the platform considers true, and what the SDK has handed the app."""

    prefix: str
    conn: int
    live: dict[str, int] = field(default_factory=dict)  # call id -> its connection
    ended: set[str] = field(default_factory=set)  # ended by the platform: for good
    calls: list[voicesync.Call] = field(default_factory=list)  # every Call object seen
    call_conn: list[int] = field(default_factory=list)  # the connection each started on
    streams: list[voicesync.ReplyStream] = field(default_factory=list)

    def cid(self, short: str) -> str:
        return f"{self.prefix}-{short}"


class Rig:
    def __init__(self) -> None:
        self.peer = ScriptedPeer().start()
        self.client = voicesync.Client(api_key=CANARY_KEY, url=self.peer.url,
                                       ping_interval=5.0, ping_timeout=20.0,
                                       backoff=FAST_BACKOFF)
        self.agent = self.client.agent("fuzz")
        self.client.connect(timeout=5)
        self.agent.wait_ready(5)
        self.examples = itertools.count()

    def sync(self) -> None:
        """Wait until the reader has applied every frame sent so far (ping → pong)."""
        count = len(self.peer.frames(lambda rx: rx.frame.get("event") == "pong"))
        self.peer.send({"event": "ping"})
        until(lambda: len(self.peer.frames(lambda rx: rx.frame.get("event") == "pong")) > count,
              5, "the pong")

    def snapshot(self, model: Model) -> None:
        for call in self.agent.calls:
            mine = call.id.startswith(model.prefix + "-")
            if mine and all(call is not seen for seen in model.calls):
                model.calls.append(call)
                model.call_conn.append(model.conn)

    def apply(self, model: Model, step: tuple[Any, ...]) -> None:
        kind = step[0]
        base = {"agent_id": "fuzz", "call_id": model.cid(step[1])} if len(step) > 1 else {}
        if kind == "started":
            self.peer.start_call("fuzz", base["call_id"])
            if base["call_id"] not in model.ended:
                model.live.setdefault(base["call_id"], model.conn)
        elif kind in ("ended", "error"):
            if kind == "ended" or base["call_id"] in model.live:
                model.ended.add(base["call_id"])
            model.live.pop(base["call_id"], None)
            self.peer.send({"event": "call." + kind, **base, "reason": "hangup",
                            "code": "MEDIA", "error": "broken"})
        elif kind == "event":
            self.peer.send(self.event(model, base, step[2], step[3]))
        elif kind == "stream":
            call = self.agent.call(base["call_id"])
            if call is not None:
                stream = call.reply_stream(in_reply_to="")
                stream.write("hello ")
                model.streams.append(stream)
        elif kind == "command":
            for call in model.calls:
                if call.id == base["call_id"]:
                    call.send_dtmf("1")
                    call.say("hi")
        else:  # drop: the platform ends this connection's calls; the SDK reconnects
            self.peer.close(1011, "fuzz")
            self.peer.wait_connections(model.conn + 1, 5)
            model.conn += 1
            model.live.clear()
            until(lambda: self.agent.ready and self.client.connected, 5, "re-registration")
            self.sync()
        self.sync()
        self.snapshot(model)

    @staticmethod
    def event(model: Model, base: dict[str, Any], name: str, reason: str | None) -> dict[str, Any]:
        frame: dict[str, Any] = {"event": name, **base, "message_id": "m1", "turn_id": 1,
                                 "text": "hi", "word": "hi", "word_index": 0}
        streams = [s for s in model.streams if s.call_id == base["call_id"]]
        if name in ("bot.interrupted", "reply.rejected") and streams:
            frame["message_id"] = streams[-1].message_id
        if reason is not None:
            frame["reason"] = reason
        return frame

    def check(self, model: Model) -> None:
        for call in model.calls:
            live_here = model.live.get(call.id) is not None and self.agent.call(call.id) is call
            assert call.ended is not live_here, (
                f"{call} is {'ended' if call.ended else 'alive'}; the platform says "
                f"{'live' if call.id in model.live else 'ended'}")
        for call_id in model.live:
            live = self.agent.call(call_id)
            assert live is not None and not live.ended, f"live call {call_id} has no Call"
        mark = len(self.peer.frames())
        for stream in model.streams:
            call = self.agent.call(stream.call_id)
            if call is None or call.ended:
                assert stream.aborted, f"{stream} outlived its call"
                assert stream.write("more ") is False
        for call in model.calls:
            if call.ended:
                assert call.hangup() is False
        self.sync()
        late = [rx.frame for rx in self.peer.frames()[mark:]
                if rx.frame.get("call_id", "").startswith(model.prefix + "-")
                and rx.frame.get("event") != "pong"]
        assert late == [], f"ended calls sent {late}"
        for rx in self.peer.frames(lambda rx: rx.frame.get("call_id", "").startswith(
                model.prefix + "-")):
            conns = {conn for call, conn in zip(model.calls, model.call_conn, strict=True)
                     if call.id == rx.frame["call_id"]}
            assert rx.conn in conns, f"{rx.frame} went out on connection {rx.conn}, not {conns}"


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.client.close()
    r.peer.stop()


# The simulator's and the client's threads draw ids and jitter from `random` while
# hypothesis draws examples; that is not the strategy using it.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.timeout(3600 if RUNS else 120)  # a long run takes minutes
def test_calls_and_streams_follow_the_server_in_any_frame_order(rig: Rig) -> None:
    @settings(max_examples=RUNS or 60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(op, min_size=1, max_size=12))
    def run(steps: list[tuple[Any, ...]]) -> None:
        rig.agent.wait_ready(5)
        model = Model(prefix=f"x{next(rig.examples)}", conn=rig.peer.connections)
        for step in steps:
            rig.apply(model, step)
        rig.check(model)

    run()
