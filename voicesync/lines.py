"""Phone lines (docs/protocol.md §2.10): a number the app answers in code, with no model.

``client.line("+12186633772", voice=..., stt=...)`` claims the number (``line.create``).
Calls to it arrive as ordinary `Call` objects on the line's ``call.started`` handlers: the
line speaks with `call.say`, reads keys and speech from the call's events, keeps facts
with `call.set_context`, and hands the live call to an agent with `call.route(...)`.
The agent then sees a ``call.started`` carrying `routed_from`, `extension` and
`line_transcript`. `line.extensions({...})` routes calls by the extension dialled before
any handler runs; `call.ask(...)` / `call.listen(...)` make a menu.

A line is registered like an agent, under the id ``line:<number>`` (the id the platform
puts on the line's call events), so it is re-claimed after every reconnect. It has no
model: `llm`, `prompt`, `tools`, `greeting` are refused where they are passed, and the
agent methods that make no sense for a number answered in code raise ConfigurationError.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from voicesync import _codec
from voicesync._channels import check_phone
from voicesync._line_calls import LineTranscriptEntry, RouteResult
from voicesync._listen import ListenResult
from voicesync._listeners import Handler, Listeners, check_signature
from voicesync.agent import Agent
from voicesync.errors import ConfigurationError

if TYPE_CHECKING:
    import threading

    from voicesync.call import Call
    from voicesync.client import Client

__all__ = ["DEFAULT_EXTENSION_WINDOW_MS", "ExtensionEntry", "Line", "LineTranscriptEntry",
           "ListenResult", "RouteResult"]

logger = logging.getLogger(__name__)

PREFIX = "line:"
DEFAULT_EXTENSION_WINDOW_MS = 2500  # how long the platform collects post-dial digits
ANY_EXTENSION = "*"  # the extensions() key for no extension, or one that matched nothing

#: An `extensions()` entry: the id of the agent the call goes to, or code run with it.
ExtensionEntry: TypeAlias = "str | Callable[[Call], Any]"


def _not_for_lines(name: str, instead: str) -> Any:
    """An inherited agent method a line refuses: it says what to do instead."""

    def refused(self: Line, *args: Any, **kwargs: Any) -> Any:
        raise ConfigurationError(f"line {self.number}: {name}() is an agent's, not a "
                                 f"line's; {instead}")

    refused.__name__ = refused.__qualname__ = name
    refused.__doc__ = f"Not for lines: raises ConfigurationError ({instead})."
    return refused


_NUMBER = ("a line is its one number; to answer another number, claim it with "
           "client.line(number), or give it to an agent")
_MODEL = "a line has no model; route the call to an agent with call.route(agent_id)"


class Line(Agent):
    """A phone number answered by code: ``client.line(number, **options)``.

    Options: `stt`, `voice`, `language` (as for an agent), `turn_detection` (passed
    through), `extension_window_ms` (how long after connecting the platform collects the
    digits a caller's phone sends after the number, ``+1218…,,33``; 0 turns it off; the
    result is `call.extension`). Subscribe with ``line.on("call.started", fn)``,
    ``line.on("call.dtmf_received", fn)``... exactly as on an agent; `line.wait_ready()`
    waits for ``line.created`` and raises the `RegistrationError` of a ``line.error``
    (``.code``: ``LINE_CONFLICT``, ``LINE_CONFIG_ERROR``, ``PHONE_NOT_IN_ORG``,
    ``UNAUTHORIZED``). `extensions({...})` routes calls by the extension dialled. The
    agent methods about channels, dialing, tokens, sessions of a model and config
    (`add_phone`, `dial`, `bridge`, `skill`, `update`...) raise ConfigurationError. Every
    method may be called from any thread.
    """

    add_phone = _not_for_lines("add_phone", _NUMBER)
    add_webrtc = _not_for_lines("add_webrtc", _NUMBER)
    add_chat = _not_for_lines("add_chat", _NUMBER)
    configure_channel = _not_for_lines("configure_channel", _NUMBER)
    remove_channel = _not_for_lines("remove_channel", _NUMBER)
    route_callers = _not_for_lines("route_callers", _NUMBER)
    dial = _not_for_lines("dial", "a line only answers: dial from an agent "
                          "(agent.dial), or send a line's call on with call.forward(number)")
    bridge = _not_for_lines("bridge", "bridge from an agent (agent.bridge), or hand a "
                            "line's call to an agent with call.route(agent_id)")
    create_token = _not_for_lines("create_token", "a line answers phone calls only; "
                                  "mint browser tokens for an agent")
    skill = _not_for_lines("skill", _MODEL)
    pause = _not_for_lines("pause", _MODEL)
    resume = _not_for_lines("resume", _MODEL)
    send_message = _not_for_lines("send_message", _MODEL)

    def __init__(
        self, number: str, *, client: Client | None = None, stt: Any = None,
        voice: Any = None, language: str | None = None, turn_detection: Any = None,
        extension_window_ms: int = DEFAULT_EXTENSION_WINDOW_MS, **refused: Any,
    ) -> None:
        if refused:
            raise ConfigurationError(
                f"a line takes no {', '.join(sorted(refused))}: it has no model, and its "
                "first words are code (call.say). Options: stt, voice, language, "
                "turn_detection, extension_window_ms; hand a call to an agent with "
                "call.route(agent_id)")
        check_phone(number)
        if extension_window_ms < 0:
            raise ConfigurationError("extension_window_ms must be >= 0 (0 turns it off)")
        self.number = number
        self._turn_detection = turn_detection
        self._extension_window_ms = extension_window_ms
        pipeline = {"stt": stt, "voice": voice, "language": language}
        super().__init__(PREFIX + number, **{k: v for k, v in pipeline.items() if v is not None})
        self._extensions: Mapping[str, ExtensionEntry] | None = None
        self._listeners = _LineListeners(self, self._listeners)  # extensions() first
        if client is not None:
            client.add_agent(self)

    def create_frame(self) -> dict[str, Any]:
        """``line.create``: the number and the line's own pipeline (sent on every connect)."""
        with self._lock:
            config = _codec.encode_config(self._config)
        if self._turn_detection is not None:
            config["turn_detection"] = self._turn_detection
        config["extension_window_ms"] = self._extension_window_ms
        return {"event": "line.create", "number": self.number, "config": config}

    def extensions(self, table: Mapping[str, ExtensionEntry]) -> Line:
        """Route calls by the extension dialled after the number (``+1218…,,11``).

        Each key is an extension (``"11"``); ``"*"`` is the call with no extension, or one
        no key names. An entry is an agent id (the call is routed there, `call.route`)
        or a callable(call) run with the call. A matching entry takes the call: the
        line's own ``call.started`` handlers do not run for it (client-wide ones still
        do); with no match and no ``"*"``, they do. An entry that cannot route (the agent
        is offline) leaves the call with the line, which gets ``call.route_failed``.
        Replaces any earlier table; ``{}`` turns it off. Returns the line. Any thread.
        """
        checked: dict[str, ExtensionEntry] = {}
        for key, entry in table.items():
            if not isinstance(key, str) or not key:
                raise ConfigurationError(f"an extensions() key is the extension as a string "
                                         f"('11') or '*', not {key!r}")
            if isinstance(entry, str) and entry:
                checked[key] = entry
            elif callable(entry):
                check_signature(entry, ("call",), f"the extensions() entry for {key!r}")
                checked[key] = entry
            else:
                raise ConfigurationError(f"the extensions() entry for {key!r} is an agent id "
                                         f"or a callable(call), not {entry!r}")
        self._extensions = MappingProxyType(checked) if checked else None
        return self

    def _entry_for(self, call: Call) -> ExtensionEntry | None:
        table = self._extensions
        if table is None:
            return None
        extension = call.extension
        if extension is not None and extension in table:
            return table[extension]
        return table.get(ANY_EXTENSION)

    def _answer_by_extension(self, call: Call) -> None:
        """The first ``call.started`` handler while a table is set (the call's lane)."""
        entry = self._entry_for(call)
        if entry is None:
            return
        call._taken_by_extension = True
        if callable(entry):
            entry(call)
            return
        result = call.route(entry)
        if not result:
            logger.warning("line %s: extension %s could not go to %s (%s); the line keeps "
                           "the call (handle call.route_failed)", self.number,
                           call.extension or "(none)", entry, result.reason)

    def update(self, **config: Any) -> bool:
        raise ConfigurationError(
            f"line {self.number}: a line's pipeline is set when it is created; destroy() it "
            "and create it again, or change one call with call.update(voice=...)")

    def destroy(self) -> bool:
        """Release the number (``line.destroy``) and forget the line: its calls end here
        with reason ``agent_removed``. False if the frame could not be sent."""
        sent = self._require_uplink().send({"event": "line.destroy", "number": self.number})
        self._require_client().remove_agent(self.id)
        return sent

    def __repr__(self) -> str:
        state = "ready" if self.ready else "not ready"
        return f"<Line {self.number} {state} calls={len(self._calls)}>"


class _LineListeners(Listeners):
    """A line's handlers: with an extensions() table, ``call.started`` asks it first, and
    the line's own handlers skip a call an entry took (all on the call's lane, in order)."""

    def __init__(self, line: Line, inherited: Listeners) -> None:
        super().__init__()
        self._line = line
        self._table = dict(inherited._table)

    def get(self, name: str) -> tuple[Handler, ...]:
        handlers = super().get(name)
        if name != "call.started" or self._line._extensions is None:
            return handlers
        return (self._line._answer_by_extension, *(_unless_taken(h) for h in handlers))


def _unless_taken(handler: Handler) -> Handler:
    @functools.wraps(handler)  # reports name the app's handler
    def run(call: Call) -> Any:
        return None if call._taken_by_extension else handler(call)

    return run


class ClientLines:
    """`Client.line` and `Client.lines`; mixed into `Client`."""

    _lock: threading.RLock
    _agents: dict[str, Agent]

    def line(self, number: str, **options: Any) -> Line:
        """Claim `number` as a `Line` (see there for `options`); registered on every
        (re)connect. The same number again returns the existing line. Any thread."""
        with self._lock:
            existing = self._agents.get(PREFIX + number)
        if isinstance(existing, Line):
            if options:
                logger.warning("line %s already exists; ignoring new options", number)
            return existing
        client = cast("Client", self)  # the mixin is only ever a Client
        return Line(number, client=client, **options)

    @property
    def lines(self) -> dict[str, Line]:
        """The lines of this client by number (a snapshot)."""
        with self._lock:
            return {a.number: a for a in self._agents.values() if isinstance(a, Line)}


def is_line_id(agent_id: str) -> bool:
    return agent_id.startswith(PREFIX)
