"""Delay arithmetic for reconnects and registration-conflict retries; nothing here sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect backoff with additive jitter (docs/protocol.md §1.6).

    `delay(n)` for attempt n = 0, 1, 2... is ``min(initial * factor**n, maximum)`` plus
    0-25 % of that, so a fleet of clients does not redial in lock-step.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, rand: float | None = None) -> float:
        base = min(self.initial * self.factor ** min(attempt, 64), self.maximum)
        r = random.random() if rand is None else rand
        return base * (1.0 + self.jitter * r)


CONFLICT_BUDGET = 90.0  # two server liveness windows (docs/protocol.md §2.6)


@dataclass
class ConflictEpisode:
    """Retry state for one agent whose id is held by another connection (§2.6)."""

    started_at: float
    attempt: int = 0
    holder_alive: bool = False

    def hint(self, holder_alive: object, now: float) -> None:
        """Absorb the server's `holder_alive` hint; False starts a fresh budget."""
        if holder_alive is True:
            self.holder_alive = True
        elif holder_alive is False:
            self.holder_alive = False
            self.attempt = 0
            self.started_at = now

    def next_delay(self, retry_after: float | None, now: float,
                   rand: float | None = None) -> float | None:
        """Seconds until the next agent.create, or None when the budget is spent."""
        remaining = CONFLICT_BUDGET - (now - self.started_at)
        if remaining <= 0:
            return None
        cap = 600.0 if self.holder_alive else 60.0
        if retry_after is not None:
            base = min(retry_after, cap)
        else:
            base = min(5.0 * 2 ** self.attempt, cap)
        r = random.random() if rand is None else rand
        self.attempt += 1
        return min(base * (0.85 + 0.30 * r), remaining)
