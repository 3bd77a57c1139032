"""AbortListener: one thread per worker process hears the aborts of every reply it runs.

A ``voicesync-abort-listener`` thread holds one Redis connection in a blocking XREAD over the
control streams of all the process's replies in flight, plus a "wake" stream of its own: a
reply joins by adding its key to the set and writing to the wake stream (in the same
pipeline round trip that claims the reply), so the read restarts with it. An abort from the
socket process therefore wakes one read already waiting, with no thread started per reply
and no polling. The same thread sends the heartbeats of replies that have been quiet.

The thread ends by itself after `_IDLE_EXIT` seconds with no reply in flight (the next reply
starts another); `stop_abort_listeners` ends it now, for a process that is shutting down or a test
that checks every ``voicesync-`` thread ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis

from voicesync.celery import _wire

if TYPE_CHECKING:
    from voicesync.celery._remote import RemoteReplyStream

logger = logging.getLogger(__name__)

_IDLE_EXIT = 30.0  # seconds with no reply in flight before the thread ends (a new one starts)
WAKE_MAXLEN = 64

_listeners: dict[tuple[int, int, str], AbortListener] = {}
_listeners_lock = threading.Lock()


def listener_for(client: redis.Redis, namespace: str) -> AbortListener:
    """The process's listener for `client` (one per Redis client, namespace and process: a
    prefork child makes its own)."""
    key = (os.getpid(), id(client), namespace)
    with _listeners_lock:
        found = _listeners.get(key)
        if found is None:
            found = _listeners[key] = AbortListener(client, namespace)
        return found


def stop_abort_listeners(timeout: float = 5.0) -> bool:
    """End this process's abort listener threads now; True if all ended within `timeout`.

    Replies still in flight abort (``disconnected``): nothing would hear their barge-in. A
    reply started later gets a new listener. Any thread but a listener's own (its
    `on_abort` callbacks run there).
    """
    with _listeners_lock:
        mine = [key for key in _listeners if key[0] == os.getpid()]
        stopping = [_listeners.pop(key) for key in mine]
    deadline = time.monotonic() + timeout
    return all([listener.stop(max(0.0, deadline - time.monotonic())) for listener in stopping])


class AbortListener:
    """Delivers control-stream aborts to this process's `RemoteReplyStream`s.

    Thread-safety: `add`, `remove` and `wake` may be called from any thread, `stop` from
    any thread but the listener's own; the streams' abort callbacks run on the listener's
    thread.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._redis = client
        self.wake_key = (f"{namespace}:wake:{socket.gethostname()}:{os.getpid()}:"
                         f"{uuid.uuid4().hex[:8]}")
        self._lock = threading.Lock()
        self._streams: dict[str, tuple[RemoteReplyStream, str]] = {}  # ctl key -> (s, last id)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # the current thread's: a new thread, a new one

    def add(self, stream: RemoteReplyStream) -> None:
        """Listen for `stream`'s aborts from the start of its control stream. The caller
        then writes to `wake_key` (`wake`, or in its own pipeline) so the read includes it."""
        with self._lock:
            self._streams[stream.control_key] = (stream, "0-0")
            if self._thread is None:
                self._stopping = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stopping,),
                                                daemon=True, name="voicesync-abort-listener")
                self._thread.start()

    def remove(self, stream: RemoteReplyStream) -> None:
        """Stop listening for `stream` (it ended or aborted). No round trip: the next read
        leaves its key out."""
        with self._lock:
            self._streams.pop(stream.control_key, None)

    def wake_ops(self, pipe: redis.client.Pipeline) -> None:
        """Queue the write that restarts the blocked read on `pipe`."""
        pipe.xadd(self.wake_key, {"k": "wake"}, maxlen=WAKE_MAXLEN, approximate=True)
        pipe.expire(self.wake_key, _wire.CTL_TTL)

    def wake(self) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            self.wake_ops(pipe)
            pipe.execute()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the thread now (its replies in flight abort, ``disconnected``); True if it
        ended within `timeout`. A later `add` starts a new one. Any thread but the
        listener's own."""
        with self._lock:
            thread, self._thread = self._thread, None
            streams = [s for s, _ in self._streams.values()]
            self._streams.clear()
            self._stopping.set()
        if thread is None:
            return True
        with contextlib.suppress(redis.RedisError, OSError):
            self.wake()  # ends the blocked read now, not at its timeout
        for stream in streams:
            stream._abort_locally("disconnected")
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self, stopping: threading.Event) -> None:
        wake_last = "0-0"  # its own key, new: nothing old to skip, and no wake is missed
        idle_since = time.monotonic()
        try:
            while True:
                with self._lock:
                    if stopping.is_set():
                        return
                    keys = {key: last for key, (_, last) in self._streams.items()}
                    heartbeat = min((s.heartbeat for s, _ in self._streams.values()),
                                    default=1.0)
                    now = time.monotonic()
                    if keys:
                        idle_since = now
                    elif now - idle_since > _IDLE_EXIT:
                        self._thread = None
                        return
                reading: dict[Any, Any] = {self.wake_key: wake_last, **keys}
                replies: Any = self._redis.xread(
                    reading, block=min(2000, max(1, int(heartbeat * 500))))
                for key, batch in replies or ():
                    if key == self.wake_key:
                        wake_last = str(batch[-1][0])
                        continue
                    self._deliver(str(key), batch)
                self._beat()
        except Exception as exc:  # a RedisError, or the app closed the client
            with self._lock:
                if stopping.is_set():
                    return
                streams = [s for s, _ in self._streams.values()]
                self._streams.clear()
                self._thread = None
            if streams:
                logger.warning("lost Redis (%s); stopping this worker's replies", exc)
            for stream in streams:
                stream._abort_locally("disconnected")

    def _deliver(self, key: str, batch: Any) -> None:
        with self._lock:
            found = self._streams.get(key)
            if found is not None:
                self._streams[key] = (found[0], str(batch[-1][0]))
        if found is None:
            return
        for _, (_, kind, reason) in _wire.entries(batch):
            if kind == _wire.ABORT:
                logger.debug("reply %s aborted by the socket process: %s",
                             found[0].message_id, reason)
                self.remove(found[0])
                found[0]._abort_locally(reason)
                return

    def _beat(self) -> None:
        with self._lock:
            streams = [s for s, _ in self._streams.values()]
        for stream in streams:
            stream._beat_if_quiet()
