"""`python -m voicesync demo` on a clean machine's environment, and the console's loading rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from examples_support import ROOT, clean_env

import voicesync
from voicesync.console import load


def test_demo_plays_a_call_and_reports_latencies() -> None:
    done = subprocess.run([sys.executable, "-m", "voicesync", "demo"], check=False, cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=45)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = out.splitlines()
    assert "bot:    Hi, you have reached the voicesync demo line. Ask me anything!" in lines
    assert "caller: What is voicesync?" in lines
    cut = next(line for line in lines if line.endswith("[cut off by the caller]"))
    assert cut.startswith("bot:    When you talk over me,")
    assert "caller: Sorry to cut you off, that makes sense. Thanks, bye!" in lines
    assert "[call ended: hangup]" in lines
    first_tokens = re.findall(r"turn \d: turn end -> first token on the wire +([\d.]+) ms", out)
    assert len(first_tokens) == 3
    stopped = re.search(r"interruption -> reply stream ended on the wire +([\d.]+) ms", out)
    closed = re.search(r"interruption -> model's HTTP stream closed +([\d.]+) ms", out)
    assert stopped and closed, out
    # Generous bounds for a loaded CI machine; the point is "at once", not a 30 s stall.
    assert float(stopped.group(1)) < 1000 and float(closed.group(1)) < 1000


def test_the_console_finds_agents_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "several.py"
    path.write_text(
        "import voicesync\n"
        "class Support(voicesync.Agent):\n    id = 'support'\n"
        "class Sales(voicesync.Agent):\n    id = 'sales'\n"
        "sales = Sales()\n"
        "plain = voicesync.Agent('plain')\n"
        "from voicesync.llm import OpenAIAgent  # imported classes do not count\n")
    agents = load(str(path))
    assert sorted(a.id for a in agents) == ["plain", "sales", "support"]
    assert sum(type(a).__name__ == "Sales" for a in agents) == 1  # the instance, not a second


def test_the_console_takes_module_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_agent.py").write_text(
        "import voicesync\nclass Shop(voicesync.Agent):\n    id = 'shop'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    [agent] = load("shop_agent:Shop")
    assert agent.id == "shop"


def test_the_console_explains_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(voicesync.ConfigurationError, match="no voicesync Agent"):
        load(str(path))


def test_the_console_reaches_a_module_level_client(tmp_path: Path) -> None:
    path = tmp_path / "with_client.py"
    path.write_text(
        "import voicesync\n"
        "client = voicesync.Client()  # PINECALL_URL points at the console's simulator\n"
        "agent = client.agent('desk', greeting='Desk here.')\n")
    done = subprocess.run([sys.executable, "-m", "voicesync", "console", str(path),
                           "--words-per-second", "50"], input="/hangup\n", cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "calling agent 'desk'" in done.stdout and "[call ended: hangup]" in done.stdout
