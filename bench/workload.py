"""The benchmark workload and the measurements every process shares.

The driver (the platform), the voicesync agent and both floor clients import this, so
the token count, pacing, interruption rule and simulated LLM are defined once.
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

AGENT_ID = "bench"
TOKENS = 40  # tokens per reply
TOKEN_INTERVAL = 0.005  # 200 tokens/s: the simulated LLM waits this long between tokens
INTERRUPT_AFTER = 4  # an interrupted turn is cut off once this many chunks arrived
TURN_TIMEOUT = 10.0  # a reply whose end frame has not arrived by then is lost
READY = "bench.ready"  # agent → driver: baseline measured, start the calls
DONE = "bench.done"  # driver → agent: every call ended, report and exit


@dataclass(frozen=True)
class Workload:
    """One run: `calls` concurrent calls of `turns` turns each, spread out or in bursts.

    Spread (the default): a call's turns follow each other, the next turn.end an
    exponentially distributed pause (mean `gap` seconds) after the previous reply ended,
    and each call's first turn is delayed uniformly in [0, gap), so turns arrive steadily.

    Burst: every call's turn arrives at once, round after round. A round writes all N
    user.message + turn.end pairs in one socket write (they reach the agent within a few
    ms), waits until every reply of the round ended, then pauses `gap` seconds. This is a
    campaign whose callers all finish speaking in the same instant.
    """

    calls: int
    turns: int = 20
    gap: float = 2.0
    seed: int = 1
    burst: bool = False

    @property
    def mode(self) -> str:
        return "burst" if self.burst else "spread"

    def interrupted(self, call: int, turn: int) -> bool:
        """Half the turns, alternating, and half the calls start with an interrupted one."""
        return (call + turn) % 2 == 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        return cls(**json.loads(text))


def token(index: int) -> str:
    return f" word{index}"


class FakeLLM(Iterator[str]):
    """The simulated LLM: TOKENS tokens at 1/TOKEN_INTERVAL per second, from a blocking
    iterator that waits before each token but the first.

    Like a real streaming HTTP response it can be closed from another thread, which ends
    the iteration at once: the agents close it when a reply is aborted (voicesync in
    `stream.on_abort`, the way voicesync.llm closes its response), so "loop exit"
    measures how fast a client stops a reply, not how long this iterator sleeps.
    """

    def __init__(self) -> None:
        self._closed = threading.Event()
        self._next = 0

    def __next__(self) -> str:
        if self._next >= TOKENS or (self._next and self._closed.wait(TOKEN_INTERVAL)):
            raise StopIteration
        self._next += 1
        return token(self._next - 1)

    def close(self, *_: object) -> None:
        """Any thread; takes and ignores the arguments of a callback (a ReplyStream)."""
        self._closed.set()


def cpu_seconds() -> float:
    """User + system CPU of this process (every thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def switches() -> int:
    """Context switches of this process so far (every thread, voluntary or not): each is a
    thread that blocked or was preempted, the price of a hand-off between threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


class Peaks:
    """Samples RSS and the thread count every `interval` seconds on a daemon thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.rss = rss_bytes()
        self.threads = threading.active_count()
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, name="bench-peaks", daemon=True)

    def start(self) -> Peaks:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        self.rss = max(self.rss, rss_bytes())
        self.threads = max(self.threads, threading.active_count())

    def stop(self) -> Peaks:
        self._stop.set()
        self._thread.join(2.0)
        self.sample()
        return self


def write_json(path: str, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data))


def now_ns() -> int:
    """CLOCK_MONOTONIC is system-wide on Linux, so stamps compare across processes."""
    return time.monotonic_ns()


def agent_args(doc: str | None) -> argparse.Namespace:
    """The command line every agent under test takes (see each agent's docstring)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, default=600.0)
    return parser.parse_args()


def write_floor_record(out: str, *, finished: bool, cpu_s: float, switched: int, tokens: int,
                       rss_base: int, peaks: Peaks, loop_exit_ns: dict[str, int]) -> None:
    """A floor's record: what voicesync's agent writes, less what only an SDK has."""
    write_json(out, {
        "finished": finished, "cpu_s": cpu_s, "switches": switched, "tokens": tokens,
        "rss_base": rss_base, "rss_peak": peaks.rss, "loop_exit_ns": loop_exit_ns,
        "dispatch_lag_ms": None, "peak_threads": peaks.threads, "dropped_events": 0,
    })
