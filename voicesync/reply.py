"""ReplyStream: a streamed bot reply any thread may write, end or abort (docs/protocol.md §4.3)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from voicesync import _codec, _control
from voicesync._outbox import unless
from voicesync.errors import ReplyStreamClosedError

if TYPE_CHECKING:  # only for annotations: typing_extensions costs ~5 ms to import
    from typing_extensions import Self

logger = logging.getLogger(__name__)

AbortCallback = Callable[["ReplyStream"], Any]


class AbortFlag(threading.Event):
    """A `threading.Event` whose truth value is `is_set()`: ``if stream.aborted: break``."""

    def __bool__(self) -> bool:
        return self.is_set()


class AbortableStream:
    """What a local and a remote reply stream share: abort callbacks, `pipe()`, waiting.

    A subclass sets `aborted`, `_lock`, `_ended` and `_callbacks` and implements
    `write()`, `end()` and `abort()`.
    """

    aborted: AbortFlag
    _lock: threading.Lock
    _ended: bool
    _callbacks: list[Callable[[Any], Any]]
    _abort_reason: str | None
    _parts: list[str]  # what was written, in order
    call_id: str
    message_id: str

    def write(self, text: str) -> bool:
        raise NotImplementedError

    def end(self) -> bool:
        raise NotImplementedError

    def abort(self, reason: str = "app") -> bool:
        raise NotImplementedError

    @property
    def abort_reason(self) -> str | None:
        """Why it was aborted, None if not: ``bot.interrupted`` (the caller talked over
        the bot), ``turn.continued`` (the caller kept talking), ``cancelled`` (the app's
        `cancel()`/`clear()` stopped this message), ``rejected`` (the platform refused it:
        the turn it answers was superseded), ``call.ended``, ``disconnected``, ``error``
        (an exception in its ``with`` block), in a Celery worker ``offload.lost`` and the
        like, or what the app passed to `abort`."""
        return self._abort_reason

    @property
    def text(self) -> str:
        """Everything written so far."""
        with self._lock:
            return "".join(self._parts)

    def on_abort(self, callback: Callable[[Self], Any]) -> Callable[[], None]:
        """Run callback(stream) once, when the stream is aborted; at once if it already is.

        Keep it quick (close an HTTP response, set a flag): voicesync's own aborts run it
        on the `voicesync-control` thread (in a Celery worker, on the process's
        ``voicesync-abort-listener`` thread), one callback after another. Returns a
        function that unregisters it.
        """
        with self._lock:
            if not self.aborted.is_set():
                if not self._ended:
                    self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback(self)
        return lambda: None

    def _forget(self, callback: Callable[[Self], Any]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def pipe(self, chunks: Iterable[str]) -> str:
        """Write every chunk of `chunks` until it is exhausted or the stream aborts.

        On abort the iterator is closed (if it has ``close()``), which stops a generator
        wrapping an LLM call. Does not end the stream. Returns what this call wrote.
        """
        written: list[str] = []
        iterator = iter(chunks)
        try:
            for chunk in iterator:
                if not self.write(chunk):
                    break
                written.append(chunk)
        finally:
            if self.aborted.is_set():
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
        return "".join(written)

    def wait_aborted(self, timeout: float | None = None) -> bool:
        """Block until the stream is aborted or `timeout` passes; True if aborted."""
        return self.aborted.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end()
        else:
            self.abort("error")

    def __repr__(self) -> str:
        state = "aborted" if self.aborted.is_set() else "ended" if self._ended else "open"
        return f"<{type(self).__name__} {self.message_id} call={self.call_id} {state}>"


class ReplyStream(AbortableStream):
    """One streamed reply to the caller: ``start`` lazily, ``chunk`` per write, one ``end``.

    Thread-safety: `write`, `end`, `abort`, `pipe` and `on_abort` may be called from any
    thread. Frames of one stream are sent under its lock, so exactly one ``end`` frame
    is ever sent and nothing follows it. voicesync aborts the stream on its reader
    thread when the caller talks over the bot (`bot.interrupted`), keeps talking
    (`turn.continued`), the app cancels this message, the platform rejects it, the call
    ends or the connection drops (`abort_reason` says which).

    Use it as a context manager: the exit always ends the stream; an exception inside
    the block aborts it (``end`` is sent if anything was started) and propagates.
    """

    def __init__(
        self, call_id: str, message_id: str, in_reply_to: str,
        send: Callable[[dict[str, Any]], bool], on_done: Callable[[ReplyStream], None],
        *, cut_reason: Callable[[], str] | None = None,
    ) -> None:
        self.call_id = call_id
        self.message_id = message_id
        self.in_reply_to = in_reply_to
        self.aborted = AbortFlag()
        self._send = send
        self._on_done = on_done
        self._cut_reason = cut_reason or (lambda: "disconnected")  # when a send fails
        self._lock = threading.Lock()
        self._claim = threading.Lock()  # brief: decides between end() and a reader abort
        self._closing = False  # end() claimed the stream
        self._started = False
        self._ended = False
        self._abort_reason: str | None = None
        self._parts: list[str] = []
        self._callbacks: list[AbortCallback] = []

    # ----------------------------------------------------------------- state

    @property
    def ended(self) -> bool:
        """True once the stream ended or was aborted."""
        return self._ended or self.aborted.is_set()

    # ----------------------------------------------------------------- sending

    def write(self, text: str) -> bool:
        """Send `text` as the next chunk. Any thread; blocks only for the socket write.

        Returns False (and sends nothing) once the stream is aborted, so a loop can
        simply stop; a chunk that cannot be sent aborts the stream (``disconnected``).
        Raises ReplyStreamClosedError after `end()`.
        """
        with self._lock:
            if self.aborted.is_set():
                return False
            if self._ended:
                raise ReplyStreamClosedError(
                    f"reply stream {self.message_id} has ended; create a new one with "
                    "call.reply_stream() to say more")
            if not text:
                return True
            self._start_locked()
            self._parts.append(text)
            with unless(self.aborted):  # an abort applied meanwhile refuses the chunk
                if self._send(_codec.stream_frame(
                        self.call_id, self.message_id, "chunk", token=text)):
                    return True
            if self.aborted.is_set():  # refused: the reader finishes the abort
                self._parts.pop()
                return False
        self.abort(self._cut_reason())  # the socket (or the call) is gone: report it cut
        return False

    def end(self) -> bool:
        """Finish the reply. Idempotent; a no-op after `abort()`. Any thread.

        Returns True when this call sent the ``end`` frame. If it cannot be sent (the
        connection dropped) the stream is aborted with reason ``disconnected`` instead.
        """
        with self._lock:
            if self._ended or self.aborted.is_set():
                return False
            self._start_locked()  # the server must see a started message to end it
            with self._claim:  # against an abort the reader is applying right now
                if self.aborted.is_set():
                    return False
                self._closing = True
            sent = self._send(_codec.stream_frame(self.call_id, self.message_id, "end"))
            if sent:
                self._ended = True
                self._callbacks = []
        if not sent:  # never a silent success: the reply was cut
            self.abort(self._cut_reason())
            return False
        self._on_done(self)
        return True

    def abort(self, reason: str = "app") -> bool:
        """Stop the reply now: set `aborted`, send ``end`` if anything was started, then
        run the `on_abort` callbacks on this thread. Idempotent. Any thread.

        On voicesync's reader thread `aborted` is set at once and the ``end`` frame is
        queued if no writer holds the stream; the callbacks (and an ``end`` that had to
        wait) follow on the `voicesync-control` thread, so reading never waits for the
        app or the socket. Returns True when this call aborted the stream.
        """
        defer = _control.deferral()
        if defer is not None:
            # Never wait for the stream's lock here: a writer may hold it while it waits
            # for room in the outbox.
            with self._claim:
                if self._ended or self._closing or self.aborted.is_set():
                    return False
                self._abort_reason = reason
                self.aborted.set()
            if not self._lock.acquire(blocking=False):
                defer(lambda: self._finish_abort(reason, preset=True))
                return True
            try:  # free: send the end now (the outbox never makes the reader wait)
                sent, callbacks = self._end_locked(reason)
            finally:
                self._lock.release()
            defer(lambda: self._after_abort(callbacks, resend_end=not sent))
            return True
        return self._finish_abort(reason, preset=False)

    def _finish_abort(self, reason: str, *, preset: bool) -> bool:
        with self._lock:
            if self._ended:
                return False
            won = preset or not self.aborted.is_set()  # not already claimed by the reader
            _, callbacks = self._end_locked(reason)
        self._after_abort(callbacks)
        return won

    def _end_locked(self, reason: str) -> tuple[bool, list[AbortCallback]]:
        """Mark the stream aborted and send its end; (end sent or not needed, callbacks)."""
        self._ended = True
        self._abort_reason = self._abort_reason or reason
        self.aborted.set()
        sent = not self._started or self._send(
            _codec.stream_frame(self.call_id, self.message_id, "end"))
        callbacks, self._callbacks = self._callbacks, []
        return sent, callbacks

    def _after_abort(self, callbacks: list[AbortCallback], *, resend_end: bool = False) -> None:
        if resend_end:  # the outbox refused the reader; this thread may wait for room
            self._send(_codec.stream_frame(self.call_id, self.message_id, "end"))
        self._on_done(self)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("on_abort callback of reply %s failed", self.message_id)

    def _start_locked(self) -> None:
        if not self._started:
            self._started = True
            self._send(_codec.stream_frame(
                self.call_id, self.message_id, "start", in_reply_to=self.in_reply_to))

