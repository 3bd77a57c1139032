"""Anthropic streaming into a reply stream: ``messages.stream`` and ``messages.create``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from voicesync.llm._base import (
    MAX_TOOL_ROUNDS,
    ReplyStreamLike,
    Round,
    Writer,
    request_stream,
    tool_loop,
)
from voicesync.tools import Tool, ToolResult

logger = logging.getLogger("voicesync.llm")

__all__ = ["anthropic_reply", "stream_anthropic"]


def _consume(events: Iterator[Any], write: Writer) -> Round:
    # Only raw events: a MessageStream also yields derived ones ("text", "input_json").
    round_ = Round()
    for event in events:
        kind = getattr(event, "type", "")
        if kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            round_.calls[event.index] = [block.id, block.name, ""]
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                write(delta.text, round_)
            elif delta.type == "input_json_delta" and event.index in round_.calls:
                round_.calls[event.index][2] += delta.partial_json
        elif kind == "message_delta" and event.delta.stop_reason == "max_tokens":
            logger.warning("the Anthropic reply hit max_tokens and was cut short")
    return round_


def _follow_up(client: Any, request: Mapping[str, Any]) -> Callable[
        [Round, list[ToolResult]], object]:
    state = {key: value for key, value in request.items() if key != "stream"}

    def follow_up(round_: Round, results: list[ToolResult]) -> object:
        said = [{"type": "text", "text": round_.text}] if round_.text else []
        uses = [{"type": "tool_use", "id": call_id, "name": name,
                 "input": json.loads(arguments or "{}")}
                for call_id, name, arguments in round_.tool_calls()]
        answers = [{"type": "tool_result", "tool_use_id": r.call_id, "content": r.text,
                    **({"is_error": True} if r.error else {})} for r in results]
        state["messages"] = [*state.get("messages", ()),
                             {"role": "assistant", "content": said + uses},
                             {"role": "user", "content": answers}]
        return client.messages.create(**state, stream=True)

    return follow_up


def stream_anthropic(stream: ReplyStreamLike, message_stream: object, *,
                     tools: Sequence[Tool[..., Any]] | None = None, client: object = None,
                     request: Mapping[str, object] | None = None,
                     on_tool: Callable[[ToolResult], object] | None = None,
                     max_tool_rounds: int = MAX_TOOL_ROUNDS, call: object = None) -> str:
    """Stream an Anthropic reply into `stream`; return the text written.

    `message_stream` is the ``MessageStream`` entered from ``client.messages.stream(...)``, the
    manager itself (entered and exited here), or what ``client.messages.create(...,
    stream=True)`` returned. On abort the HTTP response is shut down at once from the aborting
    thread; the reply stream is always ended. With `tools`, `client` and `request` (the
    keyword arguments of the original call) the tool loop runs as in `stream_openai` (tools
    get `call`), with follow-ups sent through ``client.messages.create(..., stream=True)``.

    Blocks the calling thread until the reply is complete or aborted.

    Raises:
        ProviderError: the provider failed (its exception is the ``__cause__``).
    """
    manager: Any = None
    if hasattr(message_stream, "__enter__") and not hasattr(message_stream, "__iter__"):
        manager = message_stream
        message_stream = request_stream("anthropic", stream, manager.__enter__)
        if message_stream is None:
            return ""
    follow_up = None
    if tools and client is not None and request is not None:
        follow_up = _follow_up(client, request)
    try:
        return tool_loop("anthropic", stream, message_stream, _consume, follow_up, tools=tools,
                         on_tool=on_tool, max_tool_rounds=max_tool_rounds, call=call)
    finally:
        if manager is not None:
            manager.__exit__(None, None, None)


def anthropic_reply(stream: ReplyStreamLike, client: object, *,
                    tools: Sequence[Tool[..., Any]] | None = None,
                    on_tool: Callable[[ToolResult], object] | None = None,
                    max_tool_rounds: int = MAX_TOOL_ROUNDS, call: object = None,
                    **request: object) -> str:
    """Make a streaming ``messages.create`` request and stream it, tools included.

    `request` holds the ``create`` arguments (``model``, ``max_tokens``, ``messages``,
    ``system``, ...); the tools are added in Anthropic's shape. Blocks; any thread.
    """
    if tools:
        request.setdefault("tools", [t.to_anthropic() for t in tools])
    created = request_stream("anthropic", stream,
                             lambda: client.messages.create(**request, stream=True))  # type: ignore[attr-defined]
    if created is None:
        return ""
    return stream_anthropic(stream, created, tools=tools, client=client, request=request,
                            on_tool=on_tool, max_tool_rounds=max_tool_rounds, call=call)
