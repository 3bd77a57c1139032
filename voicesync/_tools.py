"""Answering a server-side model's tool calls on a handler thread (docs/protocol.md §5.7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voicesync import tools
from voicesync.skills import skill_tools
from voicesync.tools import Tool

if TYPE_CHECKING:
    from voicesync.agent import Agent
    from voicesync.call import Call
    from voicesync.events import ToolCall


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
                             on_error=call._uplink.report)
    call.tool_result(event.msg_id, [r.to_wire() for r in results])
