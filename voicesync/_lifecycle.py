"""The client's lifecycle: which threads run, and the order that starts and stops them.

States: idle (no reader), connecting and open (a reader runs; `connected` tells them
apart), closed (final). `connect()` starts the reader and heartbeat, and a failed
attempt stops them again; `close()` stops everything within its timeout from any
thread and never joins the thread it runs on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from voicesync._connection import Reader
from voicesync._control import Control
from voicesync._heartbeat import Heartbeat
from voicesync._lanes import Lanes
from voicesync._timer import Timers
from voicesync.errors import ConnectionClosedError, ConnectTimeout, NotConnectedError

logger = logging.getLogger("voicesync.client")  # the records users already filter on

ABANDON_MARGIN = 0.1  # seconds a failed connect() may take past its timeout to clean up
_CLOSE_MARGIN = 0.1  # seconds close() keeps in hand for a loaded machine


class Lifecycle:
    """Owns the reader, heartbeat, control and timer threads of one client. Any thread."""

    def __init__(self, *, url: str, connected: threading.Event, lanes: Lanes,
                 control: Control, timers: Timers, make_reader: Callable[[float], Reader],
                 make_heartbeat: Callable[[], Heartbeat],
                 end_locally: Callable[[], None]) -> None:
        self._url = url
        self._connected = connected
        self._lanes = lanes
        self._control = control
        self._timers = timers
        self._make_reader = make_reader
        self._make_heartbeat = make_heartbeat
        self._end_locally = end_locally  # end calls and streams without the reader
        self._lock = threading.RLock()  # reentrant: close() may run in a signal handler
        self.reader: Reader | None = None
        self.heartbeat: Heartbeat | None = None
        self.stopping = threading.Event()  # set by close(): every later drop is ours
        self.finished = threading.Event()  # closed, or the reader gave up for good
        self.closed = False

    def require(self, what: str) -> None:
        """Raise NotConnectedError unless connected or connecting (any thread)."""
        reader = self.reader
        if self.closed:
            raise NotConnectedError(
                f"{what} needs a connection, but this client is closed; create a new Client "
                "and call client.connect()", reason="closed")
        if reader is None or not reader.alive:
            cause = "" if reader is None else (
                f" (the connection ended for good: {reader.final_error})"
                if reader.final_error is not None else " (the connection ended)")
            raise NotConnectedError(
                f"{what} needs a connection, but the client is not connected{cause}; call "
                "client.connect() first", reason="not_connected")

    def state(self, last_rx: float) -> str:
        """What the connection looks like now, for timeout messages."""
        if self.closed:
            return "the client is closed"
        if not self._connected.is_set():
            return "the client is not connected (connecting or reconnecting)"
        return (f"the client is connected; the last frame arrived "
                f"{time.monotonic() - last_rx:.1f} s ago")

    def connect(self, timeout: float, first_dial: float) -> None:
        """Start (or join) a connection attempt and wait up to `timeout` for `connected`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.closed:
                raise ConnectionClosedError("this client is closed; create a new Client")
            reader = self.reader
            if reader is not None and reader.stopping.is_set():
                reader.join(deadline - time.monotonic())  # an abandoned attempt, ending
            if reader is None or not reader.alive:
                self.finished.clear()
                self._control.restart()
                reader = self.reader = self._make_reader(first_dial)
                if self.heartbeat is None:
                    self.heartbeat = self._make_heartbeat()
                    self.heartbeat.start()
                reader.start()
        while not self._connected.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self.finished.is_set() or self.closed:
                self._abandon(reader, deadline)
                raise reader.final_error or ConnectionClosedError(
                    "the client was closed while connecting", reason="client_disconnect")
            if time.monotonic() >= deadline:
                self._abandon(reader, deadline)
                raise ConnectTimeout(
                    f"not connected to {self._url} within {timeout:g} s", url=self._url)

    def _abandon(self, reader: Reader, deadline: float) -> None:
        """A connect() that failed: stop the attempt, its socket and the threads it
        started, within ABANDON_MARGIN past `deadline`."""
        reader.stop()
        reader.join(deadline + ABANDON_MARGIN - time.monotonic())
        with self._lock:
            if self.reader is not reader or self._connected.is_set():
                return  # another connect() took over, or it connected after all
            heartbeat, self.heartbeat = self.heartbeat, None
        if heartbeat is not None:
            heartbeat.stop(max(0.0, deadline + ABANDON_MARGIN - time.monotonic()))
        self._control.stop(0.0)

    def close(self, timeout: float) -> None:
        """Stop the reader (its socket shut first), the heartbeat, the control thread, the
        handlers and the timers, within `timeout`. Idempotent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            self.stopping.set()
            reader = self.reader
            if reader is not None:
                reader.stop()
            if (reader is not None and not reader.join(deadline - time.monotonic() - 0.2)
                    and not reader.is_current):
                logger.warning("the reader thread did not stop in time")
            if reader is None or reader.alive:
                self._end_locally()
            if self.heartbeat is not None:
                self.heartbeat.stop(max(0.0, deadline - time.monotonic() - _CLOSE_MARGIN))
            # Deferred abort steps (end frames, on_abort callbacks) and running handlers
            # share half the budget (their streams were aborted by the close, so a
            # well-behaved loop exits at once); the rest is margin, so a loaded machine
            # still returns within `timeout`.
            handlers_until = min(deadline - _CLOSE_MARGIN, time.monotonic() + timeout / 2)
            self._control.stop(max(0.0, (handlers_until - time.monotonic()) / 2))
            stuck = self._lanes.close(handlers_until)
            if stuck:
                logger.warning("closed with %d handler(s) still running: %s", len(stuck),
                               ", ".join(stuck[:5]))
            # Last: the saves of the histories the close ended are due now and run first.
            self._timers.stop(max(0.0, deadline - time.monotonic() - _CLOSE_MARGIN))
        finally:
            self.finished.set()
