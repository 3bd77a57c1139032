"""RSS of a client under hostile floods: the client in its own process, the peer in this one.

    python bench/memory.py            # every scenario, a markdown table on stdout
    python bench/memory.py outbound   # one scenario

Scenarios (the floods of issue 12), against the reliability suite's scripted peer:
- outbound: 20 calls stream flat out for 10 s into a peer that stopped reading
- fragments: one 16 MiB message in 8 KiB fragments (the cap is 1 MiB)
- endless: a fragmented message that never finishes (5 s of it)
- backlog: 299 events of 900 kB for a call whose handler is blocked
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "reliability"), str(ROOT / "tests"), str(ROOT)]

SCENARIOS = ("outbound", "fragments", "endless", "backlog")
KEY = "pk_memory_bench_000000"


# ---------------------------------------------------------------- the client process

def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """Samples this process's RSS every 20 ms until stopped."""

    def __init__(self) -> None:
        self.base = rss_mib()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak - self.base


def client_process(name: str, url: str) -> None:
    import voicesync

    client = voicesync.Client(api_key=KEY, url=url, reconnect=False)
    agent = client.agent("support")
    writes = [0]
    reasons: list[str] = []
    release = threading.Event()

    @agent.on("turn.end")
    def flood(turn: Any, call: Any) -> None:
        with call.reply_stream(turn) as stream:
            while stream.write("w" * 200):
                writes[0] += 1

    client.on("x.blob", lambda event, call: release.wait(60.0))
    client.on("disconnected", reasons.append)
    client.connect(5.0)
    agent.wait_ready(5.0)
    peak = Peak()
    print("ready", flush=True)
    sys.stdin.readline()
    grown = peak.stop()
    stats = client.stats()
    release.set()
    notes = {"outbound": f"{writes[0]} writes accepted",
             "fragments": f"oversize_frames={stats.oversize_frames}",
             "endless": f"oversize_frames={stats.oversize_frames}",
             "backlog": f"dropped_events={stats.dropped_events}"}
    print(f"| {name} | {peak.base:.0f} | {grown:+.0f} | {notes[name]}; "
          f"disconnected({', '.join(reasons)}) |", flush=True)
    closer = threading.Thread(target=client.close, daemon=True)  # a client that cannot
    closer.start()                                                  # close must not hang
    closer.join(5.0)


# ---------------------------------------------------------------- the peer (this process)

def _send_parts(peer: Any, parts: Iterator[str]) -> None:
    try:
        peer._current().send(parts)
    except Exception:  # the client closed the connection (1009): expected
        return


def drive_outbound(peer: Any, proxy: Any) -> None:
    for n in range(20):
        peer.start_call("support", f"CA{n}")
        peer.turn("support", f"CA{n}", f"m{n}")
    time.sleep(0.5)
    proxy.stop_reading()
    time.sleep(10.0)


def drive_fragments(peer: Any, proxy: Any) -> None:
    body = "a" * (16 << 20)
    _send_parts(peer, iter(['{"event":"x","pad":"', *(
        body[i:i + 8192] for i in range(0, len(body), 8192)), '"}']))
    time.sleep(1.0)


def drive_endless(peer: Any, proxy: Any) -> None:
    stop = threading.Event()

    def parts() -> Iterator[str]:
        yield '{"event":"x","pad":"'
        while not stop.is_set():
            yield "a" * 8192

    threading.Thread(target=_send_parts, args=(peer, parts()), daemon=True).start()
    time.sleep(5.0)
    stop.set()


def drive_backlog(peer: Any, proxy: Any) -> None:
    peer.start_call("support", "CA1")
    pad = "b" * 900_000
    for _ in range(299):
        peer.send({"event": "x.blob", "agent_id": "support", "call_id": "CA1", "pad": pad})
    time.sleep(2.0)


def run(name: str) -> str:
    from reliability_peer import ScriptedPeer
    from reliability_proxy import FaultProxy

    drive: Callable[[Any, Any], None] = globals()[f"drive_{name}"]
    with ScriptedPeer() as peer, FaultProxy(peer.address) as proxy:
        child = subprocess.Popen(
            [sys.executable, __file__, "--client", name, proxy.url], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        try:
            if child.stdout.readline().strip() != "ready":
                return f"| {name} | the client did not start | | |"
            drive(peer, proxy)
            child.stdin.write("go\n")
            child.stdin.flush()
            return child.stdout.readline().strip()
        finally:
            try:
                child.wait(15.0)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> None:
    print("| flood | client RSS before (MiB) | peak growth (MiB) | what the client saw |")
    print("|---|---|---|---|")
    for name in sys.argv[1:] or SCENARIOS:
        print(run(name), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_process(sys.argv[2], sys.argv[3])
    else:
        main()
