"""Misuse fails at once with the real cause, not a timeout naming the wrong one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync

FAST = 0.2  # "at once": the bound for a misuse to fail


def timed(fn: Callable[[], Any]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


@pytest.fixture
def phone_agent(client: voicesync.Client) -> voicesync.Agent:
    return client.agent("support", phone="+13186330963")


@pytest.mark.parametrize("operation", ["dial", "wait_ready", "create_token"])
def test_a_client_never_connected_raises_not_connected_at_once(
        phone_agent: voicesync.Agent, operation: str) -> None:
    do = {"dial": lambda: phone_agent.dial("+14155551234", timeout=30),
          "wait_ready": lambda: phone_agent.wait_ready(30),
          "create_token": lambda: phone_agent.create_token(timeout=30)}[operation]

    def attempt() -> None:
        with pytest.raises(voicesync.NotConnectedError, match=r"call client\.connect\(\)"):
            do()

    assert timed(attempt) < FAST


def test_a_closed_client_raises_not_connected_and_says_so(client: voicesync.Client,
                                                          phone_agent: voicesync.Agent) -> None:
    client.connect(5)
    phone_agent.wait_ready(5)
    client.close()
    with pytest.raises(voicesync.NotConnectedError, match="this client is closed"):
        phone_agent.wait_ready(30)


def test_a_client_that_gave_up_names_why(sim: Any) -> None:
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url, reconnect=False)
    try:
        agent = client.agent("support")
        client.connect(5)
        agent.wait_ready(5)
        sim.drop()
        until(lambda: client._reader is not None and not client._reader.alive, 5, "give-up")
        with pytest.raises(voicesync.NotConnectedError, match="ended for good") as raised:
            agent.wait_ready(30)
        assert isinstance(raised.value, voicesync.ConnectionClosedError)
    finally:
        client.close()


def test_a_history_request_on_a_dead_client_fails_at_once(sim: Any) -> None:
    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url, reconnect=False)
    try:
        agent = client.agent("support")
        calls: list[voicesync.Call] = []
        agent.on("call.started", calls.append)
        client.connect(5)
        agent.wait_ready(5)
        sim.start_call("support")
        until(lambda: calls, 5, "call.started")
        client.close()

        def attempt() -> None:
            with pytest.raises(voicesync.VoiceSyncError, match=r"client\.connect\(\)|ended"):
                calls[0].get_history()

        assert timed(attempt) < FAST
    finally:
        client.close()


@pytest.fixture
def holder(sim: Any) -> Iterator[voicesync.Client]:
    """Another connection that holds agent 'support' (a second gunicorn worker, say)."""
    other = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    other.agent("support", phone="+13186330963")
    other.connect(5)
    other.agents["support"].wait_ready(5)
    sim.conflict = "conflict"
    sim.conflict_retry_after_s = 0.2  # so the retry after the holder quits comes soon
    yield other
    other.close()


@pytest.mark.parametrize("operation", ["dial", "wait_ready"])
def test_a_held_agent_id_raises_agent_conflict_as_soon_as_it_is_known(
        sim: Any, holder: voicesync.Client, client: voicesync.Client,
        phone_agent: voicesync.Agent, operation: str) -> None:
    client.connect(5)
    sim.wait_frame(lambda f: f.event == "error" and f.get("code") == "AGENT_CONFLICT")
    do = {"dial": lambda: phone_agent.dial("+14155551234", timeout=30),
          "wait_ready": lambda: phone_agent.wait_ready(30)}[operation]

    def attempt() -> None:
        with pytest.raises(voicesync.AgentConflictError, match="held by another connection") as e:
            do()
        assert e.value.holder_alive is True and e.value.reason == "retrying"
        assert 60 < e.value.retry_remaining <= 90

    assert timed(attempt) < FAST
    if operation == "dial":  # the refused dial must not be placed once the conflict clears
        holder.close()
        until(lambda: phone_agent.ready, 10, "the retried registration")
        assert not [f for f in sim.frames if f.event == "call.dial"]


def test_a_dial_waiting_for_registration_fails_when_the_conflict_arrives(
        sim: Any, holder: voicesync.Client, client: voicesync.Client,
        phone_agent: voicesync.Agent) -> None:
    sim.withhold("error")  # the conflict answer is held back until the dial is waiting
    client.connect(5)

    def attempt() -> None:
        with pytest.raises(voicesync.AgentConflictError):
            phone_agent.dial("+14155551234", timeout=30)

    sim.wait_frame(lambda f: f.event == "agent.create" and f.direction == "in", timeout=5)
    threading.Timer(0.3, lambda: sim.release("error")).start()
    assert timed(attempt) < 0.3 + FAST


def test_request_timeouts_say_what_was_waited_for_and_what_was_last_seen(
        sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("support", phone="+13186330963")
    client.connect(5)
    agent.wait_ready(5)
    sim.dial_delay = 30.0  # the callee never picks up within the test's timeout
    with pytest.raises(voicesync.RequestTimeout) as raised:
        agent.dial("+14155551234", timeout=0.5)
    message = str(raised.value)
    assert "waited for call.started" in message and "last seen: call.dialing" in message
    assert "the client is connected; the last frame arrived" in message

    sim.withhold("history.data")
    calls: list[voicesync.Call] = []
    agent.on("call.started", calls.append)
    sim.start_call("support")
    until(lambda: calls, 5, "call.started")
    with pytest.raises(voicesync.RequestTimeout) as raised:
        calls[0].get_history(timeout=0.3)
    message = str(raised.value)
    assert "waiting for 'history.data'" in message and "last seen: the client is connected" \
        in message


def test_a_say_that_is_not_over_says_what_was_playing(sim: Any,
                                                      client: voicesync.Client) -> None:
    sim.words_per_second = 2.0
    agent = client.agent("support")
    calls: list[voicesync.Call] = []
    agent.on("call.started", calls.append)
    client.connect(5)
    agent.wait_ready(5)
    sim.start_call("support")
    until(lambda: calls, 5, "call.started")
    handle = calls[0].say("one two three four five six seven eight")
    until(lambda: calls[0].current_bot_text, 5, "the first word")
    with pytest.raises(voicesync.RequestTimeout) as raised:
        handle.wait(0.05)
    assert str(raised.value).endswith(
        "(waited for its bot.finished or bot.interrupted); last seen: it was playing")
