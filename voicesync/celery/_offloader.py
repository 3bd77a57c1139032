"""Offloader: the socket process's side of offloading turns to Celery workers.

`offload()` opens the call's ReplyStream, records the reply as in flight and publishes the
task; it returns at once, so no handler thread waits on a worker. Three threads serve every
reply in flight, however many there are:

- ``voicesync-offload-relay`` reads the one up stream all workers write to (XREAD BLOCK),
  writes chunks to the replies' ReplyStreams in order, and enforces the deadlines;
- ``voicesync-offload-sender`` writes aborts to the replies' control streams, so an abort on
  voicesync's reader thread (a barge-in) never waits on Redis;
- ``voicesync-offload-notify`` runs the app's ``on_failure`` callback, off both of those.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import redis
from typing_extensions import Self

from voicesync.call import Call
from voicesync.celery import _commands, _wire
from voicesync.celery._commands import RemoteCall
from voicesync.celery._handle import Offload
from voicesync.celery._publish import Publisher
from voicesync.celery._wire import OffloadUnavailableError
from voicesync.errors import ConfigurationError
from voicesync.events import Turn

logger = logging.getLogger(__name__)

LOST, UNSTARTED, CLOSED, UNAVAILABLE = _wire.LOST, _wire.UNSTARTED, _wire.CLOSED, _wire.UNAVAILABLE
FAILURES = frozenset({LOST, UNSTARTED, "error"})  # what on_failure is told about
_SCAN_EVERY = 0.05  # seconds between deadline scans; also the relay's longest block
_UP_TTL = 3600  # the up stream expires this long after the relay stops refreshing it


@dataclass(eq=False)
class _Flight:
    offload: Offload
    call: Call  # where the worker's call commands run
    last_seen: float = field(default_factory=time.monotonic)
    from_worker: bool = False  # the worker aborted it: do not echo the abort back


FailureCallback = Callable[[Offload, str], Any]


class Offloader:
    """Hands turns to Celery reply tasks and speaks their tokens on this process's calls.

    Args:
        redis_url: the Redis that carries tokens and aborts (the workers' `reply_task` must
            use the same one; it may also be the Celery broker).
        namespace: prefix of every Redis key voicesync writes.
        start_within: a reply no worker has started after this many seconds is aborted
            (``offload.unstarted``); None waits for ever.
        lost_after: a started reply from which nothing (token or heartbeat) arrived for this
            many seconds is aborted (``offload.lost``): its worker died or stalled.
        heartbeat: how often a worker signals it is alive while its task computes.
        connect_timeout: how long connecting to Redis may take before offloading fails.
        fallback: when Redis or the broker cannot be reached, answer the turn in this
            process (on the calling thread, with the task's function and the call's
            ReplyStream) instead of raising OffloadUnavailableError.
        on_failure: ``fn(offload, reason)`` when a reply is cut by a failure (``offload.lost``,
            ``offload.unstarted``, ``error``), on the ``voicesync-offload-notify`` thread, so
            the app can apologise or retry in process. Failures are logged as warnings too.

    Thread-safety: `offload` may be called from any thread (usually a voicesync handler);
    `start` and `close` from any thread but the ones this class runs.
    """

    def __init__(self, redis_url: str, *, namespace: str = "voicesync",
                 start_within: float | None = 10.0, lost_after: float = 3.0,
                 heartbeat: float = 1.0, connect_timeout: float = 0.5,
                 fallback: bool = False, on_failure: FailureCallback | None = None) -> None:
        if heartbeat * 2 > lost_after:
            raise ConfigurationError(
                f"lost_after ({lost_after:g} s) must be at least twice the heartbeat "
                f"({heartbeat:g} s), or a busy worker looks dead")
        self.namespace = namespace
        self.start_within = start_within
        self.lost_after = lost_after
        self.heartbeat = heartbeat
        self.fallback = fallback
        self.on_failure = on_failure
        self.relay_id = uuid.uuid4().hex[:12]
        self._up = _wire.up_key(namespace, self.relay_id)
        options: dict[str, Any] = {"decode_responses": True,
                                   "socket_connect_timeout": connect_timeout}
        self._read = redis.Redis.from_url(redis_url, socket_timeout=5.0, **options)
        self._write = redis.Redis.from_url(redis_url, socket_timeout=2.0, **options)
        self._publisher = Publisher(connect_timeout)
        self._up_conn: Any = None  # the relay's redis Connection (its methods are untyped)
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._healthy = threading.Event()
        self._closing = threading.Event()
        self._outbox: queue.SimpleQueue[Offload | None] = queue.SimpleQueue()
        self._failures: queue.SimpleQueue[tuple[Offload, str] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self, *tasks: Any) -> Self:
        """Connect to Redis and start the threads. Idempotent; `offload` calls it.

        `tasks` (reply tasks) are prepared now: their route and message worked out and
        their broker connected, which their first `offload` would otherwise do (~6 ms).

        Raises OffloadUnavailableError if Redis cannot be reached (unless ``fallback``).
        """
        for task in tasks:  # before any thread starts: a failure leaves nothing running
            try:
                self._publisher.prepare(task)
            except redis.RedisError as exc:
                if not self.fallback:
                    raise _unavailable(exc) from exc
                logger.warning("cannot reach the broker of %s (%s)", task.name, exc)
        return self._start()

    def _start(self) -> Self:
        with self._lock:
            if self._threads:
                return self
            if self._closing.is_set():
                raise ConfigurationError("this Offloader was closed; make a new one")
            try:
                self._read.ping()
                self._healthy.set()
            except redis.RedisError as exc:
                if not self.fallback:
                    raise _unavailable(exc) from exc
                logger.warning("Redis unreachable (%s): answering turns in process", exc)
            for name, target in (("relay", self._relay), ("sender", self._send_aborts),
                                 ("notify", self._notify)):
                thread = threading.Thread(target=target, name=f"voicesync-offload-{name}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Abort the replies still in flight (``offload.closed``) and stop the threads."""
        with self._lock:
            flights = list(self._flights.values())
        for flight in flights:
            flight.offload.stream.abort(CLOSED)
        self._closing.set()
        self._outbox.put(None)
        self._failures.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(redis.RedisError):
            self._write.delete(self._up)
        self._read.close()
        self._write.close()
        self._publisher.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Replies handed off and not yet ended or aborted."""
        with self._lock:
            return len(self._flights)

    # ------------------------------------------------------------------ offloading

    def offload(self, turn: Turn, call: Call, task: Any, *args: Any, **kwargs: Any) -> Offload:
        """Hand `turn` to `task` (a `reply_task`); its tokens are spoken on `call`.

        Returns at once. Extra arguments go to the task function after (stream, turn, call)
        and must be JSON-serialisable. Any thread.

        Raises OffloadUnavailableError if Redis or the broker cannot be reached (unless the
        Offloader was built with ``fallback=True``: then the turn is answered here, now).
        """
        function = getattr(task, "voicesync_function", None)
        if function is None:
            raise ConfigurationError(
                f"{task!r} is not a reply task: decorate its function with "
                "@voicesync.celery.reply_task(app)")
        self._start()
        stream = call.reply_stream(turn)
        handle = Offload(stream)
        if stream.aborted.is_set():  # the call ended before its turn was handed off
            handle._done.set()
            return handle
        if not self._healthy.is_set():
            return self._unavailable(handle, None, turn=turn, call=call, function=function,
                                     args=args, kwargs=kwargs)
        flight = _Flight(handle, call)
        with self._lock:
            self._flights[stream.message_id] = flight
        forget = stream.on_abort(lambda s: self._aborted(flight))
        payload = _wire.Payload(self.namespace, self._up, stream.message_id, self.heartbeat,
                                turn, _wire.CallInfo.of(call))
        try:
            self._publisher.publish(task, (payload.to_json(), *args), kwargs, stream.message_id)
        except Exception as exc:  # kombu's errors vary by transport; all mean "not sent"
            with self._lock:
                self._flights.pop(stream.message_id, None)
            forget()  # no worker to tell about aborts
            return self._unavailable(handle, exc, turn=turn, call=call, function=function,
                                     args=args, kwargs=kwargs)
        return handle

    def handler(self, task: Any, *args: Any, **kwargs: Any) -> Callable[[Turn, Call], Offload]:
        """A turn handler that offloads every turn: ``agent.on("turn.end", off.handler(t))``."""
        def on_turn(turn: Turn, call: Call) -> Offload:
            return self.offload(turn, call, task, *args, **kwargs)
        return on_turn

    def _unavailable(self, handle: Offload, exc: BaseException | None, *, turn: Turn,
                     call: Call, function: Callable[..., Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Offload:
        if not self.fallback:
            handle.stream.abort(UNAVAILABLE)
            handle._done.set()
            error = _unavailable(exc)
            raise error from exc
        logger.warning("offloading reply %s failed (%s); answering it in process",
                       handle.message_id, exc or "Redis unreachable")
        handle.in_process = True
        with handle.stream as stream:
            function(stream, turn, RemoteCall.bind(_wire.CallInfo.of(call), _commands.local(call)),
                     *args, **kwargs)
        handle._done.set()
        return handle

    # ------------------------------------------------------------------ aborts

    def _aborted(self, flight: _Flight) -> None:
        """The reply's ReplyStream was aborted, on any thread: forget it, tell the worker."""
        offload = flight.offload
        with self._lock:
            self._flights.pop(offload.message_id, None)
        if flight.from_worker:
            offload._done.set()
        else:  # done once the worker has been told (see _send_aborts)
            self._outbox.put(offload)

    def _send_aborts(self) -> None:
        """The sender thread: write each abort to its reply's control stream."""
        while True:
            offload = self._outbox.get()
            if offload is None:
                return
            message_id, reason = offload.message_id, offload.abort_reason or "app"
            key = _wire.ctl_key(self.namespace, message_id)
            try:
                with self._write.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, _wire.frame(message_id, _wire.ABORT, reason))  # type: ignore[arg-type]
                    pipe.expire(key, _wire.CTL_TTL)
                    pipe.execute()
            except redis.RedisError as exc:
                logger.warning("could not tell the worker reply %s was aborted (%s): %s",
                               message_id, reason, exc)
            offload._done.set()

    def _fail(self, flight: _Flight, reason: str) -> None:
        if flight.offload.stream.abort(reason):
            logger.warning("offloaded reply %s aborted: %s", flight.offload.message_id, reason)
            if self.on_failure is not None:
                self._failures.put((flight.offload, reason))

    def _notify(self) -> None:
        """The notify thread: run on_failure callbacks, one at a time."""
        while True:
            item = self._failures.get()
            if item is None:
                return
            if self.on_failure is not None:
                try:
                    self.on_failure(*item)
                except Exception:
                    logger.exception("on_failure callback failed")

    # ------------------------------------------------------------------ relay

    def _relay(self) -> None:
        """The relay thread: apply worker frames in order; enforce the deadlines."""
        last = "0-0"
        next_scan = next_refresh = 0.0
        while not self._closing.is_set():
            try:
                replies = self._read_up(last)
                if not self._healthy.is_set():
                    logger.info("Redis reachable again: offloading turns")
                self._healthy.set()
            except redis.RedisError as exc:
                if self._healthy.is_set():
                    logger.warning("lost Redis (%s); offloaded replies will time out", exc)
                self._healthy.clear()
                replies = []
                self._closing.wait(_SCAN_EVERY)
            for entry_id, frame in _wire.coalesced(replies):
                last = entry_id
                try:
                    self._apply(*frame)
                except Exception:  # e.g. the app ended the stream itself: keep relaying
                    logger.exception("offloaded reply %s: could not apply %s", *frame[:2])
            now = time.monotonic()
            if now >= next_scan:
                next_scan = now + _SCAN_EVERY
                self._check_deadlines(now)
            if now >= next_refresh and self._healthy.is_set():
                next_refresh = now + 60.0
                with contextlib.suppress(redis.RedisError):
                    self._write.expire(self._up, _UP_TTL)

    def _read_up(self, last: str) -> Any:
        """One XREAD of the up stream (as redis-py returns it) on the relay's own connection:
        no pool checkout, and the readiness poll that comes with it, per read."""
        conn = self._up_conn
        if conn is None:
            conn = self._up_conn = self._read.connection_pool.get_connection()
        try:
            conn.send_command("XREAD", "COUNT", 1000, "BLOCK", int(_SCAN_EVERY * 1000),
                              "STREAMS", self._up, last, check_health=False)
            raw = conn.read_response()
        except BaseException:
            self._up_conn = None
            conn.disconnect()
            self._read.connection_pool.release(conn)
            raise
        return _wire.xread_reply(raw)

    def _apply(self, message_id: str, kind: str, text: str) -> None:
        with self._lock:
            flight = self._flights.get(message_id)
        if flight is None:  # ended, aborted, or the call is gone: drop it
            return
        offload = flight.offload
        if offload.stream.ended and not offload.stream.aborted.is_set():
            # The app ended the stream itself: the reply is over; tell the worker to stop.
            with self._lock:
                self._flights.pop(message_id, None)
            self._outbox.put(offload)
            return
        now = flight.last_seen = time.monotonic()
        if kind == _wire.START:
            offload.started_at = now
        elif kind == _wire.CHUNK:
            if offload.stream.write(text) and offload.first_chunk_at is None:
                offload.first_chunk_at = time.monotonic()
        elif kind == _wire.COMMAND:
            _commands.run(flight.call, text)
        elif kind == _wire.END:
            offload.stream.end()
            with self._lock:
                self._flights.pop(message_id, None)
            offload._done.set()
        elif kind == _wire.ABORT:
            flight.from_worker = True
            if text in FAILURES:
                self._fail(flight, text)
            else:
                offload.stream.abort(text)

    def _check_deadlines(self, now: float) -> None:
        with self._lock:
            flights = list(self._flights.values())
        for flight in flights:
            offload = flight.offload
            if offload.started_at is None:
                if self.start_within is not None and now - offload.handed_at > self.start_within:
                    self._fail(flight, UNSTARTED)
            elif now - flight.last_seen > self.lost_after:
                self._fail(flight, LOST)


def _unavailable(exc: BaseException | None) -> OffloadUnavailableError:
    return OffloadUnavailableError(
        f"cannot hand the turn to a worker: Redis or the Celery broker is unreachable "
        f"({exc or 'lost'}). Start Redis / check the URL, or build the Offloader with "
        "fallback=True to answer turns in process meanwhile.")
