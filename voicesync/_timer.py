"""The one timer mechanism: one-shot callbacks at their time on a `voicesync-timer` thread.

A client owns one `Timers` (registration-conflict retries, batched drop reports, the
debounced saves of its calls' histories); `close()` stops it. A `History` made outside a
client uses `shared()`. The thread starts on first use and ends after `linger` seconds
with nothing scheduled, so an idle process keeps no timer thread. Callbacks run in time
order and must be short: a slow one delays the others, never the reader or the heartbeat
(which keeps its own thread, so a slow history store cannot delay a ping).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

LINGER = 1.0  # seconds an idle timer thread waits for new work before it ends


class Timers:
    """A heap of callbacks and the thread that runs them. Any thread may schedule."""

    def __init__(self, linger: float = LINGER) -> None:
        self._linger = linger
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def schedule(self, delay: float, fn: Callable[[], object]) -> None:
        """Run fn on the timer thread after `delay` seconds. After `stop()` it runs at
        once on the calling thread instead (a history's last save is not lost)."""
        with self._cond:
            if not self._stopped:
                due = time.monotonic() + max(0.0, delay)
                heapq.heappush(self._heap, (due, next(self._order), fn))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="voicesync-timer", daemon=True)
                    self._thread.start()
                self._cond.notify()
                return
        _run(fn)

    def stop(self, timeout: float) -> None:
        """Drop what is not yet due, run what is, end the thread (waiting up to
        `timeout`); later callbacks run at once. Any thread, the timer's own included."""
        with self._cond:
            self._stopped = True
            now = time.monotonic()
            self._heap = [item for item in self._heap if item[0] <= now]
            heapq.heapify(self._heap)
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                fn = self._next()
                if fn is None:
                    self._thread = None
                    return
            _run(fn)

    def _next(self) -> Callable[[], object] | None:
        """The next due callback, waiting for it; None: stopped, or idle for `linger`."""
        while True:
            now = time.monotonic()
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)[2]
            if self._stopped:
                return None
            if self._heap:
                self._cond.wait(self._heap[0][0] - now)
            elif not self._cond.wait(self._linger) and not self._heap:
                return None


def _run(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        logger.exception("a timer callback failed")


_shared: Timers | None = None
_shared_lock = threading.Lock()


def shared() -> Timers:
    """The process's timers for histories made outside a client (never stopped: its
    thread ends when idle)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Timers()
        return _shared
