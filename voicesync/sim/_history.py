"""The per-call LLM history the simulator keeps, and its request/ack frames (§2.8, §7.3)."""

from __future__ import annotations

from typing import Any

from voicesync.sim._util import JsonDict

REQUESTS = frozenset({
    "history.get", "history.add", "history.set", "history.clear",
    "history.set_vars", "history.add_context", "history.set_instructions",
})


def _messages(frame: JsonDict) -> list[JsonDict] | None:
    value = frame.get("messages")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        return None
    return [dict(m) for m in value]


def _leading_system(history: list[JsonDict]) -> int:
    count = 0
    while count < len(history) and history[count].get("role") == "system":
        count += 1
    return count


def apply(history: list[JsonDict], variables: dict[str, Any], event: str,
          frame: JsonDict) -> tuple[str, JsonDict]:
    """Apply one history request in place; returns (ack event, ack fields without ids)."""
    if event == "history.get":
        return "history.data", {"messages": [dict(m) for m in history]}
    error: str | None = None
    if event in ("history.add", "history.set"):
        messages = _messages(frame)
        if messages is None:
            error = "messages must be a list of objects"
        elif event == "history.add":
            history.extend(messages)
        else:
            history[:] = messages
    elif event == "history.clear":
        history[:] = [m for m in history if m.get("role") == "system"]
    elif event == "history.set_vars":
        values = frame.get("vars")
        if isinstance(values, dict):
            variables.update(values)
        else:
            error = "vars must be an object"
    elif event == "history.add_context":
        text = frame.get("text")
        if isinstance(text, str):
            history.insert(_leading_system(history), {"role": "system", "content": text})
        else:
            error = "text must be a string"
    elif event == "history.set_instructions":
        prompt = frame.get("prompt")
        if not isinstance(prompt, str):
            error = "prompt must be a string"
        elif history and history[0].get("role") == "system":
            history[0] = {"role": "system", "content": prompt}
        else:
            history.insert(0, {"role": "system", "content": prompt})
    if error is not None:
        return "history.updated", {"error": error}
    return "history.updated", {"count": len(history)}


def ack_event(event: str) -> str:
    return "history.data" if event == "history.get" else "history.updated"
