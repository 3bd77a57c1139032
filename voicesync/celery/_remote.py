"""RemoteReplyStream: the worker's end of an offloaded reply, with ReplyStream's API.

Chunks (and the call commands of `call`) go to the socket process over the relay's up
stream; a barge-in (or call end, or a deadline the socket process enforces) comes back on
the reply's control stream, which the worker process's one ``voicesync-abort-listener``
thread is already blocked reading (`_listener`), so `aborted` is set and the `on_abort`
callbacks run (closing an LLM provider's HTTP stream) within a millisecond or so of the
socket process aborting, whatever the task's own thread is doing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from typing_extensions import Self

from voicesync.celery import _commands, _wire
from voicesync.celery._listener import listener_for
from voicesync.errors import ReplyStreamClosedError
from voicesync.reply import AbortableStream, AbortFlag

logger = logging.getLogger(__name__)

RemoteAbortCallback = Callable[["RemoteReplyStream"], Any]


class RemoteReplyStream(AbortableStream):
    """One reply written from a Celery worker; spoken by the socket process that owns the call.

    Thread-safety: `write`, `end`, `abort`, `pipe` and `on_abort` may be called from any
    thread of the worker. `aborted` is an Event whose truth value is `is_set()`. The
    callbacks of a barge-in run on the process's ``voicesync-abort-listener`` thread. Use it
    as a context manager (the task decorator does): the exit always ends the stream, an
    exception inside aborts it (``error``) and propagates. `call` is the call it answers
    (a `RemoteCall`: the snapshot plus commands such as ``hangup`` and ``forward``).
    """

    def __init__(self, client: redis.Redis, payload: _wire.Payload) -> None:
        self.call_id = payload.call.id
        self.message_id = payload.message_id
        self.in_reply_to = payload.turn.message_id
        self.aborted = AbortFlag()
        self._redis = client
        self._up = payload.up
        self.control_key = _wire.ctl_key(payload.namespace, payload.message_id)
        self.heartbeat = payload.heartbeat
        self.call = _commands.RemoteCall.bind(payload.call, self._command)
        self._lock = threading.Lock()
        self._ended = False
        self._abort_reason: str | None = None
        self._parts: list[str] = []
        self._callbacks: list[RemoteAbortCallback] = []
        self._last_sent = time.monotonic()
        self._listener = listener_for(client, payload.namespace)
        # Frames go up on one connection held for the whole reply (no checkout per token),
        # without waiting for each XADD's reply: Redis applies them in the order sent, and
        # the replies are collected when already there, or at the end (`_send`).
        self._conn: Any = None  # a redis Connection (its methods are untyped)
        self._unread = 0

    def open(self) -> Self:
        """Begin listening for aborts and tell the socket process the work started, in one
        round trip. (`reply_task` does the same in the round trip that claims the reply.)"""
        self.listen()
        with self._redis.pipeline(transaction=False) as pipe:
            self._listener.wake_ops(pipe)
            pipe.xadd(self._up, _wire.frame(self.message_id, _wire.START),  # type: ignore[arg-type]
                      maxlen=_wire.UP_MAXLEN, approximate=True)
            pipe.execute()
        return self

    def listen(self) -> None:
        """Register with the process's abort listener (it reads the control stream from its
        start, so an abort written before now is not missed)."""
        self._listener.add(self)

    def forget(self) -> None:
        """Unregister from the abort listener without ending (a reply not run after all)."""
        self._listener.remove(self)

    def wake_ops(self, pipe: redis.client.Pipeline) -> None:
        """Queue on `pipe` the write that makes the listener's read include this stream."""
        self._listener.wake_ops(pipe)

    @property
    def wake_key(self) -> str:
        """The abort listener's wake stream: a write to it makes its read include this
        stream (`reply_task` writes it in the command that claims the reply)."""
        return self._listener.wake_key

    def execute(self, *command: Any) -> Any:
        """Run one Redis command on the connection the reply's frames go up on and return
        its reply (for voicesync's claim: no pool checkout, and the first chunk then finds
        the connection held). Raises what redis-py raises. Any thread of the worker."""
        with self._lock:
            try:
                conn = self._conn
                if conn is None:
                    conn = self._conn = self._redis.connection_pool.get_connection()
                self._collect(conn, block=True)
                conn.send_command(*command, check_health=False)
                reply = conn.read_response()
            except BaseException:
                self._release(drop=True)
                raise
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

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
            sent = self._send(_wire.END, wait=True)
        self._listener.remove(self)
        return sent

    def abort(self, reason: str = "app") -> bool:
        """Stop the reply now, from the worker: the socket process aborts its stream with
        `reason`. Then run the `on_abort` callbacks on this thread. Idempotent. Any thread."""
        with self._lock:
            if self._ended:
                return False
            self._send(_wire.ABORT, reason, wait=True)
        self._listener.remove(self)
        return self._abort_locally(reason)

    # ----------------------------------------------------------------- internals

    def _send(self, kind: str, text: str = "", *, wait: bool = False) -> bool:
        """XADD one frame to the up stream (caller holds the lock, so frames keep order).

        Does not wait for Redis's reply unless `wait` (the last frame): a burst of tokens
        costs one write each, not one round trip each; an error surfaces a frame later.
        """
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._redis.connection_pool.get_connection()
            self._collect(conn, block=False)
            conn.send_command("XADD", self._up, "MAXLEN", "~", _wire.UP_MAXLEN, "*",
                              "m", self.message_id, "k", kind, "t", text,
                              check_health=False)  # its PING would read an XADD's reply
            self._unread += 1
            if wait:
                self._collect(conn, block=True)
                self._release(drop=False)
        except (redis.RedisError, OSError) as exc:
            logger.warning("reply %s: cannot reach Redis (%s)", self.message_id, exc)
            self._release(drop=True)
            return False
        self._last_sent = time.monotonic()
        return True

    def _collect(self, conn: Any, *, block: bool) -> None:
        """Read the XADD replies that arrived (all of them if `block`); raise on an error."""
        while self._unread and (block or conn.can_read(timeout=0)):
            self._unread -= 1
            reply = conn.read_response()
            if isinstance(reply, redis.ResponseError):
                raise reply

    def _release(self, *, drop: bool) -> None:
        """Give the connection back to the pool; `drop` closes it first (replies unread)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if drop or self._unread:
            conn.disconnect()
        self._unread = 0
        self._redis.connection_pool.release(conn)

    def _abort_locally(self, reason: str) -> bool:
        with self._lock:
            if self.aborted.is_set():
                return False
            self._ended = True
            self._abort_reason = reason
            self.aborted.set()
            callbacks, self._callbacks = self._callbacks, []
            with contextlib.suppress(redis.RedisError, OSError):
                if self._conn is not None:
                    self._collect(self._conn, block=False)
            self._release(drop=False)  # closes it if replies are still on the way
        self._listener.remove(self)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("on_abort callback of reply %s failed", self.message_id)
        return True

    def _command(self, name: str, kwargs: Any) -> bool:
        """Send one call command behind the chunks so far (RemoteCall's sender)."""
        with self._lock:
            if self._ended:
                return False
            return self._send(_wire.COMMAND, _commands.encode(name, kwargs))

    def _beat_if_quiet(self) -> None:
        """Tell the socket process this worker is alive if nothing went up for half a
        heartbeat (the listener thread)."""
        with self._lock:
            if not self._ended and time.monotonic() - self._last_sent >= self.heartbeat / 2:
                self._send(_wire.BEAT)
