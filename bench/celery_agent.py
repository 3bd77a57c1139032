"""The socket process of bench/celery_offload.py's CPU-heavy run: in process, or offloading.

    python bench/celery_agent.py SIM_URL inprocess ITERATIONS TOKENS
    python bench/celery_agent.py SIM_URL offload ITERATIONS TOKENS REDIS_URL

Serves the agent ``heavy`` until stdin closes, then prints its stats as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import voicesync
import voicesync.celery

AGENT = "heavy"


def main() -> None:
    url, mode, iterations, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "offload":
        os.environ["VOICESYNC_REDIS_URL"] = sys.argv[5]
    import celery_replies  # after the URL is set: its Celery app reads it

    waits: list[float] = []
    lock = threading.Lock()
    offloader = None
    if mode == "offload":
        offloader = voicesync.celery.Offloader(sys.argv[5]).start(celery_replies.heavy)
    handles = []

    def on_turn(turn: voicesync.Turn, call: voicesync.Call) -> None:
        if offloader is None:
            with call.reply_stream(turn) as stream:
                celery_replies.answer(stream, iterations, count)
            return
        handle = offloader.offload(turn, call, celery_replies.heavy, iterations, count)
        with lock:
            handles.append(handle)

    client = voicesync.Client(url=url, ping_interval=5.0, ping_timeout=30.0)
    client.connect(timeout=30.0)
    client.agent(AGENT).on("turn.end", on_turn)
    print("ready", flush=True)
    sys.stdin.read()  # the driver closes stdin when the run is over
    for handle in handles:
        handle.wait(0.1)
        if handle.started_at is not None:
            waits.append((handle.started_at - handle.handed_at) * 1000)
    stats = client.stats()
    print(json.dumps({"dispatch_lag_p50_ms": stats.dispatch_lag_p50_ms,
                      "dispatch_lag_p99_ms": stats.dispatch_lag_p99_ms,
                      "handler_threads": stats.handler_threads,
                      "queue_waits_ms": waits}), flush=True)
    client.close()
    if offloader is not None:
        offloader.close()


if __name__ == "__main__":
    main()
