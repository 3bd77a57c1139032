"""The pool floor, the issue's: bare websocket-client, one reader thread, 8 worker threads.

    python bench/agent_pool_floor.py --url ws://127.0.0.1:PORT --calls N --out pool.json

This is the "bare websocket-client floor (one reader, 8 workers)" issue 14's goals are
written against, the client one writes without an SDK when replies come from a blocking
LLM iterator. The reader thread (the main one) reads every frame. A turn.end queues a
reply; WORKERS threads take replies from that queue in turn, and each plays one as a
blocking loop over workload.FakeLLM, the same simulated LLM the voicesync agent uses.
Every send holds one lock. Each reply has an abort flag that the reader sets on
bot.interrupted, turn.continued or call.ended (and on the call's next turn.end); it
closes the reply's LLM and writes the `end` frame itself, so an interruption is
answered without waiting for a worker. The fixed pool is this floor's weakness: with
more live replies than workers, a turn waits in the queue (head-of-line).
"""

from __future__ import annotations

import gc
import json
import queue
import threading
import time
from typing import Any

import websocket
from agent_floor import open_agent
from workload import (
    AGENT_ID,
    DONE,
    READY,
    FakeLLM,
    Peaks,
    agent_args,
    cpu_seconds,
    now_ns,
    rss_bytes,
    switches,
    write_floor_record,
)

WORKERS = 8
_ABORTS = frozenset({"bot.interrupted", "turn.continued", "call.ended"})


class Reply:
    """One reply; `started`, `aborted` and `ended` change only under the send lock."""

    __slots__ = ("aborted", "call_id", "ended", "in_reply_to", "llm", "message_id", "started")

    def __init__(self, call_id: str, message_id: str, in_reply_to: str) -> None:
        self.call_id = call_id
        self.message_id = message_id
        self.in_reply_to = in_reply_to
        self.llm = FakeLLM()
        self.started = self.aborted = self.ended = False


class PoolFloor:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.lock = threading.Lock()  # every send, and the reply flags it decides on
        self.jobs: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()
        self.live: dict[str, Reply] = {}  # the latest reply of each call (reader only)
        self.loop_exit_ns: dict[str, int] = {}
        self.tokens = 0  # under the lock
        self.ids = 0
        self.workers = [threading.Thread(target=self.work, name=f"pool-worker-{i}")
                        for i in range(WORKERS)]

    def send_locked(self, frame: dict[str, Any]) -> None:
        """The caller holds self.lock."""
        self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    def stream(self, reply: Reply, action: str, **extra: str) -> None:
        """The caller holds self.lock."""
        self.send_locked({"event": "bot.reply.stream", "call_id": reply.call_id,
                          "message_id": reply.message_id, "action": action, **extra})

    # ---------------------------------------------------------------- workers

    def work(self) -> None:
        while (reply := self.jobs.get()) is not None:
            self.play(reply)

    def play(self, reply: Reply) -> None:
        with self.lock:
            if reply.aborted:  # aborted while it waited in the queue: never started
                return
            reply.started = True
            self.stream(reply, "start", in_reply_to=reply.in_reply_to)
        for text in reply.llm:
            with self.lock:
                if reply.aborted:
                    break
                self.stream(reply, "chunk", token=text)
                self.tokens += 1
        with self.lock:
            if not reply.ended:
                reply.ended = True
                self.stream(reply, "end")
        self.loop_exit_ns[reply.message_id] = now_ns()

    # ---------------------------------------------------------------- the reader

    def abort(self, call_id: str) -> None:
        reply = self.live.pop(call_id, None)
        if reply is None:
            return
        reply.llm.close()  # its worker stops waiting for the next token
        with self.lock:
            reply.aborted = True
            if reply.started and not reply.ended:
                reply.ended = True
                self.stream(reply, "end")

    def on_frame(self, frame: dict[str, Any]) -> None:
        name = frame.get("event")
        if name == "turn.end":
            call_id = frame["call_id"]
            self.abort(call_id)
            self.ids += 1
            reply = self.live[call_id] = Reply(call_id, f"msg_{self.ids:012d}",
                                               frame.get("message_id", ""))
            self.jobs.put(reply)
        elif name in _ABORTS:
            self.abort(frame["call_id"])
        elif name == "ping":
            with self.lock:
                self.send_locked({"event": "pong"})

    def run(self, deadline: float) -> bool:
        """Read until the driver's DONE; False if `deadline` (monotonic) passed first."""
        for worker in self.workers:
            worker.start()
        self.ws.settimeout(max(0.01, deadline - time.monotonic()))  # once: a syscall
        try:
            while True:
                frame = json.loads(self.ws.recv())
                if frame.get("event") == DONE:
                    return True
                self.on_frame(frame)
        except websocket.WebSocketTimeoutException:
            return False
        finally:
            for call_id in list(self.live):
                self.abort(call_id)
            for _ in self.workers:
                self.jobs.put(None)
            for worker in self.workers:
                worker.join(5.0)


def main() -> None:
    args = agent_args(__doc__)

    ws = open_agent(args.url)
    floor = PoolFloor(ws)
    gc.collect()
    rss0, cpu0, switches0 = rss_bytes(), cpu_seconds(), switches()
    peaks = Peaks().start()
    with floor.lock:
        floor.send_locked({"event": READY, "agent_id": AGENT_ID})
    finished = floor.run(time.monotonic() + args.deadline)
    cpu1, switches1 = cpu_seconds(), switches()
    peaks.stop()
    ws.close(timeout=1.0)
    write_floor_record(args.out, finished=finished, cpu_s=cpu1 - cpu0,
                       switched=switches1 - switches0, tokens=floor.tokens, rss_base=rss0,
                       peaks=peaks, loop_exit_ns=floor.loop_exit_ns)


if __name__ == "__main__":
    main()
