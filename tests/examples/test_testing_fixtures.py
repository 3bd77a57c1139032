"""voicesync.testing: the fixtures a user imports into a conftest to test their own agent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import voicesync
from voicesync.sim import Simulator


class Echo(voicesync.Agent):
    id = "echo"

    def on_turn(self, turn: voicesync.Turn, call: voicesync.Call,
                history: voicesync.History) -> None:
        call.reply("You said " + turn.text)


def test_the_documented_example(voicesync_sim: Simulator,
                                voicesync_client: voicesync.Client) -> None:
    agent = voicesync_client.add_agent(Echo())
    agent.wait_ready()
    call = voicesync_sim.start_call(agent.id)
    call.say("hello")
    assert call.wait_reply() == "You said hello"


def test_the_client_is_connected_to_the_simulator(voicesync_sim: Simulator,
                                                  voicesync_client: voicesync.Client) -> None:
    assert voicesync_client.connected
    assert voicesync_client.url == voicesync_sim.url + "/client"


USER_TESTS = '''
import time

import voicesync
from voicesync.testing import voicesync_client, voicesync_sim  # noqa: F401


class Broken(voicesync.Agent):
    id = "broken"

    def on_turn(self, turn, call, history):
        raise KeyError("no answer for " + turn.text)


def test_reply(voicesync_sim, voicesync_client):
    agent = voicesync_client.add_agent(Broken())
    agent.wait_ready()
    call = voicesync_sim.start_call(agent.id)
    call.say("hello")
    assert call.wait_reply(timeout=60) == "You said hello"


def test_expected(voicesync_sim, voicesync_client, voicesync_handler_errors):
    agent = voicesync_client.add_agent(Broken())
    agent.wait_ready()
    call = voicesync_sim.start_call(agent.id)
    call.say("hi")
    deadline = time.monotonic() + 10
    while not voicesync_handler_errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [type(e) for e in voicesync_handler_errors] == [KeyError]
    assert call.status == "active"  # an expected error does not end the call
    voicesync_handler_errors.clear()
'''


def test_a_raising_handler_fails_the_test_with_its_own_exception_at_once(
        tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {**os.environ, "PYTHONPATH": str(Path(voicesync.__file__).resolve().parent.parent)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    out = done.stdout + done.stderr
    assert "1 failed, 1 passed" in out, out
    assert "FAILED test_user.py::test_reply - KeyError: 'no answer for hello'" in out, out
    assert 'raise KeyError("no answer for " + turn.text)' in out, out  # its traceback
    assert "raised by a voicesync handler during this test" in out, out
    assert took < 30, f"the failing test waited out its 60 s reply timeout ({took:.1f} s)"
