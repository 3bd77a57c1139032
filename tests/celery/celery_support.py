"""What the celery tests share: the Rig a test drives, and waitable records of turns, notes
and failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import redis
from helpers import until

import voicesync
from voicesync.celery import Offload, Offloader

LOST_AFTER = 1.0
HEARTBEAT = 0.25


@dataclass
class Failures:
    """What on_failure was told, waitable."""

    seen: list[tuple[Offload, str]] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    def __call__(self, offload: Offload, reason: str) -> None:
        self.seen.append((offload, reason))
        self.event.set()


@dataclass
class Turns:
    """Every (turn, call) the agent saw; a test offloads them itself."""

    seen: list[tuple[voicesync.Turn, voicesync.Call]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, turn: voicesync.Turn, call: voicesync.Call) -> None:
        with self.cond:
            self.seen.append((turn, call))
            self.cond.notify_all()

    def wait(self, count: int = 1, timeout: float = 5.0) -> tuple[voicesync.Turn, voicesync.Call]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.seen) >= count, timeout):
                raise AssertionError(f"no turn {count} within {timeout} s")
            return self.seen[count - 1]


class Notes:
    """The notes the tasks leave in Redis (``notes:<message id>``), read with deadlines."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def of(self, message_id: str) -> list[str]:
        return list(self.redis.lrange(f"notes:{message_id}", 0, -1))

    def wait(self, message_id: str, prefix: str, timeout: float = 5.0) -> str:
        return str(until(lambda: next((n for n in self.of(message_id) if n.startswith(prefix)),
                                      None), timeout, f"note {prefix!r} of {message_id}"))


@dataclass
class Rig:
    """Everything a celery test uses: the simulator, a connected client, the workers' tasks,
    the session's Redis (`url`, `redis`), an Offloader with short deadlines, notes, failures."""

    sim: Any
    client: voicesync.Client
    tasks: ModuleType
    url: str
    redis: redis.Redis
    offloader: Offloader
    notes: Notes
    failures: Failures
    gate: str

    def agent(self, handler: Callable[..., Any]) -> voicesync.Agent:
        """Connect the client and register an agent whose turns go to `handler`."""
        self.client.connect(timeout=10.0)
        agent = self.client.agent("offloader")
        agent.on("turn.end", handler)
        agent.wait_ready(10.0)
        return agent

    def first_turn(self) -> tuple[Any, voicesync.Turn, voicesync.Call]:
        """(the simulated call, its first turn, the SDK's Call): offload it yourself."""
        turns = Turns()
        call = self.sim.start_call(self.agent(turns).id)
        call.say("hello")
        turn, live = turns.wait()
        return call, turn, live

    def offloader_with(self, **options: Any) -> Offloader:
        options = {"lost_after": LOST_AFTER, "heartbeat": HEARTBEAT,
                   "on_failure": self.failures, **options}
        return Offloader(self.url, **options)

    def occupy_workers(self, turn: voicesync.Turn, call: voicesync.Call) -> list[Offload]:
        """Keep both workers busy until the test ends (the gate opens)."""
        busy = [self.offloader.offload(turn, call, self.tasks.held, self.gate) for _ in range(2)]
        for handle in busy:
            self.notes.wait(handle.message_id, "started", timeout=10.0)
        return busy
