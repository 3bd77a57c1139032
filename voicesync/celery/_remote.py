"""RemoteReplyStream: the worker's end of an offloaded reply, with ReplyStream's API.

Chunks go to the socket process over the relay's up stream; a barge-in (or call end, or a
deadline the socket process enforces) comes back on the reply's control stream, which a
``voicesync-remote-*`` thread reads with a blocking XREAD, so `aborted` is set and the
`on_abort` callbacks run (closing an LLM provider's HTTP stream) within a millisecond or so
of the socket process aborting, whatever the task's own thread is doing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis
from typing_extensions import Self

from voicesync.celery import _wire
from voicesync.errors import ReplyStreamClosedError
from voicesync.reply import AbortableStream, AbortFlag

logger = logging.getLogger(__name__)

RemoteAbortCallback = Callable[["RemoteReplyStream"], Any]


class RemoteReplyStream(AbortableStream):
    """One reply written from a Celery worker; spoken by the socket process that owns the call.

    Thread-safety: `write`, `end`, `abort`, `pipe` and `on_abort` may be called from any
    thread of the worker. `aborted` is an Event whose truth value is `is_set()`. The
    callbacks of a barge-in run on this stream's ``voicesync-remote-*`` thread. Use it as a
    context manager (the task decorator does): the exit always ends the stream, an
    exception inside aborts it (``error``) and propagates.
    """

    def __init__(self, client: redis.Redis, payload: _wire.Payload) -> None:
        self.call_id = payload.call.id
        self.message_id = payload.message_id
        self.in_reply_to = payload.turn.message_id
        self.aborted = AbortFlag()
        self._redis = client
        self._up = payload.up
        self._ctl = _wire.ctl_key(payload.namespace, payload.message_id)
        self._heartbeat = payload.heartbeat
        self._lock = threading.Lock()
        self._ended = False
        self._abort_reason: str | None = None
        self._parts: list[str] = []
        self._callbacks: list[RemoteAbortCallback] = []
        self._last_sent = time.monotonic()
        self._watcher = threading.Thread(
            target=self._watch, name=f"voicesync-remote-{payload.message_id}", daemon=True)

    def open(self, *, announced: bool = False) -> Self:
        """Tell the socket process the work started (unless the caller already did) and
        begin listening for aborts."""
        if not announced:
            with self._lock:
                self._send(_wire.START)
        self._watcher.start()
        return self

    # ----------------------------------------------------------------- state

    @property
    def ended(self) -> bool:
        """True once the stream ended or was aborted."""
        return self._ended

    # ----------------------------------------------------------------- sending

    def write(self, text: str) -> bool:
        """Send `text` as the next chunk. Any thread; blocks for one Redis write.

        Returns False (and sends nothing) once aborted. Raises ReplyStreamClosedError after
        `end()`. If Redis cannot be reached the stream aborts (``disconnected``).
        """
        with self._lock:
            if self.aborted.is_set():
                return False
            if self._ended:
                raise ReplyStreamClosedError(
                    f"reply stream {self.message_id} has ended; a task answers one turn")
            if not text:
                return True
            self._parts.append(text)
            if self._send(_wire.CHUNK, text):
                return True
        self._abort_locally("disconnected")
        return False

    def end(self) -> bool:
        """Finish the reply. Idempotent; a no-op after an abort. Any thread."""
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            self._callbacks = []
            sent = self._send(_wire.END)
        self._stop_watcher()
        return sent

    def abort(self, reason: str = "app") -> bool:
        """Stop the reply now, from the worker: the socket process aborts its stream with
        `reason`. Then run the `on_abort` callbacks on this thread. Idempotent. Any thread."""
        with self._lock:
            if self._ended:
                return False
            self._send(_wire.ABORT, reason)
        self._stop_watcher()
        return self._abort_locally(reason)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end()
        else:
            self.abort("error")
        self._watcher.join(max(1.0, 2 * self._heartbeat))

    def __repr__(self) -> str:
        state = "aborted" if self.aborted.is_set() else "ended" if self._ended else "open"
        return f"<RemoteReplyStream {self.message_id} call={self.call_id} {state}>"

    # ----------------------------------------------------------------- internals

    def _send(self, kind: str, text: str = "") -> bool:
        """XADD one frame to the up stream (caller holds the lock, so frames keep order)."""
        try:
            self._redis.xadd(self._up, _wire.frame(self.message_id, kind, text),  # type: ignore[arg-type]
                             maxlen=_wire.UP_MAXLEN, approximate=True)
        except redis.RedisError as exc:
            logger.warning("reply %s: cannot reach Redis (%s)", self.message_id, exc)
            return False
        self._last_sent = time.monotonic()
        return True

    def _abort_locally(self, reason: str) -> bool:
        with self._lock:
            if self.aborted.is_set():
                return False
            self._ended = True
            self._abort_reason = reason
            self.aborted.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("on_abort callback of reply %s failed", self.message_id)
        return True

    def _stop_watcher(self) -> None:
        # Wake the watcher's blocking read so its thread ends now, not a heartbeat later.
        if self._watcher.is_alive() and threading.current_thread() is not self._watcher:
            with contextlib.suppress(redis.RedisError), self._redis.pipeline(
                    transaction=False) as pipe:
                pipe.xadd(self._ctl, _wire.frame(self.message_id, _wire.DONE))  # type: ignore[arg-type]
                pipe.expire(self._ctl, _wire.CTL_TTL)
                pipe.execute()

    def _watch(self) -> None:
        """The watcher thread: apply aborts from the socket process; heartbeat meanwhile."""
        last = "0-0"
        block_ms = max(1, int(self._heartbeat * 1000 / 2))
        try:
            while not self._ended:
                replies = self._redis.xread({self._ctl: last}, block=block_ms)
                for entry_id, (_, kind, reason) in _wire.entries(replies):
                    last = entry_id
                    if kind == _wire.ABORT:
                        logger.debug("reply %s aborted by the socket process: %s",
                                     self.message_id, reason)
                        self._abort_locally(reason)
                        return
                    if kind == _wire.DONE:
                        return
                with self._lock:
                    quiet = time.monotonic() - self._last_sent
                    if not self._ended and quiet >= self._heartbeat / 2:
                        self._send(_wire.BEAT)
        except redis.RedisError as exc:
            logger.warning("reply %s: lost Redis (%s); stopping the reply", self.message_id, exc)
            self._abort_locally("disconnected")
