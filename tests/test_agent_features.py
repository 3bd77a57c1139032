"""Agents: registration errors, dialling, ringing calls, tokens, tools, subclasses, replay."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import CANARY_KEY, until

import voicesync

# docs/protocol.md §10
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ev-replay.json"


def connected(client: voicesync.Client, agent_id: str = "support",
              **config: Any) -> voicesync.Agent:
    agent = client.agent(agent_id, **config)
    client.connect(timeout=5)
    agent.wait_ready(5)
    return agent


def test_conflict_fatal_and_capacity_are_typed_errors(sim: Any) -> None:
    holder = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    other = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        connected(holder)
        sim.conflict = "fatal"
        errors: list[BaseException] = []
        other.on("error", errors.append)
        agent = other.agent("support")
        other.connect(timeout=5)
        with pytest.raises(voicesync.AgentConflictError) as info:
            agent.wait_ready(5)
        assert info.value.reason == "server_fatal" and info.value.agent_id == "support"
        sim.capacity = 1
        crowd = other.agent("crowd")
        with pytest.raises(voicesync.ServerAtCapacityError) as cap:
            crowd.wait_ready(5)
        assert (cap.value.used, cap.value.limit) == (1, 1)
        until(lambda: len(errors) >= 2, 5, "two error events")
    finally:
        holder.close()
        other.close()


def test_conflict_is_retried_per_the_servers_hint(sim: Any) -> None:
    holder = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    other = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        connected(holder)
        sim.conflict = "conflict"
        sim.conflict_retry_after_s = 0.2
        agent = other.agent("support")
        other.connect(timeout=5)
        sim.wait_frame(lambda f: f.event == "error" and f.get("code") == "AGENT_CONFLICT")
        # The platform says the holder is alive: wait_ready() says so at once, not after 5 s.
        started = time.monotonic()
        with pytest.raises(voicesync.AgentConflictError) as raised:
            agent.wait_ready(5)
        assert time.monotonic() - started < 0.2
        assert raised.value.reason == "retrying" and raised.value.holder_alive is True
        assert 0 < raised.value.retry_remaining <= 90
        holder.close()  # the holder goes away: the retry (still running) succeeds
        until(lambda: agent.ready, 5, "the retried registration")
        creates = [f for f in sim.frames if f.event == "agent.create" and f.direction == "in"]
        # holder, other's first try, the retry (one more if the retry beat the holder's
        # release on the server)
        assert len(creates) >= 3
    finally:
        holder.close()
        other.close()


def test_dial_answered_busy_and_concurrent(sim: Any, client: voicesync.Client) -> None:
    agent = connected(client, phone="+13186330963")
    call = agent.dial("+14155551234", greeting="Hi, this is a follow-up.",
                      metadata={"appointmentId": "appt_001"}, timeout=5)
    assert call.direction == "outbound" and call.to == "+14155551234"
    dial = sim.wait_frame(event="call.dial", direction="in").data
    assert dial == {"event": "call.dial", "agent_id": "support", "to": "+14155551234",
                    "from": "+13186330963", "greeting": "Hi, this is a follow-up.",
                    "metadata": {"appointmentId": "appt_001"}}
    sim.dial_script["+14155550000"] = "busy"
    sim.dial_script["+14155550001"] = "no-answer"
    with pytest.raises(voicesync.CallFailedError) as busy:
        agent.dial("+14155550000", timeout=5)
    assert busy.value.reason == "busy"
    sim.dial_delay = 0.2
    numbers = ["+14155550001", "+14155552001", "+14155552002", "+14155552003"]
    with ThreadPoolExecutor(4) as pool:
        futures = {n: pool.submit(agent.dial, n, timeout=5) for n in numbers}
        with pytest.raises(voicesync.CallFailedError, match="no-answer"):
            futures[numbers[0]].result(10)
        answered = {n: futures[n].result(10) for n in numbers[1:]}
    assert {n: c.to for n, c in answered.items()} == {n: n for n in numbers[1:]}
    assert len({c.id for c in answered.values()}) == 3


def test_ringing_calls_can_be_accepted_or_rejected(sim: Any, client: voicesync.Client) -> None:
    agent = connected(client)
    agent.add_phone("+13186330963", ringing=True)
    sim.wait_frame(event="channel.added", direction="out")

    @agent.on("call.ringing")
    def screen(ringing: voicesync.RingingCall) -> None:
        if ringing.from_ == "+15550000666":
            ringing.reject()
        else:
            ringing.accept()

    good = sim.start_call(None, from_="+15550001111", to="+13186330963")
    assert good.status == "active"
    bad = sim.ring(None, from_="+15550000666", to="+13186330963")
    assert bad.wait_started(5) is False
    reject = sim.wait_frame(event="call.reject", direction="in").data
    assert reject == {"event": "call.reject", "agent_id": "support", "call_id": bad.call_id,
                      "reason": "busy"}


def test_create_token_over_rest(sim: Any, client: voicesync.Client) -> None:
    agent = connected(client)
    token = agent.create_token("webrtc", metadata={"userId": "u1"})
    call = sim.start_call(token=token)
    sdk_call = until(lambda: agent.call(call.call_id), 5, "the token's call")
    assert sdk_call.metadata == {"userId": "u1"} and sdk_call.transport == "webrtc"
    sim.withhold("agent.created")
    lonely = client.agent("nobody")
    with pytest.raises(voicesync.RequestTimeout, match="not acknowledged"):
        lonely.create_token(timeout=0.3)


def test_server_side_tools_run_on_a_worker_and_errors_become_results(sim: Any) -> None:
    @voicesync.tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: the order number
        """
        if order_id == "bad":
            raise ValueError("no such order")
        return {"status": "shipped"}

    client = voicesync.Client(api_key=CANARY_KEY, url=sim.url)
    try:
        agent = connected(client, llm="openai/gpt-4.1-mini", prompt="Help.", tools=[lookup_order])
        create = sim.wait_frame(event="agent.create", direction="in").data
        assert create["tools"][0]["function"]["name"] == "lookup_order"
        simcall = sim.start_call("support")
        ok = _run_tool_round(sim, simcall, "lookup_order", {"order_id": "42"})
        assert ok["results"][0]["result"] == {"status": "shipped"}
        bad = _run_tool_round(sim, simcall, "lookup_order", {"order_id": "bad"})
        assert bad["results"][0]["result"] == {"error": "no such order"}
        unknown = _run_tool_round(sim, simcall, "nope", {})
        assert unknown["results"][0]["result"] == {"error": "Unknown tool: nope"}
        assert agent.calls[0].status == "active"
    finally:
        client.close()


def _run_tool_round(sim: Any, simcall: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    msg_id = f"msg_{name}_{len(sim.frames)}"
    mark = sim.mark()
    simcall.send_event("llm.tool_call", msg_id=msg_id, tool_calls=[
        {"id": "tc_1", "name": name, "arguments": json.dumps(args)}])
    return dict(sim.wait_frame(event="llm.tool_result", direction="in", since=mark,
                               msg_id=msg_id).data)


class Greeter(voicesync.Agent):
    id = "greeter"
    greeting = "Hello from a subclass."

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call,
                history: voicesync.History) -> None:
        call.reply(f"{len(history.messages())} so far: {turn.text}")


def test_agent_subclass_greets_and_answers_with_history(sim: Any,
                                                        client: voicesync.Client) -> None:
    agent = client.add_agent(Greeter())
    client.connect(timeout=5)
    agent.wait_ready(5)
    assert sim.wait_frame(event="agent.create", direction="in").data["greeting"] == (
        "Hello from a subclass.")
    simcall = sim.start_call("greeter")
    simcall.say("hi")
    assert simcall.wait_reply(5).endswith("so far: hi")


def test_function_greeting_runs_per_call(sim: Any, client: voicesync.Client) -> None:
    class Personal(voicesync.Agent):
        id = "personal"

        @staticmethod
        def greeting(call: voicesync.Call) -> str:  # type: ignore[override]
            return f"Hello {call.from_}"

    client.add_agent(Personal())
    client.connect(timeout=5)
    simcall = sim.start_call("personal", from_="+15550009999")
    say = sim.wait_frame(event="bot.reply", direction="in").data
    assert say["text"] == "Hello +15550009999" and say["in_reply_to"] == ""
    assert say["add_to_history"] is True and simcall.call_id == say["call_id"]


def test_replay_of_the_captured_call(sim: Any, client: voicesync.Client) -> None:
    """docs/protocol.md §10: the camelCase capture, turned back into wire frames."""
    data = json.loads(FIXTURE.read_text())
    agent = connected(client, "dev-maravilla")
    turns: list[voicesync.Turn] = []
    ended: list[str] = []
    user_messages: list[str] = []
    agent.on("turn.end", lambda turn, call: turns.append(turn))
    agent.on("user.message", lambda event, call: user_messages.append(event.text))
    agent.on("call.ended", lambda call, reason: ended.append(reason))
    started = threading.Event()
    agent.on("call.started", lambda call: started.set())
    for item in data["frames"]:
        sim.send(_to_wire(item["event"], item["data"]))
    until(lambda: ended, 5, "the replayed call to end")
    assert started.is_set() and ended == ["disconnected"]
    assert user_messages == ["Hello?"]  # the duplicate user.message was dropped
    assert turns[0].message_id == "1b23f589690b499292d2e7cad7f66ca2"
    assert turns[0].text == "Hello?" and turns[0].probability == pytest.approx(0.977, abs=1e-3)


_TURN_KEYS = {"id": "turn_id", "messageId": "message_id", "latencyMs": "latency_ms"}


def _to_wire(event: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"event": event}
    for key, value in data.items():
        if key in ("from", "to", "direction", "transport") and event != "call.started":
            continue
        if key == "confidence" and event in ("eager.turn", "turn.end"):
            continue
        if key in ("agent", "agentId"):
            out["agent_id"] = "dev-maravilla"
            continue
        if event in ("eager.turn", "turn.end") and key in _TURN_KEYS:
            out[_TURN_KEYS[key]] = value
            continue
        if event == "call.ended" and key == "duration":
            out["duration_seconds"] = value
            continue
        out["".join("_" + c.lower() if c.isupper() else c for c in key)] = value
    return out
