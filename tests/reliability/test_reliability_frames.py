"""Scenario 9 of issue 7: malformed, hostile and oversize frames from the server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY, until
from hypothesis import HealthCheck, given, settings, strategies as st
from reliability_peer import ScriptedPeer
from reliability_proxy import FaultProxy
from reliability_support import ClientEvents, LogRecords, event_is

import voicesync

CAP = 1 << 20
CALL = "CA1"

# (name, payload): each must be counted as malformed, logged, and skipped.
MALFORMED: list[tuple[str, str | bytes]] = [
    ("truncated JSON", '{"event": "call.started", "call_id": '),
    ("not JSON at all", "hello, world"),
    ("5,000-deep nesting", '{"event":"x","a":' + "[" * 5000 + "]" * 5000 + "}"),
    ("5,000-deep objects", '{"event":"x","a":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"),
    ("5,000-digit integer", '{"event":"x","n":' + "9" * 5000 + "}"),
    ("NaN", '{"event":"x","n":NaN}'),
    ("-Infinity", '{"event":"x","n":-Infinity}'),
    ("invalid UTF-8", b'{"event":"x","text":"\xff\xfe\xc3"}'),
    ("lone surrogate escape only", b'{"event":"x","text":"\xed\xa0\x80"}'),
    ("a JSON array", "[1, 2, 3]"),
    ("a JSON string", '"connected"'),
    ("no event", '{"call_id":"CA1","text":"hi"}'),
    ("event not a string", '{"event":{"name":"turn.end"},"call_id":"CA1"}'),
    ("the key inside bad JSON", '{"event":"x","note":"' + CANARY_KEY + '"'),
    ("a number that overflows a float", '{"event":"x","n":1e999}'),
    ("a client event's name", '{"event":"disconnected","call_id":"CA1"}'),
]

# Well-formed JSON the SDK must shrug off: unknown names, missing or mistyped ids/fields.
ODD: list[dict[str, Any] | str] = [
    {"event": "totally.unknown", "call_id": CALL, "agent_id": "support"},
    {"event": "totally.unknown"},
    {"event": "call.started", "agent_id": "support"},
    {"event": "call.started", "agent_id": "support", "call_id": 12345},
    {"event": "call.started", "call_id": "CA-orphan"},
    {"event": "turn.end"},
    {"event": "turn.end", "call_id": ["CA1"]},
    {"event": "user.message", "call_id": CALL, "text": {"a": 1}, "message_id": 7},
    {"event": "bot.interrupted", "agent_id": "support"},
    {"event": "bot.word", "call_id": CALL, "word": None},
    {"event": "call.ended", "call_id": CALL, "reason": 42, "duration_seconds": "long"},
    {"event": "agent.created"},
    {"event": "agent.created", "agent_id": None},
    {"event": "error"},
    {"event": "error", "code": 5, "error": ["x"]},
    {"event": "llm.tool_call", "call_id": CALL, "tool_calls": "nope"},
    {"event": "history.data", "request_id": 3},
    {"event": "ping", "extra": {"deep": [1, 2, {"x": None}]}},
]


@pytest.fixture
def connected(peer: ScriptedPeer, proxy: FaultProxy,
              make_client: Callable[..., voicesync.Client]) -> Iterator[voicesync.Client]:
    client = make_client(ping_interval=0.5, ping_timeout=5.0)
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", CALL)
    until(lambda: agent.call(CALL) is not None, 5.0, what="the call")
    yield client


def _sync(peer: ScriptedPeer) -> None:
    """Everything sent before this was processed: a server ping round-trips."""
    before = len(peer.frames(event_is("pong")))
    peer.send({"event": "ping"})
    until(lambda: len(peer.frames(event_is("pong"))) > before, 5.0, what="a pong")


@pytest.mark.parametrize(("name", "payload"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_frame_is_logged_counted_and_skipped(
        peer: ScriptedPeer, connected: voicesync.Client, name: str,
        payload: str | bytes) -> None:
    """9: the reader survives, counts the frame, logs a warning, and goes on."""
    events = ClientEvents(connected)
    before = connected.stats().malformed_frames
    with LogRecords() as logs:
        peer.send(payload)
        _sync(peer)
    assert connected.stats().malformed_frames == before + 1
    skipped = [r for r in logs.records if "skipped a frame" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.WARNING
    assert all(CANARY_KEY not in m for m in logs.messages())
    assert logs.messages(logging.ERROR) == []
    assert connected.connected and events.of("disconnected") == []


def test_odd_but_valid_frames_are_ignored_without_errors(
        peer: ScriptedPeer, connected: voicesync.Client) -> None:
    """9: unknown events and missing/mistyped ids never crash dispatch or the call."""
    seen: list[str] = []
    connected.on("totally.unknown", lambda event, call: seen.append(call.id), strict=False)
    with LogRecords() as logs:
        for frame in ODD:
            peer.send(frame)
        _sync(peer)
    assert logs.messages(logging.ERROR) == []
    assert connected.connected and connected.stats().malformed_frames == 0
    until(lambda: seen == [CALL], 2.0, what="the unknown event on the known call")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6)
KNOWN_EVENTS = ["call.started", "call.ended", "user.message", "turn.end", "turn.continued",
                "bot.speaking", "bot.word", "bot.finished", "bot.interrupted",
                "message.confirmed", "llm.tool_call", "llm.before", "history.data",
                "agent.created", "agent.displaced", "channel.added", "call.ringing",
                "call.error", "call.updated", "skill.loaded", "error", "eager.turn"]
KEYS = ["call_id", "agent_id", "message_id", "text", "word", "reason", "msg_id", "tool_calls",
        "code", "turn_id", "session_id", "request_id", "skill", "language", "used", "limit"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(st.fixed_dictionaries(
    {"event": st.sampled_from(KNOWN_EVENTS)},
    optional={key: st.one_of(st.just(CALL), st.just("support"), JSONISH) for key in KEYS}),
    min_size=1, max_size=8))
def test_fuzzed_fields_on_known_events_never_crash_dispatch(
        peer: ScriptedPeer, connected: voicesync.Client, frames: list[dict[str, Any]],
) -> None:
    """9: any JSON value in any field of any known event: no dispatch error, no drop.
    (call.ended may end the test call; the check is that nothing crashes.)"""
    reported: list[BaseException] = []
    connected.on("error", reported.append)
    try:
        for frame in frames:
            peer.send(json.dumps(frame))
        _sync(peer)
    finally:
        connected.off("error", reported.append)
    crashes = [e for e in reported if "could not handle" in str(e)]
    assert crashes == [], [str(e) for e in crashes]
    assert connected.connected


def test_frame_at_the_cap_is_accepted(peer: ScriptedPeer, connected: voicesync.Client) -> None:
    """9: exactly max_frame_bytes is fine."""
    got: list[int] = []
    connected.on("x.big", lambda event, call: got.append(len(event.raw["pad"])), strict=False)
    head = json.dumps({"event": "x.big", "agent_id": "support", "call_id": CALL, "pad": ""})
    pad = CAP - len(head)
    peer.send(head.replace('"pad": ""', '"pad": "' + "a" * pad + '"'))
    until(lambda: got == [pad], 5.0, what="the 1 MiB frame")
    assert connected.stats().oversize_frames == 0 and connected.connected


@pytest.mark.parametrize("fragmented", [False, True], ids=["one frame", "fragments"])
def test_frame_over_the_cap_closes_1009_and_reconnects(
        peer: ScriptedPeer, connected: voicesync.Client, fragmented: bool) -> None:
    """9: one byte over the cap (whole or in fragments): close 1009, counted, redial,
    re-registration; the oversize payload is never delivered."""
    events = ClientEvents(connected)
    got: list[str] = []
    connected.on("x.big", lambda event, call: got.append("big"), strict=False)
    head = json.dumps({"event": "x.big", "agent_id": "support", "call_id": CALL, "pad": ""})
    text = head.replace('"pad": ""', '"pad": "' + "a" * (CAP + 1 - len(head)) + '"')
    assert len(text.encode()) == CAP + 1
    with LogRecords() as logs:  # before sending: the SDK may log before send() returns
        if fragmented:
            step = 64 << 10
            peer.send_fragments([text[i:i + step] for i in range(0, len(text), step)])
        else:
            peer.send(text)
        # The SDK stops reading at the header and closes with 1009; with the rest of
        # the payload unread, its kernel may reset the socket before the peer reads that
        # close frame, so the peer sees 1009 or an abrupt end (None).
        assert peer.wait_closed(1, 5.0) in ([1009], [None])
        events.wait("disconnected")
    assert any("(1009)" in m for m in logs.messages(logging.WARNING))
    events.wait("connected", timeout=5.0)
    peer.wait_frame(lambda rx: rx.conn == 2 and rx.frame.get("event") == "agent.create", 5.0)
    assert connected.stats().oversize_frames == 1
    assert got == []


def test_binary_frames_are_ignored(peer: ScriptedPeer, connected: voicesync.Client) -> None:
    peer.send_binary(b"\x00\x01binary" * 100)
    _sync(peer)
    assert connected.connected and connected.stats().malformed_frames == 0
