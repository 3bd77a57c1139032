"""`python -m voicesync console` in a real terminal (tmux): typing, barge-in, keypad, hang-up.

The typed line must stay on its own prompt line (the last line of the screen) while the
bot speaks above it, and a cut-off reply must end with the mark on its own line.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples_support import KEY_VARIABLES, ROOT
from helpers import until

from voicesync import Client
from voicesync.console import terminal_console
from voicesync.sim import Simulator

AGENT = """
import voicesync

class Parrot(voicesync.Agent):
    id = "parrot"
    greeting = "Parrot here."

    def on_turn(self, turn, call, history):
        call.reply("You said " + turn.text + ". " + "I will now keep talking for a while " * 3)

class Talker(voicesync.Agent):  # a greeting (which the caller cannot cut off) to type over
    id = "talker"
    greeting = "Hello, this greeting is long on purpose so that you can type over it."

    def on_turn(self, turn, call, history):
        call.reply("You said " + turn.text + ".")

quitter = voicesync.Agent("quitter", greeting="Hello, I will hang up on you in the middle of this.")

@quitter.on("bot.word")
def word(event, call):
    if event.word_index == 5:
        call.hangup()

keypad = voicesync.Agent("keypad")

@keypad.on("call.dtmf_received")
def pressed(event, call):
    call.say("You pressed " + event.digit)
"""

CONSOLE = (sys.executable, "-m", "voicesync", "console")


class Terminal:
    """One tmux server of its own, running one command in a 160x60 window."""

    def __init__(self) -> None:
        # A server per test: a name reused right after `kill-server` can hit the dying one.
        self.tmux = ["tmux", "-L", f"voicesync-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"]
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

    def lines(self) -> list[str]:
        """The screen's lines, without trailing blanks and blank lines."""
        return [line.rstrip() for line in self.screen().splitlines() if line.strip()]

    def shows(self, text: str, timeout: float = 20.0) -> None:
        try:
            until(lambda: text in self.screen(), timeout, f"{text!r} on the screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{self.screen()}") from None

    def prompt_line(self) -> str:
        """The line being typed: the last on the screen, while a call is on."""
        return self.lines()[-1]

    def close(self) -> None:
        if self.started:
            subprocess.run([*self.tmux, "kill-server"], check=False)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
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
    lines = terminal.lines()
    cut = next(i for i, line in enumerate(lines) if line.endswith("[cut off by the caller]"))
    assert lines[cut].startswith("bot:    You said hello there. I will")
    assert lines[cut].endswith(" ... [cut off by the caller]")
    assert lines[cut + 1] == "caller: wait a second"  # the typed line, whole, on its own line


def test_typing_without_enter_cuts_the_bot_off_and_keeps_the_line(
        terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "parrot", "--words-per-second", "8")
    terminal.shows("bot:    Parrot here.")
    terminal.keys("hello there", "Enter")
    terminal.shows("bot:    You said hello there. I will")
    terminal.keys("hold on")  # no Enter: the first key is the barge-in
    terminal.shows("[cut off by the caller]")
    until(lambda: terminal.prompt_line() == "caller: hold on", 10, "the typed line intact")
    cut = terminal.lines()[-2]
    assert cut.startswith("bot:    You said hello there. I will")
    assert cut.endswith(" ... [cut off by the caller]"), terminal.screen()
    terminal.keys("Enter")
    terminal.shows("bot:    You said hold on.")
    assert "caller: hold on" in terminal.lines()
    terminal.keys("C-d")
    terminal.shows("EXIT=0")


def test_the_typed_line_stays_intact_while_the_bot_speaks(
        terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "talker", "--words-per-second", "4")
    terminal.shows("bot:    Hello, this greeting")
    terminal.keys("one more thing")  # typed while the greeting is being spoken
    until(lambda: terminal.prompt_line() == "caller: one more thing", 10, "the typed line")
    spoken = terminal.lines()[-2]
    terminal.shows(spoken + " ")  # the bot's line grew above the prompt...
    assert terminal.prompt_line() == "caller: one more thing"  # ...and the typed line is intact
    assert all("one more thing" not in line for line in terminal.lines()[:-1])
    terminal.keys("Enter")  # said once the greeting is over: it cannot be cut off
    terminal.shows("bot:    You said one more thing.")
    lines = terminal.lines()
    assert "bot:    Hello, this greeting is long on purpose so that you can type over it." in lines
    said = lines.index("caller: one more thing")
    assert lines[said + 1] == "bot:    You said one more thing."
    terminal.keys("C-d")
    terminal.shows("EXIT=0")


def test_hanging_up_mid_sentence_ends_the_line(terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "parrot", "--words-per-second", "8")
    terminal.shows("bot:    Parrot here.")
    terminal.keys("hello there", "Enter")
    terminal.shows("bot:    You said hello there. I will")
    terminal.keys("C-d")  # Ctrl-D on an empty line hangs up, the bot mid-sentence
    terminal.shows("EXIT=0")
    lines = terminal.lines()
    ended = lines.index("[call ended: hangup]")
    assert lines[ended - 1].startswith("bot:    You said hello there. I will")
    assert lines[ended - 1].endswith(" ...")


def test_keypad_and_end_of_input(terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "keypad", "--words-per-second", "20")
    terminal.shows("/hangup")
    terminal.keys("/press 42", "Enter")
    terminal.shows("caller: [pressed 4]")
    terminal.shows("caller: [pressed 2]")
    terminal.shows("bot:    You pressed 2")
    terminal.keys("C-d")
    terminal.shows("EXIT=0")


def test_the_agent_hanging_up_mid_sentence_ends_the_line_and_the_prompt(
        terminal: Terminal, agent_file: str) -> None:
    terminal.start(*CONSOLE, agent_file, "--agent", "quitter", "--words-per-second", "8")
    terminal.shows("EXIT=0")  # the prompt ended by itself: nothing was typed
    lines = terminal.lines()
    ended = lines.index("[call ended: hangup]")
    assert lines[ended - 1].startswith("bot:    Hello, I will hang up")
    assert lines[ended - 1].endswith(" ...")


def test_without_prompt_toolkit_or_a_terminal_the_console_is_plain(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.setitem(sys.modules, "prompt_toolkit", None)
    assert terminal_console() is None  # not installed: plain mode, no error
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.delitem(sys.modules, "prompt_toolkit")
    assert terminal_console() is None  # piped input: plain mode


def test_start_speaking_is_a_barge_in_that_the_next_line_completes(
        voicesync_sim: Simulator, voicesync_client: Client) -> None:
    agent = voicesync_client.agent("talker")
    agent.on("turn.end", lambda turn, call: call.reply(
        "You said " + turn.text + ". " + "and then some more words " * 10))
    agent.wait_ready()
    voicesync_sim.words_per_second = 20
    call = voicesync_sim.start_call("talker")
    call.say("hi")
    call.wait_speaking(words=2)
    since = voicesync_sim.mark()
    assert call.start_speaking() is True
    assert call.start_speaking() is False  # already talking
    assert not call.speaking
    call.say("stop")
    voicesync_sim.wait_frame(event="turn.end", since=since, direction="out")
    events = [f.event for f in voicesync_sim.frames_since(since)
              if f.direction == "out" and f.event in ("speech.started", "bot.interrupted",
                                                      "user.message", "turn.end")]
    assert events == ["speech.started", "bot.interrupted", "user.message", "turn.end"]
    assert call.wait_reply().startswith("You said stop.")
