"""The loop floor: the thinnest client that can play the workload, on websocket-client.

    python bench/agent_floor.py --url ws://127.0.0.1:PORT --calls N --out floor.json

One thread, one socket, no features: select() on the socket with the next token's due
time as its timeout, a heap of token timers instead of handler threads, every frame
parsed and answered inline. Nothing an SDK adds (handler threads, lanes, reconnects,
heartbeats, history, call objects) is here, so its figures are what the socket, JSON
and the shared CPU cost on this machine: the strictest floor voicesync is compared with.
(agent_pool_floor.py is the issue's floor: threads and blocking replies, as an SDK has.)
"""

from __future__ import annotations

import gc
import heapq
import itertools
import json
import select
import time
from typing import Any

import websocket
from workload import (
    AGENT_ID,
    DONE,
    READY,
    TOKEN_INTERVAL,
    TOKENS,
    Peaks,
    agent_args,
    cpu_seconds,
    now_ns,
    rss_bytes,
    switches,
    token,
    write_floor_record,
)

_ABORTS = frozenset({"bot.interrupted", "turn.continued", "call.ended"})


class Reply:
    __slots__ = ("call_id", "live", "message_id", "written")

    def __init__(self, call_id: str, message_id: str) -> None:
        self.call_id = call_id
        self.message_id = message_id
        self.written = 0
        self.live = True


class Floor:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.replies: dict[str, Reply] = {}  # the live reply of each call
        self.timers: list[tuple[float, int, Reply]] = []
        self.order = itertools.count()
        self.ids = itertools.count()
        self.loop_exit_ns: dict[str, int] = {}
        self.tokens = 0

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    def recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.ws.recv())
        return frame

    def on_frame(self, frame: dict[str, Any]) -> None:
        name = frame.get("event")
        if name == "turn.end":
            call_id = frame["call_id"]
            self.stop(call_id)
            reply = self.replies[call_id] = Reply(call_id, f"msg_{next(self.ids):012d}")
            self.send({"event": "bot.reply.stream", "call_id": call_id,
                       "message_id": reply.message_id, "action": "start",
                       "in_reply_to": frame.get("message_id", "")})
            self.write(reply)
        elif name in _ABORTS:
            self.stop(frame["call_id"])
        elif name == "ping":
            self.send({"event": "pong"})

    def write(self, reply: Reply) -> None:
        """Send the reply's next token, then either end it or time the one after."""
        self.send({"event": "bot.reply.stream", "call_id": reply.call_id,
                   "message_id": reply.message_id, "action": "chunk",
                   "token": token(reply.written)})
        reply.written += 1
        self.tokens += 1
        if reply.written < TOKENS:
            due = time.monotonic() + TOKEN_INTERVAL
            heapq.heappush(self.timers, (due, next(self.order), reply))
            return
        self.stop(reply.call_id)

    def stop(self, call_id: str) -> None:
        reply = self.replies.pop(call_id, None)
        if reply is not None and reply.live:
            reply.live = False
            self.send({"event": "bot.reply.stream", "call_id": call_id,
                       "message_id": reply.message_id, "action": "end"})
            self.loop_exit_ns[reply.message_id] = now_ns()

    def run(self, deadline: float, peaks: Peaks) -> bool:
        """Serve until the driver's DONE; False if `deadline` (monotonic) passed first."""
        sock = self.ws.sock
        next_sample = time.monotonic()
        while True:
            now = time.monotonic()
            timers = self.timers
            while timers and timers[0][0] <= now:
                reply = heapq.heappop(timers)[2]
                if reply.live:
                    self.write(reply)
            if now >= next_sample:  # sampled inline: the floor has no other thread
                peaks.sample()
                next_sample = now + 0.25
                if now > deadline:
                    return False
            wake = min(timers[0][0], next_sample) if timers else next_sample
            timeout = max(0.0, wake - time.monotonic())
            # Inbound frames first (a turn or an interruption is what someone waits
            # for), up to a batch, so token timers are late by one batch at most.
            for _ in range(64):
                if not select.select([sock], [], [], timeout)[0]:
                    break
                timeout = 0.0
                frame = self.recv()
                if frame.get("event") == DONE:
                    return True
                self.on_frame(frame)


def open_agent(url: str) -> Any:
    """A websocket-client socket past the handshake and agent.create (both floors use it)."""
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(url.rstrip("/") + "/client", timeout=10.0, suppress_origin=True)
    for send, expected in (({"event": "connect", "api_key": "local-dev"}, "connected"),
                           ({"event": "agent.create", "agent_id": AGENT_ID}, "agent.created")):
        ws.send(json.dumps(send))
        while json.loads(ws.recv()).get("event") != expected:
            pass
    return ws


def main() -> None:
    args = agent_args(__doc__)

    ws = open_agent(args.url)
    floor = Floor(ws)
    gc.collect()
    rss0, cpu0, switches0 = rss_bytes(), cpu_seconds(), switches()
    peaks = Peaks()
    floor.send({"event": READY, "agent_id": AGENT_ID})
    finished = floor.run(time.monotonic() + args.deadline, peaks)
    cpu1, switches1 = cpu_seconds(), switches()
    peaks.sample()
    ws.close(timeout=1.0)
    write_floor_record(args.out, finished=finished, cpu_s=cpu1 - cpu0,
                       switched=switches1 - switches0, tokens=floor.tokens, rss_base=rss0,
                       peaks=peaks, loop_exit_ns=floor.loop_exit_ns)


if __name__ == "__main__":
    main()
