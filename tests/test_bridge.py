"""`agent.bridge()`: a voice call to another agent, over real sockets to voicesync.sim
(docs/protocol.md §3.9): the frame, the answer, speech both ways, the end, a failure."""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from helpers import until

import voicesync


def test_bridge_calls_another_agent_and_carries_speech_both_ways(
        sim: Any, client: voicesync.Client) -> None:
    judge = client.agent("judge")
    desk = client.agent("Front Desk", greeting="Front desk, hello.")
    heard: queue.Queue[str] = queue.Queue()
    judge.on("turn.end", lambda turn, call: heard.put(turn.text))
    desk.on("turn.end", lambda turn, call: call.reply("You asked: " + turn.text))
    ended: queue.Queue[tuple[str, str]] = queue.Queue()
    desk.on("call.ended", lambda call, reason: ended.put((call.from_, reason)))
    client.connect(timeout=5)
    judge.wait_ready(5)
    desk.wait_ready(5)

    call = judge.bridge("Front Desk", metadata={"run": 7}, timeout=5)
    assert (call.direction, call.transport, call.metadata) == ("outbound", "bridge", {"run": 7})
    assert sim.wait_frame(event="call.bridge", direction="in").data == {
        "event": "call.bridge", "agent_id": "judge", "target": "Front Desk",
        "metadata": {"run": 7}, "detect_turn_end": True}
    assert heard.get(timeout=5) == "Front desk, hello."
    call.say("Do you have rooms?")
    assert heard.get(timeout=5) == "You asked: Do you have rooms?"
    other = until(lambda: next(iter(desk.calls), None), 5, "the desk's side")
    assert (other.from_, other.direction, other.transport) == ("judge", "inbound", "bridge")
    call.hangup()
    assert ended.get(timeout=5) == ("judge", "hangup")


def test_bridge_to_an_agent_that_is_not_online_fails(sim: Any,
                                                     client: voicesync.Client) -> None:
    judge = client.agent("judge")
    client.connect(timeout=5)
    judge.wait_ready(5)
    with pytest.raises(voicesync.CallFailedError, match="is that agent online") as failed:
        judge.bridge("nobody", detect_turn_end=False, config={"voice": "x"}, timeout=5)
    assert failed.value.reason == "offline"
    assert sim.wait_frame(event="call.bridge", direction="in").data == {
        "event": "call.bridge", "agent_id": "judge", "target": "nobody",
        "config": {"voice": "x"}, "detect_turn_end": False}
    assert judge.calls == []


def test_a_bridge_is_not_failed_by_the_end_of_someone_elses_call(
        sim: Any, client: voicesync.Client) -> None:
    judge, desk = client.agent("judge"), client.agent("desk")
    client.connect(timeout=5)
    judge.wait_ready(5)
    desk.wait_ready(5)
    sim.withhold("call.started")
    with ThreadPoolExecutor(1) as pool:
        placed = pool.submit(judge.bridge, "desk", timeout=5)
        sim.wait_frame(event="call.bridge", direction="in")
        sim.send({"event": "call.ended", "agent_id": "judge", "call_id": "CA_other",
                  "reason": "busy", "direction": "outbound", "to": "+15550009999"})
        sim.release("call.started")
        call = placed.result(10)
    assert call.to == "desk" and call.direction == "outbound"
