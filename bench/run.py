"""voicesync benchmarks: the floor client and voicesync, side by side, in one run.

    python bench/run.py            # N = 1, 10, 50, 100, 250, 500 calls, 20 turns each
    python bench/run.py --quick    # CI smoke: N = 1, 10, 50, 4 turns each, no thresholds

For each N and each client it starts the load driver (the platform, its own process),
then the agent (another process), waits for both with a deadline, and joins their
records. It prints a markdown table and writes it, a PNG chart and the raw JSON under
bench/results/ (bench/results/quick/ for --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import chart, goals, markdown
from summary import summarize
from workload import Workload

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLIENTS = {"floor": "agent_floor.py", "voicesync": "agent_voicesync.py"}
FULL = (1, 10, 50, 100, 250, 500)
QUICK = (1, 10, 50)


def run_one(client: str, workload: Workload, tmp: Path) -> dict[str, Any]:
    """One (client, N) run in two fresh processes; both are killed if they overstay."""
    tag = f"{client}-{workload.calls}"
    budget = workload.turns * (workload.gap + 0.5) + workload.gap + 30.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(tmp / f"{tag}.driver.log", "wb") as log:
            driver = subprocess.Popen(
                [sys.executable, str(BENCH / "driver.py"), "--workload", workload.to_json(),
                 "--out", str(tmp / f"{tag}.driver.json"), "--deadline", str(budget)],
                stdout=subprocess.PIPE, stderr=log, env=env)
        procs.append(driver)
        port = _read_port(driver, timeout=15.0)
        with open(tmp / f"{tag}.agent.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, str(BENCH / CLIENTS[client]), "--url", f"ws://127.0.0.1:{port}",
                 "--calls", str(workload.calls), "--out", str(tmp / f"{tag}.agent.json"),
                 "--deadline", str(budget)], stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + budget + 20.0
        for proc in procs:
            proc.wait(max(0.1, deadline - time.monotonic()))
            if proc.returncode != 0:
                raise RuntimeError(f"{tag}: {Path(proc.args[1]).name} exited with "
                                   f"{proc.returncode}:\n{_logs(tmp, tag)}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5.0)
    driver_rec = json.loads((tmp / f"{tag}.driver.json").read_text())
    agent_rec = json.loads((tmp / f"{tag}.agent.json").read_text())
    return summarize(workload, driver_rec, agent_rec)


def _logs(tmp: Path, tag: str) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                     for log in sorted(tmp.glob(f"{tag}.*.log")))


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line.strip().isdigit():
        raise RuntimeError(f"the driver did not report its port within {timeout:g} s")
    return int(line)


IMPORT_PROBE = ("import time; t = time.perf_counter(); import voicesync; "
                "print((time.perf_counter() - t) * 1000)")


def import_ms(runs: int = 7) -> float:
    """`import voicesync` in a fresh interpreter, ms: the best of `runs` (the least disturbed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = [float(subprocess.run([sys.executable, "-c", IMPORT_PROBE], env=env, check=True,
                                  capture_output=True, text=True, timeout=60).stdout)
             for _ in range(runs)]
    return round(min(times), 1)


def environment() -> dict[str, Any]:
    import websocket
    import websockets

    import voicesync

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "kernel": platform.release(),
            "voicesync": voicesync.__version__, "websocket-client": websocket.__version__,
            "websockets": websockets.__version__, "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the box skews figures
            "import_ms": import_ms()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (N = 1, 10, 50)")
    parser.add_argument("--calls", type=int, nargs="+", help="override the N levels")
    parser.add_argument("--turns", type=int, help="turns per call (20; --quick: 4)")
    parser.add_argument("--gap", type=float, help="mean pause between turns, s (2.0; 0.3)")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    levels = args.calls or (QUICK if args.quick else FULL)
    turns = args.turns or (4 if args.quick else 20)
    gap = args.gap or (0.3 if args.quick else 2.0)
    out: Path = args.out or BENCH / "results" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))  # voicesync from this tree, for its version

    results: dict[str, list[dict[str, Any]]] = {client: [] for client in CLIENTS}
    started, load_before = time.monotonic(), round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="voicesync-bench-") as tmp:
        for calls in levels:
            workload = Workload(calls, turns, gap)
            for client in CLIENTS:
                print(f"# {client}: {calls} calls x {turns} turns ...", file=sys.stderr,
                      flush=True)
                results[client].append(run_one(client, workload, Path(tmp)))
    env = {**environment(), "loadavg_1m_before": load_before}
    run = {"environment": env, "workload": {"turns": turns, "gap_s": gap},
           "elapsed_s": round(time.monotonic() - started, 1), "results": results}
    table = markdown(run)
    if not args.quick:
        table += "\n" + goals(results)
    print(table)
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(json.dumps(run, indent=1))
    chart(results, out / "latency.png")
    print(f"wrote {out}/results.md, results.json, latency.png", file=sys.stderr)


if __name__ == "__main__":
    main()
