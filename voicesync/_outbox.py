"""The outbound queue and its `voicesync-writer` thread: the only code that writes to a socket.

Senders only append encoded frames; one writer thread per connection drains them in
order, so a peer that stops reading blocks that thread alone. The queue is bounded in
bytes: a sender that finds it full waits (bounded), and a socket that accepts nothing
for `stall_timeout` is declared dead (``send_timeout``), which shuts it down and wakes
everyone. Threads that must never block (the reader, the heartbeat, the control thread)
mark themselves with `never_wait()`; their frames are refused instead when it is full.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from voicesync.errors import ConnectionClosedError

logger = logging.getLogger(__name__)

_local = threading.local()
URGENT_SLACK = 64 << 10  # bytes past the bound a thread that may not wait can still queue
# A frame put within this many seconds of the last one is left to the writer thread rather
# than written on the caller's: under load one send() per batch beats one per frame.
BUSY_GAP = 0.002


def never_wait() -> None:
    """Mark the calling thread as one that must never wait for room in an outbox."""
    _local.never_wait = True


def may_wait() -> bool:
    return not getattr(_local, "never_wait", False)


class unless:  # noqa: N801 - used as `with unless(flag):`, like a function
    """Frames this thread queues inside the block are refused once `flag` is set, checked
    under the queue's lock. A reply stream's chunks use it: the reader sets `aborted`
    before it queues anything else, so no chunk can follow what the reader sent after
    applying a barge-in (e.g. the pong that answers the platform's next ping).

    A class rather than a generator: it wraps every chunk, and costs a third as much."""

    __slots__ = ("_flag",)

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def __enter__(self) -> None:
        _local.unless = self._flag

    def __exit__(self, *exc: object) -> None:
        _local.unless = None


class Outbox:
    """A byte-bounded FIFO of encoded frames and the thread that writes them.

    `put` may be called from any thread; `write(data) -> bytes accepted` is called only
    on the writer thread. `on_stall` runs (on the thread that noticed) when the socket
    accepted nothing for `stall_timeout` while data was waiting; it must shut the socket.
    """

    def __init__(self, write: Callable[[memoryview], int], *, max_bytes: int,
                 stall_timeout: float, on_stall: Callable[[], None],
                 try_write: Callable[[bytes], int] | None = None) -> None:
        self._write = write
        # A write that never blocks (0: the socket is full). With it, a frame put into an
        # empty, idle outbox while frames are rare goes out on the caller's thread: no
        # hand-off to the writer, whose wake-up waits for the GIL (up to 5 ms with busy
        # handler threads). When frames come thick and fast they are left to the writer,
        # which sends all that queued meanwhile with one send(): each send() releases the
        # GIL, and a thread that released it waits its turn to get it back.
        self._try_write = try_write
        self.max_bytes = max_bytes
        self.stall_timeout = stall_timeout
        self._on_stall = on_stall
        # Reentrant: close() may run in a signal handler on a thread that is inside put().
        # Two conditions on it: the writer waits for frames on `_wake`, senders for room
        # (and flush for an empty queue) on `_room`, so neither wakes the other for nothing.
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._asleep = False  # the writer waits on _wake: the next frame must wake it
        self._last_put = float("-inf")
        self._running = False  # the writer thread was started and has not ended
        self._frames: collections.deque[bytes] = collections.deque()
        self._queued = 0  # bytes accepted by put() and not yet by the socket
        self._progress = time.monotonic()  # the socket last took bytes (or the queue filled)
        self._writing = False
        self._broken: str | None = None  # why the outbox stopped (a disconnect reason)
        self._thread = threading.Thread(target=self._run, name="voicesync-writer", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def put(self, data: bytes) -> bool:
        """Queue one frame. False when it is full and this thread may not wait.

        Raises ConnectionClosedError once the outbox is broken, or when no room came
        within `stall_timeout` (the socket is then declared dead: ``send_timeout``).
        """
        # Threads that may not wait (the reader's pongs and registrations) get some slack
        # past the bound before their frames are refused: a burst of stream chunks that
        # filled the queue must not cost the connection its protocol frames.
        limit = self.max_bytes if may_wait() else self.max_bytes + URGENT_SLACK
        unless: threading.Event | None = getattr(_local, "unless", None)
        now, size = time.monotonic(), len(data)
        # Few calls while the lock is held: each is a point where the interpreter may
        # hand the GIL to another thread, and every sender arriving meanwhile would block.
        with self._lock:
            while True:
                if self._broken is not None:
                    self._raise_if_broken()
                if unless is not None and unless.is_set():
                    return False
                busy, self._last_put = now - self._last_put < BUSY_GAP, now
                queued = self._queued
                if not (busy or queued or self._writing or self._try_write is None
                        or not self._running):
                    self._writing = True  # this thread writes; the writer waits
                    break
                if not queued or queued + size <= limit:
                    if not queued:
                        self._progress = now  # idle time is not a stall
                    self._frames.append(data)
                    self._queued = queued + size
                    if self._asleep:
                        self._wake_writer()
                    return True
                if not may_wait():
                    return False
                # The heartbeat judges stalls (it can tell a frozen process from a peer
                # that stopped reading); this bound is only its backstop.
                left = self._progress + 2 * self.stall_timeout - time.monotonic()
                if left <= 0:
                    self.stalled(time.monotonic(), force=True)
                    raise ConnectionClosedError("cannot send: the server stopped reading",
                                                reason="send_timeout")
                self._room.wait(left)
                now = time.monotonic()
        return self._write_now(data)

    def _wake_writer(self) -> None:
        """Under the lock: wake the writer if it sleeps (once; a writer already awake
        takes every frame queued when it next looks)."""
        if self._asleep and not self._writing:
            self._asleep = False
            self._wake.notify()

    def _write_now(self, data: bytes) -> bool:
        """Write on this thread what the socket takes at once; the rest goes first in the
        queue for the writer thread."""
        assert self._try_write is not None
        try:
            sent = self._try_write(data)
        except OSError as exc:
            with self._lock:
                self._writing = False
            self.stop()
            raise ConnectionClosedError(f"send failed: {exc}", reason="connection_lost") from exc
        with self._lock:
            self._writing = False
            if sent < len(data):
                if not self._queued:
                    self._progress = time.monotonic()
                self._frames.appendleft(data[sent:])
                self._queued += len(data) - sent
            if self._frames:  # queued while this thread wrote, or the unsent rest
                self._wake_writer()
            self._room.notify_all()
        return True

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise ConnectionClosedError(f"cannot send: {self._broken}", reason=self._broken)

    def stalled(self, now: float, *, since: float = 0.0, force: bool = False) -> bool:
        """True (and the socket declared dead) when data has waited `stall_timeout` for
        the socket to take any of it, counting from `since` at the earliest (when the
        process resumed from a stall). Any thread; the heartbeat calls it every beat."""
        with self._lock:
            if self._broken is not None or not self._queued:
                return False
            if not force and now - max(self._progress, since) < self.stall_timeout:
                return False
            waited, waiting = now - self._progress, self._queued
        logger.warning("the server took no data for %.1f s (%d bytes waiting); reconnecting",
                       waited, waiting)
        self._on_stall()  # first: the reason is recorded before anyone sees the break
        self.stop("send_timeout")
        return True

    def idle(self) -> bool:
        """Nothing queued and nothing being written (a close frame would go out at once)."""
        with self._lock:
            return (not self._queued and not self._writing and self._broken is None
                    and self._running)

    def stop(self, reason: str = "connection_lost") -> None:
        """Refuse further frames and let the writer end (it ends at once unless it is
        blocked in a write, which the socket's shutdown breaks). Any thread."""
        with self._lock:
            if self._broken is None:
                self._broken = reason
            self._frames.clear()
            self._wake.notify_all()
            self._room.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued was written; False on timeout or breakage."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queued and self._broken is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._room.wait(left)
            return not self._queued

    def _run(self) -> None:
        try:
            self._write_batches()
        finally:
            self._running = False

    def _write_batches(self) -> None:
        while True:
            with self._lock:
                while (not self._frames or self._writing) and self._broken is None:
                    self._asleep = True
                    self._wake.wait()
                self._asleep = False
                if self._broken is not None:
                    return
                # Every frame queued so far goes out in one batch: one send() (and one
                # GIL release) for all of them while the socket takes them whole.
                data = memoryview(b"".join(self._frames))
                self._frames.clear()
                self._writing = True
            try:
                while data:
                    sent = self._write(data)
                    data = data[sent:]
                    with self._lock:
                        self._queued -= sent
                        self._progress = time.monotonic()
                        self._room.notify_all()
            except Exception as exc:  # any failure ends this connection's writing
                logger.debug("write failed: %r", exc)
                self.stop()
                return
            finally:
                with self._lock:
                    self._writing = False
                    self._room.notify_all()
