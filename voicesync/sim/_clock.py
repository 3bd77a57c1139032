"""The simulator's one timer thread: a heap of due times, scaled for the platform's limits.

Every paced or delayed action of every call (words, idle and duration limits, ringing,
tool and preparing budgets) is a timer on this heap, so hundreds of calls cost one thread.

In virtual mode the clock's time is real time plus an offset: a timer marked `skippable`
(the pace of simulated speech) never waits; the clock jumps forward to it instead. So a
minute of bot speech takes no real time, while everything the agent does (think, stream,
answer) still costs its real time, and the frame record's timestamps, taken from `now()`,
measure the agent's own latency. `advance()` jumps over a scripted silence the same way.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Timer:
    """A pending callback; `cancel()` makes it a no-op (it is dropped lazily from the heap)."""

    __slots__ = ("cancelled", "due", "fn", "skippable")

    def __init__(self, due: float, fn: Callable[[], None], skippable: bool = False) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False
        self.skippable = skippable

    def cancel(self) -> None:
        self.cancelled = True
        # The entry stays in the heap until its due time (a call's 600 s max-duration
        # timer, say): drop the callback now so it does not keep the call alive.
        self.fn = _noop


def _noop() -> None:
    return None


class Clock:
    """Runs callbacks at monotonic due times on the `voicesync-sim-clock` thread.

    `time_scale` is real seconds per simulated second for the platform's own timers
    (`after_sim`): 0.001 turns a 60 s idle timeout into 60 ms. Word pacing uses real
    seconds (`after`), governed by `words_per_second` instead.
    """

    def __init__(self, time_scale: float = 1.0, *, virtual: bool = False) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self.virtual = virtual
        self._offset = 0.0  # seconds jumped over (virtual mode); only grows
        self._holds = 0
        self._firing = False
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="voicesync-sim-clock",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def now(self) -> float:
        """The clock's time: `time.monotonic()`, plus what virtual mode jumped over.

        Any thread (the offset is one float, only ever increased, under the lock).
        """
        return time.monotonic() + self._offset

    def now_ns(self) -> int:
        return time.monotonic_ns() + int(self._offset * 1e9)

    def at(self, due: float, fn: Callable[[], None], *, skippable: bool = False) -> Timer:
        """Run `fn` at clock time `due` (or as soon as possible if it is past).

        A `skippable` timer in virtual mode does not wait: the clock jumps to `due`.
        """
        timer = Timer(due, fn, skippable)
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), timer))
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def after(self, seconds: float, fn: Callable[[], None]) -> Timer:
        """Run `fn` after `seconds` of clock time."""
        return self.at(self.now() + max(0.0, seconds), fn)

    def advance(self, seconds: float) -> None:
        """Virtual mode: jump `seconds` ahead (timers now due fire on the clock thread).

        Any thread. In real-time mode this is an error: real time cannot be skipped.
        """
        if not self.virtual:
            raise RuntimeError("advance() needs a virtual clock (Simulator(virtual_time=True))")
        with self._cond:
            self._offset += max(0.0, seconds)
            self._cond.notify_all()

    def settle(self, timeout: float) -> None:
        """Wait until every timer due by now has run (after `advance()`). Any thread.

        Raises:
            TimeoutError: they did not within `timeout` real seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stopping and (self._firing or (
                    self._heap and self._heap[0][0] <= self.now() and not self._holds)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the clock's due timers did not run within {timeout:g} s")
                self._cond.wait(remaining)

    def hold(self) -> None:
        """Fire nothing until `release()`: a test sets up its triggers without a race.

        Any thread; holds nest (each needs its release)."""
        with self._cond:
            self._holds += 1

    def release(self) -> None:
        with self._cond:
            self._holds = max(0, self._holds - 1)
            self._cond.notify_all()

    def after_sim(self, sim_seconds: float, fn: Callable[[], None]) -> Timer:
        """Run `fn` after `sim_seconds` of simulated (scaled) time."""
        return self.after(sim_seconds * self.time_scale, fn)

    def sim_elapsed(self, since: float) -> float:
        """Simulated seconds since a clock instant (a `now()` value)."""
        return (self.now() - since) / self.time_scale

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if not self._heap or self._holds:
                        self._cond.wait()
                        continue
                    due, _, head = self._heap[0]
                    if head.cancelled:  # never jump the clock to a cancelled timer
                        heapq.heappop(self._heap)
                        continue
                    delay = due - self.now()
                    if delay > 0 and self.virtual and head.skippable:
                        self._offset += delay
                        delay = 0
                    if delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopping:
                    return
                _, _, timer = heapq.heappop(self._heap)
                self._firing = True
            try:
                if not timer.cancelled:
                    timer.fn()
            except Exception:
                logger.exception("simulator timer failed")
            finally:
                with self._cond:
                    self._firing = False
                    self._cond.notify_all()
