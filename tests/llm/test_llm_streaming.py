"""stream_openai / stream_anthropic with the real provider clients against the stand-in model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from llm_helpers import RecordingStream

from voicesync.llm import (
    ProviderError,
    anthropic_reply,
    openai_reply,
    stream_anthropic,
    stream_openai,
)
from voicesync.sim.model import ModelServer, Reply, ToolCall
from voicesync.tools import Tool, tool

STYLES = ["chat", "responses", "anthropic-stream", "anthropic-manager", "anthropic-create"]
USER = [{"role": "user", "content": "Where is my order?"}]


class Clients:
    def __init__(self, oc: openai.OpenAI, ac: anthropic.Anthropic) -> None:
        self.openai, self.anthropic = oc, ac

    def run(self, style: str, stream: RecordingStream, *,
            tools: list[Tool[..., Any]] | None = None) -> str:
        """Make the request as a user would write it, then hand it to the helper."""
        if style in ("chat", "responses"):
            request: dict[str, Any] = {"model": "stand-in"}
            if style == "chat":
                request["messages"] = list(USER)
                if tools:
                    request["tools"] = [t.to_openai() for t in tools]
                completion = self.openai.chat.completions.create(**request, stream=True)
            else:
                request["input"] = list(USER)
                if tools:
                    request["tools"] = [t.to_openai_responses() for t in tools]
                completion = self.openai.responses.create(**request, stream=True)
            return stream_openai(stream, completion, tools=tools, client=self.openai,
                                 request=request)
        request = {"model": "stand-in", "max_tokens": 200, "messages": list(USER)}
        if tools:
            request["tools"] = [t.to_anthropic() for t in tools]
        kwargs: dict[str, Any] = {"tools": tools, "client": self.anthropic, "request": request}
        if style == "anthropic-stream":
            with self.anthropic.messages.stream(**request) as message_stream:
                return stream_anthropic(stream, message_stream, **kwargs)
        if style == "anthropic-manager":
            return stream_anthropic(stream, self.anthropic.messages.stream(**request), **kwargs)
        created = self.anthropic.messages.create(**request, stream=True)
        return stream_anthropic(stream, created, **kwargs)


@pytest.fixture
def clients(openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic) -> Clients:
    return Clients(openai_client, anthropic_client)


@pytest.mark.parametrize("style", STYLES)
def test_tokens_reach_the_stream_in_order(style: str, model: ModelServer, clients: Clients,
                                          stream: RecordingStream) -> None:
    model.script("one two three four five")
    assert clients.run(style, stream) == "one two three four five"
    assert stream.parts == ["one", " two", " three", " four", " five"]
    assert stream.end_calls == 1
    assert model.requests[0].tokens_sent == 5


@tool
def lookup(order_id: str) -> dict[str, str]:
    """Find an order.

    Args:
        order_id: the order number the caller gave.
    """
    return {"order_id": order_id, "status": "ships today"}


def _tool_results(api: str, body: dict[str, Any]) -> list[str]:
    """The tool results a follow-up request carries, as text."""
    if api == "chat":
        return [m["content"] for m in body["messages"] if m.get("role") == "tool"]
    if api == "responses":
        return [i["output"] for i in body["input"] if i.get("type") == "function_call_output"]
    return [b["content"] for m in body["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


@pytest.mark.parametrize("style", STYLES)
def test_tool_loop_round_trips(style: str, model: ModelServer, clients: Clients,
                               stream: RecordingStream) -> None:
    model.script(Reply("Let me check.", tool_calls=(ToolCall("lookup", {"order_id": "A1"}),)),
                 Reply("Order A1 ships today."))
    text = clients.run(style, stream, tools=[lookup])
    assert text == "Let me check. Order A1 ships today."
    assert stream.text == text and stream.end_calls == 1
    first, second = model.wait_requests(2)
    assert [t.get("name") or t["function"]["name"] for t in first.body["tools"]] == ["lookup"]
    results = _tool_results(second.api, second.body)
    assert [json.loads(r) for r in results] == [{"order_id": "A1", "status": "ships today"}]


@pytest.mark.parametrize("style", ["chat", "responses", "anthropic-create"])
def test_a_failing_or_unknown_tool_becomes_an_error_result(
        style: str, model: ModelServer, clients: Clients, stream: RecordingStream) -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("the booking system is down")

    model.script(Reply(tool_calls=(ToolCall("explode"), ToolCall("nope"))), "Sorry about that.")
    assert clients.run(style, stream, tools=[explode]) == "Sorry about that."
    results = [json.loads(r) for r in _tool_results(*_api_body(model.wait_requests(2)[1]))]
    assert results == [{"error": "the booking system is down"}, {"error": "Unknown tool: nope"}]


def _api_body(record: Any) -> tuple[str, dict[str, Any]]:
    return record.api, record.body


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("failure", ["event", "disconnect"])
def test_a_provider_error_mid_stream_ends_the_reply_and_is_raised(
        style: str, failure: Any, model: ModelServer, clients: Clients,
        stream: RecordingStream) -> None:
    model.script(Reply("one two three four", error_after=2, error=failure))
    with pytest.raises(ProviderError) as caught:
        clients.run(style, stream)
    assert caught.value.__cause__ is not None or "mid-stream" in str(caught.value)
    assert stream.text == "one two"
    assert stream.end_calls == 1


def _run_in_thread(fn: Callable[[], str]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["text"] = fn()
        except BaseException as exc:  # reported on the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-llm-reader")
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("style", STYLES)
def test_abort_while_the_model_stalls_closes_the_http_stream_at_once(
        style: str, model: ModelServer, clients: Clients, stream: RecordingStream) -> None:
    model.script(Reply("a b c d e f", stall_before=3, stall=30.0))
    thread, outcome = _run_in_thread(lambda: clients.run(style, stream))
    record = model.wait_requests(1)[0]
    stream.wait_text("a b c")
    assert record.stalled.wait(5)
    aborted_at = time.monotonic_ns()
    stream.abort("bot.interrupted")
    assert record.done.wait(5)
    thread.join(5)
    assert not thread.is_alive()
    assert record.disconnected_ns is not None
    # The server's own clock says when it saw the hang-up; a 30 s stall was in progress
    # (the bound says it was cut short, not how fast: that is bench/'s).
    assert (record.disconnected_ns - aborted_at) / 1e6 < 2000
    assert outcome == {"text": "a b c"}
    assert stream.text == "a b c" and stream.writes_after_abort == 0
    assert record.tokens_sent == 3
    assert stream.callback_threads == [threading.current_thread().name]


def test_an_already_aborted_stream_closes_the_response_on_arrival(
        model: ModelServer, openai_client: openai.OpenAI, stream: RecordingStream) -> None:
    model.script(Reply("never heard", stall_before=0, stall=30.0))
    completion = openai_client.chat.completions.create(model="m", messages=USER, stream=True)
    stream.abort()
    assert stream_openai(stream, completion) == ""
    record = model.wait_requests(1)[0]
    assert record.done.wait(5) and record.disconnected_ns is not None
    assert record.tokens_sent == 0


def test_a_barge_in_during_a_tool_sends_no_follow_up(
        model: ModelServer, openai_client: openai.OpenAI, stream: RecordingStream) -> None:
    @tool
    def slow_lookup() -> str:
        """Looks something up while the caller barges in."""
        stream.abort("bot.interrupted")
        return "found"

    model.script(Reply(tool_calls=(ToolCall("slow_lookup"),)), "never requested")
    assert openai_reply(stream, openai_client, model="m", messages=USER,
                        tools=[slow_lookup]) == ""
    assert len(model.requests) == 1


def test_reply_helpers_send_the_tools_in_each_providers_shape(
        model: ModelServer, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    notes: list[str] = []
    model.script(Reply(tool_calls=(ToolCall("lookup", '{"order_id": "B2"}'),)), "Done.",
                 Reply(tool_calls=(ToolCall("lookup", {"order_id": "C3"}),)), "Done too.")
    assert openai_reply(RecordingStream(), openai_client, api="responses", model="m",
                        input="hi", tools=[lookup], on_tool=lambda r: notes.append(r.text)) == (
        "Done.")
    assert anthropic_reply(RecordingStream(), anthropic_client, model="m", max_tokens=50,
                           messages=USER, tools=[lookup]) == "Done too."
    bodies = [r.body for r in model.wait_requests(4)]
    assert bodies[0]["tools"] == [lookup.to_openai_responses()]
    assert bodies[2]["tools"] == [lookup.to_anthropic()]
    assert json.loads(notes[0]) == {"order_id": "B2", "status": "ships today"}


def test_tool_calls_without_tools_end_the_reply(
        model: ModelServer, openai_client: openai.OpenAI, stream: RecordingStream) -> None:
    model.script(Reply("Checking.", tool_calls=(ToolCall("lookup"),)))
    completion = openai_client.chat.completions.create(model="m", messages=USER, stream=True)
    assert stream_openai(stream, completion) == "Checking."
    assert stream.end_calls == 1 and len(model.requests) == 1


def test_an_http_error_before_the_stream_is_a_provider_error(
        model: ModelServer, openai_client: openai.OpenAI, stream: RecordingStream) -> None:
    model.script(Reply(status=500))
    with pytest.raises(ProviderError) as caught:
        openai_reply(stream, openai_client, model="m", messages=USER)
    assert caught.value.status_code == 500
    assert stream.end_calls == 1
    assert model.requests[0].done.wait(5)


def test_a_finished_response_is_refused_with_a_hint(
        model: ModelServer, openai_client: openai.OpenAI, stream: RecordingStream) -> None:
    completion = openai_client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(TypeError, match="stream=True"):
        stream_openai(stream, completion)
    assert stream.end_calls == 1
