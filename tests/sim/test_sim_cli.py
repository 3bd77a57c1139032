"""`python -m voicesync sim` and the subcommand table."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys

from sim_support import WsClient

from voicesync.__main__ import SUBCOMMANDS, main


def test_unknown_and_missing_subcommands_exit_2() -> None:
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert set(SUBCOMMANDS) >= {"sim", "demo", "console"}


def test_sim_runs_in_the_foreground_until_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "voicesync", "sim", "--port", "0",
                             "--words-per-second", "100"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=20), "the simulator printed nothing"
        line = proc.stdout.readline()
        found = re.search(r"ws://127\.0\.0\.1:\d+", line)
        assert found, line
        client = WsClient(found.group(0))
        assert client.connect()["event"] == "connected"
        client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
