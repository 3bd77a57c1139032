"""The stand-in model's scripts and wire formats: OpenAI Chat/Responses and Anthropic SSE frames."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias


@dataclass(frozen=True)
class ToolCall:
    """A tool call the stand-in model makes instead of (or after) text."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str = ""

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One scripted reply.

    Args:
        text: what the model "says", streamed a word at a time.
        tool_calls: tool calls made after the text.
        stall_before: pause before sending token number `stall_before` (0-based).
        stall: how long that pause lasts, in seconds.
        error_after: fail after this many tokens.
        error: how it fails: a provider error event, or a dropped connection.
        status: an HTTP status other than 200 answers with a provider-shaped error body.
        tokens_per_second: overrides the server's token rate for this reply.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stall_before: int | None = None
    stall: float = 0.0
    error_after: int | None = None
    error: Literal["event", "disconnect"] = "event"
    status: int = 200
    tokens_per_second: float | None = None


Api: TypeAlias = Literal["chat", "responses", "messages"]


def tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def error_body(api: Api, message: str) -> dict[str, Any]:
    if api == "messages":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    if api == "responses":
        return {"type": "error", "code": "server_error", "message": message, "param": None}
    return {"error": {"type": "server_error", "message": message, "code": "server_error"}}


# A stream format yields (payload, SSE event name, counts-as-a-token) for a reply.
Frames: TypeAlias = Iterator[tuple[dict[str, Any], "str | None", bool]]


class _Format:
    def stream(self, reply: Reply, ids: Iterator[int]) -> Frames:
        raise NotImplementedError

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        raise NotImplementedError


class _Chat(_Format):
    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                "model": "stand-in", "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish}]}

    def stream(self, reply: Reply, ids: Iterator[int]) -> Frames:
        yield self._chunk({"role": "assistant", "content": ""}), None, False
        for token in tokens(reply.text):
            yield self._chunk({"content": token}), None, True
        for index, call in enumerate(reply.tool_calls):
            head = {"index": index, "id": call.id or f"call_{next(ids)}", "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            yield self._chunk({"tool_calls": [head]}), None, False
            args = {"index": index, "function": {"arguments": call.arguments_json()}}
            yield self._chunk({"tool_calls": [args]}), None, False
        yield self._chunk({}, "tool_calls" if reply.tool_calls else "stop"), None, False

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id or f"call_{next(ids)}", "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments_json()}}
                for c in reply.tool_calls]
        return {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0,
                "model": "stand-in", "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


class _Responses(_Format):
    def _items(self, reply: Reply, ids: Iterator[int]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if reply.text:
            items.append({"id": f"msg_{next(ids)}", "type": "message", "role": "assistant",
                          "status": "completed", "content": [
                              {"type": "output_text", "text": reply.text, "annotations": []}]})
        for c in reply.tool_calls:
            n = next(ids)
            items.append({"id": f"fc_{n}", "type": "function_call", "status": "completed",
                          "call_id": c.id or f"call_{n}", "name": c.name,
                          "arguments": c.arguments_json()})
        return items

    def _response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "resp_standin", "object": "response", "created_at": 0, "model": "stand-in",
                "status": status, "output": output, "parallel_tool_calls": True, "tools": [],
                "tool_choice": "auto"}

    def stream(self, reply: Reply, ids: Iterator[int]) -> Frames:
        seq = itertools.count()

        def ev(kind: str, **data: Any) -> tuple[dict[str, Any], str, bool]:
            return {"type": kind, "sequence_number": next(seq), **data}, kind, False

        yield ev("response.created", response=self._response("in_progress", []))
        items = self._items(reply, ids)
        for index, item in enumerate(items):
            at = {"output_index": index, "item_id": item["id"]}
            if item["type"] == "message":
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "status": "in_progress", "content": []})
                part = {"type": "output_text", "text": "", "annotations": []}
                yield ev("response.content_part.added", **at, content_index=0, part=part)
                for token in tokens(reply.text):
                    payload, kind, _ = ev("response.output_text.delta", **at, content_index=0,
                                          delta=token, logprobs=[])
                    yield payload, kind, True
                yield ev("response.output_text.done", **at, content_index=0, text=reply.text,
                         logprobs=[])
                yield ev("response.content_part.done", **at, content_index=0,
                         part=item["content"][0])
            else:
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "arguments": "", "status": "in_progress"})
                yield ev("response.function_call_arguments.delta", **at, delta=item["arguments"])
                yield ev("response.function_call_arguments.done", **at,
                         arguments=item["arguments"], name=item["name"])
            yield ev("response.output_item.done", output_index=index, item=item)
        yield ev("response.completed", response=self._response("completed", items))

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        return self._response("completed", self._items(reply, ids))


class _Messages(_Format):
    def _message(self, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
        return {"id": "msg_standin", "type": "message", "role": "assistant", "model": "stand-in",
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0}}

    def _stop(self, reply: Reply) -> str:
        return "tool_use" if reply.tool_calls else "end_turn"

    def stream(self, reply: Reply, ids: Iterator[int]) -> Frames:
        def ev(kind: str, **data: Any) -> tuple[dict[str, Any], str, bool]:
            return {"type": kind, **data}, kind, False

        yield ev("message_start", message=self._message([], None))
        index = 0
        if reply.text:
            yield ev("content_block_start", index=0, content_block={"type": "text", "text": ""})
            for token in tokens(reply.text):
                yield {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": token}}, "content_block_delta", True
            yield ev("content_block_stop", index=0)
            index = 1
        for offset, call in enumerate(reply.tool_calls, start=index):
            block = {"type": "tool_use", "id": call.id or f"toolu_{next(ids)}", "name": call.name,
                     "input": {}}
            yield ev("content_block_start", index=offset, content_block=block)
            yield ev("content_block_delta", index=offset,
                     delta={"type": "input_json_delta", "partial_json": call.arguments_json()})
            yield ev("content_block_stop", index=offset)
        yield ev("message_delta", delta={"stop_reason": self._stop(reply), "stop_sequence": None},
                 usage={"output_tokens": 0})
        yield ev("message_stop")

    def complete(self, reply: Reply, ids: Iterator[int]) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [{"type": "tool_use", "id": c.id or f"toolu_{next(ids)}", "name": c.name,
                     "input": json.loads(c.arguments_json() or "{}")} for c in reply.tool_calls]
        return self._message(content, self._stop(reply))


FORMATS: dict[Api, _Format] = {"chat": _Chat(), "responses": _Responses(), "messages": _Messages()}
