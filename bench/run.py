"""voicesync benchmarks: two floor clients and voicesync, side by side, in one run.

    python bench/run.py            # spread N = 1 ... 1000 (20 turns); burst N = 100 ... 1000
    python bench/run.py --quick    # CI smoke: spread N = 1, 10, 50; burst N = 20, 50; no thresholds

The clients: the loop floor (agent_floor.py), the pool floor (agent_pool_floor.py, the
issue's: one reader, 8 workers; spread only up to 100 calls) and voicesync. For each
workload, N and client it starts the load driver (the platform, its own
process), then the agent (another process), waits for both with a deadline, and joins
their records. It prints the markdown tables and writes them (results.md), a PNG chart
and a compact results.json (figures and latency quantiles, no raw samples; --raw adds
samples.json.gz) under bench/results/ (bench/results/quick/ for --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
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
from workload import TURN_TIMEOUT, Workload

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLIENTS = {"loop_floor": "agent_floor.py", "pool_floor": "agent_pool_floor.py",
           "voicesync": "agent_voicesync.py"}
# The most calls a client plays per workload (no entry: every level). Past 100 spread
# calls the pool floor's 8 workers serve fewer turns a second than the calls ask for:
# turns wait in its queue until they time out, and the level overstays its deadline.
MAX_CALLS = {("pool_floor", "spread"): 100}
# (levels, turns per call, gap s) per workload, in the order they run; --quick: the second.
FULL = {"burst": ((100, 200, 500, 1000), 5, 0.5),
        "spread": ((1, 10, 50, 100, 250, 500, 1000), 20, 2.0)}
QUICK = {"burst": ((20, 50), 2, 0.3), "spread": ((1, 10, 50), 4, 0.3)}


def run_one(client: str, workload: Workload, tmp: Path) -> dict[str, Any]:
    """One (client, N) run in two fresh processes; both are killed if they overstay."""
    tag = f"{client}-{workload.mode}-{workload.calls}"
    # A deadline, not an estimate: with 1000 calls the slowest call's 20 random pauses add
    # up to about twice their mean, and a burst round may take its TURN_TIMEOUT.
    per_turn = workload.gap + TURN_TIMEOUT if workload.burst else 2 * workload.gap + 1.0
    budget = workload.turns * per_turn + workload.gap + 30.0
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
        while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
            failed = [p for p in procs if p.returncode not in (None, 0)]
            if failed:  # the other one would wait for it until its deadline
                raise RuntimeError(f"{tag}: {Path(failed[0].args[1]).name} exited with "
                                   f"{failed[0].returncode}:\n{_logs(tmp, tag)}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].wait(0.2)
        if any(proc.returncode != 0 for proc in procs):
            raise RuntimeError(f"{tag}: exited with {[p.returncode for p in procs]} "
                               f"(None: still running at the deadline):\n{_logs(tmp, tag)}")
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


IMPORT_PROBE = ("import time; t, c = time.perf_counter(), time.process_time(); "
                "import voicesync; "
                "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)")
IMPORT_RUNS = 7


def import_ms(runs: int = IMPORT_RUNS) -> tuple[float, float]:
    """`import voicesync` in a fresh interpreter, ms of wall clock and of CPU: the best of
    `runs` each (the least disturbed by other work on the machine).

    With compiled bytecode, as an installed package has it: a first, untimed run writes
    it to a scratch cache. Compiling the sources on every import instead (what
    PYTHONDONTWRITEBYTECODE=1 does to a source tree) costs about as much as the import.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="voicesync-pyc-") as cache:
        env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=cache)  # cwd too: `-c` puts
        times = [[float(v) for v in subprocess.run(  # it first on sys.path
            [sys.executable, "-c", IMPORT_PROBE], env=env, cwd=ROOT, check=True,
            capture_output=True, text=True, timeout=60).stdout.split()]
            for _ in range(runs + 1)][1:]
    return round(min(t[0] for t in times), 1), round(min(t[1] for t in times), 1)


MARKS = ("<!-- bench:results -->\n", "<!-- /bench:results -->\n")


def splice(path: Path, table: str) -> None:
    """Replace what stands between the results marks in `path` with `table`."""
    text = path.read_text()
    start, stop = text.index(MARKS[0]) + len(MARKS[0]), text.index(MARKS[1])
    path.write_text(text[:start] + table + text[stop:])
    print(f"updated {path}", file=sys.stderr)


def environment() -> dict[str, Any]:
    import websocket
    import websockets

    import voicesync

    wall, cpu = import_ms()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "kernel": platform.release(),
            "voicesync": voicesync.__version__, "websocket-client": websocket.__version__,
            "websockets": websockets.__version__, "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the box skews figures
            "import_ms": wall, "import_cpu_ms": cpu, "import_runs": IMPORT_RUNS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run (spread N = 1, 10, 50; burst N = 20, 50)")
    parser.add_argument("--calls", type=int, nargs="*", help="override the spread N levels")
    parser.add_argument("--burst-calls", type=int, nargs="*", help="override the burst N levels")
    parser.add_argument("--turns", type=int, help="turns per call, spread (20; --quick: 4)")
    parser.add_argument("--gap", type=float, help="mean pause between turns, s (2.0; 0.3)")
    parser.add_argument("--raw", action="store_true", help="also write samples.json.gz")
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument("--readme", action="store_true",
                        help="write the tables into README.md and bench/README.md")
    args = parser.parse_args()
    plan = {mode: list(spec) for mode, spec in (QUICK if args.quick else FULL).items()}
    if args.calls is not None:
        plan["spread"][0] = tuple(args.calls)
    if args.burst_calls is not None:
        plan["burst"][0] = tuple(args.burst_calls)
    plan["spread"][1] = args.turns or plan["spread"][1]
    plan["spread"][2] = args.gap or plan["spread"][2]
    out: Path = args.out or BENCH / "results" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))  # voicesync from this tree, for its version

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    failed: list[str] = []
    started, load_before = time.monotonic(), round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="voicesync-bench-") as tmp:
        for mode, (levels, turns, gap) in plan.items():
            if not levels:
                continue
            results[mode] = {client: [] for client in CLIENTS}
            for calls in levels:
                workload = Workload(calls, turns, gap, burst=mode == "burst")
                for client in CLIENTS:
                    if calls > MAX_CALLS.get((client, mode), calls):
                        continue
                    print(f"# {mode} {client}: {calls} calls x {turns} turns ...",
                          file=sys.stderr, flush=True)
                    try:
                        results[mode][client].append(run_one(client, workload, Path(tmp)))
                    except (RuntimeError, OSError, ValueError) as exc:
                        # One run that overstays must not cost the others: report it, go on.
                        print(exc, file=sys.stderr)
                        failed.append(f"{mode} {calls} {client}: {str(exc).splitlines()[0]}")
    samples = {mode: {client: [r.pop("samples_ms") for r in rows]
                      for client, rows in by_client.items()}
               for mode, by_client in results.items()}
    env = {**environment(), "loadavg_1m_before": load_before}
    run = {"environment": env, "elapsed_s": round(time.monotonic() - started, 1),
           "workloads": {mode: {"calls": levels, "turns": turns, "gap_s": gap}
                         for mode, (levels, turns, gap) in plan.items() if mode in results},
           "results": results, "failed": failed}
    table = markdown(run)
    if not args.quick:
        table += "\n" + goals(run)
    print(table)
    (out / "results.md").write_text(table)
    # Figures and latency quantiles, no raw samples: a few KB instead of a megabyte.
    (out / "results.json").write_text(json.dumps(run, separators=(",", ":")) + "\n")
    if args.raw:
        with gzip.open(out / "samples.json.gz", "wt") as raw:
            json.dump(samples, raw, separators=(",", ":"))
    chart(run, out / "latency.png")
    if args.readme:
        for readme in (ROOT / "README.md", BENCH / "README.md"):
            splice(readme, table)
    print(f"wrote {out}/results.md, results.json, latency.png", file=sys.stderr)


if __name__ == "__main__":
    main()
