"""Outbound calls (`call.dial`, `call.bridge`, docs/protocol.md §3.9, §9.6): dialing, then
answered or not; a bridge between two agents."""

from __future__ import annotations

import logging

from voicesync.sim._conn import SimConnection
from voicesync.sim._platform import AgentReg, Platform
from voicesync.sim._util import JsonDict, epoch, new_id, phone_call_id, slugify, text_field

logger = logging.getLogger(__name__)


def _placing(platform: Platform, conn: SimConnection, frame: JsonDict,
             key: str) -> tuple[AgentReg, str, JsonDict] | None:
    """The connection's own agent placing a call, where it calls (`frame[key]`), metadata."""
    raw = text_field(frame, "agent_id")
    agent = platform.agents.get(slugify(raw)) if raw else None
    where = text_field(frame, key)
    if agent is None or agent.conn is not conn or not where:
        logger.info("%s for an unregistered agent or without `%s`; ignored",
                    frame.get("event"), key)
        return None
    metadata = frame.get("metadata")
    return agent, where, metadata if isinstance(metadata, dict) else {}


def _unanswered(conn: SimConnection, agent: AgentReg, call_id: str, reason: str, *,
                from_: str, to: str, metadata: JsonDict) -> None:
    """`call.ended` for an outbound call that never started (§3.9)."""
    now = epoch()
    conn.send({"event": "call.ended", "agent_id": agent.slug, "call_id": call_id,
               "session_id": call_id, "reason": reason, "direction": "outbound",
               "from": from_, "to": to, "metadata": metadata, "duration_seconds": 0.0,
               "started_at": now, "ended_at": now, "messages": []})


def call_dial(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    placing = _placing(platform, conn, frame, "to")
    if placing is None:
        return
    agent, to, metadata = placing
    phones = [ref for ref, ch in agent.channels.items() if ch.get("type", "phone") == "phone"
              and ref.startswith(("+", "sip:"))]
    from_ = text_field(frame, "from") or (phones[0] if phones else "")
    greeting = text_field(frame, "greeting")
    call_id = phone_call_id()
    slug = agent.slug
    conn.send({"event": "call.dialing", "agent_id": slug, "call_id": call_id,
               "session_id": call_id, "to": to, "from": from_})
    settings = platform.settings
    outcome = settings.dial_script.get(to, settings.dial_outcome)

    def pick_up() -> None:
        with platform.lock:
            if conn.closed.is_set() or platform.agents.get(slug) is not agent:
                return
            if outcome == "answered":
                call = platform.new_call(agent, from_=from_, to=to, direction="outbound",
                                         metadata=metadata, greeting=greeting, call_id=call_id)
                call.begin()
                return
            _unanswered(conn, agent, call_id, outcome, from_=from_, to=to, metadata=metadata)

    platform.clock.after_sim(settings.dial_delay, pick_up)


def call_bridge(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    """`call.bridge`: a voice call between two registered agents (§3.9).

    Simulator choices where the platform is UNKNOWN: the two sides are two calls (ids
    ``br_…``) with transport ``bridge``, the caller's outbound (`to` the target's slug),
    the target's inbound (`from` the caller's slug); what one side says is played to the
    other as a caller turn when the message ends (`CallCore.peer`); either side ending
    ends the other (``hangup``); a target that is not registered ends the caller's call at
    once with reason ``offline`` and no `call.started`. `detect_turn_end` and `media` are
    recorded, not simulated: both sides always get full caller turns.
    """
    placing = _placing(platform, conn, frame, "target")
    if placing is None:
        return
    agent, wanted, metadata = placing
    target = platform.agents.get(slugify(wanted))
    call_id = new_id("br_", 16)
    if target is None or target.conn.closed.is_set():
        _unanswered(conn, agent, call_id, "offline", from_=agent.slug, to=wanted,
                    metadata=metadata)
        return
    caller = platform.new_call(agent, from_=agent.slug, to=target.slug, direction="outbound",
                               transport="bridge", metadata=metadata, call_id=call_id,
                               greeting=text_field(frame, "greeting"))
    config = frame.get("config")
    if isinstance(config, dict):
        caller.session_config.update(config)
    callee = platform.new_call(target, from_=agent.slug, to=target.slug, transport="bridge",
                               metadata=metadata, call_id=new_id("br_", 16))
    caller.peer, callee.peer = callee, caller
    caller.begin()
    callee.begin()
