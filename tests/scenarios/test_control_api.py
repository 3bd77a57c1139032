"""The standalone simulator's control API, driven from processes that do not import it."""

from __future__ import annotations

import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_agents import Echo, Keypad

import voicesync

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "control_driver.py"


@pytest.fixture
def standalone() -> Iterator[tuple[str, str]]:
    """`python -m voicesync sim` on free ports, virtual clock; yields (ws url, control url)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "voicesync", "sim", "--port", "0",
                             "--control-port", "0", "--virtual-time"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()],
                              name="test-sim-output", daemon=True)
    reader.start()
    try:
        ws = re.search(r"ws://127\.0\.0\.1:\d+", lines.get(timeout=30))
        control = re.search(r"http://127\.0\.0\.1:\d+", lines.get(timeout=30))
        assert ws and control
        yield ws.group(0), control.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_a_process_without_voicesync_plays_a_full_call(standalone: tuple[str, str]) -> None:
    ws, control = standalone
    client = voicesync.Client(api_key="any", url=ws)
    try:
        client.add_agent(Echo())
        client.connect(10)
        proc = subprocess.run([sys.executable, "-I", str(DRIVER), control], capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        client.close()
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["voicesync_imported"] is False
    assert seen["greeted"] == Echo.greeting
    assert seen["first"] == "You said: Hello there."
    assert seen["cut"] == "You said: Stop."
    assert {"speaker": "bot", "text": "Once upon a", "interrupted": True} in seen["transcript"]
    assert {"call.dtmf_received", "bot.interrupted", "turn.end"} <= set(seen["events"])
    assert seen["status"] == "ended" and seen["late_say"] == 409
    assert seen["missed_barge"] == 504 and seen["story"].startswith("Once upon a time")
    assert seen["story"].endswith("by the sea.")


def test_the_call_command_plays_the_caller(standalone: tuple[str, str]) -> None:
    ws, control = standalone
    client = voicesync.Client(api_key="any", url=ws)
    code = ("import sys; from voicesync.__main__ import main; rc = main(sys.argv[1:]); "
            "assert not [m for m in sys.modules if m.startswith('voicesync.sim')]; sys.exit(rc)")
    try:
        client.add_agent(Keypad())
        client.connect(10)
        proc = subprocess.run([sys.executable, "-c", code, "call", "keypad", "--url", control,
                               "--say", "Hi", "--say", "Tell me a story", "--barge-in",
                               "Stop", "--press", "5"], capture_output=True, text=True,
                              timeout=60, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        client.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"bot: {Echo.greeting}", "caller: Hi", "bot: You said: Hi.", "caller: Tell me a story",
        "bot: Once upon a [cut]", "caller: Stop", "bot: You said: Stop.", "bot: You pressed 5.",
        proc.stdout.splitlines()[-1]]
    assert re.fullmatch(r"\[call CA\w+ ended: hangup\]", proc.stdout.splitlines()[-1])


def test_console_attaches_to_a_running_simulator(standalone: tuple[str, str]) -> None:
    ws, control = standalone
    client = voicesync.Client(api_key="any", url=ws)
    try:
        client.add_agent(Keypad())
        client.connect(10)
        proc = subprocess.run([sys.executable, "-m", "voicesync", "console", "--url", control,
                               "keypad"], input="Hello there\n/press 1\n/hangup\n",
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        client.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [f"bot: {Echo.greeting}", "caller: Hello there",
                         "bot: You said: Hello there.", "bot: You pressed 1."]
    assert re.fullmatch(r"\[call CA\w+ ended: hangup\]", lines[-1])


KEYS = "1234567890*#" * 8  # a long press leaves the simulator's sender the most to do


def _api(control: str, method: str, path: str, body: dict[str, object] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_a_waited_answer_is_finished_on_the_wire(standalone: tuple[str, str]) -> None:
    """A say or press that waits for the bot answers only once the bot's last message has
    its end frame on the wire: the console's next line (a hang-up) must not cut it off."""
    ws, control = standalone
    client = voicesync.Client(api_key="any", url=ws)
    try:
        client.add_agent(Keypad())
        client.connect(10)
        cid = _api(control, "POST", "/v1/calls", {"agent": "keypad", "timeout": 10})["call_id"]
        start = _api(control, "GET", f"/v1/calls/{cid}/frames")["next"]
        for round_ in range(10):  # the race, when there was one, showed within a few rounds
            _api(control, "POST", f"/v1/calls/{cid}/say", {"text": f"round {round_}"})
            _api(control, "POST", f"/v1/calls/{cid}/press", {"digits": "1", "wait": True})
            out = [f["data"] for f in _api(control, "GET",
                                           f"/v1/calls/{cid}/frames?since={start}")["frames"]
                   if f["direction"] == "out" and f["data"]]
            begun = [f["message_id"] for f in out if f["event"] == "bot.speaking"]
            ended = [f["message_id"] for f in out
                     if f["event"] in ("bot.finished", "bot.interrupted")]
            assert begun == ended and len(begun) == 2 * round_ + 2, (begun, ended)
        _api(control, "POST", f"/v1/calls/{cid}/hangup")
    finally:
        client.close()


def test_a_press_answers_once_its_keys_are_on_the_wire(standalone: tuple[str, str]) -> None:
    """A driver reads the frame record right after a press: every key must be in it."""
    ws, control = standalone
    client = voicesync.Client(api_key="any", url=ws)
    api = functools.partial(_api, control)
    try:
        client.add_agent(Echo())
        client.connect(10)
        cid = api("POST", "/v1/calls", {"agent": "echo", "timeout": 10})["call_id"]
        start = api("GET", f"/v1/calls/{cid}/frames")["next"]
        for round_ in range(15):  # the race, when there was one, showed within a few rounds
            api("POST", f"/v1/calls/{cid}/press", {"digits": KEYS})
            frames = api("GET", f"/v1/calls/{cid}/frames?since={start}")
            keys = [f["data"]["digit"] for f in frames["frames"]
                    if f["direction"] == "out" and f["data"]
                    and f["data"]["event"] == "call.dtmf_received"]
            assert keys == list(KEYS) * (round_ + 1)
        api("POST", f"/v1/calls/{cid}/hangup")
    finally:
        client.close()
