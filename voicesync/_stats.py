"""Counters, the `stats()` snapshot, and reports of events dropped because a call's
handlers fell too far behind."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from voicesync._lanes import Lanes
from voicesync._throttle import Throttled
from voicesync.errors import EventsDroppedError

logger = logging.getLogger("voicesync.client")  # the records users already filter on

COUNTERS = ("frames_received", "frames_sent", "malformed_frames", "oversize_frames",
            "handler_errors", "reconnects")


@dataclass(frozen=True)
class ClientStats:
    """Counters and the handler dispatch lag (frame received → handler start)."""

    frames_received: int
    frames_sent: int
    malformed_frames: int
    oversize_frames: int
    dropped_events: int
    handler_errors: int
    reconnects: int
    active_calls: int
    handler_threads: int
    dispatch_lag_p50_ms: float
    dispatch_lag_p99_ms: float
    dispatch_lag_max_ms: float


class Counters:
    """The client's event counters. Any thread.

    The two per-frame counters take no lock: frames received are counted by the reader
    thread alone (one connection at a time), frames sent in a tally of each sending
    thread's own, summed when read. The rare ones share a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._received = 0  # written by the reader thread only
        self._local = threading.local()
        self._tallies: list[tuple[threading.Thread, list[int]]] = []  # guarded by _lock

    def add(self, name: str) -> None:
        if name == "frames_sent":
            self._tally()[0] += 1
        elif name == "frames_received":
            self._received += 1
        else:
            with self._lock:
                self._counts[name] += 1

    def _tally(self) -> list[int]:
        """This thread's count of frames sent; the first call of a thread registers it
        and folds the tallies of threads that ended (they cannot change any more)."""
        try:
            tally: list[int] = self._local.tally
        except AttributeError:
            tally = self._local.tally = [0]
            with self._lock:
                live = []
                for thread, other in self._tallies:
                    if thread.is_alive():
                        live.append((thread, other))
                    else:
                        self._counts["frames_sent"] += other[0]
                live.append((threading.current_thread(), tally))
                self._tallies = live
        return tally

    def snapshot(self, lanes: Lanes, active_calls: int) -> ClientStats:
        with self._lock:
            c = dict(self._counts)
            c["frames_sent"] += sum(tally[0] for _, tally in self._tallies)
        c["frames_received"] = self._received
        p50, p99 = lanes.lag.percentiles(0.5, 0.99)
        return ClientStats(
            c["frames_received"], c["frames_sent"], c["malformed_frames"],
            c["oversize_frames"], lanes.dropped, c["handler_errors"], c["reconnects"],
            active_calls, lanes.threads, p50 * 1e3, p99 * 1e3, lanes.lag.maximum * 1e3)


class DropReports:
    """Counts drops; reports the first at once, then at most once a second.

    Reports go through the client's report path (a WARNING, the `error` event, or stderr
    when nothing would show it), from the heartbeat thread,
    slow-consumer style, so a flood is not answered with a flood. Any thread.
    """

    def __init__(self, lanes: Lanes, schedule: Callable[[float, Callable[[], object]], None],
                 report: Callable[[BaseException], None]) -> None:
        self._lanes = lanes
        self._schedule = schedule
        self._report_to = report
        self._lock = threading.Lock()
        self._unreported = 0
        self._due = False
        self._last = 0.0
        self._lost_reports = Throttled(logger)

    def dropped(self, *, reporting: bool = False) -> None:
        """One event dropped; `reporting`: it was a report to the `error` handlers, which
        is only logged (throttled), never reported again."""
        if reporting:
            self._lost_reports.warning("error handlers are too far behind: a report was dropped")
            return
        with self._lock:
            self._unreported += 1
            if self._due:
                return
            self._due = True
            delay = max(0.0, self._last + 1.0 - time.monotonic())
        self._schedule(delay, self._report)

    def _report(self) -> None:
        with self._lock:
            count, self._unreported = self._unreported, 0
            self._due = False
            self._last = time.monotonic()
        if count:
            self._report_to(self._error(count))

    def _error(self, count: int) -> EventsDroppedError:
        """The report of `count` drops (an event feed's reports say it differently)."""
        lanes = self._lanes
        total = lanes.dropped
        return EventsDroppedError(
            f"{count} event(s) dropped because a call's handlers were more than "
            f"{lanes.max_backlog} events or {lanes.max_backlog_bytes >> 20} MiB behind "
            f"({total} in all); keep handlers short or hand long work to your own threads",
            count=count, total=total)
