"""Scenario files: `python -m voicesync test`, its reports, pytest collection, 100 variants."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from scenario_agents import Echo

from voicesync.errors import ConfigurationError
from voicesync.scenarios import Scenario, load
from voicesync.scenarios._cli import main

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AGENTS = HERE / "scenario_agents.py"


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_the_shipped_scenarios_pass_from_a_fresh_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("PINECALL_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(key, None)
    report = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "voicesync", "test", "examples/scenarios",
                           "--junit-xml", str(report)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout
    suite = ET.parse(report).getroot()
    assert int(suite.get("tests", "0")) >= 10 and suite.get("failures") == "0"


def test_a_failing_file_exits_1_and_reports_it_in_junit(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "slow.yaml", f"""
        name: too-slow
        agent: {AGENTS}:Slow
        steps:
          - say: Hello
        expect:
          first_word_ms: 50
        ---
        name: fine
        agent: {AGENTS}:Echo
        steps:
          - say: Hello
          - hear: "You said: Hello"
        """)
    report = tmp_path / "out.xml"
    assert main([str(tmp_path), "--junit-xml", str(report)]) == 1
    out = capsys.readouterr().out
    assert "FAILED too-slow" in out and "ok     fine" in out
    assert "over the 50 ms budget" in out
    cases = ET.parse(report).getroot().findall("testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"too-slow"}


def test_repeat_reports_flaky_scenarios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "echo.yaml", f"""
        agent: {AGENTS}:Echo
        steps:
          - say: Tell me a story
          - barge_in: Stop
            after_words: 4
          - hear: "You said: Stop"
        expect: {{barge_in_silent_ms: 50}}
        """)
    assert main([str(tmp_path / "echo.yaml"), "--repeat", "20", "--record",
                 str(tmp_path / "rec")]) == 0
    out = capsys.readouterr().out
    assert "ok     echo (20/20 passed)" in out and "flaky: 0" in out
    assert len(list((tmp_path / "rec").glob("echo.*.jsonl"))) == 20


def test_a_file_can_call_a_python_hook_and_place_the_call(tmp_path: Path) -> None:
    write(tmp_path, "hook.yaml", f"""
        agent: {AGENTS}:Echo
        words_per_second: 10
        call: {{from: "+15550002222", metadata: {{crm: 7}}}}
        steps:
          - python: press_two
          - say: done
            wait: false
          - hear: "You said: done"
          - hangup
        expect: {{digits: "2", outcome: caller_hangup}}
        """)
    [scenario] = load(tmp_path / "hook.yaml")
    result = scenario.run().check()
    started = next(f for f in result.frames if f.event == "call.started")
    assert started.get("from") == "+15550002222" and started.get("metadata") == {"crm": 7}


def test_bad_files_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "bad.yaml", "agent: x.py:A\nsteps:\n  - shout: hi\n")
    assert main([str(tmp_path / "bad.yaml")]) == 2
    assert "exactly one of say" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="unknown expectation 'heard_it'"):
        write(tmp_path, "worse.yaml", "agent: x.py:A\nexpect: {heard_it: 1}\n")
        load(tmp_path / "worse.yaml")
    assert main([str(tmp_path / "missing")]) == 2


def test_pytest_collects_scenario_files(tmp_path: Path) -> None:
    write(tmp_path, "calls.scenario.yaml", f"""
        name: passes
        agent: {AGENTS}:Echo
        steps: [{{say: Hi}}, {{hear: "You said: Hi"}}]
        ---
        name: fails
        agent: {AGENTS}:Echo
        steps: [{{say: Hi}}, {{hear: "something else"}}]
        """)
    write(tmp_path, "other.yaml", "not: a scenario\n")  # only *.scenario.yaml is collected
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q",  # the pytest11 plugin
                           "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert 'expected to hear "something else"' in proc.stdout


def test_a_hundred_generated_variants_run_in_under_ten_seconds() -> None:
    def variant(i: int) -> Scenario:
        return (Scenario(Echo, name=f"variant-{i}")
                .say(f"line {i}").hear(f"You said: line {i}")
                .say("Tell me a story").barge_in(f"stop {i}", after_words=1 + i % 7)
                .hear(f"You said: stop {i}")
                .silence(i % 20)
                .say("bye").wait_end()
                .expecting(outcome="agent_hangup", first_word_ms=2000, barge_in_silent_ms=50))

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: s.run(), [variant(i) for i in range(100)]))
    elapsed = time.monotonic() - started
    assert [r.report() for r in results if not r.ok] == []
    assert elapsed < 10, f"{elapsed:.1f} s"
    cuts = {tuple(t for who, t, cut in r.transcript if cut) for r in results[:7]}
    assert len(cuts) == 7  # each barge-in point cut the story somewhere else
