"""The README is the front door: its commands match CI, and its first agent and test run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(text) if kind == lang]


def _file(name: str) -> str:
    """The python block of the README that starts with a `# name` comment."""
    [body] = [b for b in _blocks(README, "python") if b.startswith(f"# {name}\n")]
    return body


def test_the_test_command_is_the_one_ci_runs() -> None:
    _, test = _blocks(_section("The two commands"), "sh")
    assert test.strip() == "python -m pytest -q"
    ci_tests = [line.strip() for line in CI.splitlines() if line.startswith("python -m pytest")]
    assert ci_tests == [test.strip()]


def test_the_setup_command_installs_what_ci_installs_and_runs_the_demo() -> None:
    setup, _ = _blocks(_section("The two commands"), "sh")
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert setup.strip().endswith("&& python -m voicesync demo")
    extras = re.search(r'pip install -e "(\.\[[\w,]+\])"', setup)
    assert extras, setup
    assert f'pip install --quiet -e "{extras.group(1)}"' in CI


def test_the_first_agent_is_twenty_lines() -> None:
    code = [line for line in _file("support.py").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 20, "\n".join(code)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    for name in ("support.py", "conftest.py", "test_support.py"):
        (tmp_path / name).write_text(_file(name))
    yield tmp_path


def test_the_first_agent_serves_calls_until_ctrl_c(project: Path) -> None:
    from voicesync.sim import Simulator

    with Simulator(port=0, words_per_second=50.0) as sim:
        proc = subprocess.Popen(
            [sys.executable, "support.py"], cwd=project, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "PINECALL_URL": sim.url,
                                         "PINECALL_API_KEY": "pk_test_readme"})
        try:
            sim.wait_agent("support", timeout=20)
            call = sim.start_call("support")
            assert call.wait_reply(timeout=10) == "Hi, this is Ada from Acme. How can I help?"
            call.say("Can I change my delivery address?")
            assert call.wait_reply(timeout=10) == (
                "You asked about Can I change my delivery address. Let me look that up for you.")
            call.say("Please tell me everything about delivery addresses and parcel lockers")
            call.barge_in("Never mind", after_words=2, timeout=10)
            assert call.transcript[-2][2] is True  # the streamed reply was cut off
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err, err


def test_the_readme_test_passes(project: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_support.py"], cwd=project, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
