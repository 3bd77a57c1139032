"""Handler workers: one serial lane per call on an elastic pool of named threads.

A lane runs its tasks in order on one worker at a time, so a call's handlers see its
events in wire order. Lanes run in parallel, and a worker is started whenever every
existing one is busy, so a handler that blocks for seconds (an LLM loop) only ever
holds up its own call. Idle workers retire after `idle_timeout`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

SLOW_DISPATCH = 0.1  # seconds from frame received to handler start before warning
Task = tuple[Callable[..., Any], tuple[Any, ...], float, int]  # fn, args, received, bytes


class _Lane:
    __slots__ = ("bytes", "key", "scheduled", "tasks")

    def __init__(self, key: str) -> None:
        self.key = key
        self.tasks: collections.deque[Task] = collections.deque()
        self.bytes = 0  # wire bytes of the queued tasks' frames
        self.scheduled = False


class LagMeter:
    """The last `size` dispatch lags (frame received → handler start), in seconds."""

    def __init__(self, size: int = 4096) -> None:
        self._lock = threading.Lock()
        self._samples: collections.deque[float] = collections.deque(maxlen=size)
        self.maximum = 0.0

    def add(self, lag: float) -> None:
        with self._lock:
            self._samples.append(lag)
            self.maximum = max(self.maximum, lag)

    def percentiles(self, *qs: float) -> list[float]:
        with self._lock:
            data = sorted(self._samples)
        if not data:
            return [0.0 for _ in qs]
        return [data[min(len(data) - 1, int(q * len(data)))] for q in qs]


class Lanes:
    """Per-key serial execution on an elastic set of `voicesync-handler-N` threads."""

    def __init__(
        self, *, on_error: Callable[[BaseException, str], None], max_workers: int = 1000,
        max_backlog: int = 10_000, max_backlog_bytes: int = 16 << 20,
        idle_timeout: float = 30.0,
    ) -> None:
        self._on_error = on_error
        self._max_workers = max_workers
        self.max_backlog = max_backlog
        self.max_backlog_bytes = max_backlog_bytes
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._want = threading.Condition(self._lock)  # wakes the spawner
        self._to_spawn = 0  # workers asked for, not yet created by the spawner
        self._starting = 0  # workers asked for, not yet taking work
        self._spawner: threading.Thread | None = None
        self._lanes: dict[str, _Lane] = {}
        self._ready: collections.deque[_Lane] = collections.deque()
        self._idle = 0
        self._threads: set[threading.Thread] = set()
        self._names = itertools.count(1)
        self._closed = False
        self.lag = LagMeter()
        self.dropped = 0
        self._warned_at = 0.0

    def submit(self, key: str, fn: Callable[..., Any], *args: Any,
               received_at: float | None = None, size: int = 0) -> bool:
        """Queue fn(*args) on lane `key`, charging `size` bytes to its backlog. False
        when closed or the lane's backlog is full (in events or in bytes)."""
        task: Task = (fn, args, time.monotonic() if received_at is None else received_at,
                      size)
        with self._lock:
            if self._closed:
                return False
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(key)
            if len(lane.tasks) >= self.max_backlog or (
                    lane.tasks and lane.bytes + size > self.max_backlog_bytes):
                self.dropped += 1
                return False
            lane.tasks.append(task)
            lane.bytes += size
            if lane.scheduled:
                return True
            lane.scheduled = True
            self._ready.append(lane)
            grow = (len(self._ready) > self._idle + self._starting
                    and len(self._threads) + self._to_spawn < self._max_workers)
            if grow:
                self._to_spawn += 1
                self._starting += 1
                self._want.notify()
            else:
                self._work.notify()
            if grow and self._spawner is None:
                # Started under the lock (once per client) so close() never sees a
                # spawner it cannot join; the new thread does not need the lock to start.
                self._spawner = threading.Thread(
                    target=self._spawn_loop, name="voicesync-spawner", daemon=True)
                self._spawner.start()
        return True

    def _spawn_loop(self) -> None:
        """Start workers on request. Thread.start() waits until the new thread runs,
        which under load means winning the GIL; doing it here keeps that wait off the
        reader thread, so a burst of new calls never stalls reading."""
        while True:
            with self._lock:
                while not self._to_spawn and not self._closed:
                    self._want.wait()
                if self._closed:
                    return
                count, self._to_spawn = self._to_spawn, 0
                threads = [threading.Thread(
                    target=self._run, name=f"voicesync-handler-{next(self._names)}",
                    daemon=True) for _ in range(count)]
                self._threads.update(threads)
            for thread in threads:
                thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        with self._lock:
            self._starting -= 1
        while True:
            with self._lock:
                while not self._ready:
                    if self._closed:
                        self._threads.discard(me)
                        return
                    self._idle += 1
                    woke = self._work.wait(self._idle_timeout)
                    self._idle -= 1
                    if not woke and not self._ready:
                        self._threads.discard(me)
                        return
                lane = self._ready.popleft()
            self._drain(lane)

    def _drain(self, lane: _Lane) -> None:
        while True:
            with self._lock:
                if not lane.tasks:
                    lane.scheduled = False
                    if self._lanes.get(lane.key) is lane:
                        del self._lanes[lane.key]
                    return
                fn, args, received_at, size = lane.tasks.popleft()
                lane.bytes -= size
            self._measure(time.monotonic() - received_at, lane.key)
            try:
                fn(*args)
            except BaseException as exc:  # a handler's failure never stops its lane
                self._on_error(exc, lane.key)

    def _measure(self, lag: float, key: str) -> None:
        self.lag.add(lag)
        if lag > SLOW_DISPATCH and time.monotonic() - self._warned_at > 10.0:
            # A slow hand-off means the GIL is starved (CPU-bound code in some thread)
            # or handler threads hit max_workers; say so, at most every 10 s.
            self._warned_at = time.monotonic()
            logger.warning("handler for %s started %.0f ms after its event arrived", key,
                           lag * 1e3)

    @property
    def threads(self) -> int:
        return len(self._threads)

    def close(self, deadline: float) -> list[str]:
        """Stop taking work, let running handlers finish until `deadline`.

        Returns the names of handler threads still running at the deadline (blocked
        handlers cannot be interrupted; they are daemon threads and end with the process).
        """
        with self._lock:
            self._closed = True
            pending = sum(len(lane.tasks) for lane in self._lanes.values())
            for lane in self._lanes.values():
                lane.tasks.clear()
                lane.bytes = 0
            self._work.notify_all()
            self._want.notify_all()
            spawner = self._spawner
        if pending:
            logger.info("closing: %d queued handler call(s) were not run", pending)
        current = threading.current_thread()
        # The spawner first: it may be between creating a batch of workers and starting
        # them, and a thread that was never started cannot be joined.
        if spawner is not None and spawner is not current:
            spawner.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            threads = [t for t in self._threads if t.ident is not None]
        if spawner is not None:
            threads.append(spawner)
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in threads if t.is_alive() and t is not current]
