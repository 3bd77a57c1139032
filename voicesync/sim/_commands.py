"""What the simulator does with each call command a client sends (docs/protocol.md §4.2, §9.4-§9.6).

All functions run with the simulator lock held, on the sending connection's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voicesync.sim._call import CallCore
from voicesync.sim._lines import call_route, set_context
from voicesync.sim._speech import BotMessage
from voicesync.sim._util import JsonDict, text_field

logger = logging.getLogger(__name__)

Handler = Callable[[CallCore, JsonDict], None]


def _accepts(call: CallCore, message_id: str, in_reply_to: str) -> bool:
    """§9.4: a reply must quote the current user message, or "" (a standalone message)."""
    if in_reply_to in ("", call.user_message_id):
        return True
    call.emit("reply.rejected", message_id=message_id, in_reply_to=in_reply_to,
              expected_reply_to=call.user_message_id, reason="message_obsolete")
    call.speaker.dead.add(message_id)
    return False


def _known(call: CallCore, message_id: str) -> bool:
    speaker = call.speaker
    return (message_id in speaker.dead or message_id in speaker.streams
            or any(m.message_id == message_id for m in speaker.queue)
            or (speaker.playing is not None and speaker.playing.message_id == message_id))


def bot_reply(call: CallCore, frame: JsonDict) -> None:
    message_id, text = text_field(frame, "message_id"), text_field(frame, "text")
    if not message_id or text is None or _known(call, message_id):
        logger.warning("ignoring bot.reply without id/text or with a reused id: %.200r", frame)
        return
    in_reply_to = text_field(frame, "in_reply_to") or ""
    if _accepts(call, message_id, in_reply_to):
        call.speaker.add(BotMessage(message_id, "reply", in_reply_to, text,
                                    add_to_history=frame.get("add_to_history") is True))


def bot_reply_stream(call: CallCore, frame: JsonDict) -> None:
    message_id, action = text_field(frame, "message_id"), frame.get("action")
    if not message_id:
        logger.warning("ignoring bot.reply.stream without message_id")
        return
    if action == "start":
        if _known(call, message_id):
            return
        in_reply_to = text_field(frame, "in_reply_to") or ""
        if _accepts(call, message_id, in_reply_to):
            call.speaker.add(BotMessage(message_id, "stream", in_reply_to, closed=False))
    elif action == "chunk":
        token = text_field(frame, "token")
        if token is not None:
            call.speaker.chunk(message_id, token)
    elif action == "end":
        call.speaker.end(message_id)
    else:
        logger.warning("ignoring bot.reply.stream with action %r", action)


def _confirm(call: CallCore, msg: BotMessage | None) -> None:
    if msg is not None:
        call.emit("message.confirmed", message_id=msg.message_id, text=msg.spoken_text)


def bot_cancel(call: CallCore, frame: JsonDict) -> None:
    _confirm(call, call.speaker.cancel(text_field(frame, "message_id")))
    call.speaker.resume_queue()


def bot_clear(call: CallCore, frame: JsonDict) -> None:
    stopped = call.speaker.interrupt("cancelled")
    call.speaker.drop_queue("cancelled")
    _confirm(call, stopped)


def call_hangup(call: CallCore, frame: JsonDict) -> None:
    call.end(text_field(frame, "reason") or "hangup")


def call_forward(call: CallCore, frame: JsonDict) -> None:
    to = text_field(frame, "to")
    if to:
        call.emit("call.forwarded", to=to)
        call.end("forwarded")


def call_dtmf(call: CallCore, frame: JsonDict) -> None:
    digits = text_field(frame, "digits")
    if digits:
        call.emit("call.dtmf_sent", digits=digits)


def _set_flag(name: str, value: bool, ack: str) -> Handler:
    def handle(call: CallCore, frame: JsonDict) -> None:
        setattr(call, name, value)
        if ack == "call.unmuted":
            text = " ".join(call.muted_buffer)
            call.muted_buffer.clear()
            call.emit(ack, muted_transcript=text or None)
        else:
            call.emit(ack)

    return handle


def _skill(loaded: bool) -> Handler:
    def handle(call: CallCore, frame: JsonDict) -> None:
        skill = text_field(frame, "skill")
        if skill:
            (call.skills.add if loaded else call.skills.discard)(skill)
            call.emit("skill.loaded" if loaded else "skill.unloaded", skill=skill, by="manual")

    return handle


def session_configure(call: CallCore, frame: JsonDict) -> None:
    patch = {k: v for k, v in frame.items() if k not in ("event", "session_id", "agent_id")}
    call.session_config.update(patch)
    call.emit("session.configured")
    language = patch.get("language")
    if isinstance(language, str) and language != call.language:
        call.language = language
        call.emit("call.updated", language=language)


def llm_ready(call: CallCore, frame: JsonDict) -> None:
    if call.server_turn is not None:
        call.server_turn.on_ready(frame)


def llm_tool_result(call: CallCore, frame: JsonDict) -> None:
    if call.server_turn is None or not call.server_turn.on_tool_result(frame):
        logger.info("ignoring llm.tool_result for an unknown round on %s", call.call_id)


def call_accept(call: CallCore, frame: JsonDict) -> None:
    call.accept()


def call_reject(call: CallCore, frame: JsonDict) -> None:
    call.reject(text_field(frame, "reason") or "busy")


COMMANDS: dict[str, Handler] = {
    "bot.reply": bot_reply,
    "bot.reply.stream": bot_reply_stream,
    "bot.cancel": bot_cancel,
    "bot.clear": bot_clear,
    "call.hangup": call_hangup,
    "call.forward": call_forward,
    "call.dtmf": call_dtmf,
    "call.hold": _set_flag("held", True, "call.held"),
    "call.unhold": _set_flag("held", False, "call.unheld"),
    "call.mute": _set_flag("muted", True, "call.muted"),
    "call.unmute": _set_flag("muted", False, "call.unmuted"),
    "skill.load": _skill(True),
    "skill.unload": _skill(False),
    "session.configure": session_configure,
    "llm.ready": llm_ready,
    "llm.tool_result": llm_tool_result,
    "call.route": call_route,
    "set_context": set_context,
}

RINGING_COMMANDS: dict[str, Handler] = {"call.accept": call_accept, "call.reject": call_reject}
