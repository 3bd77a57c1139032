"""Server-side LLM agents: llm.before/llm.ready, scripted replies, tool rounds (§5.7-§5.8)."""

from __future__ import annotations

import json
from typing import Any

from sim_support import WsClient, barrier, of

from voicesync.sim import LLMTurn, Simulator, ToolRequest

LOOKUP = {"type": "function", "function": {
    "name": "lookupOrder", "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"orderId": {"type": "string"}},
                   "required": ["orderId"]}}}


def server_agent(ws: WsClient, **config: Any) -> None:
    ws.register("brain", llm="openai/gpt-5.4-nano", prompt="Be nice.", **config)


def test_llm_before_waits_for_ready_then_the_model_answers(sim: Simulator,
                                                          ws: WsClient) -> None:
    server_agent(ws, preparing=True)
    call = sim.start_call("brain")
    user_id = call.say("what time is it")
    before = ws.expect("llm.before")
    assert (before["call_id"], before["agent_id"], before["turn"]) == (call.call_id, "brain", 1)
    barrier(ws)
    assert not of(ws.frames, "bot.speaking")
    ws.send({"event": "llm.ready", "call_id": call.call_id, "agent_id": "brain", "turn": 1})
    assert call.wait_reply(5) == "You said: what time is it."
    speaking = ws.expect("bot.speaking")
    assert speaking["text"] == "" and speaking["message_id"].startswith("msg_")
    assert ws.expect("message.confirmed")["text"] == "You said: what time is it."
    assert user_id


def test_default_budget_is_short_and_not_reported(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws)
    call = sim.start_call("brain")
    call.say("hello")
    ws.expect("llm.before")
    assert call.wait_reply(5) == "You said: hello."
    assert not of(ws.frames, "llm.preparing_timeout")


def test_missed_opt_in_budget_is_reported(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing={"enabled": True, "timeout_ms": 100})
    call = sim.start_call("brain")
    call.say("hello")
    missed = ws.expect("llm.preparing_timeout")
    assert missed["turn"] == 1 and missed["budget_ms"] == 100 and missed["waited_ms"] >= 90
    assert call.wait_reply(5) == "You said: hello."


def test_preparing_false_never_signals(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing=False)
    call = sim.start_call("brain")
    call.say("hi")
    call.wait_reply(5)
    assert not of(ws.frames, "llm.before")


def test_scripted_map_and_responder(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing=False)
    sim.llm.script["weather"] = "It is sunny today."
    call = sim.start_call("brain")
    call.say("How is the WEATHER?")
    assert call.wait_reply(5) == "It is sunny today."
    seen: list[LLMTurn] = []

    def responder(turn: LLMTurn) -> str:
        seen.append(turn)
        return f"Turn {turn.turn} for {turn.agent_id}."

    sim.llm.responder = responder
    call.say("anything")
    assert call.wait_reply(5) == "Turn 2 for brain."
    assert seen[0].history[0] == {"role": "system", "content": "Be nice."}


def test_tool_round_trip(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing=False, tools=[LOOKUP])
    call = sim.start_call("brain")
    call.say('please lookupOrder {"orderId": "42"}')
    request = ws.expect("llm.tool_call")
    assert request["call_id"] == call.call_id and request["agent_id"] == "brain"
    (tool_call,) = request["tool_calls"]
    assert tool_call["name"] == "lookupOrder" and isinstance(tool_call["arguments"], str)
    assert json.loads(tool_call["arguments"]) == {"orderId": "42"}
    barrier(ws)
    assert not of(ws.frames, "bot.speaking")
    ws.send({"event": "llm.tool_result", "call_id": call.call_id, "msg_id": "wrong",
             "results": [{"tool_call_id": tool_call["id"], "result": "ignored"}]})
    ws.send({"event": "llm.tool_result", "call_id": call.call_id, "msg_id": request["msg_id"],
             "results": [{"tool_call_id": tool_call["id"], "result": {"status": "shipped"}}]})
    reply = call.wait_reply(5)
    assert "shipped" in reply
    roles = [m["role"] for m in call.history]
    assert roles[-3:] == ["assistant", "tool", "assistant"]


def test_scripted_tool_request_and_timeout() -> None:
    with Simulator(words_per_second=200, time_scale=0.001) as sim:
        ws = WsClient(sim.url)
        ws.connect()
        server_agent(ws, preparing=False, tools=[LOOKUP])
        sim.llm.script["order"] = ToolRequest("lookupOrder", {"orderId": "7"},
                                              reply="Order: {result}.")
        call = sim.start_call("brain")
        call.say("where is my order")
        assert json.loads(ws.expect("llm.tool_call")["tool_calls"][0]["arguments"]) == {
            "orderId": "7"}
        assert call.wait_reply(5).startswith("Sorry")  # 30 s at 1/1000
        ws.close()


def test_no_followup_results_end_the_turn_silently(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing=False, tools=[LOOKUP])
    call = sim.start_call("brain")
    call.say("lookupOrder now")
    request = ws.expect("llm.tool_call")
    ws.send({"event": "llm.tool_result", "call_id": call.call_id, "msg_id": request["msg_id"],
             "results": [{"tool_call_id": request["tool_calls"][0]["id"], "result": "ok",
                          "no_followup": True}]})
    barrier(ws)
    call.wait_idle(5)
    assert not of(ws.frames, "bot.speaking")


def test_a_new_turn_cancels_the_pending_one(sim: Simulator, ws: WsClient) -> None:
    server_agent(ws, preparing=True)
    call = sim.start_call("brain")
    call.say("first")
    ws.expect("llm.before", turn=1)
    call.say("second")
    ws.expect("llm.before", turn=2)
    ws.send({"event": "llm.ready", "call_id": call.call_id, "agent_id": "brain", "turn": 1})
    ws.send({"event": "llm.ready", "call_id": call.call_id, "agent_id": "brain", "turn": 2})
    assert call.wait_reply(5) == "You said: second."
    call.wait_idle(5)
    barrier(ws)  # the client has read every frame the simulator sent so far
    assert len(of(ws.frames, "bot.speaking")) == 1
