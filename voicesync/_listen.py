"""Waiting for a caller's answer: the keypad, or (opt-in) speech, or a timeout.

A `Listen` is what `Call.listen()` and `Call.ask()` (`_line_calls.py`) block on. The
reader thread feeds it every ``call.dtmf_received`` and ``turn.end`` of its call
(`_line_frames.py`) before the call's handlers are queued, so a handler of the same
call may block in `listen()` without holding back the keys it waits for. Nothing new
goes on the wire: the keys and the turns are the call's ordinary events.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

from voicesync.errors import ConfigurationError

_POLL = 0.05  # how often a blocked listen looks at the call's end

ListenedBy = Literal["keypad", "speech", "timeout"]


@dataclass(frozen=True)
class ListenResult:
    """What ended a `listen()` / `ask()`: `by` is ``keypad``, ``speech`` or ``timeout``.

    ``keypad``: `digit` is the key that ended it, `digits` the keys collected (a
    terminator key is not among them). ``speech``: the caller's turn `text` and its
    `confidence`. ``timeout`` (also when the call ended first) is falsy.
    """

    by: ListenedBy
    digit: str = ""
    digits: str = ""
    text: str = ""
    confidence: float = 0.0

    def __bool__(self) -> bool:
        return self.by != "timeout"


TIMED_OUT = ListenResult("timeout")


def check_listen(digits: int, terminator: str | None, speech: bool, timeout: float) -> None:
    """Raise ConfigurationError for a listen that could only ever time out."""
    if not isinstance(digits, int) or digits < 0:
        raise ConfigurationError(f"digits must be a count of keys (>= 0), not {digits!r}")
    if terminator is not None and (not isinstance(terminator, str) or len(terminator) != 1):
        raise ConfigurationError(f"terminator is one key such as '#', not {terminator!r}")
    if not digits and terminator is None and not speech:
        raise ConfigurationError(
            "listen() has nothing to wait for: pass digits=N (keys to collect), "
            "terminator='#' (a key that ends the input) or speech=True")
    if not timeout > 0:
        raise ConfigurationError(f"timeout must be a number of seconds > 0, not {timeout!r}")


class Listen:
    """One listen in progress. `key`/`heard` run on the reader; `wait` on the caller's thread."""

    def __init__(self, digits: int, terminator: str | None, speech: bool) -> None:
        self._wanted = digits
        self._terminator = terminator
        self.speech = speech
        self._lock = threading.Lock()
        self._buffer = ""
        self._result: ListenResult | None = None
        self._done = threading.Event()

    def key(self, digit: str) -> None:
        """A ``call.dtmf_received``: the terminator ends the input, else the key is kept."""
        if not digit:
            return
        with self._lock:
            if self._result is not None:
                return
            if digit == self._terminator:
                self._settle(ListenResult("keypad", digit, self._buffer))
                return
            self._buffer += digit
            if self._wanted and len(self._buffer) >= self._wanted:
                self._settle(ListenResult("keypad", digit, self._buffer))

    def heard(self, text: str, confidence: float) -> None:
        """A caller's ``turn.end``; taken only by a listen with `speech`."""
        if self.speech:
            with self._lock:
                if self._result is None:
                    self._settle(ListenResult("speech", text=text, confidence=confidence))

    def _settle(self, result: ListenResult) -> None:
        self._result = result
        self._done.set()

    def wait(self, timeout: float, ended: threading.Event) -> ListenResult:
        """The first answer within `timeout` seconds (from now), else `TIMED_OUT`; a call
        that ends (`ended`) first also gives `TIMED_OUT`."""
        deadline = time.monotonic() + timeout
        while not self._done.wait(max(0.0, min(_POLL, deadline - time.monotonic()))):
            if ended.is_set() or time.monotonic() >= deadline:
                break
        with self._lock:
            if self._result is None:  # what arrives from now on is no longer awaited
                self._result = TIMED_OUT
            return self._result
