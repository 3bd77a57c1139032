"""What `say()` and `reply()` return, and the turn a handler thread is answering.

The handles are settled by voicesync's reader thread (played, cut off, rejected, call
ended); the app waits on them from any other thread. The turn binding is a thread-local
set while a handler of a call runs, so a reply without an explicit turn answers the
event being handled, never a newer message that arrived on the wire meanwhile.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from voicesync.errors import RequestTimeout

_handling = threading.local()


@contextmanager
def answering(call_id: str, message_id: str) -> Iterator[None]:
    """While the block runs, replies on `call_id` without a turn answer `message_id`."""
    previous = getattr(_handling, "turn", None)
    _handling.turn = (call_id, message_id)
    try:
        yield
    finally:
        _handling.turn = previous


def current_reply_to(call_id: str) -> str | None:
    """The message a handler of `call_id` running on this thread answers; None outside one."""
    turn: tuple[str, str] | None = getattr(_handling, "turn", None)
    return turn[1] if turn is not None and turn[0] == call_id else None


def bind(call_id: str, message_id: str,
         handlers: tuple[Callable[..., Any], ...]) -> tuple[Callable[..., Any], ...]:
    """Wrap each handler so it runs inside `answering(call_id, message_id)`."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)  # reports name the app's handler, not this wrapper
        def run(*args: Any) -> Any:
            with answering(call_id, message_id):
                return handler(*args)

        return run

    return tuple(wrap(h) for h in handlers)


class SayHandle:
    """A message queued with `Call.say` (or `Call.reply`); `wait()` tells how it went.

    `sent` is False when nothing went out (the call had ended, or the socket was down);
    such a handle is already done and falsy, like the False other commands return.
    """

    def __init__(self, message_id: str, now_playing: Callable[[], str] = lambda: "") -> None:
        self.message_id = message_id
        self._now_playing = now_playing  # the call's bot message now: for a timeout message
        self.sent = True
        self._done = threading.Event()
        self._interrupted = False
        self._rejected = False

    def _settle(self, interrupted: bool, *, rejected: bool = False) -> None:
        if not self._done.is_set():
            self._interrupted = interrupted
            self._rejected = rejected
            self._done.set()

    def _unsent(self) -> None:
        self.sent = False
        self._settle(True)

    def __bool__(self) -> bool:
        return self.sent

    @property
    def done(self) -> bool:
        """True once the message finished playing, was cut off or rejected, or the call ended."""
        return self._done.is_set()

    @property
    def interrupted(self) -> bool:
        """True if the caller never heard all of it (cut off, rejected, call ended, unsent)."""
        return self._interrupted

    @property
    def rejected(self) -> bool:
        """True if the platform refused it (`reply.rejected`: the turn it answered was
        superseded by a newer user message); it is never spoken."""
        return self._rejected

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the message is over; True if it was interrupted, rejected or unsent
        (or the call ended first), False if it played to the end. Any thread but
        voicesync's own reader.

        Raises RequestTimeout if it is still playing after `timeout` seconds.
        """
        if not self._done.wait(timeout):
            playing = self._now_playing()
            seen = ("the bot silent" if not playing else "it was playing"
                    if playing == self.message_id else f"message {playing} was playing")
            raise RequestTimeout(
                f"message {self.message_id} was not over after {timeout:g} s (waited for its "
                f"bot.finished or bot.interrupted); last seen: {seen}")
        return self._interrupted

    def __repr__(self) -> str:
        state = ("unsent" if not self.sent else "rejected" if self._rejected
                 else "interrupted" if self._interrupted else "done" if self.done else "queued")
        return f"<{type(self).__name__} {self.message_id} {state}>"


class Reply(str):
    """What `Call.reply()` returns: the message id (a ``str``, as before) plus its fate.

    The string is the message id when the reply was sent and ``""`` when it was not (the
    call had ended, the socket was down), so ``if not call.reply(...)`` detects the
    failure like every other command's False. `message_id` is the id either way.
    `rejected`, `interrupted`, `done` and `wait()` follow the message as it plays.
    """

    handle: SayHandle

    def __new__(cls, handle: SayHandle) -> Reply:
        reply = super().__new__(cls, handle.message_id if handle.sent else "")
        reply.handle = handle
        return reply

    @property
    def message_id(self) -> str:
        return self.handle.message_id

    @property
    def sent(self) -> bool:
        return self.handle.sent

    @property
    def done(self) -> bool:
        return self.handle.done

    @property
    def interrupted(self) -> bool:
        return self.handle.interrupted

    @property
    def rejected(self) -> bool:
        return self.handle.rejected

    def wait(self, timeout: float | None = None) -> bool:
        """As `SayHandle.wait`: True unless the reply played to the end."""
        return self.handle.wait(timeout)
