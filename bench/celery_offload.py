"""Offloading turns to Celery workers: what it adds, and what it buys under CPU-heavy turns.

    python bench/celery_offload.py              # ~4 minutes; writes bench/results/celery.md
    python bench/celery_offload.py --quick      # a smoke run: fewer turns, calls

Part 1, added latency (one call at a time, two workers of each pool: solo, threads,
prefork), and where it goes, measured in the agent's socket process (bench/celery_latency.py),
which runs apart from the simulator as it does in production (the same process kind for
answering in process and offloading):
  turn -> first chunk: from the turn handler's start to the first chunk written to the
  call's ReplyStream, answering in process vs offloading (a task that writes at once),
  split into offload() returning (building and publishing the task), the worker's START
  reaching the relay (broker hop, the worker's pickup, the claim's round trip) and the
  first chunk written (the task's XADD, the relay's read, ReplyStream.write);
  barge-in -> worker: from ReplyStream.abort in the socket process to the worker's
  stream aborted (its on_abort ran) and to `stream_openai` returning (the provider's HTTP
  stream closed), against the stand-in model, on one wall clock.
Part 2, CPU-heavy turns: 200 calls, 3 turns each spread over 15 s, each turn ~20 ms of
  pure-Python work then 10 tokens; the agent in its own process, answering in process or
  offloading to 2 or 4 worker processes (``--pool``, default solo). Latency is measured by
  the simulator (its frame record): turn.end sent -> first chunk received. A turn is lost if
  no `end` came in 10 s. Each run also reports the CPU each process used and what the rest
  of the machine (other programs) took of its cores meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from voicesync.celery.local import URL_ENV, RedisServer, Workers  # noqa: E402
from voicesync.sim import Simulator  # noqa: E402
from voicesync.sim.model import ModelServer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


POOLS = ("solo", "threads", "prefork")


def workers(url: str, count: int, pool: str) -> Workers:
    return Workers("celery_replies", url, count=count, pool=pool, timeout=60.0,
                   env={"PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])})


def calibrate(ms: float) -> int:
    """Iterations of `spin` that take `ms` here (best of a few tries)."""
    import celery_replies

    best = min(_timed(celery_replies.spin, 100_000) for _ in range(5))
    return int(100_000 * ms / 1000 / best)


def _timed(fn: Any, arg: int) -> float:
    began = time.perf_counter()
    fn(arg)
    return time.perf_counter() - began


# ------------------------------------------------------------------ part 1: added latency


class LatencyAgent:
    """bench/celery_latency.py in its own process, as the platform's agents run in
    production: the simulator here does not compete for its GIL."""

    def __init__(self, sim: Simulator, redis_url: str = "") -> None:
        mode = ["offload", redis_url] if redis_url else ["inprocess"]
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "celery_latency.py"), sim.url, *mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self._ask_line() == "ready"
        sim.wait_agent("latency", 10.0)
        self.call = sim.start_call("latency")

    def _ask_line(self, command: str = "") -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if command:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
        return self._proc.stdout.readline().strip()

    def ask(self, command: str) -> Any:
        return json.loads(self._ask_line(command))

    def close(self) -> None:
        self.call.hangup()
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(30)


Hops = dict[str, list[float]]


def turn_to_first_chunk(agent: LatencyAgent, turns: int) -> tuple[list[float], Hops]:
    for i in range(turns):
        agent.call.say(f"turn {i}")
        agent.call.wait_reply(10.0)
    got = agent.ask("report")
    return got["samples"], got["hops"]


def barge_in_to_worker(agent: LatencyAgent, rounds: int) -> tuple[list[float], list[float]]:
    with ModelServer(tokens_per_second=50.0) as model:
        model.script(*["Tell me. " * 200] * rounds)
        agent.ask("hold")
        agent.call.say("hello")
        got = agent.ask(f"barge {model.openai_base_url} {rounds}")
    return got["aborted"], got["closed"]


# ------------------------------------------------------------------ part 2: CPU-heavy turns


class CpuMeter:
    """CPU seconds used by groups of processes (with their children) and by the whole
    machine between `start` and `stop`: who had the cores during a run."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        import psutil

        # A group's processes with their children (a prefork worker's pool), except for
        # this process: its children are the other groups.
        self._procs = {name: [q for pid in pids for p in [psutil.Process(pid)]
                              for q in [p, *([] if pid == os.getpid()
                                             else p.children(recursive=True))]]
                       for name, pids in groups.items()}
        self._start: dict[str, float] = {}
        self.cores: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        import psutil

        used = {}
        for name, procs in self._procs.items():
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:  # ended meanwhile: its last sample stands
                    pass
            used[name] = total
        machine = psutil.cpu_times()
        used["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        used["wall"] = time.monotonic()
        return used

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> None:
        end = self._sample()
        wall = end["wall"] - self._start["wall"]
        self.seconds = {k: end[k] - self._start[k] for k in end if k != "wall"}
        self.cores = {k: v / wall for k, v in self.seconds.items()}
        self.cores["other programs"] = self.cores["machine"] - sum(
            v for k, v in self.cores.items() if k != "machine")


def heavy_run(sim: Simulator, mode: str, iterations: int, *, calls: int, turns: int,
              window: float, redis_url: str = "",
              groups: dict[str, list[int]] | None = None) -> dict[str, Any]:
    args = [sys.executable, str(HERE / "celery_agent.py"), sim.url, mode, str(iterations), "10"]
    agent = subprocess.Popen(args + ([redis_url] if redis_url else []), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert agent.stdout is not None and agent.stdin is not None
    try:
        assert agent.stdout.readline().strip() == "ready"
        sim.wait_agent("heavy", 10.0)
        since = sim.mark()
        meter = CpuMeter({"agent": [agent.pid], "bench (simulator)": [os.getpid()],
                          **(groups or {})})
        meter.start()
        sim_calls = [sim.start_call("heavy", from_=f"+1555{i:07d}") for i in range(calls)]
        plan = sorted((random.uniform(0, window / turns) + k * window / turns, c)
                      for c in sim_calls for k in range(turns))
        began = time.monotonic()
        for at, call in plan:
            delay = began + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # paces the scripted callers
            call.say("quote please", timeout=5.0)
        settle = time.monotonic() + 10.0
        while time.monotonic() < settle and _open_turns(sim.frames_since(since)) > 0:
            time.sleep(0.1)  # waiting for the last replies, bounded by `settle`
        meter.stop()
        frames = sim.frames_since(since)
        for call in sim_calls:
            call.hangup()
    finally:
        agent.stdin.close()
        out = agent.stdout.read()
        agent.wait(30)
    stats = json.loads(out.strip().splitlines()[-1])
    latencies, lost = _turn_latencies(frames)
    waits = stats["queue_waits_ms"]
    return {"mode": mode, "turns": len(latencies) + lost, "lost": lost,
            "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
            "lag_p99": stats["dispatch_lag_p99_ms"],
            "wait_p99": pct(waits, 0.99) if waits else None, "cores": meter.cores,
            "cpu_per_turn": {k: meter.seconds[k] * 1000 / max(1, len(latencies) + lost)
                             for k in ("agent", "workers") if k in meter.seconds}}


def _turn_latencies(frames: list[Any]) -> tuple[list[float], int]:
    asked: dict[str, int] = {}  # user message id -> turn.end sent (ns)
    replies: dict[str, str] = {}  # reply message id -> user message id
    first: dict[str, int] = {}
    ended: set[str] = set()
    for f in frames:
        if f.direction == "out" and f.event == "turn.end":
            asked.setdefault(str(f.get("message_id")), f.ts_ns)
        elif f.direction == "in" and f.event == "bot.reply.stream":
            mid, action = str(f.get("message_id")), f.get("action")
            if action == "start":
                replies[mid] = str(f.get("in_reply_to"))
            elif action == "chunk" and mid in replies:
                first.setdefault(replies[mid], f.ts_ns)
            elif action == "end" and mid in replies:
                ended.add(replies[mid])
    latencies = [(first[u] - t) / 1e6 for u, t in asked.items() if u in first and u in ended]
    return latencies, len(asked) - len(latencies)


def _open_turns(frames: list[Any]) -> int:
    return _turn_latencies(frames)[1]


# ------------------------------------------------------------------ report


def latency_rows(local: list[float], remote: list[float], hops: Hops, aborted: list[float],
                 closed: list[float], *, pool: str) -> list[str]:
    added50, added99 = pct(remote, .5) - pct(local, .5), pct(remote, .99) - pct(local, .99)
    met = "yes" if added50 <= 2 and added99 <= 5 else "no"
    rows = [f"| {pool} | turn -> first chunk, offloaded | {pct(remote, .5):.2f} | "
            f"{pct(remote, .99):.2f} | | |"]
    rows += [f"| {pool} | &nbsp; {name} | {pct(v, .5):.2f} | {pct(v, .99):.2f} | | |"
             for name, v in hops.items()]
    rows += [f"| {pool} | added by offloading | {added50:.2f} | {added99:.2f} | <= 2 / 5 | "
             f"{met} |",
             f"| {pool} | barge-in -> worker stream aborted | {pct(aborted, .5):.2f} | "
             f"{pct(aborted, .99):.2f} | p99 <= 10 | "
             f"{'yes' if pct(aborted, .99) <= 10 else 'no'} |",
             f"| {pool} | barge-in -> provider stream closed | {pct(closed, .5):.2f} | "
             f"{pct(closed, .99):.2f} | | |"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--pool", default="solo", help="the CPU-heavy run's worker pool")
    parser.add_argument("--pools", default=",".join(POOLS),
                        help="part 1's worker pools, comma-separated")
    parser.add_argument("--latency-only", action="store_true",
                        help="part 1 only (for A/B runs; writes no results)")
    parser.add_argument("--turns", type=int, help="part 1's turns per run")
    opts = parser.parse_args()
    turns1, rounds = (20, 5) if opts.quick else (200, 50)
    turns1 = opts.turns or turns1
    calls, window = (40, 6.0) if opts.quick else (200, 15.0)
    lines = ["# Offloading to Celery workers", "",
             f"Machine: {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} at the start.", ""]
    with RedisServer() as redis_server:
        os.environ[URL_ENV] = redis_server.url
        iterations = calibrate(20.0)
        lines += ["## Added latency (one call at a time, 2 workers of each pool)", "",
                  "| pool | measure | p50 ms | p99 ms | goal | met |",
                  "|---|---|---|---|---|---|"]
        with Simulator(port=0, words_per_second=1000.0) as sim:
            agent = LatencyAgent(sim)
            local, _ = turn_to_first_chunk(agent, turns1)
            agent.close()
            lines.append(f"| - | turn -> first chunk, in process | {pct(local, .5):.2f} | "
                         f"{pct(local, .99):.2f} | | |")
            for pool in opts.pools.split(","):
                with workers(redis_server.url, 2, pool):
                    agent = LatencyAgent(sim, redis_server.url)
                    remote, hops = turn_to_first_chunk(agent, turns1)
                    aborted, closed = barge_in_to_worker(agent, rounds)
                    agent.close()
                lines += latency_rows(local, remote, hops, aborted, closed, pool=pool)
        lines.append("")
        if opts.latency_only:
            print("\n".join(lines))
            return
        rows = []
        server_pid = redis_server.pid or 0
        with Simulator(port=0, words_per_second=1000.0, record_limit=None) as sim:
            rows.append(heavy_run(sim, "inprocess", iterations, calls=calls, turns=3,
                                  window=window, groups={"redis": [server_pid]}))
            for count in (2, 4):
                with workers(redis_server.url, count, opts.pool) as started:
                    row = heavy_run(sim, "offload", iterations, calls=calls, turns=3,
                                    window=window, redis_url=redis_server.url,
                                    groups={"redis": [server_pid],
                                            "workers": [p.pid for p in started.processes]})
                    row["mode"] = f"offload, {count} workers"
                    rows.append(row)
    lines += [f"## CPU-heavy turns ({calls} calls x 3 turns in {window:g} s, ~20 ms each; "
              f"{opts.pool} workers)", "",
              "| agent | turns | lost | p50 turn -> first chunk ms | p99 ms | "
              "dispatch lag p99 ms | queue wait p99 ms |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        wait = f"{r['wait_p99']:.1f}" if r["wait_p99"] is not None else "-"
        lines.append(f"| {r['mode']} | {r['turns']} | {r['lost']} | {r['p50']:.1f} | "
                     f"{r['p99']:.1f} | {r['lag_p99']:.1f} | {wait} |")
    halved = rows[1]["p99"] <= rows[0]["p99"] / 2
    lines += ["", f"Goal: 2 workers cut the p99 at least in half: {'met' if halved else 'not met'}"
              f" ({rows[0]['p99']:.1f} -> {rows[1]['p99']:.1f} ms).", "",
              f"Cores used during each run (of {os.cpu_count()}):", "",
              "| agent | " + " | ".join(CORE_COLUMNS) + " | CPU ms per turn: agent, workers |",
              "|---|" + "---|" * (len(CORE_COLUMNS) + 1)]
    for r in rows:
        cells = [f"{r['cores'][c]:.2f}" if c in r["cores"] else "-" for c in CORE_COLUMNS]
        per_turn = ", ".join(f"{v:.1f}" for v in r["cpu_per_turn"].values())
        lines.append(f"| {r['mode']} | " + " | ".join(cells) + f" | {per_turn} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not opts.quick:
        (HERE / "results" / "celery.md").write_text(report)


CORE_COLUMNS = ("agent", "workers", "redis", "bench (simulator)", "other programs", "machine")


if __name__ == "__main__":
    main()
