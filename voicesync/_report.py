"""Loud by default: what goes wrong on voicesync's threads reaches a person.

Every report is logged under ``voicesync`` and handed to the client's ``error``
handlers. A program that never configured logging would see nothing (the package
adds a NullHandler so that voicesync never configures the application), so when no
handler of the application would show the record and no ``error`` handler takes it,
it is written to stderr the way `threading.excepthook` writes an uncaught exception:
once, with its traceback. The rule mirrors Python's own last-resort handler: what it
would print if voicesync had not added its NullHandler is what gets printed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from voicesync._throttle import clip
from voicesync.agent import Agent
from voicesync.call import Call
from voicesync.errors import (
    AuthenticationError,
    EventsDroppedError,
    RegistrationError,
    ServerError,
)
from voicesync.events import Event
from voicesync.tools import ToolError

_MARK = "_voicesync_reported"
_HINT = ("(voicesync prints this because no logging handler is configured; configure "
         "logging, or subscribe client.on('error', fn), to handle it yourself)")
_write_lock = threading.Lock()
_hinted = False


def logging_shows(log: logging.Logger, level: int) -> bool:
    """True when the application's logging setup decides the fate of a `level` record.

    That is: the logger is disabled for the level (the application, or the default
    WARNING threshold, filtered it out: Python would print nothing either), or some
    handler other than a NullHandler on the propagation chain accepts the level.
    """
    if not log.isEnabledFor(level):
        return True
    last_resort = logging.lastResort
    if last_resort is None or level < last_resort.level:
        return True  # Python itself would print nothing: neither do we
    node: logging.Logger | None = log
    while node is not None:
        for handler in node.handlers:
            if not isinstance(handler, logging.NullHandler) and level >= handler.level:
                return True
        node = node.parent if node.propagate else None
    return False


def write_stderr(message: str, exc: BaseException | None) -> None:
    """Write one report to stderr now (threading.excepthook style); a hint the first time."""
    global _hinted
    lines = [f"voicesync: {message}\n"]
    if exc is not None:
        lines += traceback.format_exception(type(exc), exc, exc.__traceback__)
    with _write_lock:
        if not _hinted:
            _hinted = True
            lines.append(_HINT + "\n")
        stream = sys.stderr
        if stream is None:  # pythonw: nowhere to write
            return
        try:
            stream.write("".join(lines))
            stream.flush()
        except (OSError, ValueError):  # a closed stderr at interpreter exit
            pass


def first_report(exc: BaseException) -> bool:
    """Mark `exc` reported; False if it already was (one report per exception)."""
    if getattr(exc, _MARK, False):
        return False
    with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
        setattr(exc, _MARK, True)
    return True


class Reporter:
    """One client's way out for problems: logging, `error` handlers, else stderr.

    `subscribed()` says whether an `error` handler exists; `deliver(exc)` queues the
    exception to them. `observers` (used by voicesync.testing) see every handler failure
    with its lane (the call id for a call's handlers).
    """

    def __init__(self, log: logging.Logger, subscribed: Callable[[], bool],
                 deliver: Callable[[BaseException], None]) -> None:
        self._log = log
        self._subscribed = subscribed
        self._deliver = deliver
        self.observers: list[Callable[[BaseException, str], None]] = []

    def report(self, exc: BaseException, message: str, *, level: int,
               with_traceback: bool = False, deliver: bool = True) -> None:
        """Log `message` at `level`, hand `exc` to the `error` handlers, or print it."""
        if not first_report(exc):
            return
        self._log.log(level, "%s", message, exc_info=exc if with_traceback else None)
        delivered = deliver and self._subscribed()
        if delivered:
            self._deliver(exc)
        elif not logging_shows(self._log, level):
            write_stderr(message, exc if with_traceback else None)

    def problem(self, exc: BaseException, *, log: bool = False, loud: bool = False) -> None:
        """A problem on voicesync's threads: logged, given to `error` handlers, else printed.

        Refused keys, registration trouble, dropped events and a connection ended for good
        are WARNINGs, so a program with no logging set up still sees them on stderr; other
        reports are INFO. A tool that raised is user code failing, reported like a raising
        handler: an ERROR with its traceback.
        """
        if isinstance(exc, ToolError):
            self._tool_failed(exc)
            return
        loud = loud or isinstance(
            exc, (AuthenticationError, RegistrationError, EventsDroppedError)) or (
            isinstance(exc, ServerError) and exc.code == "AGENT_CONFLICT")
        level = logging.ERROR if log else logging.WARNING if loud else logging.INFO
        self.report(exc, clip(str(exc)), level=level)  # wire text: bounded

    def _tool_failed(self, exc: ToolError) -> None:
        where = f"tool {exc.tool}" + (f" on call {exc.call_id}" if exc.call_id else "")
        if exc.timed_out:  # nothing raised: no traceback, but still loud
            self.report(exc, f"{where}: {exc}", level=logging.WARNING)
            return
        thread = threading.current_thread().name
        self.report(exc, f"exception in {where} (thread {thread}); the model was told it "
                    "failed", level=logging.ERROR, with_traceback=True)

    def handler_failed(self, exc: BaseException, where: str, lane: str, *,
                       deliver: bool = True) -> None:
        """User code raised on a voicesync thread: report it with its traceback."""
        for observe in list(self.observers):
            observe(exc, lane)
        thread = threading.current_thread().name
        self.report(exc, f"exception in {where} (thread {thread})", level=logging.ERROR,
                    with_traceback=True, deliver=deliver)


def describe_handler(handler: Any, args: tuple[Any, ...], lane: str) -> str:
    """'handler Echo.on_turn for 'turn.end' on call c_1' from what a lane was given."""
    handler = getattr(handler, "__wrapped__", handler)  # the turn binding's wrapper
    target = getattr(handler, "__func__", handler)
    name = getattr(target, "__qualname__", None) or repr(handler)
    if target is Agent._turn_hook:  # the subclass hook: name what the user wrote
        name = f"{type(handler.__self__).__name__}.on_turn"
    where = f"handler {name}"
    event = next((a for a in args if isinstance(a, Event)), None)
    if event is not None:
        where += f" for {event.name!r}"
    call = next((a for a in args if isinstance(a, Call)), None)
    if call is not None:
        where += f" on call {call.id} (agent {call.agent.id!r})"
    elif event is not None and event.call_id:
        where += f" on call {event.call_id}"
    elif lane != "voicesync-client":
        where += f" ({lane})"
    return where
