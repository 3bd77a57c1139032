"""The line side of a `Call` (docs/protocol.md §2.10): where a call came from, keyed
context, menus (`listen`, `ask`) and handing a live call on a phone line to an agent
(`call.route`).

`CallLines` is mixed into `Call`. A call answered by a line (`voicesync.Line`) asks with
`ask()` / `listen()` and is routed with `route()`; the agent that receives it reads
`routed_from`, `extension` and `line_transcript`. The route's answer (`call.routed` /
`call.route_failed`) and the keys and turns a listen waits for are applied on the reader
thread by `_line_frames.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync._listen import Listen, ListenResult, check_listen
from voicesync.errors import CallEndedError, RequestTimeout

if TYPE_CHECKING:
    from voicesync._handles import SayHandle

logger = logging.getLogger(__name__)

_POLL = 0.05  # how often a blocked route() looks at the call's end


@dataclass(frozen=True)
class RouteResult:
    """How `call.route()` ended: `ok`, or not with the platform's `reason` (``offline``,
    ``unknown``, ``no_phone_config``, ``capacity``, ``swap_failed``). True when ok."""

    ok: bool
    agent: str
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class LineTranscriptEntry:
    """One line of what a phone line heard (``who == "caller"``) or said (``"line"``)."""

    who: str
    text: str
    at: float | None = None


class _PendingRoute:
    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.result: RouteResult | None = None
        self.done = threading.Event()


class CallLines:
    """Line fields and verbs of a `Call`; every method may be called from any thread."""

    id: str
    extension: str | None
    routed_from: str | None
    owner: str | None
    line_transcript: tuple[LineTranscriptEntry, ...]
    _route: _PendingRoute | None
    _listens: tuple[Listen, ...]  # replaced whole, so the reader reads it without a lock
    _taken_by_extension: bool  # a line's extensions() entry answered the call

    if TYPE_CHECKING:
        _ended: threading.Event
        _lock: threading.Lock

        @property
        def reason(self) -> str | None: ...
        def send(self, frame: Mapping[str, Any]) -> bool: ...
        def say(self, text: str, *, add_to_history: bool = False) -> SayHandle: ...
        def update(self, **options: Any) -> bool: ...

    def _read_line_fields(self, frame: Mapping[str, Any]) -> None:
        """From ``call.started``: the extension dialled after the number (None without one),
        who owns the session (``line`` or ``agent``), the line a routed call came from and
        what it heard there."""
        extension = frame.get("extension")
        self.extension = extension if isinstance(extension, str) else None
        self.owner = _codec.text_field(frame, "owner") or None
        self.routed_from = _codec.text_field(frame, "routed_from") or None
        entries = frame.get("line_transcript")
        self.line_transcript = tuple(
            LineTranscriptEntry(str(e.get("who", "")), str(e.get("text", "")),
                                _codec.number_field(e, "at"))
            for e in (entries if isinstance(entries, list) else []) if isinstance(e, Mapping))
        self._route = None
        self._listens = ()
        self._taken_by_extension = False

    def set_context(self, key: str, value: Any) -> bool:
        """Keep `value` under `key` on the platform's session (``set_context``). It stays
        with the call when a line routes it, so the agent inherits what the line learned.
        False if the call has ended."""
        return self.send({"event": "set_context", "call_id": self.id, "key": key,
                          "value": value})

    def route(
        self, agent: str, *, language: str | None = None, voice: str | None = None,
        stt: str | None = None, greeting: str | None = None,
        prompt_vars: Mapping[str, str] | None = None, context: Mapping[str, Any] | None = None,
        history: bool = True, timeout: float = 10.0,
    ) -> RouteResult:
        """Hand this live call (a call on a `voicesync.Line`) to `agent`, without redialing.

        The agent gets a ``call.started`` for the same call id, with `routed_from`,
        `extension` and (with `history`, the default) what the line heard. `language`,
        `voice`, `stt`, `greeting`, `prompt_vars` and `context` set up the agent's session.
        Blocks until the platform answers: a true `RouteResult` once the agent owns the
        call (this Call then ends with reason ``routed``), else one whose `reason` says why
        not, and the line still owns the call (say so, try another agent, hang up). A call
        that ends meanwhile gives reason ``swap_failed``. Raises CallEndedError on an ended
        call and RequestTimeout without an answer in `timeout`. Any thread but the reader.
        """
        if self._ended.is_set():
            raise CallEndedError(f"call {self.id} has ended ({self.reason}); route() needs "
                                 "a live call", call_id=self.id, reason=self.reason)
        pending = self._route = _PendingRoute(agent)
        frame = _codec.command(
            "call.route", call_id=self.id, agent=agent, language=language, voice=voice,
            stt=stt, greeting=greeting, prompt_vars=dict(prompt_vars) if prompt_vars else None,
            context=dict(context) if context else None, history=bool(history))
        if not self.send(frame):
            return RouteResult(False, agent, "swap_failed")
        deadline = time.monotonic() + timeout
        while not pending.done.wait(_POLL):
            if self._ended.is_set() and not pending.done.is_set():
                return RouteResult(False, agent, "swap_failed")
            if time.monotonic() >= deadline:
                raise RequestTimeout(f"call {self.id}: no call.routed or call.route_failed "
                                     f"for route({agent!r}) within {timeout:g} s")
        assert pending.result is not None
        return pending.result

    def _route_answered(self, result: RouteResult) -> None:
        """`call.routed` / `call.route_failed` (reader thread)."""
        pending = self._route
        if pending is not None and not pending.done.is_set():
            pending.result = result
            pending.done.set()

    # ------------------------------------------------------------------ menus

    def listen(self, *, timeout: float, digits: int = 0, terminator: str | None = None,
               speech: bool = False, language: str | None = None) -> ListenResult:
        """Wait for the caller's answer: the first of the keypad, speech, or `timeout`.

        Keys are collected from now: the listen ends once `digits` keys were pressed, or
        when the `terminator` key (``"#"``) is pressed, whatever came before it. With
        `speech`, the caller's next turn (``turn.end``, the call's own recognizer) ends
        it too. `language` switches the call's language first (``session.configure``).
        Returns a `ListenResult` (``by``: ``keypad``, ``speech``, ``timeout``); a call
        that ends meanwhile, or has ended, gives a falsy ``timeout`` one. The keys and
        turns it takes still reach the call's handlers. Any thread but the reader,
        including a handler of this call.
        """
        with self._listening(timeout, digits, terminator, speech, language) as listen:
            return listen.wait(timeout, self._ended)

    def ask(self, text: str, *, timeout: float, digits: int = 0,
            terminator: str | None = None, speech: bool = False,
            language: str | None = None, say_timeout: float = 60.0) -> ListenResult:
        """`say(text)`, then `listen(...)`: a question and its answer.

        Keys pressed while the question plays count (a caller who knows the menu presses
        over it); the answer is returned once the line stopped speaking, and `timeout`
        counts from then. After `say_timeout` without the platform reporting the end of
        the question, the timeout starts anyway. `language` switches the call's language
        before the question. Any thread but the reader, including a handler of this call.
        """
        with self._listening(timeout, digits, terminator, speech, language) as listen:
            try:
                self.say(text).wait(say_timeout)
            except RequestTimeout:
                logger.warning("call %s: the question was not over after %g s; "
                               "listening anyway", self.id, say_timeout)
            return listen.wait(timeout, self._ended)

    @contextmanager
    def _listening(self, timeout: float, digits: int, terminator: str | None,
                   speech: bool, language: str | None) -> Iterator[Listen]:
        check_listen(digits, terminator, speech, timeout)
        listen = Listen(digits, terminator, speech)
        with self._lock:
            self._listens = (*self._listens, listen)
        try:
            if language:
                self.update(language=language)
            yield listen
        finally:
            with self._lock:
                self._listens = tuple(x for x in self._listens if x is not listen)

    def _keypad(self, digit: str) -> None:
        """A ``call.dtmf_received`` for the call's listens (reader thread)."""
        for listen in self._listens:
            listen.key(digit)

    def _heard(self, text: str, confidence: float) -> None:
        """A caller's ``turn.end`` for the call's listens (reader thread)."""
        for listen in self._listens:
            listen.heard(text, confidence)
