"""`python -m voicesync console` in a real terminal (tmux): typing, barge-in, keypad, hang-up."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples_support import KEY_VARIABLES, ROOT
from helpers import until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install -y tmux)")

AGENT = """
import voicesync

class Parrot(voicesync.Agent):
    id = "parrot"
    greeting = "Parrot here."

    def on_turn(self, turn, call, history):
        call.reply("You said " + turn.text + ". " + "I will now keep talking for a while " * 3)

keypad = voicesync.Agent("keypad")

@keypad.on("call.dtmf_received")
def pressed(event, call):
    call.say("You pressed " + event.digit)
"""

CONSOLE = (sys.executable, "-m", "voicesync", "console")


class Terminal:
    """One tmux server of its own, running one command in a 160x60 window."""

    def __init__(self) -> None:
        self.tmux = ["tmux", "-L", f"voicesync-test-{os.getpid()}"]
        self.started = False

    def start(self, *command: str) -> None:
        unset = " ".join(f"-u {name}" for name in KEY_VARIABLES)
        line = (f"cd {shlex.quote(str(ROOT))} && env {unset} {shlex.join(command)}; "
                "echo EXIT=$?; cat")  # `cat` keeps the pane (and its last screen) open
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "t", "-x", "160", "-y", "60",
                        line], check=True)
        self.started = True

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "t", "-S", "-200"],
                              check=True, capture_output=True, text=True).stdout

    def shows(self, text: str, timeout: float = 20.0) -> None:
        until(lambda: text in self.screen(), timeout, f"{text!r} on the screen")

    def close(self) -> None:
        if self.started:
            subprocess.run([*self.tmux, "kill-server"], check=False)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        term.close()


@pytest.fixture
def agent_file(tmp_path: Path) -> str:
    path = tmp_path / "my_agent.py"
    path.write_text(AGENT)
    return str(path)


def test_conversation_with_barge_in_and_hangup(terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "parrot", "--words-per-second", "8")
    for keys, expected in [
        ("", "bot:    Parrot here."),
        ("hello there", "bot:    You said hello there. I will"),
        ("wait a second", "[cut off by the caller]"),  # typed while the bot is still talking
        ("", "bot:    You said wait a second."),
        ("/hangup", "[call ended: hangup]"),
        ("", "EXIT=0"),
    ]:
        if keys:
            terminal.keys(keys, "Enter")
        terminal.shows(expected)


def test_keypad_and_end_of_input(terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "keypad", "--words-per-second", "20")
    terminal.shows("/hangup")
    terminal.keys("/press 42", "Enter")
    terminal.shows("caller: [pressed 4]")
    terminal.shows("caller: [pressed 2]")
    terminal.shows("bot:    You pressed 2")
    terminal.keys("C-d")
    terminal.shows("EXIT=0")
