"""Handler lanes: per-call order, calls in parallel, growth past blocked handlers."""

from __future__ import annotations

import threading
import time

from helpers import until

from voicesync._lanes import Lanes


def _lanes(errors: list[BaseException] | None = None) -> Lanes:
    return Lanes(on_error=lambda exc, key: (errors if errors is not None else []).append(exc))


def test_one_lane_runs_in_order() -> None:
    lanes = _lanes()
    seen: list[int] = []
    done = threading.Event()
    for i in range(200):
        lanes.submit("call", seen.append, i)
    lanes.submit("call", done.set)
    assert done.wait(5)
    assert seen == list(range(200))
    lanes.close(time.monotonic() + 2)


def test_blocked_lanes_never_hold_up_others() -> None:
    lanes = _lanes()
    release = threading.Event()
    for i in range(60):  # a fixed pool of 8 would starve lane "free" behind these
        lanes.submit(f"blocked-{i}", release.wait, 10)
    ran = threading.Event()
    lanes.submit("free", ran.set)
    assert ran.wait(5)
    assert lanes.threads >= 61
    release.set()
    assert lanes.close(time.monotonic() + 5) == []


def test_a_raising_handler_is_reported_and_the_lane_goes_on() -> None:
    errors: list[BaseException] = []
    lanes = _lanes(errors)
    after = threading.Event()

    def boom() -> None:
        raise ValueError("boom")

    lanes.submit("c", boom)
    lanes.submit("c", after.set)
    assert after.wait(5)
    assert [str(e) for e in errors] == ["boom"]
    lanes.close(time.monotonic() + 2)


def test_backlog_bound_counts_drops() -> None:
    lanes = Lanes(on_error=lambda e, k: None, max_backlog=5)
    gate, started = threading.Event(), threading.Event()
    lanes.submit("c", lambda: (started.set(), gate.wait(5)))
    assert started.wait(5)
    results = [lanes.submit("c", lambda: None) for _ in range(10)]
    assert results.count(False) == 5 and lanes.dropped == 5
    gate.set()
    lanes.close(time.monotonic() + 2)


def test_close_returns_by_the_deadline_with_a_blocked_handler() -> None:
    lanes = _lanes()
    gate = threading.Event()
    started = threading.Event()
    lanes.submit("c", lambda: (started.set(), gate.wait(30)))
    assert started.wait(5)
    t0 = time.monotonic()
    stuck = lanes.close(t0 + 0.3)
    assert time.monotonic() - t0 < 1.0
    assert stuck and stuck[0].startswith("voicesync-handler-")
    gate.set()


def test_close_right_after_the_first_submits_joins_every_thread() -> None:
    """close() can land while the spawner has created workers it has not started yet
    (or before the spawner itself runs): it must never try to join an unstarted thread,
    and every thread it started ends."""
    before = set(threading.enumerate())
    for _ in range(200):
        lanes = _lanes()
        for key in range(8):
            lanes.submit(str(key), lambda: None)
        assert lanes.close(time.monotonic() + 2) == []
    until(lambda: not set(threading.enumerate()) - before, 5.0, "every lane thread ended")


def test_idle_workers_are_reused_then_retire() -> None:
    lanes = Lanes(on_error=lambda exc, key: None, idle_timeout=0.5)
    names: list[str] = []
    for round_ in range(5):  # one turn per call after another: no thread started per turn
        done = threading.Event()
        lanes.submit(f"call-{round_}", lambda: names.append(threading.current_thread().name))
        lanes.submit(f"call-{round_}", done.set)
        assert done.wait(5)
        until(lambda: lanes._idle == 1, 5.0, what="the worker to go idle")
    assert len(set(names)) == 1 and names[0].startswith("voicesync-handler-")
    assert lanes.threads == 1
    until(lambda: lanes.threads == 0, 5.0, what="the idle worker to retire")
    assert lanes.close(time.monotonic() + 2) == []
