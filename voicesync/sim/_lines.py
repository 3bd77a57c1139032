"""Phone lines on the simulator (docs/protocol.md §2.10): claiming a number, calls to it
and their extension window, keyed context, and routing a live call to an agent.

A line is kept as an `AgentReg` whose slug is ``line:<number>`` (the `agent_id` the
platform puts on a line's call events), so its calls are ordinary `CallCore`s. A route
hands the call over in place: ``call.routed`` and ``call.ended {reason: "routed"}`` to the
line, then ``call.started`` with the same call id to the agent, with ``owner: "agent"``,
``routed_from``, ``extension`` and (unless ``history: false``) ``line_transcript``; the
line's keyed context goes along. Simulator choices where the platform is UNKNOWN: an
agent that is not registered fails with reason ``offline``; a call that is not a line's
fails with ``swap_failed``; the transcript entries carry no ``at``; ``set_context`` is
not acknowledged; the extension window is not waited out (``call.started`` comes at
once). All functions run with the simulator lock held.
"""

from __future__ import annotations

import logging

from voicesync.sim._call import CallCore
from voicesync.sim._conn import SimConnection
from voicesync.sim._platform import AgentReg, Platform
from voicesync.sim._util import JsonDict, slugify, text_field

logger = logging.getLogger(__name__)

PREFIX = "line:"
DEFAULT_EXTENSION_WINDOW_MS = 2500


def reach_line(call: CallCore, extension: str | None) -> None:
    """A caller reaches a line, their phone sending `extension` after the number.

    Within the line's extension window the digits become the call's ``extension`` (a
    final ``#`` closes the window and is not part of it) and are never key presses; a
    line whose window is 0 starts at once, and the digits arrive as key presses after
    ``call.started``.
    """
    window = call.agent_config.get("extension_window_ms", DEFAULT_EXTENSION_WINDOW_MS)
    digits = extension or ""
    in_window = window != 0
    call.extension = (digits.removesuffix("#") or None) if in_window else None
    call.started_extra = {"extension": call.extension, "owner": "line"}
    call.begin()
    if digits and not in_window:
        call.press(digits)


def line_create(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    number = text_field(frame, "number")
    if not number:
        return
    holder = platform.lines.get(number)
    held = holder is not None and holder.conn is not conn and not holder.conn.closed.is_set()
    if held or number in platform.phones:
        conn.send({"event": "line.error", "number": number, "code": "LINE_CONFLICT",
                   "error": f"Line {number} is already registered."})
        return
    config = frame.get("config")
    platform.lines[number] = AgentReg(PREFIX + number, PREFIX + number, conn,
                                      dict(config) if isinstance(config, dict) else {})
    conn.send({"event": "line.created", "number": number})
    platform.changed.notify_all()


def line_destroy(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    number = text_field(frame, "number")
    line = platform.lines.get(number) if number else None
    if number and line is not None and line.conn is conn:
        del platform.lines[number]
        conn.send({"event": "line.destroyed", "number": number})


def set_context(call: CallCore, frame: JsonDict) -> None:
    key = text_field(frame, "key")
    if key:
        call.context[key] = frame.get("value")


def call_route(call: CallCore, frame: JsonDict) -> None:
    wanted = text_field(frame, "agent") or ""
    platform = call.platform
    target = platform.agents.get(slugify(wanted))
    if not call.agent_slug.startswith(PREFIX) or target is None or target.conn.closed.is_set():
        reason = "swap_failed" if not call.agent_slug.startswith(PREFIX) else "offline"
        call.emit("call.route_failed", agent=wanted, reason=reason)
        return
    history = frame.get("history") is not False
    heard = [{"who": "caller" if who == "user" else "line", "text": text}
             for who, text, _ in call.transcript if text]
    call.emit("call.routed", agent=target.slug)
    call.end("routed")
    greeting = text_field(frame, "greeting")
    routed = platform.new_call(target, from_=call.from_, to=call.to, transport=call.transport,
                               metadata=call.metadata, greeting=greeting,
                               call_id=call.call_id)
    routed.context = dict(call.context)
    context = frame.get("context")
    if isinstance(context, dict):
        routed.context.update(context)
    prompt_vars = frame.get("prompt_vars")
    if isinstance(prompt_vars, dict):
        routed.vars.update(prompt_vars)
    for key in ("voice", "stt"):
        if key in frame:
            routed.session_config[key] = frame[key]
    language = text_field(frame, "language")
    if language:
        routed.language = language
    if history:
        routed.history.extend({"role": "user" if h["who"] == "caller" else "assistant",
                               "content": h["text"]} for h in heard)
    routed.started_extra = {"extension": call.extension, "owner": "agent",
                            "routed_from": call.agent_slug,
                            **({"line_transcript": heard} if history else {})}
    routed.begin()
