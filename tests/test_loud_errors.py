"""Loud by default: a program with no logging set up still sees what went wrong, once.

Each test runs tests/report_script.py in a subprocess (a fresh interpreter, no pytest
logging handlers) against voicesync.sim over loopback, and reads its stderr as it comes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import voicesync

SCRIPT = Path(__file__).resolve().parent / "report_script.py"
ROOT = Path(voicesync.__file__).resolve().parent.parent


class Run:
    """The script, its stdout/stderr read on threads, each line stamped on arrival."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        env.pop("PINECALL_API_KEY", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._cond = threading.Condition()
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    def _pump(self, stream: object, lines: list[tuple[float, str]]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                lines.append((time.monotonic(), line))
                self._cond.notify_all()

    def wait_for(self, lines: list[tuple[float, str]], text: str, timeout: float = 20.0) -> float:
        """When the first line containing `text` arrived (monotonic)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hit = next((at for at, line in lines if text in line), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout:g} s; stderr:\n"
                                         + "".join(line for _, line in self.err))
                self._cond.wait(left)

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(15) == 0, self.stderr

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(line for _, line in self.err)

    @property
    def stdout(self) -> str:
        with self._cond:
            return "".join(line for _, line in self.out)


def test_a_raising_handler_is_printed_with_its_traceback_within_100_ms() -> None:
    run = Run("handler")
    try:
        seen = run.wait_for(run.err, "ValueError: handler exploded on hello")
        run.wait_for(run.out, "RAISE")
        raised = float(next(line.split()[1] for _, line in run.out if line.startswith("RAISE")))
        run.wait_for(run.out, "READY")
    finally:
        run.finish()
    err = run.stderr
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "Boom.on_turn for 'turn.end' on call" in err, err  # where it came from
    assert "in on_turn" in err and 'raise ValueError("handler exploded' in err, err
    assert seen - raised < 0.1, f"printed {seen - raised:.3f} s after the raise"


def test_with_logging_configured_it_is_logged_once_and_not_printed_again() -> None:
    run = Run("handler", "basicConfig")
    try:
        run.wait_for(run.err, "ValueError: handler exploded on hello")
        run.wait_for(run.out, "READY")
    finally:
        run.finish()
    err = run.stderr
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "ERROR:voicesync.client:exception in handler Boom.on_turn" in err, err
    assert "voicesync: exception" not in err, err  # not the fallback's copy


def test_an_error_subscriber_gets_it_instead_of_stderr() -> None:
    run = Run("handler", "subscribe")
    try:
        run.wait_for(run.out, "GOT ValueError handler exploded on hello")
        run.wait_for(run.out, "READY")
    finally:
        run.finish()
    assert "Traceback" not in run.stderr and "exploded" not in run.stderr, run.stderr


@pytest.mark.parametrize(("mode", "text"), [
    ("conflict", "agent 'boom' is in use elsewhere; retrying"),
    ("refused", "the platform refused the API key"),
    ("drops", "event(s) dropped because a call's handlers were more than 3 events or"),
])
def test_conflicts_refused_keys_and_drops_reach_stderr(mode: str, text: str) -> None:
    run = Run(mode)
    try:
        run.wait_for(run.err, text)
    finally:
        run.finish()
    assert run.stderr.count(text) == 1 or mode == "conflict", run.stderr
    assert "configure logging, or subscribe client.on('error', fn)" in run.stderr


@pytest.mark.parametrize("how", ["none", "basicConfig"])
def test_a_raising_tool_is_loud_like_a_raising_handler(how: str) -> None:
    """A server-side tool that raises: the model is told, and a person sees it once."""
    run = Run("tool", how)
    try:
        run.wait_for(run.err, "KeyError: 'no order A7'")
        run.wait_for(run.out, "READY")
    finally:
        run.finish()
    err = run.stderr
    assert err.count("Traceback (most recent call last)") == 1, err
    assert "exception in tool lookup on call" in err and "in lookup" in err, err
    assert ("voicesync: exception" in err) == (how == "none"), err  # the fallback, or logging


def test_on_turn_with_the_wrong_signature_fails_where_the_class_is_defined() -> None:
    with pytest.raises(voicesync.ConfigurationError,
                       match=r"Short.on_turn is called with \(self, turn, call, history\)"):
        class Short(voicesync.Agent):
            id = "short"

            def on_turn(self, turn: voicesync.Turn) -> None:  # type: ignore[override]
                pass

    class Loose(voicesync.Agent):  # *args and defaults bind: accepted
        id = "loose"

        def on_turn(self, *args: object) -> None:  # type: ignore[override]
            pass

    with pytest.raises(voicesync.ConfigurationError, match=r"did you mean 'eager\.turn'"):
        class Eager(voicesync.Agent):
            id = "eager"
            turn_event = "eager_turn"


def test_a_handler_with_the_wrong_arity_is_refused_by_on() -> None:
    agent = voicesync.Agent("a")
    with pytest.raises(voicesync.ConfigurationError, match=r"called with \(event, call\)"):
        agent.on("turn.end", lambda turn: None)
    with pytest.raises(voicesync.ConfigurationError, match=r"called with \(call, reason\)"):
        agent.on("call.ended", lambda call: None)
    agent.on("call.started", lambda call: None)
    agent.on("turn.end", print)  # a builtin: nothing to check
