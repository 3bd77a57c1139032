"""Outbound calls (`call.dial`, docs/protocol.md §3.9, §9.6): dialing, then answered or not."""

from __future__ import annotations

import logging

from voicesync.sim._conn import SimConnection
from voicesync.sim._platform import Platform
from voicesync.sim._util import JsonDict, epoch, phone_call_id, slugify, text_field

logger = logging.getLogger(__name__)


def call_dial(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    raw = text_field(frame, "agent_id")
    agent = platform.agents.get(slugify(raw)) if raw else None
    to = text_field(frame, "to")
    if agent is None or agent.conn is not conn or not to:
        logger.info("call.dial for an unregistered agent or without `to`; ignored")
        return
    phones = [ref for ref, ch in agent.channels.items() if ch.get("type", "phone") == "phone"
              and ref.startswith(("+", "sip:"))]
    from_ = text_field(frame, "from") or (phones[0] if phones else "")
    metadata = frame.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
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
            now = epoch()
            conn.send({"event": "call.ended", "agent_id": slug, "call_id": call_id,
                       "session_id": call_id, "reason": outcome, "direction": "outbound",
                       "from": from_, "to": to, "metadata": metadata,
                       "duration_seconds": 0.0, "started_at": now, "ended_at": now,
                       "messages": []})

    platform.clock.after_sim(settings.dial_delay, pick_up)
