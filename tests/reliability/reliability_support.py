"""Shared pieces of the reliability scenarios: fast backoff, a client event log, leak check."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from helpers import sdk_threads, until
from reliability_peer import Rx, ScriptedPeer

import voicesync
from voicesync._backoff import Backoff
from voicesync.call import Call
from voicesync.events import Turn
from voicesync.reply import ReplyStream

# Fast but realistic: jittered doubling from 50 ms, capped at 0.4 s.
FAST_BACKOFF = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.25)


class ClientEvents:
    """Every client-level event (connected, disconnected, reconnecting, error), in order."""

    def __init__(self, client: voicesync.Client) -> None:
        self._cond = threading.Condition()
        self.log: list[tuple[float, str, tuple[Any, ...]]] = []
        for name in ("connected", "disconnected", "reconnecting", "error"):
            client.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            with self._cond:
                self.log.append((time.monotonic(), name, args))
                self._cond.notify_all()
        return record

    def of(self, name: str) -> list[tuple[float, tuple[Any, ...]]]:
        with self._cond:
            return [(at, args) for at, n, args in self.log if n == name]

    def wait(self, name: str, count: int = 1,
             timeout: float = 5.0) -> tuple[float, tuple[Any, ...]]:
        """The `count`-th event called `name` (1-based), waiting up to `timeout` s."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(name)) >= count, timeout)
        if not ok:
            raise AssertionError(f"no {name} #{count} within {timeout:g} s; saw {self.names()}")
        return self.of(name)[count - 1]

    def names(self) -> list[str]:
        with self._cond:
            return [n for _, n, _ in self.log]



def assert_no_thread_leak(baseline: set[str], timeout: float = 3.0) -> None:
    """voicesync SDK threads are back to the set alive before the test."""
    until(lambda: set(sdk_threads()) <= baseline, timeout,
          what=f"SDK threads back to baseline (alive: {sdk_threads()})")


class StreamingAgent:
    """An agent that answers each turn with a reply stream of `chunks` chunks, one per
    `interval` s, stopping when the stream is aborted. Every stream is put on `streams`."""

    def __init__(self, client: voicesync.Client, agent_id: str = "support", *,
                 chunks: int = 100_000, interval: float = 0.02,
                 phone: str | None = "+15550002222") -> None:
        self.agent = client.agent(agent_id)
        if phone:
            self.agent.add_phone(phone)
        self.chunks = chunks
        self.interval = interval
        self.streams: queue.Queue[ReplyStream] = queue.Queue()
        self.agent.on("turn.end", self._on_turn)

    def _on_turn(self, turn: Turn, call: Call) -> None:
        with call.reply_stream(turn) as stream:
            self.streams.put(stream)
            for i in range(self.chunks):
                if not stream.write(f"w{i} ") or stream.aborted.wait(self.interval):
                    break

    def next_stream(self, timeout: float = 5.0) -> ReplyStream:
        return self.streams.get(timeout=timeout)

    def serve(self) -> None:
        """Connect the client and wait until the agent is registered."""
        client = self.agent.client
        assert client is not None
        client.connect(timeout=5.0)
        self.agent.wait_ready(5.0)

    def start(self, peer: ScriptedPeer, call_id: str) -> ReplyStream:
        """A call on `peer` and one turn; returns the reply stream once a chunk is out."""
        peer.start_call(self.agent.id, call_id)
        peer.turn(self.agent.id, call_id, f"m-{call_id}")
        peer.wait_frame(chunk_of(call_id), 5.0, what=f"a chunk of {call_id}")
        return self.next_stream()


def chunk_of(call_id: str) -> Callable[[Rx], bool]:
    """Matches a bot.reply.stream chunk of `call_id`."""
    return lambda rx: (rx.frame.get("event") == "bot.reply.stream"
                       and rx.frame.get("call_id") == call_id
                       and rx.frame.get("action") == "chunk")


def event_is(name: str, conn: int | None = None) -> Callable[[Rx], bool]:
    return lambda rx: rx.frame.get("event") == name and (conn is None or rx.conn == conn)


class LogRecords(logging.Handler):
    """Collects voicesync log records at DEBUG while used as a context manager."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger("voicesync")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogRecords:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]
