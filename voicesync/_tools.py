"""Running a server-side model's tool calls on a handler thread (PROTOCOL.md §5.7)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicesync.call import Call
    from voicesync.events import ToolCall

logger = logging.getLogger(__name__)


def tool_table(tools: list[Any]) -> dict[str, Any]:
    """Runnable tools by name (plain dict tool definitions are declarations only)."""
    return {tool.name: tool for tool in tools if hasattr(tool, "run") and hasattr(tool, "name")}


def run_tool_calls(event: ToolCall, call: Call) -> None:
    """Run each requested tool and answer with one `llm.tool_result`, in request order.

    A tool that raises, or an unknown tool, becomes an ``{"error": ...}`` result: the
    model hears about it and the call goes on.
    """
    table = tool_table(call.agent._declared_tools() + list(call.agent.config.get("tools") or ()))
    results: list[Mapping[str, Any]] = []
    for request in event.tool_calls:
        tool = table.get(request.name)
        if tool is None:
            result: Any = {"error": f"Unknown tool: {request.name}"}
        else:
            try:
                result = tool.run(request.arguments)
            except Exception as exc:
                logger.warning("tool %s failed on call %s: %r", request.name, call.id, exc)
                result = {"error": str(exc) or type(exc).__name__}
        results.append({"tool_call_id": request.id, "result": _jsonable(result)})
    call.tool_result(event.msg_id, results)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
