"""OpenAIAgent and AnthropicAgent holding a full simulated call with a barge-in (public API only).

The platform is `voicesync.sim.Simulator`, the model its stand-in (`Simulator(model=True)`),
reached by the real `openai` / `anthropic` clients through their `base_url`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from helpers import CANARY_KEY, until

import voicesync
from voicesync.history import INTERRUPTED_MARK
from voicesync.llm import AnthropicAgent, OpenAIAgent
from voicesync.sim import Simulator
from voicesync.sim.model import Reply, ToolCall
from voicesync.tools import tool

STALL = 30.0  # seconds the stand-in pauses mid-reply; the barge-in must not wait for it
# The simulator starts speaking a stream at its first whole sentence.
REPLY = "Sure. I can book you on Tuesday at noon or on Wednesday morning if you prefer."


@tool
def check_availability(day: str) -> dict[str, Any]:
    """Check which rooms are free.

    Args:
        day: the day the caller asked about.
    """
    return {"day": day, "free_rooms": 3}


class Concierge(OpenAIAgent):
    id = "concierge-openai"
    model = "stand-in-gpt"
    instructions = "You are a hotel concierge."
    tools = [check_availability]


class Butler(AnthropicAgent):
    id = "concierge-anthropic"
    model = "stand-in-claude"
    instructions = "You are a hotel concierge."
    tools = [check_availability]


@pytest.fixture
def model_sim() -> Iterator[Simulator]:
    with Simulator(port=0, words_per_second=40.0, model=True) as simulator:
        yield simulator


@pytest.fixture
def sdk(model_sim: Simulator) -> Iterator[voicesync.Client]:
    client = voicesync.Client(api_key=CANARY_KEY, url=model_sim.url)
    yield client
    client.close()


def _agent(kind: str, sim: Simulator, client: voicesync.Client) -> voicesync.Agent:
    if kind.startswith("openai"):
        oc = openai.OpenAI(base_url=sim.model.openai_base_url, api_key="sk-dummy", max_retries=0)
        api = "responses" if kind == "openai-responses" else "chat"
        return Concierge(client=client, openai_client=oc, api=api)
    ac = anthropic.Anthropic(base_url=sim.model.anthropic_base_url, api_key="sk-dummy",
                             max_retries=0)
    return Butler(client=client, anthropic_client=ac)


def _assistant_texts(api: str, body: dict[str, Any]) -> list[str]:
    items = body.get("messages") or body.get("input") or []
    return [m["content"] for m in items
            if m.get("role") == "assistant" and isinstance(m.get("content"), str)]


@pytest.mark.parametrize("kind", ["openai", "openai-responses", "anthropic"])
def test_a_full_call_with_tools_and_a_barge_in(kind: str, model_sim: Simulator,
                                                sdk: voicesync.Client) -> None:
    agent = _agent(kind, model_sim, sdk)
    sdk.connect(timeout=5)
    agent.wait_ready(timeout=5)
    model = model_sim.model
    caller = model_sim.start_call(agent.id)

    # Turn 1: the model calls a tool, then answers; the caller hears the whole answer.
    model.script(Reply(tool_calls=(ToolCall("check_availability", {"day": "Tuesday"}),)),
                 "We have three rooms free on Tuesday.")
    caller.say("Do you have rooms on Tuesday?")
    assert caller.wait_reply(timeout=10) == "We have three rooms free on Tuesday."
    caller.wait_idle(timeout=10)

    # Turn 2: the model stalls mid-reply; the caller talks over the bot.
    model.script(Reply(REPLY, stall_before=7, stall=STALL))
    caller.say("Book me the earliest one.")
    stalled = model.wait_requests(3, timeout=10)[2]
    assert stalled.stalled.wait(10)
    model.script("Of course, take your time.")  # the answer to the barge-in turn
    caller.wait_speaking(words=3, timeout=10)
    barged_at = time.monotonic_ns()
    caller.barge_in("Actually, wait.", after_words=3, timeout=10)
    assert stalled.done.wait(5), "the provider stream stayed open after the barge-in"
    assert stalled.disconnected_ns is not None and stalled.tokens_sent == 7
    # Measured on the stand-in's own clock: caller speaks -> bot.interrupted -> the SDK's
    # reader aborts the reply -> the provider socket is shut down. A 30 s stall was running;
    # how fast this is belongs to bench/, the bound only says it was not waited out.
    assert (stalled.disconnected_ns - barged_at) / 1e6 < 2000

    # History holds only what the caller heard, with the cut-off mark.
    sdk_call = until(lambda: agent.call(caller.call_id), what="the SDK call")
    cut = caller.transcript[-2]
    assert cut[0] == "bot" and cut[2] is True
    spoken = cut[1]
    assert spoken and REPLY.startswith(spoken) and spoken != REPLY

    def interrupted() -> Any:
        found = [m for m in sdk_call.history.messages() if m.interrupted]
        return found[0] if found else None

    message = until(interrupted, what="the interrupted reply in history")
    assert message.role == "assistant" and message.text == spoken
    assert message.content == spoken + INTERRUPTED_MARK

    # Turn 3 (the barge-in itself): the model is asked with the cut reply, not the full one.
    assert caller.wait_reply(timeout=10) == "Of course, take your time."
    follow = model.wait_requests(4, timeout=10)[3]
    said = _assistant_texts(follow.api, follow.body)
    assert any(text.endswith(spoken + INTERRUPTED_MARK) for text in said), said
    assert not any(REPLY in text for text in said)
    assert follow.last_user_text.endswith("Actually, wait.")
    caller.hangup()
    until(lambda: not agent.calls, what="the call to end in the SDK")
