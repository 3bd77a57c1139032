"""Phone lines over real sockets to voicesync.sim (docs/protocol.md §2.10): a number
answered in code, its calls, keyed context, and routing a live call to an agent."""

from __future__ import annotations

import queue
import re
from typing import Any

import pytest
from helpers import until

import voicesync
from voicesync.lines import LineTranscriptEntry, RouteResult

NUMBER = "+15550002000"


def test_a_line_answers_in_code_and_routes_the_call_to_an_agent(
        sim: Any, client: voicesync.Client) -> None:
    sales = client.agent("sales")
    line = client.line(NUMBER, voice="elevenlabs/sarah", stt="deepgram:nova-3:multi")
    assert client.lines == {NUMBER: line} and client.agents == {"sales": sales}
    routes: queue.Queue[RouteResult] = queue.Queue()
    line_ends: queue.Queue[str] = queue.Queue()

    @line.on("call.started")
    def menu(call: voicesync.Call) -> None:
        assert (call.extension, call.owner) == ("33", "line")
        call.say("Press one for sales.")

    @line.on("call.dtmf_received")
    def pressed(event: voicesync.Event, call: voicesync.Call) -> None:
        call.set_context("choice", event.get("digit"))
        routes.put(call.route("sales", greeting="Sales, how can I help?",
                              prompt_vars={"TIER": "gold"}))

    line.on("call.ended", lambda call, reason: line_ends.put(reason))
    client.connect(timeout=5)
    line.wait_ready(5)
    sales.wait_ready(5)
    created = sim.wait_frame(event="line.create", direction="in").data
    assert created == {"event": "line.create", "number": NUMBER, "config": {
        "voice": "elevenlabs/sarah",
        "stt": {"provider": "deepgram", "model": "nova-3", "language": "multi"},
        "extension_window_ms": 2500}}

    caller = sim.start_call(to=NUMBER, from_="+15550001111", extension="33")
    assert caller.agent_id == f"line:{NUMBER}"
    assert caller.wait_reply() == "Press one for sales."
    caller.say("I want to buy")
    caller.press("1")
    assert routes.get(timeout=5) == RouteResult(True, "sales")
    assert line_ends.get(timeout=5) == "routed"
    route = sim.wait_frame(event="call.route", direction="in").data
    assert route == {"event": "call.route", "call_id": caller.call_id, "agent": "sales",
                     "greeting": "Sales, how can I help?", "prompt_vars": {"TIER": "gold"},
                     "history": True}
    assert sim.wait_frame(event="set_context", direction="in").data == {
        "event": "set_context", "call_id": caller.call_id, "key": "choice", "value": "1"}

    taken = until(lambda: sales.call(caller.call_id), 5, "the routed call at the agent")
    assert (taken.routed_from, taken.extension, taken.owner) == (f"line:{NUMBER}", "33", "agent")
    assert taken.line_transcript == (LineTranscriptEntry("line", "Press one for sales."),
                                     LineTranscriptEntry("caller", "I want to buy"))
    at_sales = sim.wait_call(agent="sales")
    assert at_sales.call_id == caller.call_id and at_sales.context == {"choice": "1"}
    assert at_sales.vars == {"TIER": "gold"}
    assert at_sales.wait_reply() == "Sales, how can I help?"
    assert caller.status == "ended" and caller.ended_reason == "routed"
    assert not taken.ended and line.calls == []


def test_a_route_to_an_offline_agent_leaves_the_call_with_the_line(
        sim: Any, client: voicesync.Client) -> None:
    line = client.line(NUMBER)
    failed: queue.Queue[voicesync.Event] = queue.Queue()
    line.on("call.route_failed", lambda event, call: failed.put(event))
    client.connect(timeout=5)
    line.wait_ready(5)
    caller = sim.start_call(to=NUMBER)
    call = until(lambda: line.call(caller.call_id), 5, "the line's call")
    assert call.extension is None
    result = call.route("nobody-home", history=False, timeout=5)
    assert not result and result.reason == "offline" and result.agent == "nobody-home"
    assert failed.get(timeout=5).get("reason") == "offline"
    assert not call.ended and caller.status == "active"
    assert call.hangup("no agent") is True
    assert caller.wait_ended(5) == "no agent" and call.wait_ended(5)
    with pytest.raises(voicesync.CallEndedError):
        call.route("sales")


def test_a_held_number_is_refused_and_a_line_is_reclaimed_after_a_drop(
        sim: Any, client: voicesync.Client) -> None:
    line = client.line(NUMBER)
    client.connect(timeout=5)
    line.wait_ready(5)
    other = voicesync.Client(url=sim.url, api_key="other-key")
    try:
        second = other.line(NUMBER)
        other.connect(timeout=5)
        with pytest.raises(voicesync.RegistrationError) as refused:
            second.wait_ready(5)
        assert refused.value.code == "LINE_CONFLICT"
    finally:
        other.close()
    mark = sim.mark()
    sim.drop(sim.connections[0])  # ours, the oldest: the other one may still be closing
    sim.wait_frame(event="line.create", direction="in", since=mark, number=NUMBER)
    line.wait_ready(5)
    assert line.destroy() is True
    assert sim.wait_frame(event="line.destroyed", direction="out").get("number") == NUMBER
    assert client.lines == {}


def test_a_line_takes_no_model() -> None:
    client = voicesync.Client(url="ws://127.0.0.1:9")
    with pytest.raises(voicesync.ConfigurationError, match="a line takes no llm, prompt"):
        client.line(NUMBER, llm="openai/gpt-4.1", prompt="hi")
    with pytest.raises(voicesync.ConfigurationError, match=r"E\.164"):
        client.line("12")
    line = client.line(NUMBER, extension_window_ms=0)
    assert client.line(NUMBER) is line
    assert line.create_frame()["config"] == {"extension_window_ms": 0}


def test_extensions_route_or_run_code_before_the_lines_own_handlers(
        sim: Any, client: voicesync.Client) -> None:
    sales = client.agent("sales")
    line = client.line(NUMBER)
    fell_through: queue.Queue[str | None] = queue.Queue()
    line.on("call.started", lambda call: fell_through.put(call.extension))
    failed: queue.Queue[voicesync.Event] = queue.Queue()
    line.on("call.route_failed", lambda event, call: failed.put(event))

    def closed(call: voicesync.Call) -> None:
        call.say("The warehouse is closed.").wait(5)
        call.hangup("closed")

    def welcome(call: voicesync.Call) -> None:
        call.say(f"Welcome; you dialled {call.extension or 'nothing'}.")

    assert line.extensions({"11": "sales", "20": closed, "30": "nobody-home",
                            "*": welcome}) is line
    client.connect(timeout=5)
    line.wait_ready(5)
    sales.wait_ready(5)

    to_sales = sim.start_call(to=NUMBER, extension="11")
    taken = until(lambda: sales.call(to_sales.call_id), 5, "the call at sales")
    assert (taken.routed_from, taken.extension) == (f"line:{NUMBER}", "11")
    assert to_sales.ended_reason == "routed"
    to_code = sim.start_call(to=NUMBER, extension="20")
    assert to_code.wait_reply() == "The warehouse is closed."
    assert to_code.wait_ended(5) == "closed"
    assert sim.start_call(to=NUMBER).wait_reply() == "Welcome; you dialled nothing."
    assert sim.start_call(to=NUMBER, extension="99").wait_reply() == (
        "Welcome; you dialled 99.")
    offline = sim.start_call(to=NUMBER, extension="30")
    assert failed.get(timeout=5).get("reason") == "offline"
    assert offline.status == "active"  # the line keeps a call its table could not route
    assert fell_through.empty()

    line.extensions({"11": "sales"})  # no "*": the line's own handlers get the rest
    sim.start_call(to=NUMBER, extension="42")
    assert fell_through.get(timeout=5) == "42"
    line.extensions({})
    sim.start_call(to=NUMBER, extension="11")
    assert fell_through.get(timeout=5) == "11"


def test_extensions_are_checked_where_they_are_passed() -> None:
    line = voicesync.Client(url="ws://127.0.0.1:9").line(NUMBER)
    with pytest.raises(voicesync.ConfigurationError, match="agent id or a callable"):
        line.extensions({"1": 42})  # type: ignore[dict-item]
    def takes_nothing() -> None: ...

    with pytest.raises(voicesync.ConfigurationError, match=r"called with \(call\)"):
        line.extensions({"1": takes_nothing})  # type: ignore[dict-item]
    with pytest.raises(voicesync.ConfigurationError, match="extension as a string"):
        line.extensions({1: "sales"})  # type: ignore[dict-item]


@pytest.mark.parametrize(("method", "args"), [
    ("dial", ("+15550009999",)), ("bridge", ("sales",)), ("add_phone", ("+15550009999",)),
    ("add_webrtc", ()), ("remove_channel", ("+15550009999",)), ("create_token", ()),
    ("pause", ()), ("send_message", ("hi",)), ("update", ()),
])
def test_a_line_refuses_the_agent_methods_that_are_not_for_numbers_answered_in_code(
        method: str, args: tuple[Any, ...]) -> None:
    line = voicesync.Client(url="ws://127.0.0.1:9").line(NUMBER)
    with pytest.raises(voicesync.ConfigurationError, match=re.escape(f"line {NUMBER}: ")):
        getattr(line, method)(*args)
    with pytest.raises(voicesync.ConfigurationError, match="a line has no model"):
        line.skill(voicesync.skill("booking", "Books rooms."))
