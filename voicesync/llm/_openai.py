"""OpenAI streaming into a reply stream: Chat Completions and Responses, with the tool loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from voicesync.llm._base import (
    MAX_TOOL_ROUNDS,
    ProviderError,
    ReplyStreamLike,
    Round,
    Writer,
    request_stream,
    tool_loop,
)
from voicesync.tools import Tool, ToolResult

logger = logging.getLogger("voicesync.llm")

__all__ = ["openai_reply", "stream_openai"]


def _consume(events: Iterator[Any], write: Writer) -> Round:
    """Read either API's events (told apart by shape) into one Round."""
    round_ = Round()
    for event in events:
        if hasattr(event, "choices"):
            _chat_chunk(event, write, round_)
        else:
            _responses_event(event, write, round_)
    return round_


def _chat_chunk(chunk: Any, write: Writer, round_: Round) -> None:
    for choice in chunk.choices or ():
        if getattr(choice, "index", 0) != 0:
            continue
        delta = choice.delta
        write(getattr(delta, "content", None), round_)
        for call in getattr(delta, "tool_calls", None) or ():
            entry = round_.calls.setdefault(call.index or 0, ["", "", ""])
            function = call.function
            entry[0] = call.id or entry[0]
            entry[1] = (function and function.name) or entry[1]
            entry[2] += (function and function.arguments) or ""


def _responses_event(event: Any, write: Writer, round_: Round) -> None:
    kind = getattr(event, "type", "")
    if kind == "response.output_text.delta":
        write(event.delta, round_)
    elif kind == "response.output_item.done" and event.item.type == "function_call":
        item = event.item
        round_.calls[len(round_.calls)] = [item.call_id, item.name, item.arguments or ""]
        round_.extra.append({"type": "function_call", "call_id": item.call_id,
                             "name": item.name, "arguments": item.arguments or ""})
    elif kind == "error":
        raise ProviderError(f"OpenAI reported an error mid-stream: {event.message}",
                            provider="openai")
    elif kind == "response.failed":
        error = getattr(event.response, "error", None)
        raise ProviderError(f"The OpenAI response failed: {getattr(error, 'message', error)}",
                            provider="openai")
    elif kind == "response.incomplete":
        logger.warning("the OpenAI response ended incomplete: %s",
                       getattr(event.response, "incomplete_details", None))


def _follow_up(client: Any, request: Mapping[str, Any], api: str) -> Callable[
        [Round, list[ToolResult]], object]:
    """Build the next request from the tool results; the request grows round by round."""
    state = {key: value for key, value in request.items() if key != "stream"}

    def follow_up(round_: Round, results: list[ToolResult]) -> object:
        if api == "responses":
            prior = state.get("input") or []
            items = [{"role": "user", "content": prior}] if isinstance(prior, str) else list(prior)
            if round_.text:
                items.append({"role": "assistant", "content": round_.text})
            items += round_.extra
            items += [{"type": "function_call_output", "call_id": r.call_id, "output": r.text}
                      for r in results]
            state["input"] = items
            return client.responses.create(**state, stream=True)
        calls = [{"id": call_id, "type": "function",
                  "function": {"name": name, "arguments": arguments}}
                 for call_id, name, arguments in round_.tool_calls()]
        state["messages"] = [
            *state.get("messages", ()),
            {"role": "assistant", "content": round_.text or None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": r.call_id, "content": r.text} for r in results),
        ]
        return client.chat.completions.create(**state, stream=True)

    return follow_up


def stream_openai(stream: ReplyStreamLike, completion: object, *,
                  tools: Sequence[Tool[..., Any]] | None = None, client: object = None,
                  request: Mapping[str, object] | None = None,
                  on_tool: Callable[[ToolResult], object] | None = None,
                  max_tool_rounds: int = MAX_TOOL_ROUNDS, call: object = None) -> str:
    """Stream an OpenAI response into `stream`; return the text written.

    `completion` is what ``client.chat.completions.create(..., stream=True)`` or
    ``client.responses.create(..., stream=True)`` returned. When the reply stream aborts
    (barge-in), the HTTP response is shut down at once from the aborting thread, even if this
    thread is blocked waiting for the next token. The reply stream is always ended.

    With `tools`, `client` and `request` (the keyword arguments of the original ``create``
    call), tool calls are run and their results sent back in a new request on the same API,
    and the model's next words keep flowing into the same reply stream. A round's tool calls
    run concurrently, each under its timeout; tools that ask for the call get `call` (the
    `voicesync.Call` being answered), and a failing tool is reported through its client.

    Blocks the calling thread until the reply is complete or aborted.

    Raises:
        ProviderError: the provider failed (its exception is the ``__cause__``).
    """
    follow_up = None
    if tools and client is not None and request is not None:
        api = "chat" if "messages" in request else "responses"
        follow_up = _follow_up(client, request, api)
    return tool_loop("openai", stream, completion, _consume, follow_up, tools=tools,
                     on_tool=on_tool, max_tool_rounds=max_tool_rounds, call=call)


def openai_reply(stream: ReplyStreamLike, client: object, *,
                 api: Literal["chat", "responses"] = "chat",
                 tools: Sequence[Tool[..., Any]] | None = None,
                 on_tool: Callable[[ToolResult], object] | None = None,
                 max_tool_rounds: int = MAX_TOOL_ROUNDS, call: object = None,
                    **request: object) -> str:
    """Make the request (Chat Completions or Responses) and stream it, tools included.

    `request` holds the ``create`` arguments (``model``, ``messages`` or ``input``, ...);
    the tools are added in the API's shape. Blocks; any thread.
    """
    if tools:
        request.setdefault("tools", [t.to_openai() if api == "chat" else t.to_openai_responses()
                                     for t in tools])
    create = client.chat.completions.create if api == "chat" else client.responses.create  # type: ignore[attr-defined]
    completion = request_stream("openai", stream, lambda: create(**request, stream=True))
    if completion is None:
        return ""
    return stream_openai(stream, completion, tools=tools, client=client, request=request,
                         on_tool=on_tool, max_tool_rounds=max_tool_rounds, call=call)
