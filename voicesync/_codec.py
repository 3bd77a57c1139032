"""The wire format: the only module that knows wire keys (docs/protocol.md §1.2, §3, §4, §5)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from voicesync.errors import ConfigurationError, ProtocolError
from voicesync.events import (
    BotFinished,
    BotInterrupted,
    BotSpeaking,
    BotWord,
    ChannelEvent,
    DTMFReceived,
    Event,
    MessageConfirmed,
    ReplyRejected,
    SpeechEvent,
    ToolCall,
    ToolCallRequest,
    Turn,
    TurnSignal,
    UserMessage,
    UserSpeaking,
)

Frame = dict[str, Any]

# --------------------------------------------------------------------------- frames


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _Overflow(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Overflow
    return value


# One encoder for every frame: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# And one decoder: json.loads with hooks builds one per frame, a third of a small frame's
# decode. Shared like json's own default decoder: decode() keeps no state between calls.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Events voicesync itself emits; a frame that names one is refused, so the server
#: cannot run the client's own lifecycle handlers.
CLIENT_EVENTS = frozenset({"disconnected", "reconnecting", "ready"})


def dumps(frame: Mapping[str, Any]) -> str:
    """Serialise one outgoing frame compactly, keys in insertion order.

    A lone surrogate (a server can send ``"\\ud800"``, and an app may echo it) is not
    UTF-8: it is written as the JSON escape it came in as, so the frame stays valid.
    """
    text = _ENCODER.encode(frame)
    if not text.isascii() and _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def loads(text: str) -> Frame:
    """Parse one incoming frame; anything but a JSON object with a string `event` is refused.

    NaN/Infinity, numbers that overflow a float, over-deep nesting (RecursionError),
    over-long integers (ValueError) and frames named like a client event are all
    turned into ProtocolError so the reader thread survives them.
    """
    try:
        frame = _DECODER.decode(text)
    except _Overflow:
        raise ProtocolError("frame has a number too large for a float") from None
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(frame, dict):
        raise ProtocolError(f"frame is a JSON {type(frame).__name__}, not an object")
    name = frame.get("event")
    if not isinstance(name, str):
        raise ProtocolError("frame has no string 'event' field")
    if name in CLIENT_EVENTS:
        raise ProtocolError(f"frame is named like the client event {name!r}")
    return frame


# --------------------------------------------------------------------------- config


def _expand_stt(value: Any) -> Any:
    """`"provider:model:lang"` becomes an object; other strings go verbatim (§3.2)."""
    if not isinstance(value, str) or ":" not in value:
        return value
    parts = value.split(":")
    out: dict[str, str] = {"provider": parts[0]}
    if len(parts) > 1 and parts[1]:
        out["model"] = parts[1]
    if len(parts) > 2 and parts[2]:
        out["language"] = parts[2]
    return out


def _greeting(value: Any) -> Any:
    if isinstance(value, Mapping) and "text" in value:
        return value["text"]
    return value


def _preparing(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = dict(value)
        if "timeoutMs" in out:
            out["timeout_ms"] = out.pop("timeoutMs")
        return out
    return value


def _to_wire_list(items: Iterable[Any]) -> list[Any]:
    return [item.to_wire() if hasattr(item, "to_wire") else item for item in items]


def _same(value: Any) -> Any:
    return value


# (python name, wire key, transform) in the locked wire order of docs/protocol.md §3.1.
_CONFIG_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("voice", "voice", _same),
    ("language", "language", _same),
    ("flash", "flash", _same),
    ("stt", "stt", _expand_stt),
    ("interruption", "interruption", _same),
    ("llm", "llm", _same),
    ("prompt", "prompt", _same),
    ("prompt_vars", "vars", _same),
    ("greeting", "greeting", _greeting),
    ("greeting_in_chat", "greetingInChat", _same),
    ("memory", "memory", _same),
    ("timezone", "timezone", _same),
    ("preparing", "preparing", _preparing),
    ("raw_prompt", "raw_prompt", _same),
    ("tools", "tools", _to_wire_list),
    ("skills", "skills", _to_wire_list),
    ("session_limits", "session_limits", _same),
    ("config", "config", _same),
    ("knowledge_base", "knowledge_base", _same),
    ("mode", "mode", _same),
    ("media", "media", _same),
)
CONFIG_KEYS = frozenset(name for name, _, _ in _CONFIG_FIELDS)


def check_config(config: Mapping[str, Any], *, allowed: Iterable[str] = ()) -> None:
    """Raise ConfigurationError naming any keyword that is not an agent config field."""
    unknown = sorted(set(config) - CONFIG_KEYS - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"unknown agent option(s) {', '.join(unknown)}; valid options are "
            f"{', '.join(sorted(CONFIG_KEYS | set(allowed)))} (pass new platform fields "
            "inside config={...} or with client.send())"
        )


def encode_config(config: Mapping[str, Any]) -> Frame:
    """Encode snake_case config in wire order; unset (None) keys are omitted, never null."""
    out: Frame = {}
    for name, key, transform in _CONFIG_FIELDS:
        value = config.get(name)
        # Function greetings run client-side on call.started (§3.1 row 9).
        if value is None or (name == "greeting" and callable(value)):
            continue
        out[key] = transform(value)
    return out


# --------------------------------------------------------------------------- commands


def command(event: str, /, **fields: Any) -> Frame:
    """Build a command frame; fields that are None are left out."""
    frame: Frame = {"event": event}
    for key, value in fields.items():
        if value is not None:
            frame[key.rstrip("_")] = value
    return frame


def agent_create(agent_id: str, config: Mapping[str, Any], allowed_origins: Any) -> Frame:
    frame: Frame = {"event": "agent.create", "agent_id": agent_id, **encode_config(config)}
    if allowed_origins:
        frame["allowed_origins"] = list(allowed_origins)
    return frame


def agent_configure(agent_id: str, patch: Mapping[str, Any]) -> Frame:
    return {"event": "agent.configure", "agent_id": agent_id, **encode_config(patch)}


def channel_add(
    agent_id: str, kind: str, ref: str | None, config: Mapping[str, Any], *, ringing: bool,
) -> Frame:
    frame = command("channel.add", agent_id=agent_id, type=kind, ref=ref)
    frame.update(encode_config(config))
    if ringing:
        frame["ringing"] = True
    return frame


def whatsapp_channel_add(agent_id: str, ref: str, keys: Mapping[str, str | None],
                         config: Mapping[str, Any]) -> Frame:
    """`channel.add` for WhatsApp (§3.7): Meta's credentials camelCased, unset ones left out."""
    frame = command("channel.add", agent_id=agent_id, type="whatsapp", ref=ref,
                    **{key: value or None for key, value in keys.items()})
    return {**frame, **encode_config(config)}


def session_configure(call_id: str, agent_id: str | None, config: Mapping[str, Any]) -> Frame:
    frame = command("session.configure", agent_id=agent_id, session_id=call_id)
    frame.update(encode_config(config) if agent_id is not None else config)
    return frame


def stream_frame(call_id: str, message_id: str, action: str, **extra: str) -> Frame:
    """One `bot.reply.stream` frame (§4.3): in_reply_to on start only, token on chunk only."""
    return {"event": "bot.reply.stream", "call_id": call_id, "message_id": message_id,
            "action": action, **extra}


def bot_reply(
    call_id: str, message_id: str, text: str, in_reply_to: str, *, add_to_history: bool = False,
) -> Frame:
    frame: Frame = {"event": "bot.reply", "call_id": call_id, "message_id": message_id,
                    "text": text, "in_reply_to": in_reply_to}
    if add_to_history:
        frame["add_to_history"] = True
    return frame


def tool_results(items: Iterable[Mapping[str, Any]]) -> list[Frame]:
    """Normalise tool results to the wire shape; the flags travel only when true."""
    out: list[Frame] = []
    for item in items:
        result: Frame = {"tool_call_id": item["tool_call_id"], "result": item.get("result")}
        if item.get("ephemeral"):
            result["ephemeral"] = True
        if item.get("no_followup"):
            result["no_followup"] = True
        out.append(result)
    return out


# --------------------------------------------------------------------------- ids

_SLUG_DROP = re.compile(r"[^a-z0-9-]")
_SLUG_DASHES = re.compile(r"-{2,}")
_SLUG_SPACE = re.compile(r"[_\s]+")


def slugify(agent_id: str) -> str:
    """The platform's normalised agent id (docs/protocol.md §0)."""
    slug = _SLUG_SPACE.sub("-", agent_id.lower())
    slug = _SLUG_DASHES.sub("-", _SLUG_DROP.sub("", slug))
    return slug.strip("-")


# --------------------------------------------------------------------------- events


def _s(frame: Mapping[str, Any], key: str, default: str = "") -> str:
    value = frame.get(key)
    return value if isinstance(value, str) else default


def _n(frame: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = number_field(frame, key)
    return default if value is None else value


def _i(frame: Mapping[str, Any], key: str) -> int:
    value = int_field(frame, key)
    return 0 if value is None else value


def call_id_of(frame: Mapping[str, Any]) -> str | None:
    value = frame.get("call_id", frame.get("session_id"))
    return value if isinstance(value, str) and value else None


def turn(frame: Mapping[str, Any], message_id: str, text: str, confidence: float,
         language: str | None) -> Turn:
    return Turn(_s(frame, "event"), call_id_of(frame), MappingProxyType(frame),
                _i(frame, "turn_id"), message_id, text, confidence,
                _n(frame, "probability"), _n(frame, "latency_ms"), language)


def _tool_calls(frame: Mapping[str, Any]) -> tuple[ToolCallRequest, ...]:
    out = []
    items = frame.get("tool_calls")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        nested = item.get("function")
        fn: Mapping[str, Any] = nested if isinstance(nested, Mapping) else item
        arguments = fn.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = dumps(arguments)
        out.append(ToolCallRequest(_s(item, "id"), _s(fn, "name"), arguments or "{}"))
    return tuple(out)


def msg_id_of(frame: Mapping[str, Any]) -> str:
    return _s(frame, "msg_id") or _s(frame, "message_id")


_BUILDERS: dict[str, Callable[[str, str | None, Mapping[str, Any]], Event]] = {
    "user.message": lambda n, c, f: UserMessage(
        n, c, f, _s(f, "message_id"), _s(f, "text"), _n(f, "confidence"), _i(f, "turn_id"),
        f.get("language") if isinstance(f.get("language"), str) else None),
    "user.speaking": lambda n, c, f: UserSpeaking(
        n, c, f, _s(f, "text"), _n(f, "confidence"), _i(f, "turn_id")),
    "speech.started": lambda n, c, f: SpeechEvent(n, c, f, _i(f, "turn_id"), 0.0),
    "speech.ended": lambda n, c, f: SpeechEvent(
        n, c, f, _i(f, "turn_id"), _n(f, "duration_ms")),
    "turn.pause": lambda n, c, f: TurnSignal(n, c, f, _i(f, "turn_id"), _n(f, "probability")),
    "turn.resumed": lambda n, c, f: TurnSignal(n, c, f, _i(f, "turn_id"), _n(f, "probability")),
    "turn.continued": lambda n, c, f: TurnSignal(
        n, c, f, _i(f, "turn_id"), _n(f, "probability")),
    "bot.speaking": lambda n, c, f: BotSpeaking(n, c, f, _s(f, "message_id"), _s(f, "text")),
    "bot.word": lambda n, c, f: BotWord(
        n, c, f, _s(f, "message_id"), _s(f, "word"), _i(f, "word_index")),
    "bot.finished": lambda n, c, f: BotFinished(
        n, c, f, _s(f, "message_id"), _n(f, "duration_ms")),
    "bot.interrupted": lambda n, c, f: BotInterrupted(
        n, c, f, _s(f, "message_id"), _s(f, "reason"), _i(f, "words_spoken"),
        _n(f, "played_ms"), _s(f, "last_word")),
    "message.confirmed": lambda n, c, f: MessageConfirmed(
        n, c, f, _s(f, "message_id"), _s(f, "text")),
    "reply.rejected": lambda n, c, f: ReplyRejected(
        n, c, f, _s(f, "message_id"), _s(f, "in_reply_to"), _s(f, "expected_reply_to"),
        _s(f, "reason")),
    "call.dtmf_received": lambda n, c, f: DTMFReceived(n, c, f, _s(f, "digit"), _s(f, "digits")),
    "llm.tool_call": lambda n, c, f: ToolCall(n, c, f, msg_id_of(f), _tool_calls(f)),
    "channel.added": lambda n, c, f: ChannelEvent(
        n, c, f, _s(f, "agent_id"), _s(f, "type"), _s(f, "ref")),
    "channel.configured": lambda n, c, f: ChannelEvent(
        n, c, f, _s(f, "agent_id"), _s(f, "type"), _s(f, "ref")),
    "channel.removed": lambda n, c, f: ChannelEvent(
        n, c, f, _s(f, "agent_id"), _s(f, "type"), _s(f, "ref")),
}


def event(frame: Mapping[str, Any]) -> Event:
    """The typed event for a decoded frame (a plain Event for names without a class)."""
    name = _s(frame, "event")
    raw = MappingProxyType(dict(frame))
    builder = _BUILDERS.get(name)
    if builder is None:
        return Event(name, call_id_of(frame), raw)
    return builder(name, call_id_of(frame), raw)


def text_field(frame: Mapping[str, Any], key: str) -> str:
    """A string field of a frame, or "" when it is missing or not a string."""
    return _s(frame, key)


def int_field(frame: Mapping[str, Any], key: str) -> int | None:
    """An integer field (booleans are not integers on the wire), or None."""
    value = frame.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number_field(frame: Mapping[str, Any], key: str) -> float | None:
    """A numeric field (not a boolean) as a finite float, or None."""
    value = frame.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def error_text(frame: Mapping[str, Any]) -> str:
    """The text of an `error` frame: `error`, else `message`, else a placeholder (§2.6)."""
    return _s(frame, "error") or _s(frame, "message") or "Unknown error"
