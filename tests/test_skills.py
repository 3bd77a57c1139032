"""Skills over real sockets to voicesync.sim (docs/protocol.md §3.5): declared at
registration or attached at runtime, their tools answered by voicesync, loaded by the
model or by code."""

from __future__ import annotations

import json
import queue
from typing import Any

import pytest
from helpers import until

import voicesync


@voicesync.tool
def book_room(call: voicesync.Call, nights: int) -> dict[str, Any]:
    """Book a room.

    Args:
        nights: how many nights
    """
    return {"booked": nights, "caller": call.from_}


@voicesync.tool
def upgrade() -> str:
    """Upgrade the caller to a suite."""
    return "upgraded"


def _results(sim: Any) -> list[Any]:
    return [f.data["results"][0]["result"] for f in sim.frames
            if f.direction == "in" and f.event == "llm.tool_result"]


def test_a_skill_attached_at_runtime_is_declared_and_its_tools_run(
        sim: Any, client: voicesync.Client) -> None:
    agent = client.agent("desk", llm="openai/gpt-4.1-mini", prompt="You are a desk.")
    loaded: queue.Queue[str] = queue.Queue()
    agent.on("skill.loaded", lambda event, call: loaded.put(event.get("by")))
    client.connect(timeout=5)
    agent.wait_ready(5)
    booking = voicesync.skill("booking", "Book rooms.", instructions="Confirm the dates.",
                              tools=[book_room])
    assert agent.skill(booking) is booking
    assert sim.wait_frame(event="agent.configure", direction="in").data == {
        "event": "agent.configure", "agent_id": "desk", "skills": [{
            "name": "booking", "description": "Book rooms.",
            "instructions": "Confirm the dates.", "tools": [book_room.to_wire()],
            "activation": "model"}]}
    agent.skill(voicesync.skill("booking", "Book rooms and suites.", tools=[book_room],
                                knowledge_base="kb_rooms", rag_top_k=3))
    declared = until(lambda: [s for s in sim.agents["desk"].config["skills"]
                              if s["description"] == "Book rooms and suites."], 5,
                     "the replaced skill on the platform")
    assert len(sim.agents["desk"].config["skills"]) == 1
    assert declared[0]["knowledge_base"] == "kb_rooms" and declared[0]["rag_top_k"] == 3
    assert [s.name for s in agent.config["skills"]] == ["booking"]

    caller = sim.start_call("desk")
    caller.say('book_room {"nights": 2}')
    assert caller.wait_reply() == ('The book_room tool says '
                                   + json.dumps({"booked": 2, "caller": caller.from_}) + ".")
    assert loaded.get(timeout=5) == "model"
    assert _results(sim) == [{"booked": 2, "caller": caller.from_}]


def test_a_manual_skills_tools_reach_the_model_once_code_loads_it(
        sim: Any, client: voicesync.Client) -> None:
    vip = voicesync.skill("vip", "Suite upgrades.", tools=[upgrade], activation="manual")
    agent = client.agent("desk", llm="openai/gpt-4.1-mini", skills=[vip])
    client.connect(timeout=5)
    agent.wait_ready(5)
    assert sim.agents["desk"].config["skills"] == [vip.to_wire()]
    caller = sim.start_call("desk")
    call = until(lambda: agent.call(caller.call_id), 5, "the call")
    caller.say("upgrade please")
    assert caller.wait_reply() == "You said: upgrade please."  # the model cannot see it yet
    assert call.load_skill("vip")
    until(lambda: "vip" in call.active_skills, 5, "skill.loaded")
    caller.say("upgrade please")
    assert caller.wait_reply() == "The upgrade tool says upgraded."
    assert _results(sim) == ["upgraded"]


def test_a_skill_needs_a_description_and_a_known_activation() -> None:
    with pytest.raises(voicesync.ConfigurationError, match="a name and a description"):
        voicesync.skill("booking", "")
    with pytest.raises(voicesync.ConfigurationError, match="activation must be one of"):
        voicesync.skill("booking", "Book.", activation="sometimes")  # type: ignore[arg-type]
