"""Hostile values are data: anything a server puts in any field is modelled into the
documented type or refused with a counted error, never raised in user code, never
echoed onto the wire as invalid UTF-8; and a frame can only trigger handlers of server
events, never the client's own lifecycle handlers.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from helpers import until
from hypothesis import HealthCheck, given, settings, strategies as st
from reliability_peer import ScriptedPeer
from reliability_support import ClientEvents, event_is
from security_support import ANY_TEXT, JSON_VALUES, conforms

import voicesync
from voicesync import _codec
from voicesync.events import Event

EVENT_NAMES = [*_codec._BUILDERS, "call.started", "call.updated", "x.unknown", "error"]
FIELDS = sorted({"call_id", "session_id", "agent_id", "message_id", "msg_id", "text", "word",
                 "word_index", "reason", "turn_id", "confidence", "probability", "latency_ms",
                 "language", "duration_ms", "played_ms", "words_spoken", "last_word",
                 "in_reply_to", "expected_reply_to", "digit", "digits", "tool_calls", "type",
                 "ref", "from", "to", "direction", "transport", "metadata", "started_at",
                 "duration_seconds", "ended_at", "messages", "code", "error", "retry_after_s"})
NAMES = st.sampled_from(EVENT_NAMES) | ANY_TEXT.filter(lambda n: n not in _codec.CLIENT_EVENTS)
FRAMES = st.fixed_dictionaries({"event": NAMES},
                               optional=dict.fromkeys(FIELDS, JSON_VALUES))


def _assert_documented_types(event: Event) -> None:
    hints = typing.get_type_hints(type(event), localns={"Mapping": Mapping, "Any": Any})
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        assert conforms(value, hints[field.name]), (type(event).__name__, field.name, value)
    for request in getattr(event, "tool_calls", ()):
        assert all(isinstance(v, str) for v in (request.id, request.name, request.arguments))


@settings(max_examples=200, deadline=None)
@given(frame=FRAMES)
def test_any_value_in_any_field_is_modelled_into_the_documented_type(
        frame: dict[str, Any]) -> None:
    """Through the same path as the wire: serialised, parsed, then modelled."""
    text = json.dumps(frame)  # ensure_ascii: lone surrogates travel as \\ud800 escapes
    parsed = _codec.loads(text)
    _assert_documented_types(_codec.event(parsed))
    for key in ("text", "call_id", "message_id"):
        assert isinstance(_codec.text_field(parsed, key), str)
    assert _codec.number_field(parsed, "confidence") is None or conforms(
        _codec.number_field(parsed, "confidence"), float)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_any_value_echoed_back_makes_a_valid_utf8_frame(value: Any) -> None:
    """A handler may echo anything it was given; the frame must stay valid on the wire."""
    echoed = _codec.loads(json.dumps({"event": "x", "v": value}))["v"]
    text = _codec.dumps({"event": "bot.reply", "text": echoed, "extra": {"v": [echoed]}})
    text.encode("utf-8")  # strict: a lone surrogate would raise here
    assert json.loads(text) == {"event": "bot.reply", "text": echoed, "extra": {"v": [echoed]}}


@pytest.mark.parametrize("text", ['{"event":"x","n":1e999}', '{"event":"x","n":-1e400}',
                                  '{"event":"x","n":[1,{"m":2e308}]}'])
def test_numbers_that_overflow_a_float_are_refused_clearly(text: str) -> None:
    with pytest.raises(voicesync.ProtocolError, match="too large for a float"):
        _codec.loads(text)


def test_integers_too_large_for_a_float_are_missing_numbers_not_errors() -> None:
    frame = {"event": "bot.finished", "call_id": "CA1", "duration_ms": 10 ** 400}
    assert _codec.number_field(frame, "duration_ms") is None
    assert _codec.event(frame).duration_ms == 0.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(_codec.CLIENT_EVENTS))
def test_client_event_names_are_refused_from_the_wire(name: str) -> None:
    with pytest.raises(voicesync.ProtocolError, match="client event"):
        _codec.loads(json.dumps({"event": name, "call_id": "CA1", "agent_id": "support"}))


# ------------------------------------------------------------------ over a scripted peer


@pytest.fixture
def served(peer: ScriptedPeer,
           make_client: Callable[..., voicesync.Client]) -> tuple[voicesync.Client,
                                                                   voicesync.Agent]:
    client = make_client(ping_interval=1.0, ping_timeout=5.0)  # a 1 MiB frame takes a while
    agent = client.agent("support")
    client.connect(timeout=5.0)
    agent.wait_ready(5.0)
    peer.start_call("support", "CA1")
    until(lambda: agent.call("CA1"), 5.0, what="the call")
    return client, agent


def _sync(peer: ScriptedPeer) -> None:
    before = len(peer.frames(event_is("pong")))
    peer.send({"event": "ping"})
    until(lambda: len(peer.frames(event_is("pong"))) > before, 5.0, what="a pong")


def test_frames_named_like_client_events_trigger_no_client_handler(
        peer: ScriptedPeer, served: tuple[voicesync.Client, voicesync.Agent]) -> None:
    client, agent = served
    events = ClientEvents(client)
    ready: list[Any] = []
    agent.on("ready", lambda: ready.append(1))
    before = client.stats().malformed_frames
    for name in ("disconnected", "reconnecting", "ready"):
        peer.send({"event": name, "call_id": "CA1", "agent_id": "support",
                   "reason": "forged", "attempt": 1})
    peer.send({"event": "connected", "org_id": "forged"})  # a server event: no second one
    _sync(peer)
    assert client.stats().malformed_frames == before + 3
    assert events.names() == [] and ready == []
    assert client.stats().handler_errors == 0 and client.connected


def test_a_lone_surrogate_echoed_by_a_handler_leaves_a_valid_frame(
        peer: ScriptedPeer, served: tuple[voicesync.Client, voicesync.Agent]) -> None:
    client, agent = served
    agent.on("turn.end", lambda turn, call: call.reply(f"you said {turn.text}"))
    peer.send('{"event":"user.message","agent_id":"support","call_id":"CA1",'
              '"message_id":"m1","text":"bad \\ud800 half"}')
    peer.send({"event": "turn.end", "agent_id": "support", "call_id": "CA1",
               "message_id": "m1", "turn_id": 1})
    reply = peer.wait_frame(event_is("bot.reply"), 5.0, what="the echoed reply")
    assert reply.frame["text"] == "you said bad \ud800 half"
    _sync(peer)  # the peer (a strict UTF-8 reader) is still connected
    assert client.stats().handler_errors == 0 and client.connected


def test_an_extremely_long_string_is_data(
        peer: ScriptedPeer, served: tuple[voicesync.Client, voicesync.Agent]) -> None:
    """Just under the 1 MiB frame cap, in a turn's text (and the redaction scan)."""
    client, agent = served
    got: list[str] = []
    agent.on("turn.end", lambda turn, call: got.append(turn.text))
    long = "ab\\u00e9 %20 " * 70_000
    peer.turn("support", "CA1", "m1", text=long)
    until(lambda: got, 10.0, what="the long turn")
    assert got == [long] and client.connected


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(FRAMES, min_size=1, max_size=6))
def test_hostile_frames_never_raise_in_user_code(
        peer: ScriptedPeer, served: tuple[voicesync.Client, voicesync.Agent],
        frames: list[dict[str, Any]]) -> None:
    """Handlers that read every documented field and echo text back: no handler error,
    the connection stays up, and every echo reaches the (strict UTF-8) peer."""
    client, agent = served
    failures: list[BaseException] = []
    lock = threading.Lock()

    def read_everything(*args: Any) -> None:
        try:
            for arg in args:
                if isinstance(arg, Event):
                    _assert_documented_types(arg)
                    text = getattr(arg, "text", "")
                    if text and arg.call_id == "CA1":
                        assert isinstance(text, str)
        except BaseException as exc:
            with lock:
                failures.append(exc)
            raise

    done = threading.Event()
    names = {frame["event"] for frame in frames}
    for name in names:  # any text: names voicesync does not know are heard with strict=False
        agent.on(name, read_everything, strict=False)
    agent.on("x.done", lambda event, call: done.set(), strict=False)
    errors_before = client.stats().handler_errors
    try:
        for generated in frames:
            frame = {**generated, "agent_id": "support", "call_id": "CA1"}
            if frame["event"] in ("call.ended", "call.started"):
                frame["event"] = "call.updated"  # keep the one call alive for every example
            peer.send(json.dumps(frame))
        # One call's handlers run in wire order: when this one runs, the others have.
        peer.send({"event": "x.done", "agent_id": "support", "call_id": "CA1"})
        assert done.wait(5.0), "the handlers did not run"
    finally:
        for name in (*names, "x.done"):
            agent.off(name)
    assert failures == []
    assert client.stats().handler_errors == errors_before and client.connected


def test_a_hostile_call_ended_transcript_keeps_its_documented_types(
        peer: ScriptedPeer, served: tuple[voicesync.Client, voicesync.Agent]) -> None:
    _, agent = served
    call = agent.call("CA1")
    assert call is not None
    peer.send({"event": "call.ended", "agent_id": "support", "call_id": "CA1",
               "reason": ["not", "a", "string"], "duration_seconds": 10 ** 400,
               "messages": [{"role": "user", "content": {"a": 1}}, "junk", None,
                            {"role": "assistant", "content": 5}, {"role": "user"},
                            {"role": "user", "content": "hi"}]})
    assert call.wait_ended(5.0)
    assert call.transcript == [{"role": "user", "content": "hi"}]
    assert call.reason == "hangup" and call.duration is None
