"""`python -m voicesync test PATH...`: run scenario files in parallel and report.

Exit status: 0 when every run passed, 1 when any failed, 2 on a usage or file error.
"""

from __future__ import annotations

import argparse
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from voicesync.errors import ConfigurationError
from voicesync.scenarios._files import find, load
from voicesync.scenarios._remote import _err, _out
from voicesync.scenarios._run import Result, run
from voicesync.scenarios._spec import Scenario


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="voicesync test", description="run voice-agent scenario files (YAML)")
    parser.add_argument("paths", nargs="+", help="scenario files, or folders of *.yaml")
    parser.add_argument("-j", "--jobs", type=int, default=min(8, (os.cpu_count() or 2) * 2),
                        help="scenarios run at once (default: 2 per core, at most 8)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each scenario N times and report the flaky ones")
    parser.add_argument("--junit-xml", metavar="PATH", help="also write a JUnit XML report")
    parser.add_argument("--record", metavar="DIR",
                        help="write each run's frames to DIR/<scenario>.jsonl")
    parser.add_argument("-k", metavar="TEXT", help="only scenarios whose name contains TEXT")
    parser.add_argument("--real-time", action="store_true",
                        help="speak in real time instead of on the virtual clock")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every scenario's transcript")
    args = parser.parse_args(argv)
    try:
        scenarios = [s for path in find(args.paths) for s in load(path)]
    except ConfigurationError as exc:
        _err(f"voicesync test: {exc}")
        return 2
    if args.k:
        scenarios = [s for s in scenarios if args.k in s.name]
    if not scenarios:
        _err("voicesync test: no scenarios found")
        return 2
    for scenario in scenarios:
        scenario.virtual_time = scenario.virtual_time and not args.real_time
    started = time.monotonic()
    runs = [s for s in scenarios for _ in range(max(1, args.repeat))]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs),
                            thread_name_prefix="voicesync-scenario") as pool:
        results = list(pool.map(run, runs))
    elapsed = time.monotonic() - started
    _summary(scenarios, results, args.repeat, args.verbose)
    if args.record:
        folder = Path(args.record)
        folder.mkdir(parents=True, exist_ok=True)
        for index, result in enumerate(results):
            suffix = f".{index % args.repeat + 1}" if args.repeat > 1 else ""
            result.save(folder / f"{_slug(result.name)}{suffix}.jsonl")
    if args.junit_xml:
        write_junit(args.junit_xml, results, elapsed)
    failed = sum(not r.ok for r in results)
    _out(f"{len(results) - failed} passed, {failed} failed, {len(results)} runs "
          f"in {elapsed:.2f} s")
    return 1 if failed else 0


def _summary(scenarios: list[Scenario], results: list[Result], repeat: int,
           verbose: bool) -> None:
    by_name: dict[int, list[Result]] = {}
    for result in results:
        by_name.setdefault(id(result.scenario), []).append(result)
    flaky = []
    for scenario in scenarios:
        mine = by_name.get(id(scenario), [])
        passed = sum(r.ok for r in mine)
        first_bad = next((r for r in mine if not r.ok), None)
        if repeat > 1:
            mark = "ok" if passed == len(mine) else ("FLAKY" if passed else "FAILED")
            _out(f"{mark:6} {scenario.name} ({passed}/{len(mine)} passed)")
            if 0 < passed < len(mine):
                flaky.append(scenario.name)
        else:
            _out(f"{'ok' if passed else 'FAILED':6} {scenario.name}")
        if first_bad is not None:
            _out("\n".join("       " + line for line in first_bad.report().splitlines()[1:]))
        elif verbose and mine:
            _out("\n".join("       " + line for line in mine[0].text().splitlines()))
    if repeat > 1:
        _out(f"flaky: {len(flaky)}" + (f" ({', '.join(flaky)})" if flaky else ""))


def write_junit(path: str | Path, results: list[Result], elapsed: float) -> None:
    """One <testcase> per run; a failure carries the report (failures and transcript)."""
    suite = ET.Element("testsuite", name="voicesync scenarios", tests=str(len(results)),
                       failures=str(sum(not r.ok for r in results)), time=f"{elapsed:.3f}")
    counts: dict[str, int] = {}
    for result in results:
        counts[result.name] = counts.get(result.name, 0) + 1
        name = result.name + (f" [{counts[result.name]}]" if counts[result.name] > 1 else "")
        where = str(result.scenario.path or "")
        case = ET.SubElement(suite, "testcase", classname=where or "scenario", name=name,
                             time=f"{result.seconds:.3f}")
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.failures[0][:500])
            failure.text = result.report()
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
