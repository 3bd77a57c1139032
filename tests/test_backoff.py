"""Reconnect and conflict-retry delays (docs/protocol.md §1.6, §2.6)."""

from __future__ import annotations

from voicesync._backoff import CONFLICT_BUDGET, Backoff, ConflictEpisode


def test_reconnect_delays_double_to_the_cap_with_additive_jitter() -> None:
    b = Backoff()
    assert [b.delay(n, rand=0.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert b.delay(0, rand=0.999) < 1.25 and b.delay(10, rand=1.0) == 37.5


def test_conflict_retry_honours_hints_and_the_budget() -> None:
    e = ConflictEpisode(started_at=0.0)
    assert e.next_delay(None, now=0.0, rand=0.5) == 5.0
    assert e.next_delay(None, now=1.0, rand=0.5) == 10.0
    assert e.next_delay(120.0, now=2.0, rand=0.5) == 60.0  # capped while the holder may be dead
    e.hint(True, now=3.0)
    assert e.next_delay(120.0, now=3.0, rand=0.5) == CONFLICT_BUDGET - 3.0  # within the budget
    assert e.next_delay(None, now=CONFLICT_BUDGET, rand=0.5) is None
    e.hint(False, now=100.0)  # holder gone: a fresh budget
    assert e.next_delay(None, now=100.0, rand=0.5) == 5.0
