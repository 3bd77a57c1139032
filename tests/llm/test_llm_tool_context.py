"""The client-side tool loop with tools that see their call: concurrency, flags, reports.

The real openai / anthropic clients talk to the stand-in model; the agent test holds a call
on `voicesync.sim` over a real loopback WebSocket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from helpers import CANARY_KEY, until
from llm_helpers import RecordingStream

import voicesync
from voicesync.llm import OpenAIAgent, anthropic_reply, openai_reply
from voicesync.sim import Simulator
from voicesync.sim.model import ModelServer, Reply, ToolCall
from voicesync.tools import ToolError, tool

USER = [{"role": "user", "content": "Where is my order?"}]


def _reply(api: str, stream: RecordingStream, oc: openai.OpenAI, ac: anthropic.Anthropic, *,
           tools: list[Any], call: object) -> str:
    if api == "anthropic":
        return anthropic_reply(stream, ac, tools=tools, call=call, model="stand-in",
                               max_tokens=100, messages=list(USER))
    key = "messages" if api == "chat" else "input"
    return openai_reply(stream, oc, api=api, tools=tools, call=call,  # type: ignore[arg-type]
                        model="stand-in", **{key: list(USER)})


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
def test_a_rounds_tools_run_together_and_get_the_call(
        api: str, model: ModelServer, openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic, stream: RecordingStream) -> None:
    both = threading.Barrier(2, timeout=5)
    the_call = object()
    seen: list[object] = []

    @tool
    def order_status(order_id: str, call: Any) -> str:
        """Status of an order."""
        seen.append(call)
        both.wait()  # a BrokenBarrierError result if the tools ran one after the other
        return f"{order_id} ships today"

    model.script(Reply(tool_calls=(ToolCall("order_status", {"order_id": "A1"}),
                                   ToolCall("order_status", {"order_id": "B2"}))),
                 "Both ship today.")
    text = _reply(api, stream, openai_client, anthropic_client, tools=[order_status],
                  call=the_call)
    assert text == "Both ship today." and seen == [the_call, the_call]
    body = json.dumps(model.wait_requests(2)[1].body)
    assert "A1 ships today" in body and "B2 ships today" in body
    assert "call" not in json.dumps(model.requests[0].body["tools"])


@pytest.mark.parametrize("api", ["chat", "anthropic"])
def test_a_round_of_no_followup_tools_ends_the_reply(
        api: str, model: ModelServer, openai_client: openai.OpenAI,
        anthropic_client: anthropic.Anthropic, stream: RecordingStream) -> None:
    @tool(no_followup=True)
    def show_chips(labels: list[str]) -> str:
        """Show suggestion chips in the UI."""
        return "shown"

    model.script(Reply("Here are some ideas.", tool_calls=(
        ToolCall("show_chips", {"labels": ["a", "b"]}),)), "never asked for")
    text = _reply(api, stream, openai_client, anthropic_client, tools=[show_chips], call=None)
    assert text == "Here are some ideas." and stream.end_calls == 1
    assert len(model.requests) == 1, "a follow-up request was made after a no_followup round"


@pytest.fixture
def model_sim() -> Iterator[Simulator]:
    with Simulator(port=0, words_per_second=200.0, model=True) as simulator:
        yield simulator


def test_an_agents_tools_see_the_call_and_failures_are_reported(model_sim: Simulator) -> None:
    @tool(ephemeral=True)
    def caller_number(call: voicesync.Call) -> str:
        """The caller's phone number."""
        return call.from_

    @tool
    def broken() -> str:
        """Always fails."""
        raise RuntimeError("the booking system is down")

    class Desk(OpenAIAgent):
        id = "desk"
        model = "stand-in"
        instructions = "Help."
        tools = [caller_number, broken]

    client = voicesync.Client(api_key=CANARY_KEY, url=model_sim.url)
    errors: list[BaseException] = []
    client.on("error", errors.append)
    oc = openai.OpenAI(base_url=model_sim.model.openai_base_url, api_key="sk-dummy",
                       max_retries=0)
    try:
        agent = Desk(client=client, openai_client=oc)
        client.connect(timeout=5)
        agent.wait_ready(5)
        caller = model_sim.start_call("desk", from_="+15550009999")
        model_sim.model.script(
            Reply(tool_calls=(ToolCall("caller_number"), ToolCall("broken"))),
            "You are calling from 555 0009999.")
        caller.say("Which number am I calling from?")
        assert caller.wait_reply(timeout=10) == "You are calling from 555 0009999."
        follow = json.dumps(model_sim.model.wait_requests(2)[1].body)
        assert "+15550009999" in follow and "the booking system is down" in follow
        report = until(lambda: next((e for e in errors if isinstance(e, ToolError)), None),
                       5, "the failing tool on the error event")
        assert report.tool == "broken" and report.call_id == caller.call_id
        sdk_call = until(lambda: agent.call(caller.call_id), 5, "the SDK call")
        notes = [m.content for m in sdk_call.history.messages() if m.role == "tool"]
        assert notes and not any("+15550009999" in n for n in notes), notes  # ephemeral
    finally:
        client.close()
        oc.close()
