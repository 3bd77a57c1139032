"""Phone lines (docs/protocol.md §2.10): a number the app answers in code, with no model.

``client.line("+12186633772", voice=..., stt=...)`` claims the number (``line.create``).
Calls to it arrive as ordinary `Call` objects on the line's ``call.started`` handlers: the
line speaks with `call.say`, reads keys and speech from the call's events, keeps facts
with `call.set_context`, and hands the live call to an agent with `call.route(...)`.
The agent then sees a ``call.started`` carrying `routed_from`, `extension` and
`line_transcript`.

A line is registered like an agent, under the id ``line:<number>`` (the id the platform
puts on the line's call events), so it is re-claimed after every reconnect. It has no
model: `llm`, `prompt`, `tools`, `greeting` are refused where they are passed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from voicesync import _codec
from voicesync._channels import check_phone
from voicesync._line_calls import LineTranscriptEntry, RouteResult
from voicesync.agent import Agent
from voicesync.errors import ConfigurationError

if TYPE_CHECKING:
    import threading

    from voicesync.client import Client

__all__ = ["DEFAULT_EXTENSION_WINDOW_MS", "Line", "LineTranscriptEntry", "RouteResult"]

logger = logging.getLogger(__name__)

PREFIX = "line:"
DEFAULT_EXTENSION_WINDOW_MS = 2500  # how long the platform collects post-dial digits


class Line(Agent):
    """A phone number answered by code: ``client.line(number, **options)``.

    Options: `stt`, `voice`, `language` (as for an agent), `turn_detection` (passed
    through), `extension_window_ms` (how long after connecting the platform collects the
    digits a caller's phone sends after the number, ``+1218…,,33``; 0 turns it off; the
    result is `call.extension`). Subscribe with ``line.on("call.started", fn)``,
    ``line.on("call.dtmf_received", fn)``... exactly as on an agent; `line.wait_ready()`
    waits for ``line.created`` and raises the `RegistrationError` of a ``line.error``
    (``.code``: ``LINE_CONFLICT``, ``LINE_CONFIG_ERROR``, ``PHONE_NOT_IN_ORG``,
    ``UNAUTHORIZED``). The agent methods about channels, dialing, skills and config
    (`add_phone`, `dial`, `bridge`, `skill`, `update`...) are not for lines. Every method
    may be called from any thread.
    """

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

    def update(self, **config: Any) -> bool:
        raise ConfigurationError(
            f"line {self.number}: a line's pipeline is set when it is created; destroy() it "
            "and create it again, or change one call with call.update(voice=...)")

    def destroy(self) -> bool:
        """Release the number (``line.destroy``) and forget the line: its calls end here
        with reason ``agent_removed``. False if the frame could not be sent."""
        client = self._require_client()
        sent = client._send({"event": "line.destroy", "number": self.number})
        client.remove_agent(self.id)
        return sent

    def __repr__(self) -> str:
        state = "ready" if self.ready else "not ready"
        return f"<Line {self.number} {state} calls={len(self._calls)}>"


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
