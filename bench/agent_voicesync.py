"""The agent under test: voicesync as shipped, answering every turn with a streamed reply.

    python bench/agent_voicesync.py --url ws://127.0.0.1:PORT --calls N --out agent.json

The reply comes from workload.FakeLLM, the simulated LLM both floors use too: a
blocking iterator of TOKENS tokens, TOKEN_INTERVAL apart. The handler closes it in
`on_abort`, the way voicesync.llm closes its HTTP response.
"""

from __future__ import annotations

import gc
import threading

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
    write_json,
)

import voicesync
from voicesync.call import Call
from voicesync.events import Turn


class Recorder:
    """What the handlers report: when each reply's loop exited, and tokens written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop_exit_ns: dict[str, int] = {}
        self.tokens = 0

    def add(self, message_id: str, exited_ns: int, tokens: int) -> None:
        with self._lock:
            self.loop_exit_ns[message_id] = exited_ns
            self.tokens += tokens


def main() -> None:
    args = agent_args(__doc__)

    recorder = Recorder()
    client = voicesync.Client(url=args.url, reconnect=False)
    agent = client.agent(AGENT_ID)

    @agent.on("turn.end")
    def reply(turn: Turn, call: Call) -> None:
        llm = FakeLLM()
        written = 0
        with call.reply_stream(turn) as stream:
            stream.on_abort(llm.close)
            for text in llm:
                if not stream.write(text):
                    break
                written += 1
            recorder.add(stream.message_id, now_ns(), written)

    done = threading.Event()
    agent.on(DONE, lambda _event: done.set(), strict=False)  # the bench's own event
    with client:
        client.connect(timeout=10.0)
        agent.wait_ready(timeout=10.0)
        gc.collect()
        rss0, cpu0, switches0 = rss_bytes(), cpu_seconds(), switches()
        peaks = Peaks().start()
        client.send({"event": READY, "agent_id": AGENT_ID})
        finished = done.wait(args.deadline)
        cpu1, switches1 = cpu_seconds(), switches()
        stats = client.stats()
        peaks.stop()
    write_json(args.out, {
        "finished": finished, "cpu_s": cpu1 - cpu0, "switches": switches1 - switches0,
        "tokens": recorder.tokens,
        "rss_base": rss0, "rss_peak": peaks.rss, "loop_exit_ns": recorder.loop_exit_ns,
        "dispatch_lag_ms": [stats.dispatch_lag_p50_ms, stats.dispatch_lag_p99_ms,
                            stats.dispatch_lag_max_ms],
        "peak_threads": peaks.threads, "dropped_events": stats.dropped_events,
        "frames_sent": stats.frames_sent, "frames_received": stats.frames_received,
    })


if __name__ == "__main__":
    main()
