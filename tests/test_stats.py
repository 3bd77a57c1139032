"""Counters: the per-frame ones take no lock, and lose no count across threads."""

from __future__ import annotations

import threading

from voicesync._lanes import Lanes
from voicesync._stats import Counters


def test_frames_sent_from_many_threads_add_up_also_after_they_ended() -> None:
    counters = Counters()
    lanes = Lanes(on_error=lambda exc, key: None)

    def send(times: int) -> None:
        for _ in range(times):
            counters.add("frames_sent")

    for wave in range(3):  # later waves fold the tallies of the threads that ended
        threads = [threading.Thread(target=send, args=(1000,), name=f"voicesync-test-{wave}")
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
    send(5)
    for _ in range(7):
        counters.add("frames_received")
    counters.add("reconnects")
    stats = counters.snapshot(lanes, active_calls=0)
    assert (stats.frames_sent, stats.frames_received, stats.reconnects) == (24_005, 7, 1)
    assert len(counters._tallies) <= 9  # ended threads' tallies were folded
