"""With keys set, an example serves the platform until Ctrl-C (the platform here is a
simulator the test runs, reached through PINECALL_URL; the "provider" a stand-in model)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest
from examples_support import start_example

from voicesync.sim import Simulator
from voicesync.sim.model import ModelServer


@pytest.fixture
def platform() -> Iterator[Simulator]:
    with Simulator(port=0, words_per_second=50.0) as sim:
        yield sim


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    return out, err


def _keyed(platform: Simulator, name: str, **env: str) -> subprocess.Popen[str]:
    return start_example(name, PINECALL_API_KEY="pk_test_examples", PINECALL_URL=platform.url,
                         **env)


def test_quickstart_serves_until_ctrl_c(platform: Simulator) -> None:
    proc = _keyed(platform, "quickstart.py")
    try:
        platform.wait_agent("echo", timeout=20)
        call = platform.start_call("echo")
        assert call.wait_reply(timeout=10) == "Hi! I repeat whatever you say."
        call.say("Good morning")
        assert call.wait_reply(timeout=10).startswith("You said: Good morning.")
        call.hangup()
    finally:
        out, _ = _stop(proc)
    assert "serving echo" in out and "Ctrl-C" in out
    assert "local simulated call" not in out


def test_screening_serves_and_screens(platform: Simulator) -> None:
    proc = _keyed(platform, "screening.py")
    try:
        platform.wait_agent("front-desk", timeout=20)
        friend = platform.start_call(to="+15550100001", from_="+15550001234")
        assert friend.wait_reply(timeout=10) == "Front desk, how can I help?"
        spam = platform.ring(to="+15550100001", from_="+15550009999")
        assert spam.wait_started(timeout=10) is False and spam.status == "rejected"
    finally:
        _stop(proc)


def test_openai_example_uses_the_configured_provider(platform: Simulator) -> None:
    with ModelServer(tokens_per_second=200.0, replies=["Yes, we have rooms tonight."]) as model:
        proc = _keyed(platform, "openai_agent.py", OPENAI_API_KEY="sk-test",
                      OPENAI_BASE_URL=model.openai_base_url)
        try:
            platform.wait_agent("receptionist", timeout=20)
            call = platform.start_call("receptionist")
            call.wait_reply(timeout=10)
            call.say("Any rooms tonight?")
            assert call.wait_reply(timeout=10) == "Yes, we have rooms tonight."
        finally:
            _stop(proc)
        body = model.requests[0].body
    assert body["model"] == "gpt-4o-mini" and body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "Any rooms tonight?"}
