"""The agent process of bench/celery_offload.py's part 1 (added latency), apart from the
simulator as in production: in-process answering and offloading run here alike.

    python bench/celery_latency.py SIM_URL inprocess
    python bench/celery_latency.py SIM_URL offload REDIS_URL

Serves the agent ``latency``; answers each turn in process or offloads it to the
``celery_replies.quick`` task. Commands on stdin, one a line, each answered by one JSON line
on stdout:
  ``report``: the turns so far: turn -> first chunk and its hops (ms).
  ``hold``: the next turn is not answered but kept for ``barge`` (answers ``{}``).
  ``barge MODEL_URL ROUNDS``: once the held turn came, offloads it ROUNDS times to
  ``celery_replies.model`` (stream_openai against the stand-in model at MODEL_URL), aborts
  each once its first chunk arrived, and reports barge-in -> worker stream aborted and
  -> provider stream closed (ms, one wall clock).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import voicesync
import voicesync.celery

AGENT = "latency"
HOPS = ("offload() returns", "-> worker started", "-> first chunk")


class Latency:
    """The turn handler and what it measured (its own thread and the main thread)."""

    def __init__(self, offloader: voicesync.celery.Offloader | None) -> None:
        self.offloader = offloader
        self.samples: list[float] = []
        self.handles: list[tuple[float, float, Any]] = []
        self.barge: queue.Queue[tuple[voicesync.Turn, voicesync.Call]] = queue.Queue()
        self.hold_next = threading.Event()  # the next turn is for the barge-in rounds

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call) -> None:
        import celery_replies

        began = time.monotonic()
        if self.hold_next.is_set():
            self.hold_next.clear()
            self.barge.put((turn, call))
        elif self.offloader is None:
            with call.reply_stream(turn) as stream:
                stream.write("word0 ")
                self.samples.append((time.monotonic() - began) * 1000)
                for token in celery_replies.tokens(4):
                    stream.write(token)
        else:
            handle = self.offloader.offload(turn, call, celery_replies.quick)
            self.handles.append((began, time.monotonic(), handle))

    def report(self) -> dict[str, Any]:
        hops: dict[str, list[float]] = {name: [] for name in HOPS}
        for began, returned, handle in self.handles:
            handle.wait(5.0)
            if handle.first_chunk_at is None or handle.started_at is None:
                continue
            self.samples.append((handle.first_chunk_at - began) * 1000)
            hops[HOPS[0]].append((returned - began) * 1000)
            hops[HOPS[1]].append((handle.started_at - returned) * 1000)
            hops[HOPS[2]].append((handle.first_chunk_at - handle.started_at) * 1000)
        self.handles = []
        return {"samples": self.samples, "hops": hops}

    def barge_in(self, rdb: Any, model_url: str, rounds: int) -> dict[str, list[float]]:
        import celery_replies

        assert self.offloader is not None
        turn, live = self.barge.get(timeout=10.0)
        aborted: list[float] = []
        closed: list[float] = []
        for _ in range(rounds):
            handle = self.offloader.offload(turn, live, celery_replies.model, model_url)
            deadline = time.monotonic() + 10.0
            while not handle.stream.text and time.monotonic() < deadline:
                handle.wait(0.002)
            cut = time.time()
            handle.stream.abort("bot.interrupted")
            notes: dict[str, float] = {}
            while len(notes) < 2 and time.monotonic() < deadline + 5.0:
                popped = rdb.blpop([f"bench:{handle.message_id}"], timeout=1)
                if popped:
                    kind, at = popped[1].split()
                    notes[kind] = float(at)
            if "aborted" in notes:
                aborted.append((notes["aborted"] - cut) * 1000)
            if "closed" in notes:
                closed.append((notes["closed"] - cut) * 1000)
        return {"aborted": aborted, "closed": closed}


def main() -> None:
    url, mode = sys.argv[1], sys.argv[2]
    redis_url = sys.argv[3] if mode == "offload" else ""
    if redis_url:
        os.environ["VOICESYNC_REDIS_URL"] = redis_url
    import celery_replies  # after the URL is set: its Celery app reads it

    offloader = None
    if redis_url:
        offloader = voicesync.celery.Offloader(redis_url).start(celery_replies.quick,
                                                                 celery_replies.model)
    latency = Latency(offloader)
    client = voicesync.Client(url=url)
    client.connect(timeout=10.0)
    client.agent(AGENT).on("turn.end", latency.on_turn)
    rdb = None
    if redis_url:
        import redis

        rdb = redis.Redis.from_url(redis_url, decode_responses=True)
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "report":
            print(json.dumps(latency.report()), flush=True)
        elif command == "hold":
            latency.hold_next.set()
            print("{}", flush=True)
        elif command == "barge":
            print(json.dumps(latency.barge_in(rdb, args[0], int(args[1]))), flush=True)
    client.close()
    if offloader is not None:
        offloader.close()
    if rdb is not None:
        rdb.close()


if __name__ == "__main__":
    main()
