"""Event names are checked where on() is called; strict=False is the way to new ones."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from helpers import until

import voicesync
from voicesync.events import EVENT_NAMES


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("turn_end", "'turn.end'"), ("turn.ended", "'turn.end'"), ("call.start", "'call.started'"),
    ("bot.intrerupted", "'bot.interrupted'"),
])
def test_an_unknown_name_names_the_closest_known_ones(typo: str, suggestion: str) -> None:
    client = voicesync.Client(url="ws://127.0.0.1:9")
    agent = client.agent("support")
    for subscribe in (client.on, agent.on):
        with pytest.raises(voicesync.ConfigurationError,
                           match=f"unknown event '{typo}': did you mean {suggestion}") as raised:
            subscribe(typo, lambda *args: None)  # type: ignore[call-overload]
        assert "strict=False" in str(raised.value)
    with pytest.raises(voicesync.ConfigurationError):  # the decorator form checks too
        agent.on("turn.ended")  # type: ignore[call-overload]


def test_events_a_scope_never_hears_are_refused() -> None:
    agent = voicesync.Agent("support")
    with pytest.raises(voicesync.ConfigurationError, match=r"register it with client\.on\(\)"):
        agent.on("disconnected", lambda reason: None)


def test_strict_false_subscribes_a_name_voicesync_does_not_know(sim: Any,
                                                               client: voicesync.Client) -> None:
    agent = client.agent("support")
    got: list[str] = []

    @agent.on("call.transcoded", strict=False)
    def transcoded(event: voicesync.Event, call: voicesync.Call) -> None:
        got.append(event.name)

    client.connect(5)
    agent.wait_ready(5)
    simcall = sim.start_call("support")
    simcall.wait_started()
    simcall.send_event("call.transcoded", codec="opus")
    until(lambda: got, 5, "the unknown event")
    assert got == ["call.transcoded"]


def test_every_event_the_dispatcher_routes_by_name_is_known() -> None:
    assert frozenset(get_args(voicesync.EventName)) == EVENT_NAMES
    for name in ("turn.end", "eager.turn", "call.started", "call.ended", "call.ringing", "ready",
                 "connected", "error", "llm.before", "llm.tool_call", "message.confirmed"):
        assert name in EVENT_NAMES
