"""A call's session limits (docs/protocol.md §3.4, §9.7): the idle watchdog and the max duration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from voicesync.sim._clock import Clock, Timer

DEFAULT_LIMITS = {
    "max_duration_seconds": 600.0,
    "idle_timeout_seconds": 60.0,
    "idle_warning_seconds": 15.0,
    "idle_grace_seconds": 10.0,
}


def limit(limits: Mapping[str, Any], key: str) -> float:
    """A limit in simulated seconds; 0 disables it. Bad values fall back to the default."""
    value = limits.get(key, DEFAULT_LIMITS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return DEFAULT_LIMITS[key]
    return float(value)


# Called with (kind, remaining_seconds); kind is "warning", "last_warning" or "timeout".
IdleCallback = Callable[[str, float], None]


class IdleWatch:
    """Counts the caller's silence on the scaled clock.

    Only user speech resets it; bot speech pauses it. Steps: a warning `idle_warning`
    before the timeout, a last warning at the timeout, and the hang-up after the grace.
    """

    def __init__(self, clock: Clock, lock: threading.RLock, limits: Mapping[str, Any],
                 on_step: IdleCallback) -> None:
        self._clock = clock
        self._lock = lock
        self._on_step = on_step
        timeout = limit(limits, "idle_timeout_seconds")
        warning = limit(limits, "idle_warning_seconds")
        grace = limit(limits, "idle_grace_seconds")
        self._steps: list[tuple[float, str, float]] = []
        if timeout > 0:
            if 0 < warning < timeout:
                self._steps.append((timeout - warning, "warning", warning))
            self._steps.append((timeout, "last_warning", grace))
            self._steps.append((timeout + grace, "timeout", 0.0))
        self.timeout_seconds = timeout
        self._elapsed = 0.0
        self._since: float | None = None
        self._step = 0
        self._timer: Timer | None = None
        self._stopped = False

    def start(self) -> None:
        self.resume()

    def reset(self) -> None:
        """The caller spoke."""
        self._elapsed = 0.0
        self._step = 0
        if self._since is not None:
            self._since = self._clock.now()
            self._schedule()

    def pause(self) -> None:
        if self._since is not None:
            self._elapsed += self._clock.sim_elapsed(self._since)
            self._since = None
            self._cancel()

    def resume(self) -> None:
        if self._since is None and not self._stopped:
            self._since = self._clock.now()
            self._schedule()

    def stop(self) -> None:
        self._stopped = True
        self._since = None
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._cancel()
        if self._step >= len(self._steps):
            return
        at = self._steps[self._step][0]
        timer: Timer | None = None

        def fire() -> None:
            with self._lock:
                if timer is None or timer.cancelled or self._timer is not timer:
                    return
                self._fire()

        timer = self._timer = self._clock.after_sim(max(0.0, at - self._elapsed), fire)

    def _fire(self) -> None:
        if self._since is None:
            return
        self._elapsed += self._clock.sim_elapsed(self._since)
        self._since = self._clock.now()
        _, kind, remaining = self._steps[self._step]
        self._step += 1
        self._timer = None
        self._schedule()
        self._on_step(kind, remaining)
