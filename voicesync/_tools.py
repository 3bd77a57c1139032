"""Answering a server-side model's tool calls on a handler thread (docs/protocol.md §5.7)."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

from voicesync import tools
from voicesync.skills import skill_tools
from voicesync.tools import Tool

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.events import ToolCall

_RECENT_ROUNDS = 4096  # chat rounds remembered for dedupe (the server may re-send a round)


def tool_table(declared: list[Any]) -> dict[str, Tool[..., Any]]:
    """Runnable tools by name (plain dict tool definitions are declarations only)."""
    return {tool.name: tool for tool in declared if isinstance(tool, Tool)}


def agent_tools(agent: Agent) -> dict[str, Tool[..., Any]]:
    """Every tool the agent runs: its own, its config's, and its skills' (active or not:
    what the model may call is the platform's decision)."""
    config = agent.config
    return tool_table(agent._declared_tools() + list(config.get("tools") or ())
                      + skill_tools(config.get("skills") or ()))


def run_tool_calls(event: ToolCall, call: Call) -> None:
    """Run the round's tools concurrently and answer with one `llm.tool_result`, in order.

    Each tool that asks for it gets `call`. A tool that raises or times out, or an unknown
    tool, becomes an ``{"error": ...}`` result (the model hears about it and the call goes
    on) and is reported through the client's ``error`` event.
    """
    table = agent_tools(call.agent)
    requests = [(r.id, r.name, r.arguments) for r in event.tool_calls]
    results = tools.run_tool_calls(table.values(), requests, call=call,
                             on_error=call._client._report)
    call.tool_result(event.msg_id, [r.to_wire() for r in results])


class _Recent:
    """A bounded set of recently seen keys; thread-safe (every client's reader uses it)."""

    def __init__(self, size: int) -> None:
        self._keys: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first(self, key: tuple[str, str]) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


_chat_rounds = _Recent(_RECENT_ROUNDS)


def first_chat_round(call_id: str, msg_id: str) -> bool:
    """True the first time a chat session's tool round is seen (reader thread)."""
    return _chat_rounds.first((call_id, msg_id))


def run_chat_tool_calls(event: ToolCall, agent: Agent) -> None:
    """Answer a tool round of a chat session (a ``chat-`` id, no `Call` object) (§5.7).

    Tools that ask for the call get None. Without this answer the platform would wait.
    """
    table = agent_tools(agent)
    requests = [(r.id, r.name, r.arguments) for r in event.tool_calls]
    results = tools.run_tool_calls(table.values(), requests,
                                   on_error=agent._require_client()._report)
    agent._send({"event": "llm.tool_result", "call_id": event.call_id, "msg_id": event.msg_id,
                 "results": [r.to_wire() for r in results]})
