"""Reading client frames: validation, the connection-level commands, and routing to calls.

Anything malformed (bad JSON, non-objects, unknown events, missing fields, unknown call
ids) is logged and ignored; an exception while handling one frame never ends the socket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from voicesync.sim import _history
from voicesync.sim._chat import llm_chat
from voicesync.sim._commands import COMMANDS, RINGING_COMMANDS
from voicesync.sim._conn import SimConnection
from voicesync.sim._dialing import call_bridge, call_dial
from voicesync.sim._lines import line_create, line_destroy
from voicesync.sim._platform import AgentReg, Platform
from voicesync.sim._util import JsonDict, epoch_ms, slugify, text_field

logger = logging.getLogger(__name__)

Handler = Callable[[Platform, SimConnection, JsonDict], None]


def handle_text(platform: Platform, conn: SimConnection, text: str | bytes) -> None:
    """Record, decode and apply one inbound frame."""
    if isinstance(text, bytes):
        platform.log.add("in", conn.id, None, repr(text[:200]))
        logger.warning("connection %d sent a binary frame; ignored", conn.id)
        return
    try:
        frame = json.loads(text)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        platform.log.add("in", conn.id, None, text)
        logger.warning("connection %d sent a frame that is not a JSON object: %.200r",
                       conn.id, text)
        return
    platform.log.add("in", conn.id, frame)
    event = frame.get("event")
    if not isinstance(event, str):
        logger.warning("connection %d sent a frame without an event: %.200r", conn.id, text)
        return
    if event == "ping":
        # Answered without the shared lock, so a busy simulator still looks alive.
        conn.send({"event": "pong", "timestamp": epoch_ms()})
        return
    try:
        with platform.lock:
            _dispatch(platform, conn, event, frame)
    except Exception:
        logger.exception("simulator failed handling %r from connection %d", event, conn.id)


def _dispatch(platform: Platform, conn: SimConnection, event: str, frame: JsonDict) -> None:
    if event == "connect":
        _connect(platform, conn, frame)
    elif not conn.authenticated:
        logger.warning("connection %d sent %r before a successful connect; ignored",
                       conn.id, event)
    elif event in CONNECTION_COMMANDS:
        CONNECTION_COMMANDS[event](platform, conn, frame)
    elif event in COMMANDS or event in RINGING_COMMANDS or event in _history.REQUESTS:
        _call_command(platform, conn, event, frame)
    elif event != "pong":
        logger.info("connection %d sent unknown event %r; ignored", conn.id, event)


def _connect(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    settings = platform.settings
    if settings.handshake == "silent":
        return
    key = frame.get("api_key")
    if (settings.handshake == "ok" and isinstance(key, str) and key
            and (settings.api_key is None or key == settings.api_key)):
        conn.authenticated = True
        conn.send({"event": "connected", "org_id": settings.org_id})
        return
    conn.send({"event": "error", "code": "INVALID_KEY", "error": "Invalid API key"})
    conn.drop(1008, "Invalid API key")


def _error(conn: SimConnection, code: str, message: str, **fields: object) -> None:
    conn.send({"event": "error", "code": code, "error": message, **fields})


def _own_agent(platform: Platform, conn: SimConnection, frame: JsonDict) -> AgentReg | None:
    raw = text_field(frame, "agent_id")
    agent = platform.agents.get(slugify(raw)) if raw else None
    if agent is None or agent.conn is not conn:
        logger.info("connection %d addressed agent %r it has not registered; ignored",
                    conn.id, raw)
        return None
    return agent


def _config_of(frame: JsonDict) -> JsonDict:
    return {k: v for k, v in frame.items() if k not in ("event", "agent_id")}


def agent_create(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    raw = text_field(frame, "agent_id")
    if raw is None:
        logger.warning("agent.create without agent_id; ignored")
        return
    slug = slugify(raw)
    if not slug:
        _error(conn, "REGISTRATION_ERROR", f"Agent id {raw!r} has no usable characters.",
               agent_id=raw)
        return
    settings = platform.settings
    holder = platform.agents.get(slug)
    if holder is not None and holder.conn is not conn and not holder.conn.closed.is_set():
        message = f"Agent '{slug}' is already connected."
        if settings.conflict == "fatal":
            _error(conn, "AGENT_CONFLICT_FATAL", message, agent_id=slug, holder_alive=True)
            return
        if settings.conflict == "conflict":
            extra: JsonDict = {"holder_alive": True}
            if settings.conflict_retry_after_s is not None:
                extra["retry_after_s"] = settings.conflict_retry_after_s
            _error(conn, "AGENT_CONFLICT", message, agent_id=slug, **extra)
            return
        holder.conn.send({"event": "agent.displaced", "agent_id": slug,
                          "reason": "Displaced by new connection"})
        holder.conn.drop(4001, "Displaced by new connection")
        platform.drop_agent(slug)
        holder = None
    limit = settings.capacity
    if holder is None and limit is not None and len(platform.agents) >= limit:
        used = len(platform.agents)
        _error(conn, "SERVER_AT_CAPACITY",
               f"SERVER_AT_CAPACITY: Maximum clients ({limit}) reached ({used}/{limit} slots "
               "used). The server cannot register another agent until a slot is freed.",
               agent_id=slug, used=used, limit=limit)
        return
    if holder is not None:
        holder.raw_id, holder.config = raw, _config_of(frame)
    else:
        platform.agents[slug] = AgentReg(slug, raw, conn, _config_of(frame))
    conn.send({"event": "agent.created", "agent_id": slug})
    platform.changed.notify_all()


def agent_configure(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    agent = _own_agent(platform, conn, frame)
    if agent is not None:
        agent.config.update(_config_of(frame))
        conn.send({"event": "agent.configured", "agent_id": agent.slug})


def agent_resume(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    agent = _own_agent(platform, conn, frame)
    if agent is not None:
        conn.send({"event": "agent.resumed", "agent_id": agent.slug})


def channel_add(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    agent = _own_agent(platform, conn, frame)
    if agent is None:
        return
    kind = text_field(frame, "type") or "phone"
    ref = text_field(frame, "ref")
    if kind == "phone":
        if not ref:
            logger.warning("channel.add phone without ref; ignored")
            return
        owner = platform.phones.get(ref)
        if (owner is not None and owner != agent.slug) or ref in platform.lines:
            _error(conn, "PHONE_IN_USE", f"Phone number {ref} is already in use by another "
                   "agent.", phone=ref, agent_id=agent.slug)
            return
        platform.phones[ref] = agent.slug
    agent.channels[ref or kind] = {k: v for k, v in _config_of(frame).items()}
    ack: JsonDict = {"event": "channel.added", "agent_id": agent.slug, "type": kind}
    if ref is not None:
        ack["ref"] = ref
    conn.send(ack)


def channel_remove(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    agent = _own_agent(platform, conn, frame)
    ref = text_field(frame, "ref")
    if agent is None or ref is None:
        return
    agent.channels.pop(ref, None)
    if platform.phones.get(ref) == agent.slug:
        del platform.phones[ref]
    conn.send({"event": "channel.removed", "agent_id": agent.slug, "ref": ref})


def channel_configure(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    agent = _own_agent(platform, conn, frame)
    ref = text_field(frame, "ref")
    if agent is None or ref is None:
        return
    agent.channels.setdefault(ref, {}).update(_config_of(frame))
    conn.send({"event": "channel.configured", "agent_id": agent.slug, "ref": ref})


def dev_config(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
    callers = frame.get("callers")
    platform.dev_callers[conn.id] = list(callers) if isinstance(callers, list) else []


def _session_ack(ack: str) -> Handler:
    def handle(platform: Platform, conn: SimConnection, frame: JsonDict) -> None:
        agent = _own_agent(platform, conn, frame)
        if agent is not None:
            fields: JsonDict = {k: frame[k] for k in ("session_id", "contact") if k in frame}
            conn.send({"event": ack, "agent_id": agent.slug, **fields})

    return handle


def _call_command(platform: Platform, conn: SimConnection, event: str,
                  frame: JsonDict) -> None:
    key = "session_id" if event == "session.configure" else "call_id"
    call_id = text_field(frame, key) or text_field(frame, "call_id")
    call = platform.calls.get(call_id) if call_id else None
    if call is None or call.conn is not conn:
        if event in _history.REQUESTS:
            reply: JsonDict = {"event": _history.ack_event(event), "call_id": call_id,
                               "error": f"unknown call {call_id!r}"}
            if "request_id" in frame:
                reply["request_id"] = frame["request_id"]
            conn.send(reply)
        else:
            logger.info("%s for unknown call %r from connection %d; ignored",
                        event, call_id, conn.id)
        return
    if call.status == "ringing":
        handler = RINGING_COMMANDS.get(event)
        if handler is not None:
            handler(call, frame)
        return
    if call.status != "active":
        return
    if event in _history.REQUESTS:
        ack, fields = _history.apply(call.history, call.vars, event, frame)
        if "request_id" in frame:
            fields["request_id"] = frame["request_id"]
        call.emit(ack, **fields)
    elif event in COMMANDS:
        COMMANDS[event](call, frame)


CONNECTION_COMMANDS: dict[str, Handler] = {
    "agent.create": agent_create,
    "agent.configure": agent_configure,
    "agent.resume": agent_resume,
    "channel.add": channel_add,
    "channel.remove": channel_remove,
    "channel.configure": channel_configure,
    "dev.config": dev_config,
    "call.dial": call_dial,
    "call.bridge": call_bridge,
    "line.create": line_create,
    "line.destroy": line_destroy,
    "llm.chat": llm_chat,
    "session.pause": _session_ack("session.paused"),
    "session.resume": _session_ack("session.resumed"),
    "session.send": _session_ack("session.sent"),
}
